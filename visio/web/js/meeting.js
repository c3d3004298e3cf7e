// The meeting: wires the protocol client to the stage, the controls and the panels,
// the lobby (waiting to be let in), the moderators' controls, what is captured
// (transcription, recording: capture.js) and live captions (captions.js).
import { VisioConnection, REACTIONS } from './protocol.js';
import { Grid } from './grid.js';
import { Chat } from './chat.js';
import { ParticipantsPanel } from './participants.js';
import { LobbyPanel } from './lobby.js';
import { CaptureControls } from './capture.js';
import { Captions } from './captions.js';
import { CallQuality } from './callquality.js';
import { BreakoutPanel } from './breakout.js';
import { StageControls } from './hands.js';
import { BackgroundEffect } from './backgrounds.js';
import { BackgroundMenu } from './backgroundpicker.js';
import { announce, confirmAction, toast, truncate } from './notify.js';
import { h, setIcon } from './dom.js';
import { language, setText, t, tn } from './i18n.js';
import { canShareScreen, getCamera, getMicrophone, stopTracks } from './media.js';
import {
  NoiseSuppressor, noiseSuppressionChosen, rememberNoiseSuppression, unavailableText,
} from './noise.js';
import { apiJson, transcriptsPath, updateRoom } from './api.js';

const $ = (id) => document.getElementById(id);
const CLOCK_MS = 10_000;
const MODERATOR_ROLES = ['owner', 'admin'];
const ACCESS_LEVELS = ['public', 'trusted', 'restricted'];
// Before joining: why the join is being tried again (the server said when).
const JOIN_RETRY_STATUS = {
  media_error: 'error.media',
  busy: 'error.busy',
  rate_limited: 'error.too_many_joins',
};

export class Meeting {
  // choices: {name, tracks: {audio, video}, audio, video, devices: {camera, microphone, speaker}}
  // onEnd(reason, {by}): the meeting is over for us; onStatus(key): a problem before
  // joining; onLobby({room, reason, expiresIn, again}): we wait to be let in (again: after
  // having been in); onLobbyStatus(key|null); onAdmitted(): back in after waiting again.
  constructor(room, choices, { onEnd, onStatus, onLobby, onLobbyStatus, onAdmitted } = {}) {
    this.room = room;
    this.choices = choices;
    this.onEnd = onEnd;
    this.onStatus = onStatus;
    this.onLobby = onLobby;
    this.onLobbyStatus = onLobbyStatus;
    this.onAdmitted = onAdmitted;
    this.inLobby = false;
    this.lobbyVersion = 0; // lobby_update frames seen, so an older HTTP answer never wins
    this.endedBy = null;
    this.roomInfo = { id: room.id, name: room.name, access: room.access || 'public', locked: false };
    this.captured = false; // transcription or recording ran while we were in
    this.tracks = { ...choices.tracks };
    this.devices = { ...choices.devices };
    this.mic = choices.audio;
    this.camera = choices.video;
    // What is published of the microphone: denoised, or the microphone itself.
    this.noise = new NoiseSuppressor({ publish: (track) => this.conn.replaceTrack('camera', 'audio', track) });
    this.noiseOn = choices.noiseSuppression ?? noiseSuppressionChosen();
    // What is sent of the camera: the raw track, or the one with its background changed.
    this.background = choices.background || new BackgroundEffect();
    this.hand = false;
    this.screen = null; // our screen-share MediaStream
    this.self = null;
    this.ready = false; // joined at least once: from then on, announce arrivals
    this.ended = false;
    this.busy = new Set(); // controls with an operation in progress
    this.listeners = new AbortController();
    this.els = {
      root: $('meeting'), banner: $('connection-banner'), bannerText: $('connection-text'),
      audio: $('toggle-audio'), video: $('toggle-video'), screen: $('toggle-screen'),
      hand: $('toggle-hand'), reactions: $('toggle-reactions'), picker: $('reaction-picker'),
      noise: $('toggle-noise'),
      chat: $('toggle-chat'), people: $('toggle-participants'), leave: $('leave-button'),
      unread: $('chat-unread'), peopleCount: $('people-count'), sidePanel: $('side-panel'),
      chatPanel: $('chat-panel'), peoplePanel: $('participants-panel'), chatInput: $('chat-input'),
      clock: $('meeting-clock'), name: $('meeting-name'), title: $('meeting-title'),
      unblock: $('audio-unblock'),
      lobbyButton: $('toggle-lobby'), lobbyCount: $('lobby-count'), lobbyPanel: $('lobby-panel'),
      hostControls: $('host-controls'), muteAll: $('mute-all'), lock: $('toggle-lock'),
      access: $('room-access'), endMeeting: $('end-meeting'), locked: $('room-locked'),
      notice: $('lobby-notice'),
      transcriptsEntry: $('transcripts-entry'), transcriptsLink: $('transcripts-link'),
    };
    this.panels = {
      chat: { panel: this.els.chatPanel, button: this.els.chat },
      people: { panel: this.els.peoplePanel, button: this.els.people },
      lobby: { panel: this.els.lobbyPanel, button: this.els.lobbyButton },
      breakout: { panel: $('breakout-panel'), button: $('toggle-breakout') },
    };
    this.grid = new Grid({
      stage: $('stage'), grid: $('grid'), presentation: $('presentation'), audioSink: $('audio-sink'),
      onLayer: (mid, quality) => this.conn?.setLayer(mid, quality),
      onAudioBlocked: () => { this.els.unblock.hidden = false; },
    });
    this.grid.setSpeaker(this.devices.speaker);
    this.chat = new Chat({
      list: $('chat-messages'), empty: $('chat-empty'), form: $('chat-form'), input: this.els.chatInput,
      send: $('chat-send'), onSend: (text) => this.conn.sendChat(text),
    });
    this.people = new ParticipantsPanel({
      list: $('participants-list'), count: $('participants-count'),
      actionsFor: (p) => this.actionsFor(p),
      onAction: (action, p) => this.moderate(action, p),
      handRank: (p) => this.stage?.rank(p) ?? Infinity,
    });
    this.lobby = new LobbyPanel({
      list: $('lobby-list'), empty: $('lobby-empty'), all: $('lobby-all'),
      admitAll: $('admit-all'), denyAll: $('deny-all'), notice: this.els.notice,
      onAdmit: (id) => (id ? this.conn.admit(id) : this.conn.admitAll()),
      onDeny: (id) => (id ? this.conn.deny(id) : this.conn.denyAll()),
      onView: () => this.openPanel('lobby'),
    });
    this.capture = new CaptureControls({
      status: $('capture-status'),
      buttons: { transcription: $('toggle-transcription'), recording: $('toggle-recording') },
      onToggle: (kind, on) => this.conn?.setCapture(kind, on) ?? null,
    });
    this.captions = new Captions({
      area: $('captions'), lines: $('captions-lines'), live: $('captions-live'),
      notices: $('captions-notices'), hint: $('captions-hint'), button: $('toggle-captions'),
      download: $('captions-download'), room: room.id,
      onToggle: (on) => this.conn?.setCaptions(on),
    });
  }

