// Call quality measured in the browser (getStats), apart from the UI: every SAMPLE_MS the
// peer connections' statistics are turned into a summary per received track, for what we
// receive (downlink) and what we send (uplink), each classified good / fair / poor.
// meeting.js shows it (an indicator on each tile and for oneself), downlink.js steps video
// down when the downlink cannot carry it, and a compact summary goes to the server every
// TELEMETRY_MS (the 'quality' frame, docs/PROTOCOL.md).
//
// Browsers report different fields: a missing one (Firefox ESR 153 has no
// availableOutgoingBitrate; older Firefox had no freezeCount, no mid on inbound-rtp) is left
// out of the summary and of the classification, never counted as zero.

export const SAMPLE_MS = 2000;
export const TELEMETRY_MS = 10_000;
export const LEVELS = ['good', 'fair', 'poor'];

// [fair from, poor from]: a measure at or past the first is fair, at or past the second poor.
export const THRESHOLDS = {
  lossPct: [2, 8], // packets lost: Opus FEC and NACK hide a few %, video stalls past ~8 %
  rttMs: [300, 700], // round trip: ITU-T G.114 calls 150 ms one way transparent, 350 ms hard
  jitterMs: [30, 100], // interarrival jitter, beyond what a jitter buffer absorbs unnoticed
  concealedPct: [3, 10], // audio the decoder had to invent: 10 % is heard as broken speech
  freezePct: [2, 10], // share of the time a video stood still (the browser's freeze detector)
};
// Received camera video frames per second: [fair below, poor below].
export const FPS_THRESHOLDS = [12, 5];

const MEASURES = Object.keys(THRESHOLDS);

export function levelOf(name, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return null;
  const [fair, poor] = THRESHOLDS[name];
  if (value >= poor) return 'poor';
  return value >= fair ? 'fair' : 'good';
}

function fpsLevel(fps) {
  if (fps === null || fps === undefined) return null;
  const [fair, poor] = FPS_THRESHOLDS;
  if (fps < poor) return 'poor';
  return fps < fair ? 'fair' : 'good';
}

// The worst of some levels; null when none is known.
export function worst(...levels) {
  let rank = -1;
  for (const level of levels) rank = Math.max(rank, LEVELS.indexOf(level));
  return rank < 0 ? null : LEVELS[rank];
}

// The level of one summary: its worst measure (fps only for camera video).
export function classify(summary) {
  const levels = MEASURES.map((name) => levelOf(name, summary[name]));
  if (summary.camera) levels.push(fpsLevel(summary.fps));
  return worst(...levels);
}

const share = (part, whole) => (whole > 0 ? Math.min(100, (100 * part) / whole) : null);
const round = (value, digits = 1) => (value === null || value === undefined
  ? null : Math.round(value * 10 ** digits) / 10 ** digits);
const delta = (cur, prev, key) => {
  if (typeof cur?.[key] !== 'number') return null;
  return Math.max(0, cur[key] - (typeof prev?.[key] === 'number' ? prev[key] : 0));
};

