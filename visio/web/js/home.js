// Home page: start a new meeting or join one by code or link.
import { api } from './api.js';
import { applyLanguage, bindLanguagePickers, t } from './i18n.js';

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
  label.dataset.i18n = 'home.creating';
  label.textContent = t('home.creating');
  showError(null);
  try {
    const response = await api('POST', '/api/rooms', {});
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    window.location.assign(meetingPath(await response.json()));
  } catch {
    showError('home.error.create');
    button.disabled = false;
    label.dataset.i18n = 'home.new';
    label.textContent = t('home.new');
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

function init() {
  applyLanguage();
  bindLanguagePickers();
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
