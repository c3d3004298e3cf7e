// The meeting page (/{room-id}): loading → pre-join → meeting → "you left".
import { applyLanguage, bindLanguagePickers, t } from './i18n.js';
import { Prejoin } from './prejoin.js';
import { Meeting } from './meeting.js';
import { acquire } from './media.js';

const SCREENS = ['loading', 'not-found', 'prejoin', 'meeting', 'left'];
const $ = (id) => document.getElementById(id);

let lastChoices = null; // to rejoin in one click

export function roomIdFromPath(pathname = window.location.pathname) {
  const first = pathname.split('/').filter(Boolean)[0];
  if (!first) return null;
  try {
    return decodeURIComponent(first);
  } catch {
    return null;
  }
}

function showScreen(name) {
  for (const screen of SCREENS) $(screen).hidden = screen !== name;
  document.body.dataset.screen = name;
}

// null when the room does not exist; a minimal room when the server cannot be asked
// (the WebSocket will then tell).
async function fetchRoom(id) {
  try {
    const response = await fetch(`/api/rooms/${encodeURIComponent(id)}`, { cache: 'no-store' });
    if (response.status === 404) return null;
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return await response.json();
  } catch {
    return { id, name: id };
  }
}

function setText(el, key) {
  if (key) {
    el.dataset.i18n = key;
    el.textContent = t(key);
  } else {
    delete el.dataset.i18n;
    el.textContent = '';
  }
}

function showNotFound() {
  showScreen('not-found');
  document.title = `${t('notfound.title')} – ${t('app.name')}`;
}

function startPrejoin(room, errorKey = null) {
  showScreen('prejoin');
  document.title = `${room.name || room.id} – ${t('app.name')}`;
  const prejoin = new Prejoin(room, { onJoin: (choices) => enter(room, choices, prejoin) });
  prejoin.start();
  if (errorKey) prejoin.showError(errorKey);
}

async function enter(room, choices, prejoin) {
  const meeting = new Meeting(room, choices, {
    onEnd: (reason) => showLeft(room, reason),
    onStatus: (key) => prejoin?.showError(key),
  });
  try {
    await meeting.join();
  } catch (err) {
    meeting.destroy({ keepTracks: !!prejoin });
    if (err.code === 'room_not_found') {
      prejoin?.dispose();
      return showNotFound();
    }
    const key = err.code === 'room_full' ? 'error.room_full' : 'error.generic';
    if (!prejoin) return startPrejoin(room, key);
    prejoin.setBusy(false);
    prejoin.showError(key);
    return;
  }
  prejoin?.detach();
  window.visioMeeting = meeting; // for debugging and browser tests (meeting.conn is the client)
  lastChoices = { ...choices, tracks: null };
  showScreen('meeting');
  $('toggle-audio').focus();
}

function showLeft(room, reason) {
  showScreen('left');
  document.title = `${t('left.title')} – ${t('app.name')}`;
  const known = ['replaced', 'server_shutdown', 'room_not_found', 'room_full'];
  setText($('left-reason'), known.includes(reason) ? `left.${reason}` : null);
  const rejoin = $('rejoin-button');
  rejoin.hidden = reason === 'replaced' || reason === 'room_not_found';
  rejoin.onclick = () => rejoinMeeting(room);
  (rejoin.hidden ? document.querySelector('#left a') : rejoin).focus();
}

// Straight back in with the same name, devices and microphone/camera choice.
async function rejoinMeeting(room) {
  const choices = lastChoices;
  if (!choices) return startPrejoin(room);
  $('rejoin-button').disabled = true;
  const got = await acquire({
    audio: true,
    video: choices.video,
    audioDeviceId: choices.devices.microphone,
    videoDeviceId: choices.devices.camera,
  });
  $('rejoin-button').disabled = false;
  const tracks = { audio: got.audio, video: got.video };
  await enter(room, { ...choices, tracks, audio: choices.audio && !!got.audio, video: !!got.video }, null);
}

async function main() {
  applyLanguage();
  bindLanguagePickers();
  const id = roomIdFromPath();
  const room = id && await fetchRoom(id);
  if (!room) return showNotFound();
  startPrejoin(room);
}

main();
