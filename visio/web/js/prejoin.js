// Pre-join screen: camera preview, microphone meter, device choice, name and Join; whether
// the meeting is being transcribed or recorded; and a connection test.
import { getRoom, signInUrl, signOut } from './api.js';
import { BackgroundEffect } from './backgrounds.js';
import { BackgroundPicker } from './backgroundpicker.js';
import { renderCaptureNotice } from './capture.js';
import { ConnectionTest } from './connectiontest.js';
import { setText, t, tn } from './i18n.js';
import { readStorage, setIcon, writeStorage } from './dom.js';
import {
  acquire, applySpeaker, canChooseSpeaker, deviceIdOf, getCamera, getMicrophone,
  LevelMeter, listDevices, mediaErrorKind, stopTracks,
} from './media.js';
import { noiseSuppressionChosen, noiseSuppressionUnsupported, rememberNoiseSuppression } from './noise.js';

export const STORAGE = {
  name: 'visio.name',
  camera: 'visio.camera',
  microphone: 'visio.microphone',
  speaker: 'visio.speaker',
};

const $ = (id) => document.getElementById(id);
// The room is asked again now and then: who is there, and whether it is being captured.
const ROOM_REFRESH_MS = 10_000;

export class Prejoin {
  // me: GET /api/me (null when unknown): a signed-in person joins under their own name.
  constructor(room, { onJoin, me = null }) {
    this.room = room;
    this.onJoin = onJoin;
    this.me = me;
    this.tracks = { audio: null, video: null };
    this.errors = { audio: null, video: null };
    this.micOn = true;
    this.acquiring = Promise.resolve();
    this.meter = null;
    this.started = false; // device access was asked and answered
    this.busy = false;
    this.listeners = new AbortController();
    this.background = new BackgroundEffect(); // handed to the meeting on joining
    this.els = {
      video: $('preview-video'), placeholder: $('preview-placeholder'), message: $('preview-message'),
      audioButton: $('prejoin-audio'), videoButton: $('prejoin-video'),
      meter: $('mic-meter'), level: $('mic-level'), hint: $('device-hint'),
      micSelect: $('mic-select'), cameraSelect: $('camera-select'),
      speakerSelect: $('speaker-select'), speakerField: $('speaker-field'),
      noise: $('noise-toggle'), noiseReason: $('noise-reason'),
      form: $('prejoin-form'), name: $('display-name'), join: $('join-button'),
      error: $('prejoin-error'), count: $('prejoin-count'), roomTitle: $('prejoin-room'),
      capture: $('prejoin-capture'),
      account: $('prejoin-account'), accountText: $('prejoin-account-text'),
      signIn: $('prejoin-sign-in'), signOut: $('prejoin-sign-out'),
    };
  }

  async start() {
    this.bind();
    this.backgroundPicker = new BackgroundPicker($('prejoin-background'), this.background);
    this.connectionTest = new ConnectionTest(() => ({
      tracks: this.tracks, errors: this.errors, micOn: this.micOn, video: this.els.video,
    }));
    this.els.name.value = readStorage(STORAGE.name, '');
    this.renderAccount();
    this.renderRoom();
    this.setBusy(false);
    this.showError(null);
    this.renderVideo();
    this.renderAudio();
    this.renderNoise();
    (this.els.name.value ? this.els.join : this.els.name).focus();
    this.roomTimer = setInterval(() => this.refreshRoom(), ROOM_REFRESH_MS);
    // Join and the toggles wait for this, so nobody joins without the devices asked for.
    this.acquiring = this.acquireDevices();
    await this.acquiring;
  }

  async acquireDevices() {
    const got = await acquire({
      audioDeviceId: readStorage(STORAGE.microphone),
      videoDeviceId: readStorage(STORAGE.camera),
    });
    if (this.listeners.signal.aborted) return stopTracks(got.audio, got.video);
    this.tracks = { audio: got.audio, video: got.video };
    this.errors = { audio: got.audioError, video: got.videoError };
    this.started = true;
    this.renderVideo();
    this.renderAudio();
    this.startMeter();
    await this.refreshDevices();
  }