  get isModerator() {
    return MODERATOR_ROLES.includes(this.self?.role);
  }

  // What we are in the lobby, for the lobby screen's preview.
  get localVideo() {
    return this.camera ? this.background.use(this.tracks.video) : null;
  }

  // Give up waiting in the lobby (before the first entry: join() then rejects with 'left').
  cancelLobby() {
    if (this.ready) this.leave();
    else this.conn.leave();
  }

  async join() {
    this.conn = new VisioConnection();
    this.breakout = new BreakoutPanel({
      conn: this.conn, body: $('breakout-body'), notice: $('breakout-notice'), button: $('toggle-breakout'),
      people: () => new Map([...(this.self ? [[this.self.id, this.self]] : []), ...this.conn.participants]),
      isModerator: () => this.isModerator,
      onRegroup: () => this.regroup(),
      onMoved: ({ chat }) => this.chat.load(chat, 0),
    });
    this.stage = new StageControls({
      conn: this.conn, grid: this.grid, self: () => this.self, roomId: this.room.id,
      els: {
        lowerHands: $('lower-hands'), pip: $('toggle-pip'),
        rules: { attendees_publish: $('rule-attendees-publish'), everyone_can_mute: $('rule-everyone-can-mute') },
      },
      onHandLowered: () => {
        this.hand = false;
        this.updateSelf({ hand: false });
        this.renderControls();
      },
      onChange: () => {
        this.renderControls();
        this.renderPeople();
      },
    });
    this.listen();
    this.captions.start(); // the person's last choice, sent on joining
    await this.conn.join(this.room.id, this.choices.name, { audio: this.mic, video: this.camera });
    if (this.tracks.audio) this.tracks.audio.enabled = this.mic;
    const local = [this.tracks.audio, this.localVideo].filter(Boolean);
    this.conn.publishCamera(new MediaStream(local));
    this.noise.update({ microphone: this.tracks.audio, on: this.noiseOn }).then(() => this.noiseSettled());
    this.quality = new CallQuality({ conn: this.conn, grid: this.grid, notice: $('quality-notice') });
    this.quality.start();
    this.bindControls();
    this.renderControls();
    this.tickClock();
  }

  // ---- protocol events ------------------------------------------------------------------

  listen() {
    const on = (type, fn) => this.conn.addEventListener(type, (ev) => fn.call(this, ev.detail));
    on('joined', this.onJoined);
    on('connection-state', this.onConnectionState);
    on('participant-joined', this.onParticipantJoined);
    on('participant-updated', this.onParticipantUpdated);
    on('participant-left', this.onParticipantLeft);
    on('self-updated', ({ participant }) => this.onSelfUpdated(participant));
    on('lobby', this.onLobbyWait);
    on('lobby-update', ({ waiting }) => {
      this.lobbyVersion += 1;
      this.onLobbyUpdate(waiting);
    });
    on('room', ({ room }) => this.onRoom(room));
    on('moderated', this.onModerated);
    on('ended', ({ by }) => { this.endedBy = by; });
    on('track', (d) => this.grid.attachTrack(d));
    on('track-ended', (d) => this.grid.detachTrack(d));
    on('speaking', ({ id, speaking }) => this.grid.setSpeaking(id, speaking));
    on('chat', ({ message }) => this.onChat(message));
    on('reaction', ({ from, emoji }) => this.onReaction(from, emoji));
    on('captions', (d) => this.captions.update(d));
    on('caption', ({ caption }) => this.captions.receive(caption));
    on('caption-status', (d) => this.captions.status(d));
    on('error', (d) => this.onError(d));
    on('breakout', ({ state }) => this.breakout.update(state));
    on('moved', (d) => this.breakout.moved(d));
    on('breakout-closing', (d) => this.breakout.closing(d));
  }

