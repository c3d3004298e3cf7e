// Moderators' view of the lobby: who waits to be let in, with Admit and Deny for each
// person and for everyone, and a notice when someone starts waiting.
import { h, hueFor, icon, initials } from './dom.js';
import { language, t, tn } from './i18n.js';
import { keepFocus, personBadges } from './participants.js';

export class LobbyPanel {
  // onAdmit(id | null), onDeny(id | null): null means everyone waiting.
  constructor({ list, empty, all, admitAll, denyAll, notice, onAdmit, onDeny, onView }) {
    Object.assign(this, { list, empty, all, admitAll, denyAll, notice, onAdmit, onDeny, onView });
    this.waiting = [];
    this.known = new Set(); // ids already announced
    this.listeners = new AbortController();
    const signal = this.listeners.signal;
    list.addEventListener('click', (ev) => {
      const admit = ev.target.closest('button[data-admit]');
      const deny = ev.target.closest('button[data-deny]');
      if (admit) this.onAdmit(admit.dataset.admit);
      else if (deny) this.onDeny(deny.dataset.deny);
    }, { signal });
    admitAll.addEventListener('click', () => this.onAdmit(null), { signal });
    denyAll.addEventListener('click', () => this.onDeny(null), { signal });
    this.render();
  }

  destroy() {
    this.listeners.abort();
    this.waiting = [];
    this.known.clear();
    this.list.replaceChildren();
    this.notice.replaceChildren();
  }

  // The whole list from the server. Returns the people who just started waiting.
  update(waiting) {
    this.waiting = Array.isArray(waiting) ? waiting : [];
    const arrived = this.waiting.filter((w) => !this.known.has(w.id));
    this.known = new Set(this.waiting.map((w) => w.id));
    this.render();
    return arrived;
  }

  get count() {
    return this.waiting.length;
  }

  render() {
    keepFocus(this.list, () => {
      this.list.replaceChildren(...this.waiting.map((w) => this.item(w)));
    }, this.list.closest('.panel')?.querySelector('[data-close-panel]'));
    this.empty.hidden = this.waiting.length > 0;
    this.all.hidden = this.waiting.length === 0;
  }

  item(w) {
    const avatar = h('span.avatar', { 'aria-hidden': 'true' }, initials(w.name));
    avatar.style.setProperty('--hue', hueFor(w.id));
    const since = Number.isFinite(w.since)
      ? h('time.hint.waiter-since', { datetime: new Date(w.since).toISOString() },
        new Date(w.since).toLocaleTimeString(language(), { hour: '2-digit', minute: '2-digit' }))
      : null;
    return h('li.participant.waiter', { dataset: { waiter: w.id } },
      avatar,
      h('span.participant-name', {}, h('span.participant-label', {}, w.name), ...personBadges(w), since),
      h('span.waiter-actions', {},
        h('button.button.small.primary', {
          type: 'button', dataset: { admit: w.id }, 'aria-label': t('lobby.admit.name', { name: w.name }),
        }, icon('check'), h('span', {}, t('lobby.admit'))),
        h('button.button.small', {
          type: 'button', dataset: { deny: w.id }, 'aria-label': t('lobby.deny.name', { name: w.name }),
        }, icon('close'), h('span', {}, t('lobby.deny')))));
  }

  // The visible notice (a live region) while people wait and the panel is closed.
  showNotice(show) {
    if (!show || !this.waiting.length) {
      this.notice.replaceChildren();
      return;
    }
    const text = this.waiting.length === 1
      ? t('lobby.notify.one', { name: this.waiting[0].name })
      : tn('lobby.notify', this.waiting.length);
    // A live region: rebuilding it with the same words would say them again.
    if (this.notice.querySelector('.lobby-notice-text')?.textContent === text) return;
    this.notice.replaceChildren(
      icon('door'),
      h('span.lobby-notice-text', {}, text),
      h('button.button.small.primary#lobby-notice-view', { type: 'button', onclick: () => this.onView() }, t('lobby.view')));
  }
}