// One received track over a window, from two inbound-rtp reports (prev may be undefined:
// the track is new) and the window before (whether its video was flowing).
export function trackSummary(cur, prev, seconds, { camera = false, wasFlowing = true } = {}) {
  const received = delta(cur, prev, 'packetsReceived') ?? 0;
  const lost = delta(cur, prev, 'packetsLost') ?? 0;
  const summary = {
    kind: cur.kind,
    camera: camera && cur.kind === 'video',
    received,
    lost,
    lossPct: received + lost > 0 ? share(lost, received + lost) : null,
    jitterMs: received > 0 && typeof cur.jitter === 'number' ? cur.jitter * 1000 : null,
    kbps: (delta(cur, prev, 'bytesReceived') ?? 0) * 8 / 1000 / seconds,
  };
  if (cur.kind === 'audio') {
    summary.concealed = delta(cur, prev, 'concealedSamples');
    summary.samples = delta(cur, prev, 'totalSamplesReceived');
    summary.concealedPct = summary.samples ? share(summary.concealed, summary.samples) : null;
    return summary;
  }
  const frames = delta(cur, prev, 'framesDecoded') ?? 0;
  summary.frames = frames;
  summary.fps = received > 0 ? (cur.framesPerSecond ?? frames / seconds) : null;
  summary.width = cur.frameWidth || null;
  summary.height = cur.frameHeight || null;
  // Chromium records a freeze on the frame that ends it: after a pause (video turned off,
  // by us or by its sender) the first frame would count the whole pause as one.
  const freezes = delta(cur, prev, 'freezeCount');
  if (freezes !== null && prev && wasFlowing && frames > 0) {
    summary.freezes = freezes;
    summary.freezeS = Math.min(delta(cur, prev, 'totalFreezesDuration') ?? 0, seconds);
    summary.freezePct = share(summary.freezeS, seconds);
  }
  return summary;
}

// The totals of several track summaries (the downlink, or one person's tracks).
export function combine(summaries, seconds) {
  const sum = (key) => summaries.reduce((total, s) => total + (s[key] ?? 0), 0);
  const has = (key) => summaries.some((s) => s[key] !== null && s[key] !== undefined);
  const video = summaries.filter((s) => s.camera && s.fps !== null);
  const jitters = summaries.filter((s) => s.kind === 'audio' && s.jitterMs !== null);
  const received = sum('received');
  const lost = sum('lost');
  const totals = {
    received, lost,
    lossPct: received + lost > 0 ? share(lost, received + lost) : null,
    jitterMs: jitters.length ? Math.max(...jitters.map((s) => s.jitterMs)) : null,
    concealed: sum('concealed'),
    samples: sum('samples'),
    concealedPct: share(sum('concealed'), sum('samples')),
    freezes: has('freezes') ? sum('freezes') : null,
    freezeS: has('freezeS') ? sum('freezeS') : null,
    freezePct: null,
    fps: video.length ? Math.min(...video.map((s) => s.fps)) : null,
    camera: video.length > 0,
    kbps: sum('kbps'),
    seconds,
  };
  const flowing = summaries.filter((s) => s.freezeS !== undefined).length;
  if (totals.freezeS !== null && flowing) totals.freezePct = share(totals.freezeS, seconds * flowing);
  return totals;
}

// The candidate pair in use: its RTT (Chromium) and the sending bitrate estimate (Chromium).
export function selectedPair(report) {
  let pair = null;
  for (const s of report.values()) {
    if (s.type === 'transport' && s.selectedCandidatePairId) return report.get(s.selectedCandidatePairId) || null;
    if (s.type === 'candidate-pair' && (s.selected || (s.nominated && s.state === 'succeeded'))) pair = s;
  }
  return pair;
}

// ---- reading the peer connections -------------------------------------------------------

// inbound-rtp stats by mid: from `mid` (Chromium), else by track id (older Firefox).
async function inboundByMid(pc) {
  const report = await pc.getStats();
  const byMid = new Map();
  const byTrack = new Map();
  for (const s of report.values()) {
    if (s.type !== 'inbound-rtp') continue;
    if (s.mid !== undefined) byMid.set(String(s.mid), s);
    else if (s.trackIdentifier) byTrack.set(s.trackIdentifier, s);
  }
  for (const t of pc.getTransceivers()) {
    if (t.mid === null || byMid.has(t.mid)) continue;
    const found = byTrack.get(t.receiver.track?.id);
    if (found) byMid.set(t.mid, found);
  }
  return { report, byMid };
}