  // Breakout rooms: the stage shows the people of our room only.
  showTile(p) {
    if (!this.breakout || this.breakout.here(p.id)) this.grid.upsert(p);
    else this.grid.remove(p.id);
  }

  regroup() {
    for (const p of this.conn.participants.values()) this.showTile(p);
    this.renderPeople();
  }

  onError({ code, message, ref }) {
    console.warn('visio:', code, message || '');
    if (this.capture.failed({ code, ref })) return; // said by the capture controls
    if (this.captions.failed({ code })) return; // captions_unavailable
    if (['forbidden', 'not_found', 'disk_full', 'capture_limit', 'breakout_open', 'breakout_closed'].includes(code)) {
      toast(t(`error.${code}`), { timeout: 8000 });
    }
  }

  onJoined({ room, you, chat, chatEarlier, rejoined }) {
    if (room?.name) this.room = { ...this.room, name: room.name };
    if (room) this.roomInfo = { ...this.roomInfo, ...room };
    this.chat.selfId = you.id;
    this.captions.selfId = you.id;
    this.breakout.selfId = you.id;
    if (you.audio === false && this.mic) this.enterMuted(); // a big meeting, or a webinar
    this.self = { ...you, audio: this.mic, video: this.camera, hand: this.hand, connection: 'connected' };
    this.grid.setSelf(this.self);
    this.grid.setLocalVideo(this.localVideo);
    this.stage.onRoom(room);
    if (this.screen) this.grid.setLocalScreen(this.screen.getVideoTracks()[0]);
    this.chat.load(chat, chatEarlier);
    const backFromLobby = this.inLobby && this.ready;
    this.inLobby = false;
    this.ready = true;
    this.renderHeader();
    this.onCapture(room?.capture);
    this.capture.setCaptions(room?.captions, { announce: !!room?.captions });
    if (rejoined) {
      // The server tells a moderator who waits only after a fresh join, and only when
      // someone does: start from nothing, and ask once in case this was a resume.
      this.onLobbyUpdate([]);
      if (this.isModerator) this.loadWaiting();
    }
    this.renderModeration();
    this.renderPeople();
    if (backFromLobby) this.onAdmitted?.();
  }

  onLobbyWait({ room, reason, expiresIn }) {
    this.inLobby = true;
    if (this.ready) {
      // Out of the meeting until let in again: nobody to moderate meanwhile.
      this.onLobbyUpdate([]);
      this.closePanelsSilently();
    }
    this.onLobbyStatus?.(null);
    this.onLobby?.({ room, reason, expiresIn, again: this.ready });
  }

  onSelfUpdated(participant) {
    const { name, role, guest, granted } = participant;
    const wasModerator = this.isModerator;
    this.updateSelf({ name, role, guest, granted });
    if (this.isModerator !== wasModerator) toast(t(this.isModerator ? 'stage.promoted' : 'stage.demoted'));
    if (!this.isModerator) this.onLobbyUpdate([]);
    else if (!wasModerator) this.loadWaiting(); // made an admin: who already waits?
    this.renderModeration();
  }

  // The server tells moderators of changes to the lobby; someone who becomes one during
  // the meeting asks once for who is already waiting.
  async loadWaiting() {
    const version = this.lobbyVersion;
    try {
      const { waiting } = await apiJson('GET', `/api/rooms/${encodeURIComponent(this.room.id)}/participants`);
      const current = version === this.lobbyVersion && this.isModerator && !this.ended && !this.inLobby;
      if (current && Array.isArray(waiting)) this.onLobbyUpdate(waiting);
    } catch { /* the next lobby_update will tell */ }
  }

  onRoom(room) {
    const wasLocked = !!this.roomInfo.locked;
    const oldAccess = this.roomInfo.access;
    this.roomInfo = { ...this.roomInfo, ...room };
    if (room.name) this.room = { ...this.room, name: room.name };
    this.renderHeader();
    this.renderModeration();
    if (!!room.locked !== wasLocked) toast(t(room.locked ? 'notify.locked' : 'notify.unlocked'));
    if (room.access && room.access !== oldAccess && this.isModerator) {
      toast(t('access.changed', { access: t(`access.${room.access}.short`) }));
    }
    this.onCapture(room.capture);
    this.capture.setCaptions(room.captions);
    this.stage.onRoom(room);
    this.renderControls();
  }

