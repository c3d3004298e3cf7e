// The meeting page (/{room-id}): loading → pre-join → (lobby →) meeting → "you left".
import { applyLanguage, bindLanguagePickers, pluralKey, setText, t } from './i18n.js';
import { Prejoin } from './prejoin.js';
import { Meeting } from './meeting.js';
import { acquire } from './media.js';
import { signInUrl, transcriptsPath, whoAmI } from './api.js';
import { renderCaptureNotice } from './capture.js';

const SCREENS = ['loading', 'not-found', 'prejoin', 'lobby', 'meeting', 'left'];
const $ = (id) => document.getElementById(id);

// Ends that come from the lobby or a moderator, each with its own title and message.
const LEFT_REASONS = ['denied', 'lobby_expired', 'removed', 'ended', 'signed_out', 'access_revoked'];
const LEFT_MESSAGES = ['replaced', 'server_shutdown', 'room_not_found', 'room_full', 'denied', 'lobby_expired', 'removed', 'signed_out', 'access_revoked'];

let lastChoices = null; // to rejoin in one click
let me = null; // GET /api/me
let lobbyShown = null; // what the lobby screen shows, to say it again in another language

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

function showNotFound() {
  showScreen('not-found');
  document.title = `${t('notfound.title')} – ${t('app.name')}`;
}

function startPrejoin(room, errorKey = null) {
  showScreen('prejoin');
  document.title = `${room.name || room.id} – ${t('app.name')}`;
  const prejoin = new Prejoin(room, { me, onJoin: (choices) => enter(room, choices, prejoin) });
  prejoin.start();
  if (errorKey) prejoin.showError(errorKey);
}

async function enter(room, choices, prejoin) {
  lastChoices = { ...choices, tracks: null };
  const meeting = new Meeting(room, choices, {
    onEnd: (reason, details) => showLeft(room, reason, details),
    onStatus: (key) => prejoin?.showError(key),
    onLobby: (info) => showLobby(room, info, meeting),
    onLobbyStatus: (key) => setText($('lobby-status'), key),
    onAdmitted: () => showMeeting(),
  });
  window.visioMeeting = meeting; // for debugging and browser tests (meeting.conn is the client)
  try {
    await meeting.join();
  } catch (err) {
    meeting.destroy({ keepTracks: !!prejoin }); // the pre-join screen still owns them
    clearLobby();
    if (err.code === 'room_not_found') {
      prejoin?.dispose();
      return showNotFound();
    }
    if (LEFT_REASONS.includes(err.code) || err.code === 'replaced' || err.code === 'server_shutdown') {
      prejoin?.dispose();
      return showLeft(room, err.code, { by: err.by ?? null, byMe: false });
    }
    // Cancelled in the lobby: back to the pre-join screen as it was.
    const known = {
      left: null, room_full: 'error.room_full', lobby_full: 'error.lobby_full', name_taken: 'error.name_taken',
    };
    const key = err.code in known ? known[err.code] : 'error.generic';
    if (!prejoin) return startPrejoin(room, key);
    showScreen('prejoin');
    document.title = `${room.name || room.id} – ${t('app.name')}`;
    prejoin.setBusy(false);
    prejoin.showError(key);
    $('join-button').focus();
    return;
  }
  clearLobby();
  prejoin?.detach();
  showMeeting();
}

function showMeeting() {
  clearLobby();
  showScreen('meeting');
  $('toggle-audio').focus();
}

// Waiting to be let in: why, for how long, and a way out.
function showLobby(room, { room: info, reason, expiresIn, again }, meeting) {
  showScreen('lobby');
  lobbyShown = { name: info?.name || room.name || room.id, reason, expiresIn, again };
  renderCaptureNotice($('lobby-capture'), info?.capture ?? room.capture);
  renderLobbyTexts();
  const signIn = $('lobby-sign-in');
  signIn.hidden = !(reason === 'trusted' && me?.sign_in && !me?.user);
  signIn.href = signInUrl(window.location.pathname);
  const video = meeting.localVideo;
  $('lobby-video').srcObject = video ? new MediaStream([video]) : null;
  $('lobby-preview').hidden = !video;
  $('lobby-cancel').onclick = () => meeting.cancelLobby();
  $('lobby-title').focus();
}

function renderLobbyTexts() {
  if (!lobbyShown) return;
  const { name, reason, expiresIn, again } = lobbyShown;
  document.title = `${t('lobby.title')} – ${name} – ${t('app.name')}`;
  $('lobby-room').textContent = name;
  const known = ['trusted', 'restricted', 'locked', 'removed'];
  setText($('lobby-reason'), again ? 'lobby.again' : known.includes(reason) ? `lobby.reason.${reason}` : 'lobby.text');
  if (Number.isFinite(expiresIn) && expiresIn > 0) {
    const minutes = expiresIn >= 120;
    const n = minutes ? Math.round(expiresIn / 60) : Math.round(expiresIn);
    setText($('lobby-expiry'), 'lobby.expires', {
      duration: t(pluralKey(minutes ? 'duration.minutes' : 'duration.seconds', n), { n }),
    });
  } else {
    setText($('lobby-expiry'), null);
  }
}

function clearLobby() {
  lobbyShown = null;
  renderCaptureNotice($('lobby-capture'), null);
  $('lobby-video').srcObject = null;
  $('lobby-cancel').onclick = null;
  setText($('lobby-status'), null);
}

function showLeft(room, reason, { by = null, byMe = false, captured = false } = {}) {
  clearLobby();
  showScreen('left');
  // The room's members find what was captured on the transcripts page.
  $('left-transcripts').hidden = !(captured && room.your_role);
  $('left-transcripts-link').href = transcriptsPath(room.id);
  const titleKey = LEFT_REASONS.includes(reason) ? `left.title.${reason}` : 'left.title';
  setText($('left-title'), titleKey);
  document.title = `${t(titleKey)} – ${t('app.name')}`;
  const message = $('left-message');
  if (reason === 'ended') {
    if (byMe) setText(message, 'left.ended.you');
    else if (by?.name) setText(message, 'left.ended.by', { name: by.name });
    else setText(message, 'left.ended');
  } else {
    setText(message, LEFT_MESSAGES.includes(reason) ? `left.${reason}` : null);
  }
  const rejoin = $('rejoin-button');
  rejoin.hidden = ['replaced', 'room_not_found', 'ended'].includes(reason);
  // After the lobby or a removal, going back means asking again.
  setText(rejoin, ['denied', 'lobby_expired', 'removed', 'access_revoked'].includes(reason) ? 'left.ask' : 'left.rejoin');
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
  window.addEventListener('visio:language', renderLobbyTexts);
  const id = roomIdFromPath();
  if (!id) return showNotFound();
  const [room, account] = await Promise.all([fetchRoom(id), whoAmI().catch(() => null)]);
  if (!room) return showNotFound();
  me = account;
  startPrejoin(room);
}

main();
