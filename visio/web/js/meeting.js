// The meeting: wires the protocol client to the stage, the controls and the panels.
import { VisioConnection, REACTIONS } from './protocol.js';
import { Grid } from './grid.js';
import { Chat } from './chat.js';
import { ParticipantsPanel } from './participants.js';
import { announce, toast, truncate } from './notify.js';
import { h, setIcon } from './dom.js';
import { language, t, tn } from './i18n.js';
import { canShareScreen, getCamera, getMicrophone, stopTracks } from './media.js';

const $ = (id) => document.getElementById(id);
const CLOCK_MS = 10_000;

export class Meeting {
  // choices: {name, tracks: {audio, video}, audio, video, devices: {camera, microphone, speaker}}
  constructor(room, choices, { onEnd, onStatus } = {}) {
    this.room = room;
    this.choices = choices;
    this.onEnd = onEnd;
    this.onStatus = onStatus;
    this.tracks = { ...choices.tracks };
    this.devices = { ...choices.devices };
    this.mic = choices.audio;
    this.camera = choices.video;
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
      chat: $('toggle-chat'), people: $('toggle-participants'), leave: $('leave-button'),
      unread: $('chat-unread'), peopleCount: $('people-count'), sidePanel: $('side-panel'),
      chatPanel: $('chat-panel'), peoplePanel: $('participants-panel'), chatInput: $('chat-input'),
      clock: $('meeting-clock'), name: $('meeting-name'), title: $('meeting-title'),
      unblock: $('audio-unblock'),
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
    this.people = new ParticipantsPanel({ list: $('participants-list'), count: $('participants-count') });
  }

  async join() {
    this.conn = new VisioConnection();
    this.listen();
    await this.conn.join(this.room.id, this.choices.name, { audio: this.mic, video: this.camera });
    if (this.tracks.audio) this.tracks.audio.enabled = this.mic;
    const local = [this.tracks.audio, this.tracks.video].filter(Boolean);
    this.conn.publishCamera(new MediaStream(local));
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
    on('self-updated', ({ participant }) => this.updateSelf({ name: participant.name }));
    on('track', (d) => this.grid.attachTrack(d));
    on('track-ended', (d) => this.grid.detachTrack(d));
    on('speaking', ({ id, speaking }) => this.grid.setSpeaking(id, speaking));
    on('chat', ({ message }) => this.onChat(message));
    on('reaction', ({ from, emoji }) => this.onReaction(from, emoji));
    on('error', (d) => console.warn('visio:', d.code, d.message || ''));
  }

  onJoined({ room, you, chat }) {
    if (room?.name) this.room = { ...this.room, name: room.name };
    this.chat.selfId = you.id;
    this.self = { ...you, audio: this.mic, video: this.camera, hand: this.hand, connection: 'connected' };
    this.grid.setSelf(this.self);
    this.grid.setLocalVideo(this.camera ? this.tracks.video : null);
    if (this.screen) this.grid.setLocalScreen(this.screen.getVideoTracks()[0]);
    this.chat.load(chat);
    this.ready = true;
    this.renderHeader();
    this.renderPeople();
  }

