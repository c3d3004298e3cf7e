// The participants panel: everyone in the meeting and what they are doing, with the
// moderators' actions on each person (mute, camera off, stop presenting, remove).
import { h, hueFor, icon, initials } from './dom.js';
import { t, tn } from './i18n.js';
import { STAGE_ACTIONS } from './hands.js';

// action -> [icon, label key]
const ACTIONS = {
  mute: ['mic-off', 'moderate.mute'],
  camera_off: ['cam-off', 'moderate.camera_off'],
  stop_screen: ['screen-off', 'moderate.stop_screen'],
  remove: ['person-remove', 'moderate.remove'],
  ...STAGE_ACTIONS, // large meetings: hands, speaking, spotlight, moderators (hands.js)
};

export class ParticipantsPanel {
  // actionsFor(p): the moderator actions to offer on p ([] for none);
  // onAction(action, p): one was chosen; handRank(p): place in the queue of raised hands.
  constructor({ list, count, actionsFor = () => [], onAction = () => {}, handRank = () => Infinity }) {
    this.list = list;
    this.count = count;
    this.actionsFor = actionsFor;
    this.onAction = onAction;
    this.handRank = handRank;
    this.people = new Map();
    this.listeners = new AbortController();
    list.addEventListener('click', (ev) => {
      const button = ev.target.closest('button[data-action]');
      const p = button && this.people.get(button.dataset.participant);
      if (p) this.onAction(button.dataset.action, p);
    }, { signal: this.listeners.signal });
  }

  destroy() {
    this.listeners.abort();
    this.list.replaceChildren();
  }

  // self first, then raised hands in the order they went up, then by name.
  render(self, others) {
    const rank = (p) => (p.hand ? Math.min(this.handRank(p), 1e9) : Infinity);
    const sorted = [...others].sort((a, b) => ((rank(a) - rank(b)) || 0)
      || String(a.name).localeCompare(String(b.name), undefined, { sensitivity: 'base' }));
    const everyone = self ? [self, ...sorted] : sorted;
    this.people = new Map(everyone.map((p) => [p.id, p]));
    this.count.textContent = tn('participants.count', everyone.length);
    keepFocus(this.list, () => {
      this.list.replaceChildren(...everyone.map((p) => this.item(p, p === self)));
    }, this.list.closest('.panel')?.querySelector('[data-close-panel]'));
  }

  item(p, isSelf) {
    const avatar = h('span.avatar', { 'aria-hidden': 'true' }, initials(p.name));
    avatar.style.setProperty('--hue', hueFor(p.id));
    const states = [];
    if (p.connection === 'reconnecting') states.push(h('span.state-text', {}, t('tile.reconnecting')));
    if (p.hand) states.push(stateIcon('hand', 'tile.hand', 'state-hand'));
    const place = p.hand ? this.handRank(p) : Infinity;
    if (Number.isFinite(place)) states.push(h('span.hand-rank', { 'aria-label': t('stage.queue_place', { n: place + 1 }) }, String(place + 1)));
    if (p.video === false) states.push(stateIcon('cam-off', 'tile.camera.off'));
    if (p.audio === false) states.push(stateIcon('mic-off', 'tile.muted'));
    if (p.screen) states.push(stateIcon('screen', 'notify.screen', '', { name: p.name }));
    const actions = isSelf ? [] : this.actionsFor(p);
    const buttons = actions.map((action) => {
      const [iconName, labelKey] = ACTIONS[action];
      const label = t(labelKey, { name: p.name });
      return h(`button.icon-button.small.moderate-${action}`, {
        type: 'button', 'aria-label': label, title: label,
        dataset: { action, participant: p.id },
      }, icon(iconName));
    });
    return h('li.participant', { dataset: { participant: p.id } },
      avatar,
      h('span.participant-name', {},
        h('span.participant-label', {}, isSelf ? t('participants.you', { name: p.name }) : p.name),
        ...personBadges(p)),
      h('span.participant-states', {}, ...states),
      buttons.length
        ? h('span.participant-actions', { role: 'group', 'aria-label': t('moderate.actions', { name: p.name }) }, ...buttons)
        : null);
  }
}

// "Host" / "Co-host" / "Guest" badges for a participant (tile, lists).
export function personBadges(p) {
  const badges = [];
  if (p.role === 'owner' || p.role === 'admin') badges.push(h('span.person-badge.role', {}, t(`role.${p.role}`)));
  if (p.guest) badges.push(h('span.person-badge.guest', {}, t('role.guest')));
  return badges;
}

// Rebuilding a list must not lose the keyboard focus inside it: put it back on the same
// control, else on another one of the same row (or the next row), else on `fallback`
// (or the list itself).
export function keepFocus(list, rebuild, fallback = null) {
  const active = document.activeElement;
  if (!active || !list.contains(active)) return rebuild();
  const row = active.closest('li');
  const rows = [...list.children];
  const index = rows.indexOf(row);
  const key = controlKey(active);
  const rowKey = row?.dataset.participant || row?.dataset.waiter;
  rebuild();
  const same = [...list.querySelectorAll('button')].find((b) => controlKey(b) === key);
  if (same) return same.focus();
  const newRows = [...list.children];
  const sameRow = newRows.find((r) => (r.dataset.participant || r.dataset.waiter) === rowKey);
  const next = sameRow || newRows[Math.min(index, newRows.length - 1)];
  const target = next?.querySelector('button') || fallback;
  if (target) return target.focus();
  list.tabIndex = -1;
  list.focus();
}

function controlKey(el) {
  const d = el.dataset || {};
  return JSON.stringify([d.action, d.participant, d.admit, d.deny]);
}

function stateIcon(name, labelKey, className = '', vars = {}) {
  const span = h(`span.state-icon${className ? `.${className}` : ''}`, { role: 'img', 'aria-label': t(labelKey, vars) },
    icon(name));
  span.title = t(labelKey, vars);
  return span;
}
