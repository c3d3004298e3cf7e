// Transcription and recording of a meeting: the indicator everyone sees while either
// runs, the notices before entering (pre-join and lobby screens), the announcements
// when either starts or stops, and the moderators' two toggles.
import { CAPTURE_KINDS } from './protocol.js';
import { toast } from './notify.js';
import { h } from './dom.js';
import { setText, t } from './i18n.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
// Without an answer by then, a toggle takes clicks again (the next 'room' frame tells).
const PENDING_MS = 15_000;

// The shapes of the two icons (they are not in the shared sprite).
const SHAPES = {
  transcription: [
    ['rect', { x: 2, y: 5, width: 20, height: 14, rx: 2 }],
    ['path', { d: 'M6 10h5M13 10h5M6 14h8M16 14h2' }],
  ],
  recording: [
    ['circle', { cx: 12, cy: 12, r: 9 }],
    ['circle', { cx: 12, cy: 12, r: 4.5, fill: 'currentColor' }],
  ],
};

export function captureIcon(kind) {
  const svg = document.createElementNS(SVG_NS, 'svg');
  for (const [name, value] of Object.entries({
    class: `icon capture-icon capture-icon-${kind}`, viewBox: '0 0 24 24', fill: 'none',
    stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'aria-hidden': 'true',
    focusable: 'false',
  })) svg.setAttribute(name, String(value));
  for (const [tag, attributes] of SHAPES[kind] || []) {
    const shape = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attributes)) shape.setAttribute(name, String(value));
    svg.append(shape);
  }
  return svg;
}

// {transcription, recording} as booleans, whatever the server sent (or nothing).
export function captureState(capture) {
  return { transcription: !!capture?.transcription, recording: !!capture?.recording };
}

export function captureActive(capture) {
  const state = captureState(capture);
  return state.transcription || state.recording;
}

// The sentence that tells someone about to enter, or null when nothing is captured.
export function captureNoticeKey(capture) {
  const { transcription, recording } = captureState(capture);
  if (transcription && recording) return 'capture.notice.both';
  if (transcription) return 'capture.notice.transcription';
  if (recording) return 'capture.notice.recording';
  return null;
}

// Fill (or empty and hide) a notice paragraph of the pre-join or lobby screen.
export function renderCaptureNotice(el, capture) {
  const key = captureNoticeKey(capture);
  const text = el.querySelector('.capture-notice-text') || h('span.capture-notice-text');
  setText(text, key);
  const { recording } = captureState(capture);
  el.replaceChildren(...(key ? [captureIcon(recording ? 'recording' : 'transcription'), text] : []));
  el.hidden = !key;
}

export class CaptureControls {
  // status: the indicator (a live region); buttons: {transcription, recording}, the
  // moderators' toggles; onToggle(kind, on): send the request, return its ref (or null).
  constructor({ status, buttons, onToggle }) {
    this.status = status;
    this.buttons = buttons;
    this.onToggle = onToggle;
    this.state = captureState(null);
    this.captions = false; // someone follows live captions: speech is being recognised
    this.known = false; // a first state came (from 'joined')
    this.pending = new Map(); // kind -> {ref, on, timer}
    this.listeners = new AbortController();
    for (const kind of CAPTURE_KINDS) {
      buttons[kind].addEventListener('click', () => this.toggle(kind), { signal: this.listeners.signal });
    }
    this.render();
  }

  get active() {
    return this.state.transcription || this.state.recording;
  }

  // The room's capture from 'joined' or 'room'. announce: say what started or stopped.
  update(capture, { announce = true } = {}) {
    if (!capture) return;
    const next = captureState(capture);
    const first = !this.known;
    const changed = CAPTURE_KINDS.filter((kind) => next[kind] !== this.state[kind]);
    this.state = next;
    this.known = true;
    for (const kind of CAPTURE_KINDS) {
      if (this.pending.get(kind)?.on === next[kind]) this.clearPending(kind);
    }
    this.render();
    if (first) {
      // Entering a meeting that is already captured: say so once.
      const key = captureNoticeKey(next);
      if (key) toast(t(key), { timeout: 8000 });
    } else if (announce) {
      for (const kind of changed) toast(t(`capture.${next[kind] ? 'started' : 'stopped'}.${kind}`));
    }
  }

  // room.captions from 'joined' or 'room': everyone is told, as for a capture.
  setCaptions(on, { announce = true } = {}) {
    if (typeof on !== 'boolean' || on === this.captions) return;
    this.captions = on;
    this.renderStatus();
    if (announce) toast(t(on ? 'captions.started' : 'captions.stopped'), { timeout: on ? 8000 : 4000 });
  }

  toggle(kind) {
    if (this.pending.has(kind)) return;
    const on = !this.state[kind];
    const ref = this.onToggle(kind, on);
    if (!ref) {
      toast(t(`capture.error.${kind}.${on ? 'on' : 'off'}`));
      return;
    }
    const timer = setTimeout(() => {
      this.clearPending(kind);
      this.render();
    }, PENDING_MS);
    this.pending.set(kind, { ref, on, timer });
    this.render();
  }

  // An error frame: if it answers one of our requests, say so and return true.
  failed({ code, ref }) {
    const kind = CAPTURE_KINDS.find((k) => ref && this.pending.get(k)?.ref === ref);
    if (!kind) return false;
    const { on } = this.pending.get(kind);
    this.clearPending(kind);
    this.render();
    const known = ['forbidden', 'rate_limited', 'disk_full'];
    toast(known.includes(code) ? t(`error.${code}`) : t(`capture.error.${kind}.${on ? 'on' : 'off'}`),
      { timeout: 8000 });
    return true;
  }

  clearPending(kind) {
    clearTimeout(this.pending.get(kind)?.timer);
    this.pending.delete(kind);
  }

  setModerator(moderator) {
    for (const kind of CAPTURE_KINDS) this.buttons[kind].hidden = !moderator;
  }

  render() {
    this.renderStatus();
    for (const kind of CAPTURE_KINDS) {
      const button = this.buttons[kind];
      const on = this.state[kind];
      button.setAttribute('aria-pressed', String(on));
      const pending = this.pending.has(kind);
      if (pending) button.setAttribute('aria-busy', 'true');
      else button.removeAttribute('aria-busy');
      button.classList.toggle('pending', pending);
      const label = t(`capture.${kind === 'transcription' ? 'transcribe' : 'record'}`);
      const hint = t(`capture.${kind}.${on ? 'stop' : 'start'}.hint`);
      button.setAttribute('aria-label', label);
      button.title = `${label} – ${hint}`;
    }
  }

  // Rebuilt only when the words change: the region is live, so a rebuild is read out.
  renderStatus() {
    const kinds = CAPTURE_KINDS.filter((kind) => this.state[kind]);
    if (this.captions) kinds.push('captions');
    const text = kinds.map((kind) => t(`capture.status.${kind}`)).join(' · ');
    if (this.status.dataset.text === text) return;
    this.status.dataset.text = text;
    this.status.replaceChildren(...kinds.map((kind) => h(`span.capture-pill.capture-${kind}`, {},
      captureIcon(kind), h('span', {}, t(`capture.status.${kind}`)))));
  }

  // Leaving the meeting: nothing shows any more.
  destroy() {
    this.listeners.abort();
    for (const kind of CAPTURE_KINDS) this.clearPending(kind);
    this.state = captureState(null);
    this.captions = false;
    this.known = false;
    this.render();
    this.setModerator(false);
  }
}