  // The server let us in muted: the microphone stays off until we turn it on.
  enterMuted() {
    this.mic = false;
    if (this.tracks.audio) this.tracks.audio.enabled = false;
    this.conn.setState({ audio: false });
    toast(t(this.conn.mayPublish('camera') ? 'stage.entered_muted' : 'stage.listening'), { timeout: 8000 });
  }

  onCapture(capture) {
    if (!capture) return;
    this.capture.update(capture);
    if (this.capture.active) this.captured = true;
  }

  onLobbyUpdate(waiting) {
    const arrived = this.lobby.update(waiting);
    this.renderLobbyButton();
    const panelOpen = !this.els.lobbyPanel.hidden;
    this.lobby.showNotice(this.isModerator && !panelOpen && this.lobby.count > 0);
    // The notice is a live region; with the panel open, say it for screen readers.
    if (arrived.length && panelOpen) {
      announce(arrived.length === 1 ? t('lobby.notify.one', { name: arrived[0].name })
        : tn('lobby.notify', arrived.length));
    }
  }

  onModerated({ action, by }) {
    const name = by?.name || t('moderated.someone');
    if (action === 'mute') {
      if (this.mic && this.tracks.audio) {
        this.mic = false;
        this.tracks.audio.enabled = false;
        this.conn.setState({ audio: false });
        this.updateSelf({ audio: false });
        this.renderControls();
      }
    } else if (action === 'camera_off') {
      if (this.camera) this.exclusive('video', () => this.cameraOff());
    } else if (action === 'stop_screen') {
      this.stopScreen(this.screen);
    } else {
      return;
    }
    toast(t(`moderated.${action}`, { name }), { timeout: 8000 });
  }

  onConnectionState({ state, reason }) {
    const { banner, bannerText } = this.els;
    if (this.inLobby && state !== 'closed') {
      // Waiting to be let in: a reconnection asks again (the lobby screen says so).
      this.onLobbyStatus?.(state === 'reconnecting' ? 'lobby.reconnecting' : null);
      return;
    }
    if (state === 'reconnecting') {
      const offline = reason === 'offline' || navigator.onLine === false;
      bannerText.textContent = t(offline ? 'banner.offline' : 'banner.reconnecting');
      banner.hidden = !this.ready;
      if (!this.ready) this.onStatus?.(JOIN_RETRY_STATUS[reason] || 'error.network');
      this.updateSelf({ connection: 'reconnecting' });
    } else if (state === 'connected') {
      if (!banner.hidden) toast(t('banner.reconnected'));
      banner.hidden = true;
      this.updateSelf({ connection: 'connected' });
    } else if (state === 'closed' && reason !== 'left' && this.ready) {
      this.end(reason);
    }
  }

  onParticipantJoined({ participant }) {
    this.showTile(participant);
    if (this.ready) toast(t('notify.joined', { name: participant.name }));
    this.renderPeople();
  }

  onParticipantUpdated({ participant: p, previous }) {
    this.showTile(p);
    if (p.hand && !previous.hand) toast(t('notify.hand', { name: p.name }));
    if (p.screen && !previous.screen) announce(t('notify.screen', { name: p.name }));
    this.renderPeople();
  }

  onParticipantLeft({ participant }) {
    this.grid.remove(participant.id);
    this.captions.forget(participant.id);
    toast(t('notify.left', { name: participant.name }));
    this.renderPeople();
  }

  onChat(message) {
    const fromOther = this.chat.receive(message);
    if (!fromOther || !this.els.chatPanel.hidden) return;
    this.els.unread.hidden = false;
    this.els.chat.setAttribute('aria-label', `${t('controls.chat')} (${t('chat.unread')})`);
    toast(t('notify.chat', { name: message.name, text: truncate(message.text) }));
  }

  onReaction(from, emoji) {
    if (from === this.self?.id) return; // already shown when sent
    this.grid.showReaction(from, emoji);
    const name = this.conn.participants.get(from)?.name || '';
    announce(t('notify.reaction', { name, emoji }));
  }

  updateSelf(changes) {
    if (!this.self) return;
    Object.assign(this.self, changes);
    this.grid.upsert(this.self);
    this.renderPeople();
  }

  // ---- controls -------------------------------------------------------------------------

