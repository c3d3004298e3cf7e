// The checks of the connection test: can this browser, on this network, reach the server
// and carry media, and which way? Each check does what a meeting does, on the real servers:
// the page's own HTTP and WebSocket, and TURN/STUN allocations with the ICE servers the
// server hands out (GET /api/connection-test), one URL and one transport at a time.
//
// What it cannot check without joining: UDP straight to the media servers (Janus answers
// ICE checks only for a session it made). UDP to the TURN/STUN server stands in for it,
// and the advice names the media servers' UDP ports as well.
import { apiJson } from './api.js';
import { defaultSocketUrl } from './protocol.js';

const SOCKET_TIMEOUT_MS = 5_000;
// A relay over UDP answers in milliseconds; TCP and TLS in a few round trips. A blocked
// transport never answers: give up after this long.
const GATHER_TIMEOUT_MS = 6_000;

export const MEDIA_TRANSPORTS = ['udp', 'tcp', 'tls'];

// status: 'ok' | 'fail' | 'warn' | 'skip' (nothing to check it with) | 'running';
// reason: the i18n key of why.
export const result = (status, reason = null) => ({ status, reason });

// HTTP (the API answers), the media servers (health) and the WebSocket (a ping answered).
// Resolves with {result, config}: config is GET /api/connection-test's answer, or null.
export async function checkServer() {
  let config;
  try {
    config = await apiJson('GET', '/api/connection-test');
  } catch {
    return { result: result('fail', 'nettest.reason.http'), config: null };
  }
  try {
    const health = await fetch('/healthz', { cache: 'no-store' });
    if (health.status === 503) return { result: result('fail', 'nettest.reason.media'), config };
  } catch {
    return { result: result('fail', 'nettest.reason.http'), config };
  }
  const answered = await pingSocket(defaultSocketUrl());
  return { result: answered ? result('ok') : result('fail', 'nettest.reason.websocket'), config };
}

function pingSocket(url) {
  return new Promise((resolve) => {
    let ws;
    const done = (ok) => {
      clearTimeout(timer);
      try { ws?.close(); } catch { /* already closed */ }
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), SOCKET_TIMEOUT_MS);
    try {
      ws = new WebSocket(url);
    } catch {
      done(false);
      return;
    }
    ws.onopen = () => ws.send(JSON.stringify({ type: 'ping' }));
    ws.onmessage = (event) => {
      try {
        if (JSON.parse(event.data).type === 'pong') done(true);
      } catch { /* not ours */ }
    };
    ws.onerror = () => done(false);
    ws.onclose = () => done(false);
  });
}

// One ICE server URL: {url, transport, kind: 'turn' | 'stun', host, port}.
export function parseIceUrl(url) {
  const match = /^(stuns?|turns?):(\[[^\]]+\]|[^:?]+)(?::(\d+))?(?:\?transport=(udp|tcp))?$/i.exec(url);
  if (!match) return null;
  const scheme = match[1].toLowerCase();
  const secure = scheme.endsWith('s');
  const transport = secure ? 'tls' : (match[4] || 'udp').toLowerCase();
  const port = Number(match[3]) || (secure ? 5349 : 3478);
  return { url, transport, kind: scheme.startsWith('turn') ? 'turn' : 'stun', host: match[2], port };
}

// Every URL of the server's ICE servers, each with the credentials of its entry.
export function iceUrls(iceServers = []) {
  const urls = [];
  for (const server of iceServers) {
    for (const url of [server.urls].flat()) {
      const parsed = parseIceUrl(String(url));
      if (parsed) urls.push({ ...parsed, username: server.username, credential: server.credential });
    }
  }
  return urls;
}

// Does this URL give a candidate? TURN: a relayed one (the allocation worked, over this
// transport, with these credentials); STUN: a server-reflexive one.
export async function gathers(entry, timeoutMs = GATHER_TIMEOUT_MS) {
  const server = { urls: [entry.url] };
  if (entry.username) Object.assign(server, { username: entry.username, credential: entry.credential });
  const wanted = entry.kind === 'turn' ? 'relay' : 'srflx';
  let pc;
  try {
    pc = new RTCPeerConnection({
      iceServers: [server],
      iceTransportPolicy: entry.kind === 'turn' ? 'relay' : 'all',
    });
  } catch {
    return false;
  }
  try {
    return await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      const finish = (ok) => {
        clearTimeout(timer);
        resolve(ok);
      };
      pc.onicecandidate = (event) => {
        if (!event.candidate) return finish(false); // gathering complete without one
        if (candidateType(event.candidate) === wanted) finish(true);
      };
      pc.createDataChannel('connection-test');
      pc.createOffer().then((offer) => pc.setLocalDescription(offer)).catch(() => finish(false));
    });
  } finally {
    pc.close();
  }
}

function candidateType(candidate) {
  return candidate.type || / typ (\w+)/.exec(candidate.candidate || '')?.[1] || null;
}

// {udp, tcp, tls}: each transport works if one of its URLs gives a candidate.
export async function checkMedia(iceServers) {
  const urls = iceUrls(iceServers);
  const tried = await Promise.all(urls.map(async (entry) => ({ entry, ok: await gathers(entry) })));
  const results = {};
  for (const transport of MEDIA_TRANSPORTS) {
    const mine = tried.filter(({ entry }) => entry.transport === transport);
    results[transport] = !mine.length ? result('skip', 'nettest.reason.unconfigured')
      : mine.some(({ ok }) => ok) ? result('ok') : result('fail', 'nettest.reason.blocked');
  }
  return { results, urls };
}

// What to open in the firewall for each blocked way, in words for IT:
// [{transport, host, port}] for the TURN/STUN servers, plus the media servers' UDP range.
export function blockedEndpoints(urls, results) {
  const seen = new Set();
  const endpoints = [];
  for (const { transport, host, port } of urls) {
    const key = `${transport} ${host} ${port}`;
    if (results[transport]?.status !== 'fail' || seen.has(key)) continue;
    seen.add(key);
    endpoints.push({ transport, host, port });
  }
  return endpoints;
}

// The overall verdict: 'ready' | 'relayed' (media through TURN over TCP or TLS at least) |
// 'udp_unknown' (UDP could not be checked, and no relay works) | 'no_media' | 'no_server'.
export function verdict({ server, udp, tcp, tls }) {
  if (server.status !== 'ok') return 'no_server';
  if (udp.status === 'ok') return 'ready';
  if (tcp.status === 'ok' || tls.status === 'ok') return 'relayed';
  return udp.status === 'skip' ? 'udp_unknown' : 'no_media';
}