function uplinkSummary(report, prev, seconds) {
  const up = { rttMs: null, lossPct: null, jitterMs: null, outKbps: null, sentKbps: 0 };
  let lost = 0;
  let sent = 0;
  for (const s of report.values()) {
    if (s.type === 'outbound-rtp') {
      sent += delta(s, prev.get(s.id), 'packetsSent') ?? 0;
      up.sentKbps += (delta(s, prev.get(s.id), 'bytesSent') ?? 0) * 8 / 1000 / seconds;
    } else if (s.type === 'remote-inbound-rtp') {
      // What Janus reports of our packets (RTCP receiver reports).
      lost += delta(s, prev.get(s.id), 'packetsLost') ?? 0;
      if (typeof s.roundTripTime === 'number') up.rttMs = Math.max(up.rttMs ?? 0, s.roundTripTime * 1000);
      if (typeof s.jitter === 'number' && s.kind === 'audio') up.jitterMs = s.jitter * 1000;
    }
  }
  if (sent + lost > 0) up.lossPct = share(lost, sent + lost);
  const pair = selectedPair(report);
  if (typeof pair?.currentRoundTripTime === 'number') up.rttMs = pair.currentRoundTripTime * 1000;
  if (typeof pair?.availableOutgoingBitrate === 'number') up.outKbps = pair.availableOutgoingBitrate / 1000;
  return up;
}

const BROKEN = new Set(['disconnected', 'failed']);

// Samples a VisioConnection's peer connections; emits 'sample' with
//   {at, seconds, level, up, down, tracks: Map(mid -> summary + {participant, target, level,
//    layer}), people: Map(participant id -> level)}
// where level is ours (the worst of up and down), up/down are summaries with their level.
export class QualityMonitor extends EventTarget {
  constructor(conn, { intervalMs = SAMPLE_MS } = {}) {
    super();
    this.conn = conn;
    this.intervalMs = intervalMs;
    this.timer = null;
    this.previous = new WeakMap(); // pc -> Map(stats id -> stats)
    this.flowing = new Map(); // mid -> whether it decoded video in the last window
    this.lastAt = null;
    this.running = false;
  }

  start() {
    if (this.timer) return;
    this.timer = setInterval(() => this.sample().catch(() => {}), this.intervalMs);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  async sample() {
    if (this.running) return null; // a slow getStats: skip this turn
    this.running = true;
    try {
      const at = performance.now();
      const seconds = this.lastAt === null ? this.intervalMs / 1000 : Math.max(0.5, (at - this.lastAt) / 1000);
      this.lastAt = at;
      const down = await this.sampleDownlink(seconds);
      const up = await this.sampleUplink(seconds);
      const level = worst(up.level, down.level) || 'good';
      const detail = { at, seconds, level, up, down: down.totals, tracks: down.tracks, people: down.people };
      this.dispatchEvent(new CustomEvent('sample', { detail }));
      return detail;
    } finally {
      this.running = false;
    }
  }

  remember(pc, report) {
    const kept = new Map();
    for (const s of report.values()) kept.set(s.id, s);
    this.previous.set(pc, kept);
  }

  async sampleDownlink(seconds) {
    const sub = this.conn.subscriber;
    const tracks = new Map();
    const people = new Map();
    if (!sub?.pc) return { totals: { ...combine([], seconds), level: null }, tracks, people };
    const { report, byMid } = await inboundByMid(sub.pc);
    const prev = this.previous.get(sub.pc) || new Map();
    for (const [mid, info] of sub.active) {
      const cur = byMid.get(mid);
      if (!cur) continue;
      const summary = trackSummary(cur, prev.get(cur.id), seconds, {
        camera: info.target === 'camera', wasFlowing: this.flowing.get(mid) !== false,
      });
      if (cur.kind === 'video') this.flowing.set(mid, summary.frames > 0);
      Object.assign(summary, {
        mid, participant: info.participant, target: info.target, layer: this.conn.layers.get(mid) || null,
      });
      // A track's first window (decoding starting, a layer settling) says nothing yet.
      summary.level = prev.has(cur.id) ? classify(summary) : null;
      tracks.set(mid, summary);
      people.set(info.participant, worst(people.get(info.participant), summary.level));
    }
    this.remember(sub.pc, report);
    const totals = combine([...tracks.values()], seconds);
    const pair = selectedPair(report);
    if (typeof pair?.currentRoundTripTime === 'number') totals.rttMs = pair.currentRoundTripTime * 1000;
    totals.level = BROKEN.has(sub.pc.connectionState) ? 'poor' : classify(totals);
    return { totals, tracks, people };
  }

  async sampleUplink(seconds) {
    const pc = this.conn.publications.get('camera')?.pc;
    if (!pc) return { level: null };
    const report = await pc.getStats();
    const up = uplinkSummary(report, this.previous.get(pc) || new Map(), seconds);
    this.remember(pc, report);
    up.level = BROKEN.has(pc.connectionState) ? 'poor' : classify(up);
    return up;
  }
}

// What an indicator shows: worse at once, better only after `calm` samples in a row
// (a good sample among poor ones is not a recovery).
export class SteadyLevel {
  constructor(calm = 2) {
    this.calm = calm;
    this.level = null;
    this.better = 0;
  }