  bindControls() {
    const signal = this.listeners.signal;
    const on = (el, type, fn) => el.addEventListener(type, fn, { signal });
    on(this.els.audio, 'click', () => this.exclusive('audio', () => this.toggleAudio()));
    on(this.els.video, 'click', () => this.exclusive('video', () => this.toggleVideo()));
    on(this.els.screen, 'click', () => this.exclusive('screen', () => this.toggleScreen()));
    on(this.els.hand, 'click', () => this.toggleHand());
    on(this.els.noise, 'click', () => this.exclusive('noise', () => this.toggleNoise()));
    on(this.els.reactions, 'click', () => this.togglePicker());
    on(this.els.chat, 'click', () => this.togglePanel('chat'));
    on(this.els.people, 'click', () => this.togglePanel('people'));
    on(this.els.lobbyButton, 'click', () => this.togglePanel('lobby'));
    on($('toggle-breakout'), 'click', () => this.togglePanel('breakout'));
    on(this.els.muteAll, 'click', () => this.muteAll());
    on(this.els.lock, 'click', () => this.conn.lock(!this.roomInfo.locked));
    on(this.els.access, 'change', () => this.changeAccess(this.els.access.value));
    on($('room-cap-form'), 'submit', (event) => {
      event.preventDefault();
      this.changeCap($('room-cap').value);
    });
    on(this.els.endMeeting, 'click', () => this.endForAll());
    on(this.els.leave, 'click', () => this.leave());
    on(this.els.unblock, 'click', () => {
      this.grid.resumeAudio();
      this.els.unblock.hidden = true;
    });
    for (const button of document.querySelectorAll('[data-close-panel]')) on(button, 'click', () => this.closePanel());
    on(document, 'keydown', (ev) => this.onKey(ev));
    on(document, 'visibilitychange', () => this.grid.fitLayers());
    on(document, 'click', (ev) => {
      if (!this.els.picker.hidden && !ev.target.closest('.popover-anchor')) this.togglePicker(false);
    });
    on(window, 'pagehide', () => this.conn.leave());
    on(window, 'visio:language', () => this.renderAll());
    this.els.screen.hidden = !canShareScreen;
    this.buildPicker();
    this.backgroundMenu = new BackgroundMenu({
      button: $('toggle-background'), popover: $('background-popover'), effect: this.background,
    });
    on(this.background, 'change', () => this.backgroundChanged());
  }

  // The background effect started, stopped or was changed: send and show its track.
  async backgroundChanged() {
    const track = this.localVideo;
    if (!track || track === this.sentVideo) return;
    this.sentVideo = track;
    await this.conn.replaceTrack('camera', 'video', track);
    this.grid.setLocalVideo(track);
  }

  async exclusive(name, fn) {
    if (this.busy.has(name)) return;
    this.busy.add(name);
    try {
      await fn();
    } finally {
      this.busy.delete(name);
    }
  }

  async toggleAudio() {
    if (!this.mic && !this.conn.mayPublish('camera')) return toast(t('stage.ask_first')); // a webinar
    if (!this.tracks.audio) {
      try {
        this.tracks.audio = await getMicrophone(this.devices.microphone);
      } catch {
        return toast(t('error.microphone'));
      }
      await this.conn.replaceTrack('camera', 'audio', this.tracks.audio);
      this.noise.update({ microphone: this.tracks.audio }).then(() => this.noiseSettled());
      this.mic = false; // flipped just below
    }
    this.mic = !this.mic;
    this.tracks.audio.enabled = this.mic;
    this.conn.setState({ audio: this.mic });
    this.updateSelf({ audio: this.mic });
    this.renderControls();
  }

  // Live: the sender switches between the denoised track and the microphone itself.
  async toggleNoise() {
    this.noiseOn = !this.noiseOn;
    rememberNoiseSuppression(this.noiseOn);
    this.renderControls();
    await this.noise.update({ on: this.noiseOn });
    this.noiseSettled();
  }

  // Said once, when the person wanted it and it could not start.
  noiseSettled() {
    if (this.ended) return;
    if (this.noiseOn && this.tracks.audio && !this.noise.available && !this.noiseFailureSaid) {
      this.noiseFailureSaid = true;
      toast(unavailableText(this.noise.failure), { timeout: 8000 });
    }
    this.renderControls();
  }

  async cameraOff() {
    if (!this.camera) return;
    const old = this.tracks.video;
    this.tracks.video = null;
    this.camera = false;
    await this.conn.replaceTrack('camera', 'video', null);
    this.background.use(null);
    stopTracks(old); // releases the camera (its light goes off)
    this.conn.setState({ video: false });
    this.grid.setLocalVideo(null);
    this.updateSelf({ video: false });
    this.renderControls();
  }

  async toggleVideo() {
    if (!this.camera && !this.conn.mayPublish('camera')) return toast(t('stage.ask_first'));
    if (this.camera) return this.cameraOff();
    let track;
    try {
      track = await getCamera(this.devices.camera);
    } catch {
      return toast(t('error.camera'));
    }
    this.tracks.video = track;
    this.camera = true;
    await this.conn.replaceTrack('camera', 'video', this.localVideo);
    this.conn.setState({ video: true });
    this.grid.setLocalVideo(this.localVideo);
    this.updateSelf({ video: true });
    this.renderControls();
  }

