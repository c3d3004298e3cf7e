// The transcripts page of a room (/{room-id}/transcripts): what was transcribed or
// recorded in its meetings, newest first, with their progress, downloads, a readable view
// of each transcript, and for the room's owner and admins Delete, Retry and the language
// of the transcripts. Only the owner and members may see it (the API answers 401 or 403).
import {
  ApiError, deleteCapture, getRoom, retryCapture, roomCaptures, signInUrl, signOut, updateRoom, whoAmI,
} from './api.js';
import { h } from './dom.js';
import { applyLanguage, bindLanguagePickers, language, pluralKey, setText, t } from './i18n.js';
import { confirmAction, toast } from './notify.js';

const $ = (id) => document.getElementById(id);
const BUSY_REFRESH_MS = 3_000; // while a job waits or runs
const CAPTURING_REFRESH_MS = 15_000; // while a meeting is still being captured
const BUSY = ['queued', 'running'];
const LANGUAGES = ['auto', 'en', 'fr'];
// The files a finished capture may have, in the order they are offered.
const FILE_ORDER = [
  'recording.mp4', 'transcript.md', 'transcript.docx', 'transcript.vtt', 'transcript.srt', 'transcript.json',
  'recording.ogg',
];

let roomId = null;
let room = null; // GET /api/rooms/{id}
let me = null; // GET /api/me
const items = new Map(); // capture id -> CaptureItem
let refreshTimer = null;
let loading = false;
let problem = 'loading'; // what the page says instead of the list (an HTTP status), if anything

// /abc-defg-hij/transcripts, or /static/transcripts.html?room=abc-defg-hij
export function roomIdFromLocation(loc = window.location) {
  const fromQuery = new URLSearchParams(loc.search).get('room');
  if (fromQuery) return fromQuery;
  const parts = loc.pathname.split('/').filter(Boolean);
  if (parts.length !== 2 || parts[1] !== 'transcripts') return null;
  try {
    return decodeURIComponent(parts[0]);
  } catch {
    return null;
  }
}

// Seconds from the start of the meeting as mm:ss, or hh:mm:ss from an hour on.
export function formatClock(seconds) {
  const total = Math.max(0, Math.floor(Number(seconds) || 0));
  const pad = (n) => String(n).padStart(2, '0');
  const hours = Math.floor(total / 3600);
  const rest = `${pad(Math.floor((total % 3600) / 60))}:${pad(total % 60)}`;
  return hours ? `${pad(hours)}:${rest}` : rest;
}

