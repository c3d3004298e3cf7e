// The chat panel: history for late joiners, live messages, and our own messages shown at
// once (marked pending until the server's copy, with its id, comes back).
import { h } from './dom.js';
import { language, t } from './i18n.js';

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]]/g;

export class Chat {
  constructor({ list, empty, form, input, send, onSend }) {
    Object.assign(this, { list, empty, form, input, send, onSend });
    this.seen = new Set();
    this.pending = []; // {text, li}
    this.selfId = null;
    this.listeners = new AbortController();
    const signal = this.listeners.signal;
    list.replaceChildren();
    empty.hidden = false;
    input.value = '';
    this.resizeInput();
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.submit();
    }, { signal });
    input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        this.submit();
      }
    }, { signal });
    input.addEventListener('input', () => this.resizeInput(), { signal });
  }

  destroy() {
    this.listeners.abort();
  }

  resizeInput() {
    this.send.disabled = !this.input.value.trim();
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, 160)}px`;
  }

  submit() {
    const text = this.input.value.trim();
    if (!text) return;
    this.input.value = '';
    this.resizeInput();
    const li = this.render({ from: this.selfId, name: t('chat.you'), text, ts: Date.now() }, true);
    this.pending.push({ text, li });
    this.onSend(text);
  }

  // A long meeting's joiner gets its newest messages only: say how many came before.
  load(messages, earlier = 0) {
    this.list.querySelector('.chat-earlier')?.remove();
    if (earlier > 0) {
      this.list.prepend(h('li.chat-earlier', {}, t('chat.earlier', { n: earlier })));
      this.empty.hidden = true;
    }
    for (const message of messages) this.receive(message);
  }

  // Returns true when the message is new and from someone else.
  receive(message) {
    if (!message || this.seen.has(message.id)) return false;
    this.seen.add(message.id);
    const mine = message.from === this.selfId;
    if (mine) {
      const index = this.pending.findIndex((p) => p.text === message.text);
      if (index >= 0) {
        const [{ li }] = this.pending.splice(index, 1);
        li.classList.remove('pending');
        li.querySelector('.chat-pending')?.remove();
        return false;
      }
    }
    this.render(message, false);
    return !mine;
  }

  render(message, pending) {
    const mine = message.from === this.selfId;
    const time = new Date(message.ts || Date.now());
    const li = h('li.chat-message', {},
      h('div.chat-meta', {},
        h('span.chat-author', {}, mine ? t('chat.you') : message.name),
        message.guest && !mine ? h('span.person-badge.guest', {}, t('role.guest')) : null,
        h('time', { datetime: time.toISOString() },
          time.toLocaleTimeString(language(), { hour: '2-digit', minute: '2-digit' })),
        pending ? h('span.chat-pending', {}, t('chat.pending')) : null),
      h('p.chat-text', {}, ...linkify(message.text)));
    if (mine) li.classList.add('mine');
    if (pending) li.classList.add('pending');
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    this.list.append(li);
    this.empty.hidden = true;
    if (atBottom || mine) li.scrollIntoView({ block: 'end' });
    return li;
  }
}

// Text with http(s) links made clickable, built from text nodes only (never HTML).
export function linkify(text) {
  const parts = [];
  let last = 0;
  for (const match of String(text).matchAll(URL_PATTERN)) {
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push(h('a', { href: match[0], target: '_blank', rel: 'noopener noreferrer' }, match[0]));
    last = match.index + match[0].length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}
