// The participants panel: everyone in the meeting and what they are doing.
import { h, hueFor, icon, initials } from './dom.js';
import { t, tn } from './i18n.js';

export class ParticipantsPanel {
  constructor({ list, count }) {
    this.list = list;
    this.count = count;
  }

  // self first, then raised hands, then by name.
  render(self, others) {
    const sorted = [...others].sort((a, b) => (Number(!!b.hand) - Number(!!a.hand))
      || String(a.name).localeCompare(String(b.name), undefined, { sensitivity: 'base' }));
    const everyone = self ? [self, ...sorted] : sorted;
    this.count.textContent = tn('participants.count', everyone.length);
    this.list.replaceChildren(...everyone.map((p) => this.item(p, p === self)));
  }

  item(p, isSelf) {
    const avatar = h('span.avatar', { 'aria-hidden': 'true' }, initials(p.name));
    avatar.style.setProperty('--hue', hueFor(p.id));
    const states = [];
    if (p.connection === 'reconnecting') states.push(h('span.state-text', {}, t('tile.reconnecting')));
    if (p.hand) states.push(stateIcon('hand', 'tile.hand', 'state-hand'));
    if (p.video === false) states.push(stateIcon('cam-off', 'tile.camera.off'));
    if (p.audio === false) states.push(stateIcon('mic-off', 'tile.muted'));
    if (p.screen) states.push(stateIcon('screen', 'notify.screen', '', { name: p.name }));
    return h('li.participant', { dataset: { participant: p.id } },
      avatar,
      h('span.participant-name', {}, isSelf ? t('participants.you', { name: p.name }) : p.name),
      h('span.participant-states', {}, ...states));
  }
}

function stateIcon(name, labelKey, className = '', vars = {}) {
  const span = h(`span.state-icon${className ? `.${className}` : ''}`, { role: 'img', 'aria-label': t(labelKey, vars) },
    icon(name));
  span.title = t(labelKey, vars);
  return span;
}
