// Live captions (docs/PROTOCOL.md, 'captions'): the toggle in the controls bar, the
// captions area under the stage (the last few lines, "Name: text", partial lines
// replaced in place by id), the notice for people the server cannot caption for now, and
// the meeting's captions as a WebVTT file made in the browser. Each person turns captions
// on for themselves; the choice is remembered for the next meetings.
import { toast } from './notify.js';
import { h, readStorage, writeStorage } from './dom.js';
import { setText, t } from './i18n.js';

const STORAGE_KEY = 'visio.captions';
const MAX_LINES = 3; // lines on screen at once
const LINGER_MS = 6_000; // a final line stays this long, then fades out
const FADE_MS = 700; // as long as the CSS transition
const STALE_MS = 20_000; // a partial line never followed by anything goes away
const MAX_ANNOUNCED = 6; // finals kept in the screen readers' log
const LANGUAGE_TAG = /^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/;

// ---- WebVTT ------------------------------------------------------------------------------

// Cue text and voice names: & < > escaped, one line (a blank line would end the cue).
export function vttEscape(text) {
  return String(text).replace(/\s+/g, ' ').trim()
    .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

// 3723004 -> "01:02:03.004"
export function vttTime(ms) {
  const total = Math.max(0, Math.round(ms));
  const pad = (n, width = 2) => String(n).padStart(width, '0');
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor(total / 60_000) % 60;
  const seconds = Math.floor(total / 1000) % 60;
  return `${pad(hours)}:${pad(minutes)}:${pad(seconds)}.${pad(total % 1000, 3)}`;
}

// Final captions in the order they were said (start, then id).
export function sortCaptions(captions) {
  return [...captions].sort((a, b) => (a.start - b.start) || String(a.id).localeCompare(String(b.id)));
}

// A WebVTT file of final captions: one cue each, "<v Name>text", times from the first one.
export function toWebVTT(captions, { title = '' } = {}) {
  const cues = sortCaptions(captions).filter((c) => vttEscape(c.text));
  const lines = ['WEBVTT', ''];
  if (!cues.length) return `${lines.join('\n')}\n`;
  const origin = cues[0].start;
  const note = [title, new Date(origin).toISOString()].filter(Boolean).join(' – ');
  lines.push(`NOTE ${vttEscape(note).replace(/-->/g, '--')}`, '');
  cues.forEach((cue, index) => {
    const start = cue.start - origin;
    const end = Math.max(cue.end - origin, start + 500);
    lines.push(String(index + 1), `${vttTime(start)} --> ${vttTime(end)}`,
      `<v ${vttEscape(cue.name || '?')}>${vttEscape(cue.text)}`, '');
  });
  return lines.join('\n');
}

// captions-abc-defg-hij-2026-03-04.vtt (the local date of the first caption).
export function captionsFileName(room, when = Date.now()) {
  const date = new Date(when);
  const pad = (n) => String(n).padStart(2, '0');
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const safe = String(room || 'meeting').replace(/[^\w-]+/g, '_').slice(0, 80);
  return `captions-${safe}-${day}.vtt`;
}

// A caption frame as kept here, or null when it is not one.
function captionOf(frame) {
  if (!frame || typeof frame.id !== 'string' || typeof frame.text !== 'string') return null;
  const start = Number(frame.start);
  const end = Number(frame.end);
  return {
    id: frame.id,
    participant: typeof frame.participant === 'string' ? frame.participant : '',
    name: typeof frame.name === 'string' && frame.name ? frame.name : '?',
    text: frame.text,
    final: !!frame.final,
    start: Number.isFinite(start) ? start : Date.now(),
    end: Number.isFinite(end) ? end : (Number.isFinite(start) ? start : Date.now()),
    language: typeof frame.language === 'string' && LANGUAGE_TAG.test(frame.language) ? frame.language : null,
  };
}

// ---- the captions area and its toggle ------------------------------------------------------

export class Captions {
  // area: the section under the stage (hidden while off); lines: where the lines show
  // (hidden from screen readers: live holds the same finals, said one by one); notices:
  // who is not captioned (role=status); hint: shown while nothing else is; button: the
  // toggle; download: saves the WebVTT file; onToggle(on): tell the server (through the
  // protocol client, which asks again after a reconnection); room: the room's id.
  constructor({ area, lines, live, notices, hint, button, download, onToggle, room }) {
    Object.assign(this, { area, lines, live, notices, hint, button, download, onToggle, room });
    this.wanted = readStorage(STORAGE_KEY) === 'on';
    this.active = false; // the server said captions are on for us
    this.selfId = null; // our own words are shown but not read out to us
    this.finals = new Map(); // id -> caption: the meeting's captions so far
    this.shown = new Map(); // id -> {el, text, timer}
    this.announced = new Map(); // id -> <p> in the live log
    this.uncaptioned = new Map(); // participant -> {name, el}
    this.lingerMs = LINGER_MS;
    this.listeners = new AbortController();
    const signal = this.listeners.signal;
    button.addEventListener('click', () => this.toggle(), { signal });
    download.addEventListener('click', () => this.save(), { signal });
    this.clearScreen();
    this.render();
  }

  // Ask the server for what the person chose last time (called before joining).
  start() {
    if (this.wanted) this.onToggle(true);
  }

  toggle(on = !this.wanted) {
    this.wanted = !!on;
    writeStorage(STORAGE_KEY, this.wanted ? 'on' : 'off');
    if (!this.wanted) {
      this.active = false;
      this.clearScreen();
    }
    this.onToggle(this.wanted); // not connected: the protocol client sends it on joining
    this.render();
  }

  // The server's answer: on, with the finals said so far in the meeting.
  update({ on, history = [] }) {
    this.active = !!on && this.wanted;
    for (const frame of history) {
      const caption = captionOf(frame);
      if (caption && caption.text.trim()) this.finals.set(caption.id, { ...caption, final: true });
    }
    this.render();
  }

  // A caption frame: a partial replaces the line with its id; the final one too, and is kept.
  receive(frame) {
    const caption = captionOf(frame);
    if (!caption) return;
    const kept = this.finals.get(caption.id);
    if (kept && !caption.final) return; // a late partial of a finished line
    if (caption.final) {
      if (caption.text.trim()) this.finals.set(caption.id, caption);
      else this.finals.delete(caption.id);
    }
    if (!this.wanted) return;
    this.active = true;
    if (!caption.text.trim()) {
      this.removeLine(caption.id);
    } else {
      this.showLine(caption);
      if (caption.final && caption.participant !== this.selfId) this.announceFinal(caption);
    }
    this.render();
  }

  // caption_status: captioned false = more people talk than the server can caption.
  status({ participant, name, captioned }) {
    if (typeof participant !== 'string') return;
    const known = this.uncaptioned.get(participant);
    if (captioned) {
      known?.el.remove();
      this.uncaptioned.delete(participant);
    } else {
      const label = name || known?.name || '?';
      const el = known?.el || h('p.caption-notice');
      setText(el, 'captions.uncaptioned', { name: label });
      this.uncaptioned.set(participant, { name: label, el });
      if (this.wanted && !el.isConnected) this.notices.append(el);
    }
    this.render();
  }

  // Someone left: no notice about them any more (what they said stays in the file).
  forget(participant) {
    this.status({ participant, captioned: true });
  }

  // An error frame: true when it is about captions (said here, toggle off; the server
  // never turned them on, and the protocol client will not ask again).
  failed({ code }) {
    if (code !== 'captions_unavailable') return false;
    this.wanted = false;
    this.active = false;
    writeStorage(STORAGE_KEY, 'off');
    this.clearScreen();
    this.render();
    toast(t('captions.unavailable'), { timeout: 8000 });
    return true;
  }

  // ---- lines ------------------------------------------------------------------------------

  showLine(caption) {
    let line = this.shown.get(caption.id);
    if (!line) {
      const name = h('span.caption-name');
      const separator = h('span.caption-separator');
      const text = h('span.caption-text');
      const el = h('p.caption-line', { dataset: { caption: caption.id } }, name, separator, text);
      line = { el, name, separator, text, timer: null };
      this.shown.set(caption.id, line);
      this.lines.append(el);
      while (this.shown.size > MAX_LINES) this.removeLine(this.shown.keys().next().value);
    }
    line.name.textContent = caption.name;
    line.separator.textContent = t('captions.separator');
    line.text.textContent = caption.text;
    if (caption.language) line.text.lang = caption.language;
    else line.text.removeAttribute('lang');
    line.el.classList.toggle('partial', !caption.final);
    line.el.classList.toggle('final', caption.final);
    line.el.classList.remove('fading');
    clearTimeout(line.timer);
    line.timer = setTimeout(() => this.fadeLine(caption.id, line),
      caption.final ? this.lingerMs : STALE_MS);
  }

  fadeLine(id, line) {
    if (this.shown.get(id) !== line) return;
    line.el.classList.add('fading');
    line.timer = setTimeout(() => this.removeLine(id), FADE_MS);
  }

  removeLine(id) {
    const line = this.shown.get(id);
    if (!line) return;
    clearTimeout(line.timer);
    line.el.remove();
    this.shown.delete(id);
    this.renderHint();
  }

  // The screen readers' log (polite): finals only, so that partials do not flood it.
  announceFinal(caption) {
    const said = `${caption.name}${t('captions.separator')}${caption.text}`;
    let p = this.announced.get(caption.id);
    if (p) {
      if (p.textContent !== said) p.textContent = said;
      return;
    }
    p = h('p', { lang: caption.language || undefined }, said);
    this.announced.set(caption.id, p);
    this.live.append(p);
    while (this.announced.size > MAX_ANNOUNCED) {
      const [oldest, el] = this.announced.entries().next().value;
      el.remove();
      this.announced.delete(oldest);
    }
  }

  clearScreen() {
    for (const line of this.shown.values()) clearTimeout(line.timer);
    this.shown.clear();
    this.lines.replaceChildren();
    this.announced.clear();
    this.live.replaceChildren();
    this.notices.replaceChildren(); // the notices come back if captions do
  }

  // ---- rendering ----------------------------------------------------------------------------

  render() {
    this.area.hidden = !this.wanted;
    const label = t('captions.toggle');
    const hint = t(this.wanted ? 'captions.stop.hint' : 'captions.start.hint');
    this.button.setAttribute('aria-pressed', String(this.wanted));
    this.button.setAttribute('aria-label', label);
    this.button.title = `${label} – ${hint}`;
    this.button.classList.toggle('active', this.wanted);
    if (this.wanted) {
      for (const { el } of this.uncaptioned.values()) if (!el.isConnected) this.notices.append(el);
    }
    for (const line of this.shown.values()) line.separator.textContent = t('captions.separator');
    const empty = this.finals.size === 0;
    this.download.disabled = empty;
    const downloadLabel = t('captions.download');
    this.download.setAttribute('aria-label', downloadLabel);
    this.download.title = empty ? `${downloadLabel} – ${t('captions.download.empty')}` : downloadLabel;
    this.renderHint();
  }

  renderHint() {
    const busy = this.shown.size > 0 || this.notices.childElementCount > 0;
    this.hint.hidden = busy;
    if (!busy) setText(this.hint, this.active ? 'captions.waiting' : 'captions.starting');
  }

  // ---- the file -----------------------------------------------------------------------------

  // The WebVTT text of the meeting's captions so far.
  vtt() {
    return toWebVTT([...this.finals.values()], { title: this.room });
  }

  save() {
    const finals = sortCaptions(this.finals.values());
    if (!finals.length) return;
    const blob = new Blob([this.vtt()], { type: 'text/vtt;charset=utf-8' });
    const url = URL.createObjectURL(blob);
    const link = h('a', { href: url, download: captionsFileName(this.room, finals[0].start), hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  // Leaving the meeting: nothing shows any more (the toggle's choice is kept).
  destroy() {
    this.listeners.abort();
    this.clearScreen();
    this.uncaptioned.clear();
    this.finals.clear();
    this.active = false;
    this.area.hidden = true;
  }
}