// The server's times are UTC; some databases hand them back without the zone.
function parseTime(value) {
  if (!value) return null;
  const text = /(Z|[+-]\d\d:?\d\d)$/.test(value) ? value : `${value}Z`;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

function formatDate(date, options = { dateStyle: 'long', timeStyle: 'short' }) {
  return new Intl.DateTimeFormat(language(), options).format(date);
}

// 1.5 MB, 38 kB, 0.7 kB
function formatSize(bytes) {
  const [unit, size] = bytes >= 1e6 ? ['megabyte', 1e6] : ['kilobyte', 1e3];
  const value = Math.max(0.1, (Number(bytes) || 0) / size);
  return new Intl.NumberFormat(language(), { style: 'unit', unit, maximumFractionDigits: 1 }).format(value);
}

function durationText(seconds) {
  if (seconds < 60) {
    const n = Math.max(1, Math.round(seconds));
    return t(pluralKey('duration.seconds', n), { n });
  }
  const n = Math.round(seconds / 60);
  return t(pluralKey('duration.minutes', n), { n });
}

// ---- one capture ------------------------------------------------------------------------

class CaptureItem {
  constructor(capture) {
    this.id = capture.id;
    this.capture = null;
    this.shown = null; // what the state part shows, to rebuild it only when that changes
    this.transcript = null; // {button, region, loaded}
    const base = `capture-${capture.id}`;
    this.ids = { title: `${base}-title`, status: `${base}-status`, transcript: `${base}-transcript` };
    this.title = h('h3.capture-title', { id: this.ids.title, tabindex: '-1' });
    this.meta = h('p.capture-meta.hint');
    this.state = h('div.capture-state');
    this.files = h('div.capture-files');
    this.view = h('div.capture-transcript');
    this.actions = h('div.capture-actions.button-row.start');
    this.el = h('li.capture-item', { dataset: { capture: capture.id } },
      h('article', { 'aria-labelledby': this.ids.title },
        this.title, this.meta, this.state, this.files, this.view, this.actions));
    this.update(capture);
  }

  get label() {
    const started = parseTime(this.capture.started_at);
    const date = started ? formatDate(started) : '';
    return date ? `${this.capture.title} (${date})` : this.capture.title;
  }

  update(capture, { force = false } = {}) {
    const previous = this.capture;
    this.capture = capture;
    this.el.dataset.status = capture.status;
    this.title.textContent = capture.title || capture.room;
    this.renderMeta();
    const shown = JSON.stringify([capture.status, capture.error, capture.can_manage,
      capture.files.map((f) => f.name), language()]);
    if (shown !== this.shown || force) {
      this.shown = shown;
      this.keepFocus(() => {
        this.renderState();
        this.renderFiles();
        this.renderTranscriptToggle();
        this.renderActions();
      });
    } else {
      this.renderProgress();
    }
    return previous;
  }

  // A rebuilt part must not drop the keyboard focus: move it to the title instead.
  keepFocus(fn) {
    const parts = [this.state, this.files, this.actions];
    const had = parts.some((part) => part.contains(document.activeElement));
    fn();
    if (had && !this.el.contains(document.activeElement)) this.title.focus();
  }

  renderMeta() {
    const { started_at: startedAt, ended_at: endedAt, transcription, recording, expires_at: expiresAt } = this.capture;
    const started = parseTime(startedAt);
    const ended = parseTime(endedAt);
    const parts = [];
    if (started) parts.push(h('time', { datetime: started.toISOString() }, formatDate(started)));
    if (started && ended > started) parts.push(durationText((ended - started) / 1000));
    const kinds = [];
    if (transcription) kinds.push(t('capture.kind.transcription'));
    if (recording) kinds.push(t('capture.kind.recording'));
    if (kinds.length) parts.push(kinds.join(', '));
    const expires = parseTime(expiresAt);
    if (expires) parts.push(t('capture.expires', { date: formatDate(expires, { dateStyle: 'long' }) }));
    const children = [];
    parts.forEach((part, i) => {
      if (i) children.push(' · ');
      children.push(part);
    });
    this.meta.replaceChildren(...children);
  }

  renderState() {
    const { status, error } = this.capture;
    const badge = h(`span.status-badge.status-${status}`, {}, t(`capture.state.${status}`));
    const line = h('p.capture-state-line', { id: this.ids.status }, badge);
    const children = [line];
    if (status === 'running') {
      this.percent = h('span.capture-percent');
      this.progress = h('progress', { max: 1, 'aria-labelledby': `${this.ids.status}` });
      line.append(' ', this.percent);
      children.push(this.progress);
      this.renderProgress();
    } else {
      this.percent = this.progress = null;
    }
    if (status === 'failed' && error) children.push(h('p.capture-error', {}, t('capture.failed.reason', { error })));
    if (status === 'done' && error) children.push(h('p.capture-note.hint', {}, t('capture.note', { error })));
    this.state.replaceChildren(...children);
  }

  renderProgress() {
    if (!this.progress) return;
    const value = Math.min(1, Math.max(0, Number(this.capture.progress) || 0));
    this.progress.value = value;
    this.percent.textContent = new Intl.NumberFormat(language(), { style: 'percent' }).format(value);
  }

  renderFiles() {
    const files = [...this.capture.files].sort((a, b) => FILE_ORDER.indexOf(a.name) - FILE_ORDER.indexOf(b.name));
    if (!files.length) {
      this.files.replaceChildren();
      return;
    }
    const headingId = `capture-${this.id}-files`;
    this.files.replaceChildren(
      h('h4.capture-files-title', { id: headingId }, t('capture.downloads')),
      h('ul.file-list', { 'aria-labelledby': headingId }, ...files.map((file) => h('li', {},
        h('a.file-link', { href: file.url, download: '', dataset: { file: file.name } }, t(`file.${file.format}`)),
        ' ', h('span.hint.file-size', {}, formatSize(file.size))))),
      ...this.player());
  }

  // The meeting's video plays on the page, with the transcript as its captions.
  player() {
    const video = this.capture.files.find((f) => f.name === 'recording.mp4');
    if (!video) return [];
    const vtt = this.capture.files.find((f) => f.name === 'transcript.vtt');
    const captions = vtt ? [h('track', {
      kind: 'captions', src: vtt.url, label: t('video.captions'),
      srclang: this.capture.language === 'auto' ? language() : this.capture.language,
    })] : [];
    return [h('video.capture-video', {
      controls: true, preload: 'metadata', src: video.url, 'aria-label': t('video.label', { title: this.label }),
    }, ...captions)];
  }

  // Done transcripts can be read here: fetched on demand, shown under a toggle.
  renderTranscriptToggle() {
    const json = this.capture.files.find((f) => f.name === 'transcript.json');
    if (!json) {
      this.transcript = null;
      this.view.replaceChildren();
      return;
    }
    if (this.transcript?.url === json.url) {
      setText(this.transcript.label, this.transcript.region.hidden ? 'transcript.show' : 'transcript.hide');
      return;
    }
    const label = h('span');
    const button = h('button.button.small', {
      type: 'button', 'aria-expanded': 'false', 'aria-controls': this.ids.transcript,
      onclick: () => this.toggleTranscript(),
    }, label);
    const region = h('div.transcript-view', {
      id: this.ids.transcript, hidden: true, 'aria-labelledby': this.ids.title,
    });
    this.transcript = { url: json.url, button, label, region, loaded: false };
    setText(label, 'transcript.show');
    this.view.replaceChildren(button, region);
  }

  async toggleTranscript() {
    const view = this.transcript;
    if (!view) return;
    const open = view.region.hidden;
    view.region.hidden = !open;
    view.button.setAttribute('aria-expanded', String(open));
    setText(view.label, open ? 'transcript.hide' : 'transcript.show');
    if (!open || view.loaded) return;
    view.loaded = true;
    view.region.replaceChildren(h('p.hint', { role: 'status' }, t('app.loading')));
    try {
      const response = await fetch(view.url, { cache: 'no-store' });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      view.region.replaceChildren(renderTranscript(await response.json()));
    } catch {
      view.loaded = false;
      view.region.replaceChildren(h('p.form-error', { role: 'alert' }, t('transcript.error')));
    }
  }

  renderActions() {
    const { status, can_manage: canManage } = this.capture;
    const buttons = [];
    if (canManage && status === 'failed') {
      buttons.push(h('button.button.small', {
        type: 'button', dataset: { action: 'retry' }, 'aria-label': t('capture.retry.label', { title: this.label }),
        onclick: (ev) => retry(this, ev.currentTarget),
      }, t('capture.retry')));
    }
    // The server keeps a capture that is still being made or processed.
    if (canManage && !['capturing', 'running'].includes(status)) {
      buttons.push(h('button.button.small.danger-outline', {
        type: 'button', dataset: { action: 'delete' }, 'aria-label': t('capture.delete.label', { title: this.label }),
        onclick: (ev) => remove(this, ev.currentTarget),
      }, t('capture.delete')));
    }
    this.actions.replaceChildren(...buttons);
    this.actions.hidden = !buttons.length;
  }
}

// transcript.json: {segments: [{speaker, start, end, text}], ...}
function renderTranscript(data) {
  const segments = Array.isArray(data?.segments) ? data.segments : [];
  if (!segments.length) return h('p.hint', {}, t('transcript.empty'));
  let lastSpeaker = null;
  return h('ol.transcript', {}, ...segments.map((segment) => {
    const start = Number(segment.start) || 0;
    const speaker = String(segment.speaker || '');
    const same = speaker === lastSpeaker;
    lastSpeaker = speaker;
    return h(`li.segment${same ? '.same-speaker' : ''}`, {},
      h('time.segment-time', { datetime: `PT${Math.floor(start)}S` }, formatClock(start)),
      h('span.segment-speaker', {}, speaker),
      h('p.segment-text', {}, String(segment.text || '')));
  }));
}

// ---- actions -----------------------------------------------------------------------------

async function remove(item, button) {
  const ok = await confirmAction(t('capture.delete.confirm', { title: item.label }), t('capture.delete.ok'));
  if (!ok) return;
  button.disabled = true;
  try {
    await deleteCapture(item.id);
  } catch (err) {
    button.disabled = false;
    toast(errorText('capture.delete.error', err), { timeout: 8000 });
    return;
  }
  const label = item.label;
  const next = item.el.nextElementSibling || item.el.previousElementSibling;
  item.el.remove();
  items.delete(item.id);
  renderEmpty();
  toast(t('capture.deleted', { title: label }));
  // Focus where the deleted one was: the next capture, or the list's heading.
  const target = next ? items.get(next.dataset.capture)?.title : $('captures-title');
  if (target) {
    if (!target.hasAttribute('tabindex')) target.setAttribute('tabindex', '-1');
    target.focus();
  }
}

async function retry(item, button) {
  button.disabled = true;
  try {
    const capture = await retryCapture(item.id);
    item.update(capture);
    toast(t('capture.retried', { title: item.label }));
    scheduleRefresh();
  } catch (err) {
    button.disabled = false;
    toast(errorText('capture.retry.error', err), { timeout: 8000 });
  }
}

function errorText(key, err) {
  const detail = err instanceof ApiError && err.message && !/^HTTP \d+$/.test(err.message) ? err.message : '';
  return detail ? `${t(key)} (${detail})` : t(key);
}

// ---- the list ----------------------------------------------------------------------------

async function loadCaptures({ first = false } = {}) {
  if (loading) return;
  loading = true;
  clearTimeout(refreshTimer);
  let captures;
  try {
    captures = await roomCaptures(roomId);
  } catch (err) {
    loading = false;
    if (first || err.status === 401 || err.status === 403 || err.status === 404) showProblem(err.status);
    else scheduleRefresh(CAPTURING_REFRESH_MS); // a passing network problem: try again later
    return;
  }
  loading = false;
  if (problem !== null) {
    showProblem(null);
    renderRoom(); // back after a problem: the settings too
  }
  renderCaptures(captures);
  scheduleRefresh();
}

function renderCaptures(captures) {
  const list = $('captures-list');
  const sorted = [...captures].sort((a, b) => (parseTime(b.started_at) || 0) - (parseTime(a.started_at) || 0));
  const seen = new Set();
  for (const capture of sorted) {
    seen.add(capture.id);
    const item = items.get(capture.id);
    if (!item) {
      items.set(capture.id, new CaptureItem(capture));
      continue;
    }
    const before = item.update(capture);
    if (BUSY.includes(before.status) || before.status === 'capturing') {
      if (capture.status === 'done') toast(t('capture.ready', { title: item.label }), { timeout: 8000 });
      if (capture.status === 'failed') toast(t('capture.failed.notify', { title: item.label }), { timeout: 8000 });
    }
  }
  for (const [id, item] of items) {
    if (!seen.has(id)) {
      if (item.el.contains(document.activeElement)) $('captures-title').focus();
      item.el.remove();
      items.delete(id);
    }
  }
  // In order, moving only what is out of place (a moved element loses no focus here).
  sorted.forEach((capture, i) => {
    const el = items.get(capture.id).el;
    if (list.children[i] !== el) list.insertBefore(el, list.children[i] || null);
  });
  $('captures').hidden = false;
  renderEmpty();
}

function renderEmpty() {
  $('captures-empty').hidden = items.size > 0;
}

function scheduleRefresh(delay = null) {
  clearTimeout(refreshTimer);
  const statuses = [...items.values()].map((item) => item.capture.status);
  const wait = delay ?? (statuses.some((s) => BUSY.includes(s)) ? BUSY_REFRESH_MS
    : statuses.includes('capturing') ? CAPTURING_REFRESH_MS : null);
  if (wait) refreshTimer = setTimeout(() => loadCaptures(), wait);
}

// 401: sign in; 403: not allowed; 404: no such room; anything else: try again.
function showProblem(status) {
  const text = $('page-status');
  const signIn = $('problem-sign-in');
  const retryButton = $('problem-retry');
  signIn.hidden = true;
  retryButton.hidden = true;
  problem = status;
  if (status === null) {
    setText(text, null);
    return;
  }
  $('captures').hidden = true;
  $('room-settings').hidden = true;
  if (status === 401) {
    setText(text, 'transcripts.signin');
    signIn.href = signInUrl();
    signIn.hidden = !me?.sign_in;
  } else if (status === 403) {
    setText(text, 'transcripts.forbidden');
  } else if (status === 404) {
    setText(text, 'transcripts.notfound');
  } else {
    setText(text, 'transcripts.error');
    retryButton.hidden = false;
  }
}

// ---- the room ----------------------------------------------------------------------------

function renderRoom() {
  const name = room?.name || roomId;
  const link = $('room-link');
  link.textContent = name;
  link.href = `/${encodeURIComponent(roomId)}`;
  $('room-line').hidden = false;
  document.title = `${t('transcripts.title')} – ${name} – ${t('app.name')}`;
  const manages = ['owner', 'admin'].includes(room?.your_role);
  $('room-settings').hidden = !manages;
  if (manages && LANGUAGES.includes(room.language)) $('room-language').value = room.language;
}

async function changeLanguage(select) {
  const wanted = select.value;
  if (!LANGUAGES.includes(wanted)) return;
  const status = $('room-language-status');
  select.disabled = true;
  setText(status, null);
  try {
    room = await updateRoom(roomId, { language: wanted });
    setText(status, 'room.language.saved');
  } catch {
    setText(status, 'room.language.error');
  } finally {
    select.disabled = false;
    select.value = room?.language || 'auto';
    select.focus();
  }
}

// ---- account -----------------------------------------------------------------------------

function renderAccount() {
  const signedIn = !!me?.user;
  $('account').hidden = !signedIn && !me?.sign_in;
  $('sign-in').hidden = signedIn || !me?.sign_in;
  $('sign-in').href = signInUrl();
  $('user-name').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  if (signedIn) setText($('user-name'), 'account.signedin', { name: me.user.name || me.user.email || '' });
}

async function signOutAndReload(button) {
  button.disabled = true;
  try {
    await signOut();
    window.location.reload();
  } catch {
    button.disabled = false;
    toast(t('account.signout.error'));
  }
}

async function main() {
  applyLanguage();
  bindLanguagePickers();
  roomId = roomIdFromLocation();
  $('sign-out').addEventListener('click', (ev) => signOutAndReload(ev.currentTarget));
  $('problem-retry').addEventListener('click', () => loadCaptures({ first: true }));
  $('room-language').addEventListener('change', (ev) => changeLanguage(ev.currentTarget));
  window.addEventListener('visio:language', () => {
    if (room || roomId) renderRoom();
    for (const item of items.values()) item.update(item.capture, { force: true });
  });
  if (!roomId) return showProblem(404);
  [me, room] = await Promise.all([
    whoAmI().catch(() => null),
    getRoom(roomId).catch((err) => (err.status === 404 ? false : null)),
  ]);
  renderAccount();
  if (room === false) return showProblem(404);
  renderRoom();
  await loadCaptures({ first: true });
}

main();