  bind() {
    const signal = this.listeners.signal;
    const on = (el, type, fn) => el.addEventListener(type, fn, { signal });
    on(this.els.audioButton, 'click', () => this.afterAcquire(() => this.toggleAudio()));
    on(this.els.videoButton, 'click', () => this.afterAcquire(() => this.toggleVideo()));
    on(this.els.cameraSelect, 'change', () => this.changeCamera());
    on(this.els.micSelect, 'change', () => this.changeMicrophone());
    on(this.els.speakerSelect, 'change', () => writeStorage(STORAGE.speaker, this.els.speakerSelect.value));
    on(this.els.noise, 'change', () => rememberNoiseSuppression(this.els.noise.checked));
    on(this.els.form, 'submit', (ev) => this.submit(ev));
    on(this.els.name, 'input', () => this.showError(null));
    on(this.els.signOut, 'click', () => this.signOut());
    on(window, 'visio:language', () => this.renderAll());
    on(this.background, 'change', () => this.renderVideo());
    if (navigator.mediaDevices) on(navigator.mediaDevices, 'devicechange', () => this.refreshDevices());
  }

  async afterAcquire(fn) {
    await this.acquiring;
    if (!this.listeners.signal.aborted) await fn();
  }

  // Hands the tracks over (the meeting now owns them) and stops the preview.
  detach() {
    this.listeners.abort();
    this.connectionTest?.dispose();
    this.backgroundPicker?.destroy();
    clearInterval(this.roomTimer);
    this.meter?.stop();
    this.meter = null;
    this.els.video.srcObject = null;
  }

  // Leaving the page without joining: release the devices too.
  dispose() {
    this.detach();
    this.background.stop();
    stopTracks(this.tracks.audio, this.tracks.video);
  }

  renderAll() {
    this.renderAccount();
    this.renderRoom();
    this.renderVideo();
    this.renderAudio();
    this.setBusy(this.busy);
    this.refreshDevices();
  }

  get signedIn() {
    return !!this.me?.user;
  }

  // Whether the room will most likely make this person wait in the lobby (a lock or an
  // earlier removal can too, which only the server knows).
  get willWait() {
    if (this.room.access === 'trusted') return !this.signedIn;
    if (this.room.access === 'restricted') return !this.room.your_role;
    return false;
  }

  renderAccount() {
    const { account, accountText, signIn, signOut, name } = this.els;
    if (this.signedIn) {
      name.value = this.me.user.name || this.me.user.email || '';
      name.readOnly = true;
      setText(accountText, 'account.signedin', { name: name.value });
    } else {
      name.readOnly = false;
      setText(accountText, this.me?.sign_in ? (this.willWait ? 'prejoin.guest.wait' : 'prejoin.guest') : null);
    }
    signIn.href = signInUrl(window.location.pathname);
    signIn.hidden = this.signedIn || !this.me?.sign_in;
    signOut.hidden = !this.signedIn;
    account.hidden = !this.signedIn && !this.me?.sign_in;
  }

  async signOut() {
    this.els.signOut.disabled = true;
    try {
      await signOut();
      window.location.reload();
    } catch {
      this.els.signOut.disabled = false;
      this.showError('account.signout.error');
    }
  }

  renderRoom() {
    this.els.roomTitle.textContent = this.room.name || this.room.id;
    const n = this.room.participants;
    this.els.count.textContent = typeof n !== 'number' ? '' : n === 0 ? t('prejoin.alone') : tn('prejoin.count', n);
    renderCaptureNotice(this.els.capture, this.room.capture);
  }

