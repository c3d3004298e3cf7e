// The Visio protocol client (docs/PROTOCOL.md): one WebSocket to the Visio server and
// up to three peer connections to Janus. No DOM or UI code lives here.
//
// Events (CustomEvent, payload in `detail`):
//   connection-state {state: 'connecting'|'lobby'|'connected'|'reconnecting'|'closed', reason?, attempt?, delay?}
//   lobby            {room, reason, expiresIn}  waiting to be let in; the join is still pending
//   joined           {room, you, participants, chat, resumed, rejoined}
//   self-updated     {participant}
//   participant-joined {participant}   participant-updated {participant, previous}
//   participant-left {id, reason, participant}
//   track            {mid, participant, target, media, track, stream}
//   track-ended      {mid, participant, target, media}
//   speaking {id, speaking}   chat {message}   reaction {from, emoji}
//   media {target, state}     peer-state {target, state}   error {code, message, ref, retryIn?}
//   ice-restart {target}      our camera or screen stopped getting through: new ICE credentials
//   room {room}               the room's settings (name, access, locked) or what is
//                             captured (capture: {transcription, recording}) changed
//   lobby-update {waiting}    moderators: who waits in the lobby now
//   moderated {action, by}    a moderator muted us, turned our camera off or stopped our share
//   ended {by}                a moderator ended the meeting (then 'connection-state' closed)
//   hands {queue}             the raised hands, first raised first (participant ids)
//   spotlight {id, by}        a moderator shows this person large to everyone (id null: nobody)
//   granted {right, on, by}   a moderator let us speak or present ('speak' | 'present'), or
//                             stopped it; what we may not publish is held, not sent (mayPublish)
//   hand-lowered {by}         a moderator lowered our hand
//   captions {on, history}    the answer to setCaptions(): live captions are on (history: the
//                             final captions of the meeting so far) or off, for us only
//   caption {caption}         {id, participant, name, text, final, start, end, language}: a
//                             line being said; a later one with the same id replaces it
//                             (partials, then the final one); times in epoch ms
//   caption-status {participant, name, captioned}  captioned false: more people talk than
//                             the server can caption, this one is not for now; true: again
//
// Moderators' requests (admit, deny, moderate, muteAll, lock, end, setCapture) return the
// frame's ref, echoed in the 'error' event the request may cause (e.g. forbidden); their
// success shows in the frames that follow ('room', 'lobby-update', ...). For example
// setCapture('transcription', true) asks the server to transcribe the meeting from now on;
// everyone then gets 'room' with room.capture.transcription true.
//
// Anyone may turn live captions on for themselves: setCaptions(true) (the choice is sent
// again after every reconnection or rejoin). A server without a speech model answers
// with the error 'captions_unavailable', which turns the choice off.

export const REACTIONS = ['👍', '👏', '😂', '❤️', '🎉', '😮'];
// The simulcast layers a subscriber may ask for; 'off' stops that video being sent to us.
export const QUALITIES = ['off', 'low', 'medium', 'high'];

// Janus 1.x reads rid-based simulcast layers in SDP order, highest first ("hml"),
// whatever the rid names: keep h, m, l in that order (as janus.js does).
export const SIMULCAST_ENCODINGS = [
  { rid: 'h', maxBitrate: 900_000, scaleResolutionDownBy: 1 },
  { rid: 'm', maxBitrate: 300_000, scaleResolutionDownBy: 2 },
  { rid: 'l', maxBitrate: 100_000, scaleResolutionDownBy: 4 },
];

const PING_INTERVAL_MS = 15_000;
const SILENCE_LIMIT_MS = 40_000; // no frame at all for this long: the socket is dead
const PROBE_TIMEOUT_MS = 5_000;
const BACKOFF_MS = [500, 1000, 2000, 4000, 5000];
const REPAIR_MIN_INTERVAL_MS = 5_000;
const PUBLISH_TIMEOUT_MS = 20_000;
const DISCONNECTED_GRACE_MS = 10_000;
// ICE checks go on while 'disconnected' and a short blip heals alone; past this, a
// publication gets new ICE credentials (an ICE restart) on the same connection, which its
// subscribers never notice, and the subscriber connection is made anew (a resubscribe
// nobody else notices either: after Janus' own ICE restart offer, Chromium 156 counted the
// audio packets but played none).
const ICE_RESTART_AFTER_MS = 2_000;
const ICE_RESTART_MIN_INTERVAL_MS = 5_000;
// Errors after which the server closes and a reconnection would not help.
const FATAL_CODES = new Set(['replaced', 'server_shutdown', 'denied', 'lobby_expired', 'removed', 'signed_out', 'access_revoked']);
const JOIN_FAILURES = new Set(['room_not_found', 'room_full', 'lobby_full', 'name_taken', 'bad_message']);
export const MODERATION_ACTIONS = ['mute', 'camera_off', 'stop_screen', 'remove'];
export const CAPTURE_KINDS = ['transcription', 'recording'];
const MAX_OUTBOX = 50;