  async toggleScreen() {
    if (!this.screen && !this.conn.mayPublish('screen')) return toast(t('stage.ask_first'));
    if (this.screen) return this.stopScreen(this.screen);
    let stream;
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: true });
    } catch (err) {
      if (err.name !== 'NotAllowedError' && err.name !== 'AbortError') toast(t('error.screen'));
      return;
    }
    const video = stream.getVideoTracks()[0];
    if (!video) return stopTracks(stream.getTracks());
    if ('contentHint' in video) video.contentHint = 'detail'; // favour sharp text
    // The browser's own "Stop sharing" button ends the track.
    video.addEventListener('ended', () => this.stopScreen(stream));
    this.screen = stream;
    this.grid.setLocalScreen(video);
    this.conn.publishScreen(stream).catch((err) => {
      if (this.screen !== stream || err.code === 'unpublished') return;
      toast(t('error.screen'));
      this.stopScreen(stream);
    });
    this.updateSelf({ screen: true });
    this.renderControls();
  }

  stopScreen(stream) {
    if (!stream || this.screen !== stream) return;
    this.screen = null;
    this.conn.unpublish('screen');
    stopTracks(stream.getTracks());
    this.grid.setLocalScreen(null);
    this.updateSelf({ screen: false });
    this.renderControls();
  }

  toggleHand() {
    this.hand = !this.hand;
    this.conn.setState({ hand: this.hand });
    this.updateSelf({ hand: this.hand });
    this.renderControls();
  }

  buildPicker() {
    this.els.picker.replaceChildren(...REACTIONS.map((emoji) => h('button.reaction-button', {
      type: 'button', dataset: { emoji }, 'aria-label': t(`reaction.${emoji}`), title: t(`reaction.${emoji}`),
      onclick: () => this.react(emoji),
    }, emoji)));
  }

  togglePicker(open = this.els.picker.hidden) {
    this.els.picker.hidden = !open;
    this.els.reactions.setAttribute('aria-expanded', String(open));
    if (open) this.els.picker.querySelector('button')?.focus();
  }

  react(emoji) {
    this.conn.sendReaction(emoji);
    if (this.self) this.grid.showReaction(this.self.id, emoji);
  }

  togglePanel(name) {
    if (!this.panels[name].panel.hidden) return this.closePanel();
    this.openPanel(name);
  }

  openPanel(name) {
    for (const [key, { panel, button }] of Object.entries(this.panels)) {
      panel.hidden = key !== name;
      button.setAttribute('aria-expanded', String(key === name));
    }
    this.els.sidePanel.hidden = false;
    if (name === 'chat') {
      this.els.unread.hidden = true;
      this.els.chat.setAttribute('aria-label', t('controls.chat'));
      this.els.chatInput.focus();
    } else {
      if (name === 'people') this.renderPeople();
      if (name === 'lobby') this.lobby.showNotice(false);
      this.panels[name].panel.querySelector('[data-close-panel]').focus();
    }
    this.grid.layoutSoon();
  }

  closePanel() {
    const open = Object.values(this.panels).find(({ panel }) => !panel.hidden);
    this.closePanelsSilently();
    if (open && !open.button.hidden) open.button.focus();
    else this.els.leave.focus();
    if (open === this.panels.lobby) this.lobby.showNotice(this.isModerator && this.lobby.count > 0);
    this.grid.layoutSoon();
  }

  // ---- moderators -----------------------------------------------------------------------

  // The actions a moderator may take on p (the server refuses the others anyway).
  actionsFor(p) {
    const stage = this.stage?.actionsFor(p) || [];
    if (!this.isModerator && this.roomInfo.stage?.everyone_can_mute && p.id !== this.self?.id
      && p.audio !== false && !MODERATOR_ROLES.includes(p.role)) return ['mute'];
    if (!this.isModerator || p.id === this.self?.id) return [];
    if (MODERATOR_ROLES.includes(p.role) && this.self.role !== 'owner') return stage;
    const actions = [...stage];
    if (p.audio !== false) actions.push('mute');
    if (p.video !== false) actions.push('camera_off');
    if (p.screen) actions.push('stop_screen');
    actions.push('remove');
    return actions;
  }

  async moderate(action, p) {
    if (this.stage.handles(action)) return this.stage.act(action, p);
    if (action === 'remove') {
      const ok = await confirmAction(t('moderate.remove.confirm', { name: p.name }), t('moderate.remove.ok'));
      if (!ok || this.ended) return;
    }
    this.conn.moderate(action, p.id);
  }

  muteAll() {
    if (this.conn.muteAll()) toast(t('moderate.mute_all.done'));
  }

  async changeAccess(access) {
    if (!ACCESS_LEVELS.includes(access)) return;
    const select = this.els.access;
    select.disabled = true;
    try {
      const room = await updateRoom(this.room.id, { access });
      // The server also tells everyone with 'room'; this covers a meeting not running here.
      this.onRoom({ access: room.access });
    } catch {
      toast(t('access.error'));
    } finally {
      select.disabled = false;
      select.value = this.roomInfo.access;
    }
  }

  // A cap on the number of people in the room's meetings; empty: none.
  async changeCap(value) {
    const input = $('room-cap');
    const cap = value === '' ? 0 : Number(value);
    if (!Number.isInteger(cap) || cap === 1 || cap < 0) {
      toast(t('cap.invalid'));
      return;
    }
    input.disabled = true;
    try {
      const room = await updateRoom(this.room.id, { max_participants: cap });
      this.onRoom({ max_participants: room.max_participants ?? null });
      toast(room.max_participants ? t('cap.set', { n: room.max_participants }) : t('cap.removed'));
    } catch {
      toast(t('cap.error'));
    } finally {
      input.disabled = false;
    }
  }

  async endForAll() {
    const ok = await confirmAction(t('moderate.end.confirm'), t('moderate.end.ok'));
    if (ok && !this.ended) this.conn.end();
  }

  renderModeration() {
    const moderator = this.isModerator;
    const { lock, access, hostControls, locked } = this.els;
    hostControls.hidden = !moderator;
    this.capture.setModerator(moderator);
    this.renderTranscriptsLink();
    this.renderDialIn();
    this.els.lobbyButton.hidden = !moderator;
    this.els.endMeeting.hidden = !moderator;
    lock.hidden = !moderator;
    const isLocked = !!this.roomInfo.locked;
    lock.setAttribute('aria-pressed', String(isLocked));
    setIcon(lock, isLocked ? 'lock' : 'unlock');
    if (ACCESS_LEVELS.includes(this.roomInfo.access)) {
      if (!access.disabled) access.value = this.roomInfo.access;
      setText($('room-access-hint'), `access.${this.roomInfo.access}`);
    }
    locked.hidden = !isLocked;
    const cap = $('room-cap');
    if (document.activeElement !== cap) cap.value = this.roomInfo.max_participants || '';
    if (!moderator) {
      if (!this.els.lobbyPanel.hidden) this.closePanel();
      this.lobby.showNotice(false);
    } else {
      this.lobby.showNotice(this.els.lobbyPanel.hidden && this.lobby.count > 0);
    }
    this.renderLobbyButton();
    this.breakout?.render();
  }

  // Members of the room (from GET /api/rooms/{id}) and moderators reach its transcripts.
  renderTranscriptsLink() {
    const member = !!this.room.your_role || this.isModerator;
    this.els.transcriptsEntry.hidden = !member;
    this.els.transcriptsLink.href = transcriptsPath(this.room.id);
  }

  // How to join by phone (GET /api/rooms/{id} gives dial_in when the SIP gateway is on).
  renderDialIn() {
    const box = $('dial-in');
    const dialIn = this.room.dial_in;
    box.hidden = !dialIn;
    if (!dialIn) return;
    const pin = dialIn.pin.replace(/(\d{3})(?=\d)/g, '$1 ');
    $('dial-in-text').textContent = dialInText(dialIn, pin);
    $('copy-invitation').onclick = async () => {
      const name = this.room.name || this.room.id;
      const url = this.room.url || window.location.href;
      const text = `${t('dialin.invite', { name, url })}\n${dialInText(dialIn, pin)}`;
      try {
        await navigator.clipboard.writeText(text);
        toast(t('dialin.copied'));
      } catch {
        toast(t('dialin.copy.failed'));
      }
    };
  }

  renderLobbyButton() {
    const n = this.lobby.count;
    this.els.lobbyCount.textContent = n ? String(n) : '';
    // The count follows a comma, not in parentheses: the badge's visible number must be part
    // of the name (WCAG 2.5.3), and parentheses are left out of that comparison.
    const label = n ? `${t('controls.lobby')}, ${tn('lobby.waiting', n)}` : t('controls.lobby');
    this.els.lobbyButton.setAttribute('aria-label', label);
    this.els.lobbyButton.title = label;
  }

  onKey(ev) {
    if (ev.key === 'Escape') {
      if (!this.els.picker.hidden) {
        this.togglePicker(false);
        this.els.reactions.focus();
      } else if (!this.els.sidePanel.hidden) {
        this.closePanel();
      }
      return;
    }
    if (ev.altKey && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey && ev.code === 'KeyC') {
      // Alt+C: captions (not while typing: Option+C writes "ç" on a Mac).
      if (isEditable(ev.target)) return;
      ev.preventDefault();
      this.captions.toggle();
      return;
    }
    if (!(ev.ctrlKey || ev.metaKey) || ev.altKey || ev.shiftKey) return;
    const key = ev.key.toLowerCase();
    if (key === 'd') {
      ev.preventDefault();
      this.exclusive('audio', () => this.toggleAudio());
    } else if (key === 'e') {
      ev.preventDefault();
      this.exclusive('video', () => this.toggleVideo());
    }
  }

  // ---- rendering ------------------------------------------------------------------------

  renderAll() {
    this.renderControls();
    this.renderHeader();
    this.renderPeople();
    this.lobby.render();
    this.renderModeration();
    this.capture.render();
    this.captions.render();
    this.buildPicker();
    this.grid.renderAll();
    this.quality?.render();
    this.tickClock();
  }

  renderControls() {
    const { audio, video, screen, hand } = this.els;
    const micOn = this.mic && !!this.tracks.audio;
    toggleButton(audio, micOn, micOn ? 'mic' : 'mic-off', micOn ? 'controls.mic.off' : 'controls.mic.on', true);
    toggleButton(video, this.camera, this.camera ? 'cam' : 'cam-off',
      this.camera ? 'controls.cam.off' : 'controls.cam.on', true);
    toggleButton(screen, !!this.screen, 'screen', this.screen ? 'controls.screen.stop' : 'controls.screen.start');
    toggleButton(hand, this.hand, 'hand', this.hand ? 'controls.hand.lower' : 'controls.hand.raise');
    // In a webinar, attendees may not speak or present until a moderator lets them.
    const may = { audio: this.conn?.mayPublish('camera') ?? true, screen: this.conn?.mayPublish('screen') ?? true };
    // (What is on may still be turned off: a camera shown only to oneself, for one.)
    const turnOn = [[audio, may.audio || micOn], [video, may.audio || this.camera], [screen, may.screen || !!this.screen]];
    for (const [button, allowed] of turnOn) {
      button.disabled = !allowed;
      if (!allowed) button.title = t('stage.ask_first');
    }
    this.renderNoiseButton();
  }

  renderNoiseButton() {
    const button = this.els.noise;
    const on = this.noiseOn && this.noise.available;
    button.disabled = !this.noise.available;
    button.setAttribute('aria-pressed', String(on));
    button.classList.toggle('active', on);
    // One name whatever the state (aria-pressed says it), as the other toggles, and the
    // tooltip says what a press does; unavailable, the name says why.
    const why = this.noise.available ? null : unavailableText(this.noise.failure);
    button.setAttribute('aria-label', why ?? t('noise.label'));
    button.title = why ?? t(on ? 'noise.off' : 'noise.on');
  }

  renderHeader() {
    const name = this.room.name || this.room.id;
    this.els.name.textContent = name;
    this.els.title.textContent = name;
    document.title = `${name} – ${t('app.name')}`;
  }

  renderPeople() {
    const others = [...(this.conn?.participants.values() || [])];
    this.people.render(this.self, others);
    const count = others.length + (this.self ? 1 : 0);
    this.els.peopleCount.textContent = String(count);
    this.els.people.setAttribute('aria-label', `${t('controls.participants')}, ${tn('meeting.people', count)}`);
  }

  tickClock() {
    clearTimeout(this.clockTimer);
    if (this.ended) return;
    this.els.clock.textContent = new Date().toLocaleTimeString(language(), { hour: '2-digit', minute: '2-digit' });
    this.clockTimer = setTimeout(() => this.tickClock(), CLOCK_MS);
  }

  // ---- leaving --------------------------------------------------------------------------

  leave() {
    this.conn.leave();
    this.end('left');
  }

  end(reason) {
    if (this.ended) return;
    const selfId = this.self?.id;
    this.destroy();
    this.onEnd?.(reason, {
      by: this.endedBy, byMe: !!selfId && this.endedBy?.id === selfId, captured: this.captured,
    });
  }

  // Also used when joining failed; keepTracks: the pre-join screen still owns them.
  destroy({ keepTracks = false } = {}) {
    this.ended = true;
    clearTimeout(this.clockTimer);
    this.listeners.abort();
    this.quality?.stop();
    if (this.conn && this.conn.state !== 'closed') this.conn.leave();
    this.noise.close();
    this.backgroundMenu?.destroy();
    if (!keepTracks) this.background.stop();
    if (!keepTracks) stopTracks(this.tracks.audio, this.tracks.video);
    stopTracks(this.screen?.getTracks() || []);
    this.screen = null;
    this.grid.destroy();
    this.chat.destroy();
    this.people.destroy();
    this.lobby.destroy();
    this.breakout?.destroy();
    this.capture.destroy();
    this.captions.destroy();
    this.stage?.destroy();
    this.els.transcriptsEntry.hidden = true;
    this.closePanelsSilently();
    this.els.hostControls.hidden = true;
    this.els.lobbyButton.hidden = true;
    this.els.endMeeting.hidden = true;
    this.els.lock.hidden = true;
    this.els.lobbyCount.textContent = '';
    this.els.locked.hidden = true;
    const dialog = $('confirm-dialog');
    if (dialog?.open) dialog.close('cancel');
    this.els.banner.hidden = true;
    this.els.unblock.hidden = true;
    this.els.picker.hidden = true;
  }

  closePanelsSilently() {
    this.els.sidePanel.hidden = true;
    for (const { panel, button } of Object.values(this.panels)) {
      panel.hidden = true;
      button.setAttribute('aria-expanded', 'false');
    }
  }
}

function isEditable(el) {
  return !!el?.closest?.('input, textarea, select, [contenteditable]:not([contenteditable="false"])');
}

// A toggle's name stays the same (its data-i18n-label) and aria-pressed says its state; the
// tooltip says what pressing it does. A name that changed with the state would be read out as
// the opposite ("Turn on microphone, pressed").
function toggleButton(button, pressed, iconName, labelKey, offStyle = false) {
  button.setAttribute('aria-pressed', String(pressed));
  button.title = t(labelKey);
  button.classList.toggle('off', offStyle && !pressed);
  button.classList.toggle('active', !offStyle && pressed);
  setIcon(button, iconName);
}

function dialInText(dialIn, pin) {
  const where = dialIn.phone_number
    ? t('dialin.number', { number: dialIn.phone_number, uri: dialIn.sip_uri })
    : t('dialin.uri', { uri: dialIn.sip_uri });
  return `${where} ${t('dialin.pin', { pin })}`;
}