  async refreshRoom() {
    let fresh;
    try {
      fresh = await getRoom(this.room.id);
    } catch {
      return; // the next try, or the WebSocket, will tell
    }
    if (this.listeners.signal.aborted || fresh?.id !== this.room.id) return;
    Object.assign(this.room, fresh);
    this.renderRoom();
    this.renderAccount();
    if (!this.busy) this.setBusy(false); // "Ask to join" or "Join now" may have changed
  }

  renderVideo() {
    const track = this.tracks.video;
    const { video, placeholder, message, videoButton } = this.els;
    const shown = this.background.use(track); // the camera with its background, when chosen
    if (video.srcObject?.getVideoTracks()[0] !== shown) video.srcObject = shown ? new MediaStream([shown]) : null;
    placeholder.hidden = !!track;
    const error = this.errors.video;
    message.textContent = track ? '' : error ? t(`prejoin.camera.${error === 'error' ? 'busy' : error}`)
      : this.loading() ? t('prejoin.starting') : t('prejoin.camera.off');
    videoButton.setAttribute('aria-pressed', String(!!track));
    videoButton.title = t(track ? 'controls.cam.off' : 'controls.cam.on'); // named in the markup
    videoButton.classList.toggle('off', !track);
    setIcon(videoButton, track ? 'cam' : 'cam-off');
    this.renderHint();
  }

  renderAudio() {
    const on = !!this.tracks.audio && this.micOn;
    const button = this.els.audioButton;
    button.setAttribute('aria-pressed', String(on));
    button.title = t(on ? 'controls.mic.off' : 'controls.mic.on'); // named in the markup
    button.classList.toggle('off', !on);
    setIcon(button, on ? 'mic' : 'mic-off');
    if (this.tracks.audio) this.tracks.audio.enabled = this.micOn;
    this.els.meter.hidden = !this.tracks.audio;
    this.renderHint();
  }

  // The choice is kept for the meeting, which does the work (noise.js).
  renderNoise() {
    const unsupported = noiseSuppressionUnsupported();
    this.els.noise.checked = !unsupported && noiseSuppressionChosen();
    this.els.noise.disabled = !!unsupported;
    setText(this.els.noiseReason, unsupported);
    this.els.noiseReason.hidden = !unsupported;
  }

  loading() {
    return !this.tracks.audio && !this.tracks.video && !this.errors.audio && !this.errors.video
      && !this.started;
  }

  renderHint() {
    const messages = [];
    const { audio, video } = this.errors;
    if (audio) messages.push(t(`prejoin.mic.${audio === 'error' ? 'busy' : audio}`));
    if (video && video !== 'none') messages.push(t(`prejoin.camera.${video === 'error' ? 'busy' : video}`));
    if (audio || video) messages.push(t('prejoin.devices.hint'));
    this.els.hint.textContent = messages.join('. ');
  }

  startMeter() {
    this.meter?.stop();
    this.meter = null;
    const track = this.tracks.audio;
    if (!track) return;
    this.meter = new LevelMeter(track, (level) => {
      this.els.level.style.setProperty('--level', level.toFixed(3));
      this.els.meter.setAttribute('aria-valuenow', String(Math.round(level * 100)));
    });
  }

  async toggleAudio() {
    if (this.tracks.audio) {
      this.micOn = !this.micOn;
      return this.renderAudio();
    }
    try {
      this.tracks.audio = await getMicrophone(this.els.micSelect.value || readStorage(STORAGE.microphone));
      this.errors.audio = null;
      this.micOn = true;
      this.startMeter();
      await this.refreshDevices();
    } catch (err) {
      this.errors.audio = mediaErrorKind(err);
    }
    this.renderAudio();
  }

  async toggleVideo() {
    if (this.tracks.video) {
      stopTracks(this.tracks.video);
      this.tracks.video = null;
      return this.renderVideo();
    }
    try {
      this.tracks.video = await getCamera(this.els.cameraSelect.value || readStorage(STORAGE.camera));
      this.errors.video = null;
      await this.refreshDevices();
    } catch (err) {
      this.errors.video = mediaErrorKind(err);
    }
    this.renderVideo();
  }