  onConnectionState({ state, reason }) {
    const { banner, bannerText } = this.els;
    if (state === 'reconnecting') {
      const offline = reason === 'offline' || navigator.onLine === false;
      bannerText.textContent = t(offline ? 'banner.offline' : 'banner.reconnecting');
      banner.hidden = !this.ready;
      if (!this.ready) this.onStatus?.(reason === 'media_error' ? 'error.media' : 'error.network');
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
    this.grid.upsert(participant);
    if (this.ready) toast(t('notify.joined', { name: participant.name }));
    this.renderPeople();
  }

  onParticipantUpdated({ participant: p, previous }) {
    this.grid.upsert(p);
    if (p.hand && !previous.hand) toast(t('notify.hand', { name: p.name }));
    if (p.screen && !previous.screen) announce(t('notify.screen', { name: p.name }));
    this.renderPeople();
  }

  onParticipantLeft({ participant }) {
    this.grid.remove(participant.id);
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
    on(this.els.reactions, 'click', () => this.togglePicker());
    on(this.els.chat, 'click', () => this.togglePanel('chat'));
    on(this.els.people, 'click', () => this.togglePanel('people'));
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
    if (!this.tracks.audio) {
      try {
        this.tracks.audio = await getMicrophone(this.devices.microphone);
      } catch {
        return toast(t('error.microphone'));
      }
      await this.conn.replaceTrack('camera', 'audio', this.tracks.audio);
      this.mic = false; // flipped just below
    }
    this.mic = !this.mic;
    this.tracks.audio.enabled = this.mic;
    this.conn.setState({ audio: this.mic });
    this.updateSelf({ audio: this.mic });
    this.renderControls();
  }

  async toggleVideo() {
    if (this.camera) {
      const old = this.tracks.video;
      this.tracks.video = null;
      this.camera = false;
      await this.conn.replaceTrack('camera', 'video', null);
      stopTracks(old); // releases the camera (its light goes off)
    } else {
      let track;
      try {
        track = await getCamera(this.devices.camera);
      } catch {
        return toast(t('error.camera'));
      }
      this.tracks.video = track;
      this.camera = true;
      await this.conn.replaceTrack('camera', 'video', track);
    }
    this.conn.setState({ video: this.camera });
    this.grid.setLocalVideo(this.tracks.video);
    this.updateSelf({ video: this.camera });
    this.renderControls();
  }

  async toggleScreen() {
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
    const panel = name === 'chat' ? this.els.chatPanel : this.els.peoplePanel;
    if (!panel.hidden) return this.closePanel();
    this.openPanel(name);
  }

  openPanel(name) {
    const chat = name === 'chat';
    this.els.chatPanel.hidden = !chat;
    this.els.peoplePanel.hidden = chat;
    this.els.sidePanel.hidden = false;
    this.els.chat.setAttribute('aria-expanded', String(chat));
    this.els.people.setAttribute('aria-expanded', String(!chat));
    if (chat) {
      this.els.unread.hidden = true;
      this.els.chat.setAttribute('aria-label', t('controls.chat'));
      this.els.chatInput.focus();
    } else {
      this.renderPeople();
      this.els.peoplePanel.querySelector('[data-close-panel]').focus();
    }
    this.grid.layoutSoon();
  }

  closePanel() {
    const wasChat = !this.els.chatPanel.hidden;
    this.els.sidePanel.hidden = true;
    this.els.chatPanel.hidden = true;
    this.els.peoplePanel.hidden = true;
    this.els.chat.setAttribute('aria-expanded', 'false');
    this.els.people.setAttribute('aria-expanded', 'false');
    (wasChat ? this.els.chat : this.els.people).focus();
    this.grid.layoutSoon();
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
    this.buildPicker();
    this.grid.renderAll();
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
    this.els.people.setAttribute('aria-label', `${t('controls.participants')} (${tn('meeting.people', count)})`);
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
    this.destroy();
    this.onEnd?.(reason);
  }

  // Also used when joining failed; keepTracks: the pre-join screen still owns them.
  destroy({ keepTracks = false } = {}) {
    this.ended = true;
    clearTimeout(this.clockTimer);
    this.listeners.abort();
    if (this.conn && this.conn.state !== 'closed') this.conn.leave();
    if (!keepTracks) stopTracks(this.tracks.audio, this.tracks.video);
    stopTracks(this.screen?.getTracks() || []);
    this.screen = null;
    this.grid.destroy();
    this.chat.destroy();
    this.closePanelsSilently();
    this.els.banner.hidden = true;
    this.els.unblock.hidden = true;
    this.els.picker.hidden = true;
  }

  closePanelsSilently() {
    this.els.sidePanel.hidden = true;
    this.els.chatPanel.hidden = true;
    this.els.peoplePanel.hidden = true;
  }
}

function toggleButton(button, pressed, iconName, labelKey, offStyle = false) {
  button.setAttribute('aria-pressed', String(pressed));
  button.setAttribute('aria-label', t(labelKey));
  button.title = t(labelKey);
  button.classList.toggle('off', offStyle && !pressed);
  button.classList.toggle('active', !offStyle && pressed);
  setIcon(button, iconName);
}