export function defaultSocketUrl(loc = window.location) {
  const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${loc.host}/ws`;
}

export class VisioError extends Error {
  constructor(code, message, ref, retryIn) {
    super(message || code);
    this.code = code;
    this.ref = ref;
    this.retryIn = retryIn; // seconds, from a 'busy' or 'rate_limited' error
  }
}

export class VisioConnection extends EventTarget {
  constructor({ url, simulcast = true } = {}) {
    super();
    this.url = url || defaultSocketUrl();
    this.simulcast = simulcast;
    this.state = 'new';
    this.ws = null;
    this.room = null;
    this.roomInfo = null; // {id, name, access, locked, capture} from 'joined' and 'room'
    this.name = null;
    this.you = null;
    this.resumeToken = null;
    this.iceServers = [];
    this.participants = new Map();
    this.localState = { audio: true, video: true, hand: false };
    this.publications = new Map(); // target -> publication (see startPublication)
    this.subscriber = null;
    this.subscriberQueue = Promise.resolve();
    this.earlyCandidates = []; // subscriber candidates that came before their offer
    this.staleUfrag = null;
    this.layers = new Map(); // mid -> last quality asked
    this.requests = new Map(); // ref -> {resolve, reject}
    this.lastRepair = new Map(); // target -> ms
    this.repairTimers = new Map();
    this.renewedAt = new Map(); // target -> when its connection was last made anew
    this.outbox = [];
    this.attempt = 0;
    this.refCount = 0;
    this.joined = false;
    this.lobby = null; // {room, reason, expiresIn} while waiting to be let in
    this.waiting = []; // moderators: who waits in the lobby
    this.endedBy = null;
    this.captions = false; // live captions wanted
    this.captionsSent = false; // what the server was last told
    this.stopped = false;
    this.joinWaiter = null;
    this.timers = { reconnect: null, ping: null, probe: null };
    this.onOnline = () => this.handleOnline();
    this.onOffline = () => this.handleOffline();
  }

  // ---- public API -------------------------------------------------------------------

  // Resolves with the server's 'joined', which may come after a wait in the lobby ('lobby'
  // events meanwhile). Rejects with a VisioError whose code says why it never came:
  // room_not_found, room_full, bad_message, denied, lobby_expired, ended (error.by),
  // left (leave() while waiting), replaced, server_shutdown.
  join(room, name, { audio = true, video = true } = {}) {
    this.room = room;
    this.name = name;
    this.localState.audio = audio;
    this.localState.video = video;
    this.stopped = false;
    window.addEventListener('online', this.onOnline);
    window.addEventListener('offline', this.onOffline);
    const joined = new Promise((resolve, reject) => { this.joinWaiter = { resolve, reject }; });
    this.setConnectionState('connecting');
    this.connect();
    return joined;
  }

  publishCamera(stream) {
    return this.publish('camera', stream);
  }

  publishScreen(stream) {
    return this.publish('screen', stream);
  }

  unpublish(target) {
    const pub = this.publications.get(target);
    if (!pub) return;
    this.publications.delete(target);
    clearTimeout(pub.answerTimer);
    closePeer(pub.pc);
    closePeer(pub.retiring?.pc);
    pub.waiter?.reject(new VisioError('unpublished'));
    if (this.joined) this.send({ type: 'unpublish', target });
  }

  // Swap a local track (e.g. another camera, or camera back on) without renegotiating.
  async replaceTrack(target, kind, track) {
    const pub = this.publications.get(target);
    if (!pub) return;
    pub.tracks[kind] = track || null;
    const senders = [pub.transceivers?.[kind], pub.retiring?.transceivers?.[kind]]
      .filter((t) => t && !t.stopped && t.currentDirection !== 'stopped')
      .map((t) => t.sender);
    await Promise.all(senders.map((sender) => sender.replaceTrack(track || null).catch(() => {})));
  }

  setState(state) {
    const changes = {};
    for (const key of ['audio', 'video', 'hand']) {
      if (typeof state[key] === 'boolean') changes[key] = state[key];
    }
    Object.assign(this.localState, changes);
    if (this.joined) this.send({ type: 'state', ...changes });
  }

  sendChat(text) {
    const frame = { type: 'chat', text: String(text).slice(0, 2000) };
    if (this.joined && this.send(frame)) return true;
    if (this.outbox.length < MAX_OUTBOX) this.outbox.push(frame);
    return false;
  }

  sendReaction(emoji) {
    if (!REACTIONS.includes(emoji)) throw new RangeError(`unknown reaction ${emoji}`);
    return this.joined && this.send({ type: 'reaction', emoji });
  }

  // Which simulcast layer of a received video (mid) we want, or 'off' for none for now.
  setLayer(mid, quality) {
    mid = String(mid);
    if (!QUALITIES.includes(quality) || this.layers.get(mid) === quality) return;
    if (!this.subscriber?.active.has(mid)) return;
    this.layers.set(mid, quality);
    this.send({ type: 'layer', mid, quality });
  }

  // A summary of the call's quality (quality.js, TelemetryWindow.frame()) for the server's
  // metrics and its end-of-meeting quality line. Returns whether it was sent.
  sendQuality(summary) {
    return this.joined && this.send({ ...summary, type: 'quality' });
  }

  // Live captions for us (on) or not. Returns true when sent now; otherwise it is sent
  // when (re)joined. The answer is 'captions', then 'caption' frames follow.
  setCaptions(on) {
    this.captions = !!on;
    if (!this.joined || !this.send({ type: 'captions', on: this.captions })) return false;
    this.captionsSent = this.captions;
    return true;
  }

  leave() {
    if (this.stopped) return;
    if (this.ws?.readyState === WebSocket.OPEN) this.send({ type: 'leave' });
    this.shutdown('left');
  }

  // ---- moderators (the server answers anyone else with the error 'forbidden') ----------
  // Each returns the frame's ref (echoed in the error it may cause), or null when not sent.

  admit(id) {
    return this.moderatorFrame({ type: 'admit', id: String(id) });
  }

  admitAll() {
    return this.moderatorFrame({ type: 'admit', all: true });
  }

  deny(id) {
    return this.moderatorFrame({ type: 'deny', id: String(id) });
  }

  denyAll() {
    return this.moderatorFrame({ type: 'deny', all: true });
  }

  moderate(action, id) {
    if (!MODERATION_ACTIONS.includes(action)) throw new RangeError(`unknown moderation ${action}`);
    return this.moderatorFrame({ type: 'moderate', action, id: String(id) });
  }

  muteAll() {
    return this.moderatorFrame({ type: 'moderate', action: 'mute', all: true });
  }

  lock(locked) {
    return this.moderatorFrame({ type: 'lock', locked: !!locked });
  }

  end() {
    return this.moderatorFrame({ type: 'end' });
  }

  // Start (on: true) or stop transcribing or recording the meeting: kind is one of
  // CAPTURE_KINDS. Everyone sees the change in 'room' (room.capture).
  setCapture(kind, on) {
    if (!CAPTURE_KINDS.includes(kind)) throw new RangeError(`unknown capture ${kind}`);
    return this.moderatorFrame({ type: 'capture', kind, on: !!on });
  }

  // Breakout rooms (docs/PROTOCOL.md): moderators open, move, broadcast and close; anyone
  // moves themselves while the rooms are open for choosing (room null: the main room).
  openBreakout({ count, assign = 'manual', durationS = null, names = null }) {
    const frame = { type: 'breakout_open', count: Number(count), assign };
    if (durationS) frame.duration_s = Number(durationS);
    if (names) frame.names = names;
    return this.moderatorFrame(frame);
  }

  moveToBreakout(room, id = null) {
    const frame = { type: 'breakout_move', room: room === null ? null : Number(room) };
    if (id) frame.id = String(id);
    return this.moderatorFrame(frame);
  }

  broadcastToRooms(text) {
    return this.moderatorFrame({ type: 'breakout_broadcast', text: String(text) });
  }

  closeBreakout(afterS = 0) {
    return this.moderatorFrame({ type: 'breakout_close', after_s: Number(afterS) });
  }

  // Whether we may publish a target now: always, unless the room is a webinar
  // (room.stage.attendees_publish false) and we neither moderate nor were let speak
  // ('camera') or present ('screen'). A publication we may not make waits, unsent.
  mayPublish(target) {
    if (this.roomInfo?.stage?.attendees_publish !== false) return true;
    if (['owner', 'admin'].includes(this.you?.role)) return true;
    return (this.you?.granted || []).includes(target === 'screen' ? 'present' : 'speak');
  }

  // Our rights changed: start what waited, drop (and keep waiting) what we lost; the server
  // has already stopped it at its end. A screen share lost is forgotten.
  applyRights() {
    if (!this.joined) return;
    for (const [target, pub] of this.publications) {
      if (this.mayPublish(target)) {
        if (pub.held) this.startPublication(target);
      } else if (target === 'screen') {
        this.forgetPublication('screen');
        this.emit('moderated', { action: 'stop_screen', by: null });
      } else if (!pub.held) {
        clearTimeout(pub.answerTimer);
        closePeer(pub.pc);
        Object.assign(pub, { pc: null, pending: false, held: true });
      }
    }
  }

  moderatorFrame(frame) {
    if (!this.joined) return null;
    const ref = this.nextRef(frame.type);
    return this.send({ ...frame, ref }) ? ref : null;
  }

  // ---- WebSocket ----------------------------------------------------------------------

  connect() {
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = null;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.onopen = () => this.onSocketOpen(ws);
    ws.onmessage = (ev) => this.onSocketMessage(ws, ev.data);
    ws.onclose = () => this.onSocketClosed(ws);
  }

  onSocketOpen(ws) {
    if (ws !== this.ws) return;
    this.lastFrameAt = Date.now();
    const join = {
      type: 'join', room: this.room, name: this.name,
      audio: this.localState.audio, video: this.localState.video,
    };
    if (this.resumeToken) join.resume = this.resumeToken;
    this.send(join);
    this.startPing();
  }

  onSocketMessage(ws, data) {
    if (ws !== this.ws) return;
    this.lastFrameAt = Date.now();
    clearTimeout(this.timers.probe);
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    const handler = FRAME_HANDLERS[msg?.type];
    if (handler) handler.call(this, msg);
  }

  onSocketClosed(ws) {
    if (ws !== this.ws) return;
    this.detachSocket();
    if (this.stopped) return;
    this.scheduleReconnect();
  }

  // Forget the socket at once: a dead network may take minutes to fire 'close'.
  abandonSocket(reason, delay) {
    const ws = this.ws;
    if (!ws) return;
    this.detachSocket();
    try { ws.close(); } catch { /* already closing */ }
    if (!this.stopped) this.scheduleReconnect(reason, delay);
  }

  detachSocket() {
    const ws = this.ws;
    if (ws) ws.onopen = ws.onmessage = ws.onclose = null;
    this.ws = null;
    this.joined = false;
    this.lobby = null; // a reconnection asks again
    this.stopPing();
    for (const pub of this.publications.values()) pub.pending = false;
    for (const { reject } of this.requests.values()) reject(new VisioError('disconnected'));
    this.requests.clear();
  }

  // `delay` (ms): when the server said to come back; otherwise the backoff's next step.
  scheduleReconnect(reason = 'network', delay = undefined) {
    if (this.stopped || this.timers.reconnect) return;
    if (delay === undefined) delay = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    this.setConnectionState('reconnecting', { attempt: this.attempt, delay, reason });
    this.timers.reconnect = setTimeout(() => {
      this.timers.reconnect = null;
      this.connect();
    }, delay);
  }

  handleOnline() {
    if (this.stopped) return;
    if (!this.ws) {
      clearTimeout(this.timers.reconnect);
      this.timers.reconnect = null;
      this.attempt = 0;
      this.connect();
      return;
    }
    this.probe();
  }

  handleOffline() {
    if (!this.stopped) this.abandonSocket('offline');
  }

  // Ask for a pong; without an answer soon, the socket is treated as dead.
  probe() {
    if (!this.send({ type: 'ping' })) return;
    clearTimeout(this.timers.probe);
    this.timers.probe = setTimeout(() => this.abandonSocket('timeout'), PROBE_TIMEOUT_MS);
  }

  startPing() {
    this.stopPing();
    this.timers.ping = setInterval(() => {
      if (Date.now() - this.lastFrameAt > SILENCE_LIMIT_MS) {
        this.abandonSocket('timeout');
        return;
      }
      this.send({ type: 'ping' });
    }, PING_INTERVAL_MS);
  }

  stopPing() {
    clearInterval(this.timers.ping);
    clearTimeout(this.timers.probe);
    this.timers.ping = this.timers.probe = null;
  }

  send(frame) {
    if (this.ws?.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  nextRef(prefix) {
    this.refCount += 1;
    return `${prefix}-${this.refCount}`;
  }

  request(frame) {
    const ref = this.nextRef(frame.type);
    return new Promise((resolve, reject) => {
      this.requests.set(ref, { resolve, reject });
      if (!this.send({ ...frame, ref })) {
        this.requests.delete(ref);
        reject(new VisioError('disconnected'));
      }
    });
  }

  shutdown(reason) {
    this.stopped = true;
    clearTimeout(this.timers.reconnect);
    this.timers.reconnect = null;
    window.removeEventListener('online', this.onOnline);
    window.removeEventListener('offline', this.onOffline);
    const ws = this.ws;
    this.detachSocket();
    try { ws?.close(); } catch { /* ignore */ }
    for (const pub of this.publications.values()) {
      clearTimeout(pub.answerTimer);
      closePeer(pub.pc);
      closePeer(pub.retiring?.pc);
    }
    this.publications.clear();
    for (const timer of this.repairTimers.values()) clearTimeout(timer);
    this.dropSubscriber();
    this.lobby = null;
    this.setConnectionState('closed', { reason });
    if (this.joinWaiter) {
      // Never joined: denied or expired in the lobby, ended, or given up (left).
      const error = new VisioError(reason);
      if (reason === 'ended') error.by = this.endedBy;
      this.joinWaiter.reject(error);
      this.joinWaiter = null;
    }
  }

  setConnectionState(state, extra = {}) {
    this.state = state;
    this.emit('connection-state', { state, ...extra });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // ---- server frames --------------------------------------------------------------------

  onJoined(msg) {
    const rejoined = this.you !== null;
    this.lobby = null;
    this.roomInfo = msg.room || this.roomInfo;
    this.you = msg.you;
    this.resumeToken = msg.resume || null;
    this.iceServers = Array.isArray(msg.iceServers) ? msg.iceServers : [];
    this.joined = true;
    this.attempt = 0;
    this.syncParticipants(msg.participants || []);
    this.setConnectionState('connected');
    this.emit('joined', {
      room: msg.room, you: msg.you, participants: [...this.participants.values()],
      chat: msg.chat || [], chatEarlier: msg.chat_earlier || 0, resumed: !!msg.resumed, rejoined,
    });
    this.emit('breakout', { state: msg.breakout || null });
    if (this.joinWaiter) {
      this.joinWaiter.resolve(msg);
      this.joinWaiter = null;
    }
    if (rejoined) this.restoreAfterRejoin(!!msg.resumed, msg.published || []);
    else for (const target of this.publications.keys()) this.startPublication(target);
    this.restoreCaptions();
    this.flushOutbox();
  }

  restoreAfterRejoin(resumed, published) {
    const { audio, video, hand } = this.localState;
    this.send({ type: 'state', audio, video, hand });
    for (const [target, pub] of this.publications) {
      const alive = resumed && published.includes(target) && pub.pc?.connectionState === 'connected';
      if (!alive) this.startPublication(target);
    }
    if (!this.subscriber) return;
    if (!resumed) this.dropSubscriber(); // a fresh join: the server sends a fresh offer
    else if (this.subscriber.pc.connectionState !== 'connected') this.resubscribe();
  }

  // A fresh place starts without captions; a resumed one may still have them: say again.
  restoreCaptions() {
    if (!this.captions && !this.captionsSent) return;
    if (this.send({ type: 'captions', on: this.captions })) this.captionsSent = this.captions;
  }

  flushOutbox() {
    while (this.outbox.length && this.send(this.outbox[0])) this.outbox.shift();
  }

  syncParticipants(list) {
    const seen = new Set();
    for (const p of list) {
      seen.add(p.id);
      if (this.participants.has(p.id)) this.updateParticipant(p);
      else this.addParticipant(p);
    }
    for (const id of [...this.participants.keys()]) {
      if (!seen.has(id)) this.removeParticipant(id, 'gone');
    }
  }

  addParticipant(p) {
    this.participants.set(p.id, p);
    this.emit('participant-joined', { participant: p });
  }

  updateParticipant(p) {
    if (p.id === this.you?.id) {
      this.you = p;
      this.emit('self-updated', { participant: p });
      this.applyRights();
      return;
    }
    const previous = this.participants.get(p.id);
    if (!previous) return this.addParticipant(p);
    this.participants.set(p.id, p);
    this.emit('participant-updated', { participant: p, previous });
  }

  removeParticipant(id, reason) {
    const participant = this.participants.get(id);
    if (!participant) return;
    this.participants.delete(id);
    this.emit('participant-left', { id, reason, participant });
  }

  onError(msg) {
    const { code, message, ref } = msg;
    const retryIn = Number.isFinite(msg.retry_in) ? Math.min(Math.max(msg.retry_in, 0), 60) : undefined;
    const waiter = ref && this.requests.get(ref);
    if (waiter) {
      this.requests.delete(ref);
      waiter.reject(new VisioError(code, message, ref));
    }
    const pub = [...this.publications.values()].find((p) => p.ref && p.ref === ref);
    if (pub) this.failPublication(pub, new VisioError(code, message, ref));

    if (FATAL_CODES.has(code)) return this.shutdown(code);
    if (code === 'captions_unavailable') {
      // The server cannot caption (no speech model): do not ask again.
      this.captions = false;
      this.captionsSent = false;
      this.emit('error', { code, message, ref });
      return;
    }
    if (code === 'media_lost') {
      // The server closes next; the meeting's media are gone: a fresh place awaits.
      this.resumeToken = null;
      this.attempt = 0;
      this.emit('error', { code, message, ref });
      return;
    }
    if (this.lobby) {
      // Waiting: the join is answered already (with 'lobby'), so this is no join failure.
      this.emit('error', { code, message, ref });
      return;
    }
    if (!this.joined) return this.onJoinError(new VisioError(code, message, ref, retryIn));
    if (code === 'not_published') return; // a late candidate for a closed publication
    this.emit('error', { code, message, ref });
  }

  // A refused join ends it; anything else (media_error: no Janus yet) is retried. A busy
  // server, or too many joins, says when to come back (spread at random over the crowd).
  onJoinError(error) {
    if (JOIN_FAILURES.has(error.code)) {
      this.joinWaiter?.reject(error);
      this.joinWaiter = null;
      this.shutdown(error.code);
      return;
    }
    this.emit('error', { code: error.code, message: error.message, ref: error.ref, retryIn: error.retryIn });
    this.abandonSocket(error.code, error.retryIn === undefined ? undefined : error.retryIn * 1000);
  }

  onLobby(msg) {
    this.joined = false;
    this.attempt = 0; // the connection works: a drop reconnects at once and asks again
    const room = msg.room || { id: this.room };
    const expiresIn = Number.isFinite(msg.expires_in) ? msg.expires_in : null;
    this.lobby = { room, reason: msg.reason || null, expiresIn };
    // Sent again if the connection drops: we keep our place in the queue.
    if (msg.resume) this.resumeToken = msg.resume;
    // Back in the lobby after having been in (the media server was lost and the new
    // meeting does not let us straight in): nothing flows until we are admitted again.
    if (this.you) this.dropSubscriber();
    this.setConnectionState('lobby', { reason: this.lobby.reason });
    this.emit('lobby', { ...this.lobby });
  }

  onLobbyUpdate(msg) {
    this.waiting = Array.isArray(msg.waiting) ? msg.waiting : [];
    this.emit('lobby-update', { waiting: [...this.waiting] });
  }

  onRoom(msg) {
    if (!msg.room) return;
    this.roomInfo = { ...this.roomInfo, ...msg.room };
    this.emit('room', { room: { ...this.roomInfo } });
    this.applyRights();
  }

  onGranted(msg) {
    const { right, on, by = null } = msg;
    const granted = new Set(this.you?.granted || []);
    if (on) granted.add(right);
    else granted.delete(right);
    if (this.you) this.you = { ...this.you, granted: [...granted].sort() };
    if (on && right === 'speak') this.localState.hand = false; // the server lowered it
    this.emit('granted', { right, on: !!on, by });
    this.applyRights();
  }

  onModerated(msg) {
    const { action, by = null } = msg;
    if (action === 'mute') this.localState.audio = false;
    if (action === 'camera_off') this.localState.video = false;
    if (action === 'stop_screen') this.forgetPublication('screen');
    this.emit('moderated', { action, by });
  }

  onEnded(msg) {
    this.endedBy = msg.by ?? null;
    this.emit('ended', { by: this.endedBy });
    this.shutdown('ended');
  }

  // The server ended this publication itself: drop it without telling it back.
  forgetPublication(target) {
    const pub = this.publications.get(target);
    if (!pub) return;
    this.publications.delete(target);
    clearTimeout(pub.answerTimer);
    closePeer(pub.pc);
    closePeer(pub.retiring?.pc);
    pub.waiter?.reject(new VisioError('unpublished'));
  }

  onMedia(msg) {
    this.emit('media', { target: msg.target, state: msg.state });
    if (msg.state !== 'down') return;
    const owner = msg.target === 'subscriber' ? this.subscriber : this.publications.get(msg.target);
    if (owner) this.repair(msg.target);
  }

  // ---- publishing -----------------------------------------------------------------------

  publish(target, stream) {
    const previous = this.publications.get(target);
    if (previous) {
      clearTimeout(previous.answerTimer);
      closePeer(previous.pc);
      closePeer(previous.retiring?.pc);
    }
    const tracks = {
      audio: stream?.getAudioTracks()[0] || null,
      video: stream?.getVideoTracks()[0] || null,
    };
    const pub = { target, tracks, pc: null, pending: false, redo: false };
    const done = new Promise((resolve, reject) => { pub.waiter = { resolve, reject }; });
    done.catch(() => {}); // callers may ignore the result
    this.publications.set(target, pub);
    if (this.joined) this.startPublication(target);
    return done;
  }

  async startPublication(target) {
    const pub = this.publications.get(target);
    if (!pub) return;
    pub.held = !this.mayPublish(target);
    if (pub.held) return; // until a moderator lets us (applyRights)
    if (pub.pending) {
      pub.redo = true; // one offer at a time: the answer must match the offer
      return;
    }
    this.retire(pub);
    this.renewedAt.set(target, Date.now());
    const pc = this.createPeer(target);
    Object.assign(pub, {
      pc, pending: true, redo: false, answered: false, restartingIce: false, localCandidates: [], remoteCandidates: [],
    });
    try {
      pub.transceivers = target === 'camera'
        ? addCameraTransceivers(pc, pub.tracks, this.simulcast)
        : addScreenTransceivers(pc, pub.tracks);
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      if (this.publications.get(target) !== pub || pub.pc !== pc) return;
      pub.ref = this.nextRef(`publish-${target}`);
      const sent = this.send({
        type: 'publish', target, ref: pub.ref,
        sdp: orderSimulcastRids(pc.localDescription.sdp),
        audio: target === 'camera' ? this.localState.audio : !!pub.tracks.audio,
        video: target === 'camera' ? this.localState.video : true,
      });
      if (!sent) pub.pending = false; // the next 'joined' republishes
      clearTimeout(pub.answerTimer);
      pub.answerTimer = setTimeout(() => {
        if (pub.pc === pc && pub.pending) this.failPublication(pub, new VisioError('media_error', 'no answer'));
      }, PUBLISH_TIMEOUT_MS);
    } catch (err) {
      this.failPublication(pub, new VisioError('webrtc', err.message));
    }
  }

  async onPublishAnswer(msg) {
    const pub = this.publications.get(msg.target);
    if (!pub?.pc || !pub.pending) return;
    const pc = pub.pc;
    try {
      await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
    } catch (err) {
      return this.failPublication(pub, new VisioError('webrtc', err.message));
    }
    if (pub.pc !== pc) return;
    clearTimeout(pub.answerTimer);
    pub.pending = false;
    pub.answered = true;
    pub.restartingIce = false;
    closePeer(pub.retiring?.pc);
    pub.retiring = null;
    for (const c of pub.remoteCandidates.splice(0)) addCandidate(pc, c);
    for (const c of pub.localCandidates.splice(0)) this.sendCandidate(pub.target, c);
    if (pub.redo) return this.startPublication(pub.target);
    pub.waiter?.resolve();
  }

  // The connection being replaced keeps sending until Janus accepts its successor, so a
  // republish neither interrupts the others nor makes Janus report our camera 'down'.
  retire(pub) {
    closePeer(pub.retiring?.pc);
    pub.retiring = null;
    const pc = pub.pc;
    if (pc && pub.answered && pc.connectionState === 'connected') {
      pub.retiring = { pc, transceivers: pub.transceivers };
    } else {
      closePeer(pc);
    }
  }

  failPublication(pub, error) {
    clearTimeout(pub.answerTimer);
    pub.pending = false;
    this.emit('error', { code: error.code, message: error.message, ref: error.ref, target: pub.target });
    if (pub.restartingIce) {
      pub.restartingIce = false; // the ICE restart failed: publish anew
      this.repair(pub.target);
      return;
    }
    if (pub.retiring?.pc.connectionState === 'connected' && !pub.redo) {
      // The server kept the old publication: carry on with it.
      closePeer(pub.pc);
      Object.assign(pub, { pc: pub.retiring.pc, transceivers: pub.retiring.transceivers, answered: true });
      pub.retiring = null;
      return;
    }
    if (pub.redo || error.code === 'media_error') {
      setTimeout(() => this.repair(pub.target), REPAIR_MIN_INTERVAL_MS);
      return;
    }
    pub.waiter?.reject(error);
  }

  createPeer(target) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers, bundlePolicy: 'max-bundle' });
    pc.onicecandidate = (ev) => this.onLocalCandidate(target, pc, ev.candidate);
    pc.onconnectionstatechange = () => this.onPeerState(target, pc);
    pc.oniceconnectionstatechange = () => this.onIceState(target, pc);
    return pc;
  }

  onLocalCandidate(target, pc, candidate) {
    const json = candidate ? candidate.toJSON() : null;
    const owner = target === 'subscriber' ? this.subscriber : this.publications.get(target);
    if (!owner || owner.pc !== pc) return;
    if (owner.answered) this.sendCandidate(target, json);
    else owner.localCandidates.push(json);
  }

  sendCandidate(target, candidate) {
    this.send({ type: 'candidate', target, candidate });
  }

  onRemoteCandidate(msg) {
    const { target, candidate } = msg;
    if (target === 'subscriber') {
      this.subscriberQueue = this.subscriberQueue.then(() => {
        const sub = this.subscriber;
        if (sub?.pc.remoteDescription) return addCandidate(sub.pc, candidate);
        this.earlyCandidates.push(candidate);
      });
      return;
    }
    const pub = this.publications.get(target);
    if (!pub?.pc) return;
    if (pub.answered) addCandidate(pub.pc, candidate);
    else pub.remoteCandidates.push(candidate);
  }

  onPeerState(target, pc) {
    const state = pc.connectionState;
    const owner = target === 'subscriber' ? this.subscriber : this.publications.get(target);
    if (!owner || owner.pc !== pc) return;
    this.emit('peer-state', { target, state });
    clearTimeout(owner.disconnectTimer);
    if (state === 'failed' && !owner.restartingIce) this.repair(target);
    if (state === 'disconnected' || state === 'failed') {
      // What an ICE restart did not bring back within the grace: a new connection.
      owner.disconnectTimer = setTimeout(() => {
        if (owner.pc === pc && ['disconnected', 'failed'].includes(pc.connectionState)) this.repair(target);
      }, DISCONNECTED_GRACE_MS);
    }
  }

  onIceState(target, pc) {
    const state = pc.iceConnectionState;
    const owner = target === 'subscriber' ? this.subscriber : this.publications.get(target);
    if (!owner || owner.pc !== pc) return;
    clearTimeout(owner.iceTimer);
    const recover = () => (target === 'subscriber' ? this.repair(target) : this.restartIce(target));
    if (state === 'failed') recover();
    if (state === 'disconnected') {
      owner.iceTimer = setTimeout(() => {
        if (owner.pc === pc && pc.iceConnectionState === 'disconnected') recover();
      }, ICE_RESTART_AFTER_MS);
    }
  }

  // New ICE credentials on a publication's peer connection, through the server to Janus:
  // the feed stays, so nobody else sees us leave or come back, nor renegotiates.
  restartIce(target) {
    if (!this.joined) return; // the next 'joined' restores everything
    const pub = this.publications.get(target);
    if (!pub || pub.restartingIce || pub.pending || !pub.answered) return;
    if (Date.now() - (pub.iceRestartedAt || 0) < ICE_RESTART_MIN_INTERVAL_MS) return;
    pub.iceRestartedAt = Date.now();
    pub.restartingIce = true;
    this.emit('ice-restart', { target });
    this.restartPublisherIce(pub).catch((err) => this.failPublication(pub, new VisioError('webrtc', err.message)));
  }

  async restartPublisherIce(pub) {
    const pc = pub.pc;
    const offer = await pc.createOffer({ iceRestart: true });
    await pc.setLocalDescription(offer);
    if (pub.pc !== pc) return;
    Object.assign(pub, { pending: true, answered: false, ref: this.nextRef(`restart-${pub.target}`) });
    const sdp = orderSimulcastRids(pc.localDescription.sdp);
    if (!this.send({ type: 'restart_ice', target: pub.target, ref: pub.ref, sdp })) {
      Object.assign(pub, { pending: false, restartingIce: false }); // the next 'joined' republishes
      return;
    }
    clearTimeout(pub.answerTimer);
    pub.answerTimer = setTimeout(() => {
      if (pub.pc === pc && pub.pending) this.failPublication(pub, new VisioError('media_error', 'no answer'));
    }, PUBLISH_TIMEOUT_MS);
  }

  // Recover one media path while the WebSocket is fine: republish or resubscribe.
  repair(target, requestedAt = Date.now()) {
    if (!this.joined) return; // the next 'joined' restores everything
    if ((this.renewedAt.get(target) || 0) > requestedAt) return; // renewed since it was asked
    const wait = (this.lastRepair.get(target) || 0) + REPAIR_MIN_INTERVAL_MS - Date.now();
    if (wait > 0) {
      clearTimeout(this.repairTimers.get(target));
      this.repairTimers.set(target, setTimeout(() => this.repair(target, requestedAt), wait));
      return;
    }
    this.lastRepair.set(target, Date.now());
    if (target === 'subscriber') this.resubscribe();
    else if (this.publications.has(target)) this.startPublication(target);
  }

  // ---- subscribing ----------------------------------------------------------------------

  resubscribe() {
    // On resume the server resends an offer we may have seen: after a resubscribe,
    // offers from the old Janus handle (its ICE ufrag) must not be answered.
    if (this.subscriber?.ufrag) this.staleUfrag = this.subscriber.ufrag;
    this.renewedAt.set('subscriber', Date.now());
    this.dropSubscriber();
    this.send({ type: 'resubscribe' });
  }

  onOffer(msg) {
    this.subscriberQueue = this.subscriberQueue
      .then(() => this.applyOffer(msg))
      .catch((err) => this.emit('error', { code: 'webrtc', message: err.message, target: 'subscriber' }));
  }

  async applyOffer({ sdp, streams }) {
    const ufrag = iceUfrag(sdp);
    if (ufrag && ufrag === this.staleUfrag) return;
    let sub = this.subscriber;
    // A new ICE ufrag means Janus made a new PeerConnection (after resubscribe).
    if (!sub || sub.ufrag !== ufrag || ['closed', 'failed'].includes(sub.pc.connectionState)) {
      this.dropSubscriber();
      sub = this.createSubscriber(ufrag);
    }
    const pc = sub.pc;
    sub.answered = false;
    await pc.setRemoteDescription({ type: 'offer', sdp });
    for (const c of this.earlyCandidates.splice(0)) addCandidate(pc, c);
    const answer = await pc.createAnswer();
    await pc.setLocalDescription(answer);
    if (this.subscriber !== sub) return;
    this.send({ type: 'answer', sdp: pc.localDescription.sdp });
    sub.answered = true;
    for (const c of sub.localCandidates.splice(0)) this.sendCandidate('subscriber', c);
    this.syncTracks(sub, Array.isArray(streams) ? streams : []);
  }

  createSubscriber(ufrag) {
    const sub = {
      pc: null, ufrag, answered: false, localCandidates: [], active: new Map(),
    };
    this.subscriber = sub;
    sub.pc = this.createPeer('subscriber');
    return sub;
  }

  syncTracks(sub, streams) {
    const next = new Map();
    for (const s of streams) {
      if (s.media === 'audio' || s.media === 'video') next.set(String(s.mid), { ...s, mid: String(s.mid) });
    }
    for (const [mid, info] of sub.active) {
      const now = next.get(mid);
      if (!now || streamKey(now) !== streamKey(info)) this.endTrack(sub, mid);
    }
    const transceivers = sub.pc.getTransceivers();
    for (const [mid, info] of next) {
      if (sub.active.has(mid)) continue;
      const transceiver = transceivers.find((t) => t.mid === mid);
      if (!transceiver) continue;
      const track = transceiver.receiver.track;
      sub.active.set(mid, info);
      this.emit('track', { ...info, track, stream: new MediaStream([track]) });
    }
  }

  endTrack(sub, mid) {
    const info = sub.active.get(mid);
    sub.active.delete(mid);
    this.layers.delete(mid);
    const { participant, target, media } = info;
    this.emit('track-ended', { mid, participant, target, media });
  }

  dropSubscriber() {
    const sub = this.subscriber;
    if (!sub) return;
    this.subscriber = null;
    clearTimeout(sub.disconnectTimer);
    clearTimeout(sub.iceTimer);
    for (const mid of [...sub.active.keys()]) this.endTrack(sub, mid);
    closePeer(sub.pc);
  }
}

const FRAME_HANDLERS = {
  joined: VisioConnection.prototype.onJoined,
  answer(msg) { this.onPublishAnswer(msg); },
  offer: VisioConnection.prototype.onOffer,
  candidate: VisioConnection.prototype.onRemoteCandidate,
  participant_joined(msg) { this.updateParticipant(msg.participant); },
  participant_updated(msg) { this.updateParticipant(msg.participant); },
  participant_left(msg) { this.removeParticipant(msg.id, msg.reason); },
  speaking(msg) { this.emit('speaking', { id: msg.id, speaking: !!msg.speaking }); },
  chat(msg) { this.emit('chat', { message: msg.message }); },
  reaction(msg) { this.emit('reaction', { from: msg.from, emoji: msg.emoji }); },
  media: VisioConnection.prototype.onMedia,
  error: VisioConnection.prototype.onError,
  lobby: VisioConnection.prototype.onLobby,
  lobby_update: VisioConnection.prototype.onLobbyUpdate,
  room: VisioConnection.prototype.onRoom,
  moderated: VisioConnection.prototype.onModerated,
  ended: VisioConnection.prototype.onEnded,
  granted: VisioConnection.prototype.onGranted,
  hands(msg) { this.emit('hands', { queue: Array.isArray(msg.queue) ? msg.queue : [] }); },
  spotlight(msg) { this.emit('spotlight', { id: msg.id ?? null, by: msg.by ?? null }); },
  hand_lowered(msg) {
    this.localState.hand = false;
    this.emit('hand-lowered', { by: msg.by ?? null });
  },
  captions(msg) {
    this.emit('captions', { on: !!msg.on, history: Array.isArray(msg.history) ? msg.history : [] });
  },
  caption(msg) {
    const { type, ...caption } = msg;
    this.emit('caption', { caption });
  },
  caption_status(msg) {
    this.emit('caption-status', { participant: msg.participant, name: msg.name, captioned: !!msg.captioned });
  },
  breakout(msg) { this.emit('breakout', { state: msg.open ? msg : null }); },
  moved(msg) {
    // Our subscriber connection is made anew for the new room: the next offer is its.
    this.subscriberQueue = this.subscriberQueue.then(() => this.dropSubscriber());
    this.emit('moved', { room: msg.room ?? null, name: msg.name ?? null, chat: msg.chat || [], by: msg.by || null });
  },
  breakout_closing(msg) { this.emit('breakout-closing', { inS: msg.in_s }); },
  pong() {},
};

// ---- WebRTC helpers ---------------------------------------------------------------------

function addCameraTransceivers(pc, tracks, simulcast) {
  const audio = pc.addTransceiver(tracks.audio || 'audio', { direction: 'sendonly' });
  const init = { direction: 'sendonly' };
  if (simulcast) init.sendEncodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
  const video = pc.addTransceiver(tracks.video || 'video', init);
  if (simulcast) ensureEncodings(video.sender);
  preferCodec(audio, 'audio/opus');
  preferCodec(video, 'video/vp8');
  return { audio, video };
}

function addScreenTransceivers(pc, tracks) {
  const video = pc.addTransceiver(tracks.video || 'video', { direction: 'sendonly' });
  preferCodec(video, 'video/vp8');
  let audio = null;
  if (tracks.audio) {
    audio = pc.addTransceiver(tracks.audio, { direction: 'sendonly' });
    preferCodec(audio, 'audio/opus');
  }
  return { audio, video };
}

// Older Firefox ignored sendEncodings in addTransceiver; janus.js sets them afterwards.
function ensureEncodings(sender) {
  const params = sender.getParameters();
  if ((params.encodings || []).length >= SIMULCAST_ENCODINGS.length) return;
  params.encodings = SIMULCAST_ENCODINGS.map((e) => ({ ...e }));
  sender.setParameters(params).catch(() => {});
}

function preferCodec(transceiver, mimeType) {
  const kind = mimeType.split('/')[0];
  const caps = globalThis.RTCRtpReceiver?.getCapabilities?.(kind);
  if (!caps || !transceiver.setCodecPreferences) return;
  const wanted = caps.codecs.filter((c) => c.mimeType.toLowerCase() === mimeType);
  if (!wanted.length) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== mimeType);
  try {
    transceiver.setCodecPreferences([...wanted, ...rest]);
  } catch { /* not supported for this transceiver */ }
}

// Janus maps layers by their order in the SDP, so make sure the copy it reads lists
// h, m, l in that order whatever order the browser chose.
export function orderSimulcastRids(sdp) {
  const rank = new Map(SIMULCAST_ENCODINGS.map((e, i) => [e.rid, i]));
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  const sections = sdp.split(/\r?\nm=/);
  const fixed = sections.map((section, i) => {
    if (i === 0 || !/^video /.test(section)) return section;
    const lines = section.split(/\r?\n/);
    const ridLines = lines.filter((l) => l.startsWith('a=rid:'));
    if (ridLines.length < 2) return section;
    const ridOf = (l) => l.slice(6).split(' ')[0];
    if (!ridLines.every((l) => rank.has(ridOf(l)))) return section;
    const sorted = [...ridLines].sort((a, b) => rank.get(ridOf(a)) - rank.get(ridOf(b)));
    let next = 0;
    return lines.map((l) => {
      if (l.startsWith('a=rid:')) return sorted[next++];
      const m = /^(a=simulcast:\s*send\s+(?:rid=)?)(\S+)(.*)$/.exec(l);
      if (!m) return l;
      const rids = m[2].split(';');
      const bare = (r) => r.replace(/^~/, '');
      if (!rids.every((r) => rank.has(bare(r)))) return l;
      rids.sort((a, b) => rank.get(bare(a)) - rank.get(bare(b)));
      return m[1] + rids.join(';') + m[3];
    }).join(eol);
  });
  return fixed.join(`${eol}m=`);
}

function iceUfrag(sdp) {
  const m = /a=ice-ufrag:(\S+)/.exec(sdp || '');
  return m ? m[1] : null;
}

function addCandidate(pc, candidate) {
  // null means end of candidates, which addIceCandidate() without argument says too.
  const added = candidate ? pc.addIceCandidate(candidate) : pc.addIceCandidate();
  return added.catch(() => {});
}

function closePeer(pc) {
  if (!pc) return;
  pc.onicecandidate = pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
  try { pc.close(); } catch { /* already closed */ }
}

function streamKey(s) {
  return `${s.participant}|${s.target}|${s.media}`;
}
