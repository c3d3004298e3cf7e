// Local devices: capture, device lists, speaker choice and a microphone level meter.

export const canChooseSpeaker = typeof HTMLMediaElement !== 'undefined'
  && 'setSinkId' in HTMLMediaElement.prototype;
export const canShareScreen = !!navigator.mediaDevices?.getDisplayMedia;

export function videoConstraints(deviceId) {
  const constraints = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
  if (deviceId) constraints.deviceId = { exact: deviceId };
  return constraints;
}

export function audioConstraints(deviceId) {
  const constraints = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
  if (deviceId) constraints.deviceId = { exact: deviceId };
  return constraints;
}

// What went wrong, in words the UI has strings for: denied, none, busy or error.
export function mediaErrorKind(err) {
  switch (err?.name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return 'denied';
    case 'NotFoundError':
    case 'OverconstrainedError':
    case 'TypeError':
      return 'none';
    case 'NotReadableError':
    case 'AbortError':
      return 'busy';
    default:
      return 'error';
  }
}

async function capture(constraints) {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw Object.assign(new Error('getUserMedia unavailable'), { name: 'NotFoundError' });
  }
  return navigator.mediaDevices.getUserMedia(constraints);
}

// A saved device may have gone: then take any device of that kind.
async function captureOne(kind, deviceId) {
  const make = kind === 'audio' ? audioConstraints : videoConstraints;
  try {
    return (await capture({ [kind]: make(deviceId) })).getTracks()[0];
  } catch (err) {
    if (!deviceId || err.name !== 'OverconstrainedError' && err.name !== 'NotFoundError') throw err;
    return (await capture({ [kind]: make(null) })).getTracks()[0];
  }
}

export function getCamera(deviceId) {
  return captureOne('video', deviceId);
}

export function getMicrophone(deviceId) {
  return captureOne('audio', deviceId);
}

// Ask for both devices in one prompt; when that fails, ask for each to learn which one
// is missing. Returns {audio, video} tracks (or null) and {audioError, videoError} kinds.
export async function acquire({ audio = true, video = true, audioDeviceId, videoDeviceId } = {}) {
  const result = { audio: null, video: null, audioError: null, videoError: null };
  if (!audio && !video) return result;
  try {
    const stream = await capture({
      audio: audio && audioConstraints(audioDeviceId),
      video: video && videoConstraints(videoDeviceId),
    });
    result.audio = stream.getAudioTracks()[0] || null;
    result.video = stream.getVideoTracks()[0] || null;
    return result;
  } catch {
    // fall through: try one by one
  }
  if (audio) {
    try { result.audio = await getMicrophone(audioDeviceId); } catch (err) { result.audioError = mediaErrorKind(err); }
  }
  if (video) {
    try { result.video = await getCamera(videoDeviceId); } catch (err) { result.videoError = mediaErrorKind(err); }
  }
  return result;
}

export async function listDevices() {
  const lists = { cameras: [], microphones: [], speakers: [] };
  if (!navigator.mediaDevices?.enumerateDevices) return lists;
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const d of devices) {
    if (!d.deviceId) continue; // before permission: no usable ids
    if (d.kind === 'videoinput') lists.cameras.push(d);
    else if (d.kind === 'audioinput') lists.microphones.push(d);
    else if (d.kind === 'audiooutput') lists.speakers.push(d);
  }
  return lists;
}

export function deviceIdOf(track) {
  return track?.getSettings?.().deviceId || '';
}

export async function applySpeaker(element, sinkId) {
  if (!canChooseSpeaker || !element.setSinkId) return;
  try {
    await element.setSinkId(sinkId || '');
  } catch { /* device gone or not allowed: keep the default output */ }
}

export function stopTracks(...tracks) {
  for (const track of tracks.flat()) track?.stop();
}

// Calls onLevel(0..1) about 20 times a second with the loudness of the track.
export class LevelMeter {
  constructor(track, onLevel) {
    this.onLevel = onLevel;
    this.timer = null;
    const AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass || !track) return;
    this.context = new AudioContextClass();
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 512;
    this.source.connect(this.analyser);
    this.samples = new Float32Array(this.analyser.fftSize);
    this.track = track;
    this.timer = setInterval(() => this.measure(), 50);
  }

  // Whether the browser measures at all: Web Audio needs a sound output to run.
  get running() {
    return this.context?.state === 'running';
  }

  measure() {
    if (this.context.state === 'suspended') this.context.resume().catch(() => {});
    if (!this.track.enabled) return this.onLevel(0);
    this.analyser.getFloatTimeDomainData(this.samples);
    let sum = 0;
    for (const s of this.samples) sum += s * s;
    const rms = Math.sqrt(sum / this.samples.length);
    // Speech RMS sits around 0.01–0.2: map it on a log scale to 0..1.
    const level = Math.max(0, Math.min(1, (Math.log10(rms + 1e-6) + 2.5) / 2));
    this.onLevel(level);
  }

  stop() {
    clearInterval(this.timer);
    this.source?.disconnect();
    this.context?.close().catch(() => {});
    this.onLevel(0);
  }
}
