// Home page: start a new meeting or join one by code or link; sign in or out, and the
// rooms of the signed-in person.
import { api, myRooms, signInUrl, signOut, transcriptsPath, whoAmI } from './api.js';
import { h } from './dom.js';
import { applyLanguage, bindLanguagePickers, setText, t, tn } from './i18n.js';

const $ = (id) => document.getElementById(id);

let account = null; // GET /api/me, once known

// The server's room id pattern (visio/protocol.py ROOM_ID_PATTERN).
const CODE_PATTERN = /^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$/;

// Accept "abc-defg-hij", "abcdefghij", " ABC-DEFG-HIJ " or a full meeting link.
export function parseMeetingCode(input) {
  let text = String(input || '').trim();
  if (!text) return null;
  if (/^https?:\/\//i.test(text) || text.startsWith('/')) {
    try {
      text = new URL(text, window.location.origin).pathname.split('/').filter(Boolean).pop() || '';
      text = decodeURIComponent(text);
    } catch {
      return null;
    }
  }
  text = text.replace(/\s+/g, '').toLowerCase();
  if (/^[a-z]{10}$/.test(text)) text = `${text.slice(0, 3)}-${text.slice(3, 7)}-${text.slice(7)}`;
  return CODE_PATTERN.test(text) ? text : null;
}

function meetingPath(room) {
  try {
    const url = new URL(room.url, window.location.origin);
    if (url.origin === window.location.origin) return url.pathname;
  } catch { /* fall back to the id */ }
  return `/${encodeURIComponent(room.id)}`;
}

function showError(key) {
  const el = document.getElementById('home-error');
  if (key) el.dataset.i18n = key;
  else delete el.dataset.i18n;
  el.textContent = key ? t(key) : '';
}

async function createMeeting(button) {
  button.disabled = true;
  const label = button.querySelector('[data-i18n]');
  setText(label, 'home.creating');
  showError(null);
  const reset = () => {
    button.disabled = false;
    setText(label, 'home.new');
  };
  try {
    const response = await api('POST', '/api/rooms', {});
    if (response.status === 401) {
      reset();
      showCreate(false);
      showError('home.error.signin');
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    window.location.assign(meetingPath(await response.json()));
  } catch {
    showError('home.error.create');
    reset();
  }
}

async function joinByCode(event) {
  event.preventDefault();
  const input = document.getElementById('meeting-code');
  if (!input.value.trim()) return showError('home.error.empty');
  const code = parseMeetingCode(input.value);
  if (!code) return showError('home.error.invalid');
  try {
    const response = await fetch(`/api/rooms/${encodeURIComponent(code)}`);
    if (response.status === 404) return showError('home.error.notfound');
  } catch { /* let the meeting page report it */ }
  window.location.assign(`/${encodeURIComponent(code)}`);
}

// Sign in / the person's name and Sign out, and whether they may create meetings.
async function loadAccount() {
  let me;
  try {
    me = await whoAmI({ fresh: true });
  } catch {
    return; // an older server, or none: the page works as before
  }
  account = me;
  const signedIn = !!me.user;
  $('account').hidden = !signedIn && !me.sign_in;
  $('sign-in').hidden = signedIn || !me.sign_in;
  $('sign-in').href = signInUrl('/');
  $('create-sign-in').href = signInUrl('/');
  $('user-name').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  if (signedIn) {
    setText($('user-name'), 'account.signedin', { name: me.user.name || me.user.email || '' });
  }
  showCreate(me.can_create_rooms);
  if (signedIn) await loadRooms();
}

function showCreate(allowed) {
  $('new-meeting').hidden = !allowed;
  document.querySelector('.home-or').hidden = !allowed;
  $('create-hint').hidden = allowed;
  // Without sign-in configured, the hint's "Sign in" would lead nowhere.
  $('create-sign-in').hidden = account ? !account.sign_in : false;
}

async function loadRooms() {
  const section = $('my-rooms');
  const list = $('my-rooms-list');
  section.hidden = false;
  let rooms;
  try {
    rooms = await myRooms();
  } catch {
    list.replaceChildren();
    setText($('my-rooms-empty'), 'home.rooms.error');
    $('my-rooms-empty').hidden = false;
    return;
  }
  setText($('my-rooms-empty'), 'home.rooms.empty');
  $('my-rooms-empty').hidden = rooms.length > 0;
  list.replaceChildren(...rooms.map(roomItem));
}

function roomItem(room) {
  const details = [t(`access.${room.access}.short`)];
  if (room.your_role) details.push(t(`role.${room.your_role}`));
  if (room.participants > 0) details.push(tn('home.rooms.live', room.participants));
  return h('li.room-item', {},
    h('div.room-main', { dataset: { room: room.id } },
      h('a.room-link', { href: meetingPath(room) }, room.name || room.id),
      room.name && room.name !== room.id ? h('span.room-code', {}, room.id) : null,
      h('span.room-details.hint', {}, details.join(' · '))),
    // Its owner and members see what was transcribed or recorded in it.
    room.your_role ? h('a.room-transcripts', {
      href: transcriptsPath(room.id),
      'aria-label': t('home.rooms.transcripts.label', { name: room.name || room.id }),
    }, t('home.rooms.transcripts')) : null);
}

async function signOutAndReload(button) {
  button.disabled = true;
  try {
    await signOut();
    window.location.reload();
  } catch {
    button.disabled = false;
    showError('account.signout.error');
  }
}

function init() {
  applyLanguage();
  bindLanguagePickers();
  $('sign-out').addEventListener('click', (ev) => signOutAndReload(ev.currentTarget));
  window.addEventListener('visio:language', () => {
    if (!$('my-rooms').hidden) loadRooms();
  });
  loadAccount();
  const input = document.getElementById('meeting-code');
  const joinButton = document.getElementById('join-code');
  input.addEventListener('input', () => {
    joinButton.disabled = !input.value.trim();
    showError(null);
  });
  document.getElementById('join-form').addEventListener('submit', joinByCode);
  const newButton = document.getElementById('new-meeting');
  newButton.addEventListener('click', () => createMeeting(newButton));
}

init();