  update(level) {
    if (!level) return this.level;
    const rank = LEVELS.indexOf(level);
    const shown = LEVELS.indexOf(this.level);
    if (this.level === null || rank > shown) {
      this.level = level;
      this.better = 0;
    } else if (rank < shown) {
      this.better += 1;
      if (this.better >= this.calm) {
        this.level = level;
        this.better = 0;
      }
    } else {
      this.better = 0;
    }
    return this.level;
  }
}

// The summary of TELEMETRY_MS of samples that the server aggregates (the 'quality' frame).
export class TelemetryWindow {
  constructor() {
    this.reset();
  }

  reset() {
    this.samples = [];
  }

  add(sample, extra = {}) {
    this.samples.push({ ...sample, ...extra });
  }

  // The frame, or null when nothing was sampled.
  frame() {
    const samples = this.samples;
    if (!samples.length) return null;
    const downs = samples.map((s) => s.down);
    const seconds = samples.reduce((t, s) => t + s.seconds, 0);
    const sum = (key) => downs.reduce((t, d) => t + (d[key] ?? 0), 0);
    const mean = (values) => {
      const known = values.filter((v) => typeof v === 'number');
      return known.length ? known.reduce((a, b) => a + b, 0) / known.length : null;
    };
    const received = sum('received');
    const lost = sum('lost');
    const hasFreezes = downs.some((d) => d.freezes !== null && d.freezes !== undefined);
    const last = samples[samples.length - 1];
    const frame = {
      type: 'quality',
      seconds: clamp(round(seconds), 1, 120),
      level: worst(...samples.map((s) => s.level)) || 'good',
      rtt_ms: round(mean(samples.map((s) => s.down.rttMs ?? s.up.rttMs)), 0),
      loss_pct: round(received + lost > 0 ? share(lost, received + lost) : null, 2),
      up_loss_pct: round(mean(samples.map((s) => s.up.lossPct)), 2),
      jitter_ms: round(mean(downs.map((d) => d.jitterMs))),
      concealed_pct: round(share(sum('concealed'), sum('samples')), 2),
      freezes: hasFreezes ? sum('freezes') : null,
      freeze_s: hasFreezes ? round(sum('freezeS'), 2) : null,
      fps: round(mean(downs.map((d) => d.fps))),
      layer: last.layer ?? null,
      video_tiles: last.videoTiles ?? null,
      step: last.step ?? 0,
      out_kbps: round(mean(samples.map((s) => s.up.outKbps)), 0),
    };
    for (const [key, value] of Object.entries(frame)) if (value === null) delete frame[key];
    return frame;
  }
}

function clamp(value, lo, hi) {
  return Math.min(hi, Math.max(lo, value));
}