  async changeCamera() {
    const id = this.els.cameraSelect.value;
    writeStorage(STORAGE.camera, id);
    if (!this.tracks.video) return;
    stopTracks(this.tracks.video);
    this.tracks.video = null;
    try {
      this.tracks.video = await getCamera(id);
      this.errors.video = null;
    } catch (err) {
      this.errors.video = mediaErrorKind(err);
    }
    this.renderVideo();
  }

  async changeMicrophone() {
    const id = this.els.micSelect.value;
    writeStorage(STORAGE.microphone, id);
    if (!this.tracks.audio) return;
    stopTracks(this.tracks.audio);
    this.tracks.audio = null;
    try {
      this.tracks.audio = await getMicrophone(id);
      this.errors.audio = null;
    } catch (err) {
      this.errors.audio = mediaErrorKind(err);
    }
    this.renderAudio();
    this.startMeter();
  }

  async refreshDevices() {
    const { cameras, microphones, speakers } = await listDevices().catch(() => ({}));
    fillSelect(this.els.cameraSelect, cameras || [], 'device.camera',
      deviceIdOf(this.tracks.video) || readStorage(STORAGE.camera));
    fillSelect(this.els.micSelect, microphones || [], 'device.microphone',
      deviceIdOf(this.tracks.audio) || readStorage(STORAGE.microphone));
    const speakerChoice = canChooseSpeaker && speakers?.length > 0;
    this.els.speakerField.hidden = !speakerChoice;
    if (speakerChoice) {
      fillSelect(this.els.speakerSelect, speakers, 'device.speaker', readStorage(STORAGE.speaker));
      applySpeaker(this.els.video, this.els.speakerSelect.value);
    }
  }

  async submit(event) {
    event.preventDefault();
    if (this.busy) return;
    const name = [...this.els.name.value.trim()].slice(0, 64).join('').trim(); // a long account name too
    if (!name) {
      this.showError('prejoin.name.required');
      this.els.name.setAttribute('aria-invalid', 'true');
      this.els.name.focus();
      return;
    }
    this.els.name.removeAttribute('aria-invalid');
    if (!this.signedIn) writeStorage(STORAGE.name, name); // a guest's name for next time
    this.setBusy(true);
    this.showError(null);
    await this.acquiring;
    if (this.listeners.signal.aborted) return;
    this.onJoin({
      name,
      tracks: { ...this.tracks },
      background: this.background,
      audio: !!this.tracks.audio && this.micOn,
      video: !!this.tracks.video,
      noiseSuppression: this.els.noise.checked,
      devices: {
        camera: this.els.cameraSelect.value || deviceIdOf(this.tracks.video),
        microphone: this.els.micSelect.value || deviceIdOf(this.tracks.audio),
        speaker: this.els.speakerField.hidden ? '' : this.els.speakerSelect.value,
      },
    });
  }

  setBusy(busy) {
    this.busy = busy;
    this.els.join.disabled = busy;
    setText(this.els.join, busy ? 'prejoin.joining' : this.willWait ? 'prejoin.ask' : 'prejoin.join');
  }

  showError(key) {
    const el = this.els.error;
    if (key) el.dataset.i18n = key;
    else delete el.dataset.i18n;
    el.textContent = key ? t(key) : '';
  }
}

function fillSelect(select, devices, labelKey, selectedId) {
  const options = devices.map((d, i) => new Option(d.label || t(labelKey, { n: i + 1 }), d.deviceId));
  if (!options.length) options.push(new Option(t('device.default'), ''));
  select.replaceChildren(...options);
  select.disabled = devices.length === 0;
  if (selectedId && devices.some((d) => d.deviceId === selectedId)) select.value = selectedId;
}
