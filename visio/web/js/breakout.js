// Breakout rooms: the moderators' panel (open rooms, move people with selects and buttons,
// visit, broadcast, call everyone back) and, for everyone, where they are now, the rooms
// to pick from when the moderator lets people choose, and the warning before the call
// back. Moving never reloads the page: the protocol client makes a new subscriber
// connection for the new room (protocol.js, 'moved'); this module tells the meeting who
// is in our room now (here()), so that the stage shows only them.
import { h } from './dom.js';
import { announce, toast } from './notify.js';
import { setText, t, tn } from './i18n.js';

const ASSIGN_MODES = ['manual', 'random', 'choose'];

export class BreakoutPanel {
  // conn: the VisioConnection; body: the panel's content element; notice: a status line on
  // the stage; button: the control-bar toggle; people(): id -> participant (us included);
  // isModerator(): bool; onRegroup(): our room or its people changed; onMoved({chat}).
  constructor({ conn, body, notice, button, people, isModerator, onRegroup, onMoved }) {
    Object.assign(this, { conn, body, notice, button, people, isModerator, onRegroup, onMoved });
    this.state = null; // the server's `breakout` frame while rooms are open
    this.selfId = null;
    this.clock = null;
    this.draft = ''; // the broadcast being typed
  }

  destroy() {
    clearInterval(this.clock);
    this.body.replaceChildren();
    this.notice.hidden = true;
  }

  get open() {
    return !!this.state;
  }

  roomOf(id) {
    return this.state?.where?.[id] ?? null;
  }

  get myRoom() {
    return this.roomOf(this.selfId);
  }

  // Whether someone is in the same room as us (the main room counts as one).
  here(id) {
    return id === this.selfId || this.roomOf(id) === this.myRoom;
  }

  roomName(room) {
    if (room === null) return t('breakout.main');
    const name = this.state?.rooms?.find((r) => r.room === room)?.name ?? String(room);
    return /^\d+$/.test(name) ? t('breakout.room', { n: name }) : name;
  }

  // ---- from the server --------------------------------------------------------------

  update(state) {
    const wasOpen = this.open;
    this.state = state;
    if (this.open !== wasOpen) announce(t(this.open ? 'breakout.opened' : 'breakout.closed'));
    clearInterval(this.clock);
    if (state?.ends_at) this.clock = setInterval(() => this.renderTimer(), 1000);
    this.render();
    this.onRegroup();
  }

  moved({ room, chat, by }) {
    const where = this.roomName(room);
    const key = room === null ? 'breakout.moved.main' : 'breakout.moved.room';
    const byOther = by && by.id !== this.selfId ? by.name : null;
    toast(byOther ? t(`${key}.by`, { room: where, name: byOther }) : t(key, { room: where }));
    this.onMoved({ chat });
    this.render();
    this.onRegroup();
  }

  closing({ inS }) {
    const message = tn('breakout.closing', Math.max(1, Math.round(inS)));
    toast(message, { timeout: 10000 });
    announce(message);
  }

  // ---- rendering ----------------------------------------------------------------------

  render() {
    const moderator = this.isModerator();
    this.button.hidden = !moderator && !this.open;
    this.renderNotice();
    let content;
    if (moderator) content = this.open ? this.moderatorRooms() : this.openForm();
    else content = this.open ? this.participantRooms() : [h('p.hint', {}, t('breakout.none'))];
    // Re-rendered at every move: keep the focus and the message being typed.
    const focused = this.body.contains(document.activeElement) ? document.activeElement.id : null;
    this.body.replaceChildren(...content);
    if (focused) document.getElementById(focused)?.focus();
  }

  renderNotice() {
    this.notice.hidden = !this.open;
    if (!this.open) return;
    setText(this.notice, 'breakout.here', { room: this.roomName(this.myRoom) });
  }

  renderTimer() {
    const el = this.body.querySelector('.breakout-timer');
    if (el && this.state?.ends_at) el.textContent = this.timerText();
  }

  timerText() {
    const left = Math.max(0, Math.round((this.state.ends_at - Date.now()) / 1000));
    const clock = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, '0')}`;
    return t('breakout.timer', { time: clock });
  }

  openForm() {
    const count = h('input#breakout-count', { type: 'number', min: '1', max: '50', value: '2', required: true });
    const assign = h('select#breakout-assign', {},
      ...ASSIGN_MODES.map((mode) => new Option(t(`breakout.assign.${mode}`), mode)));
    const minutes = h('input#breakout-minutes', { type: 'number', min: '1', max: '1440', inputmode: 'numeric',
      placeholder: t('breakout.minutes.none') });
    const form = h('form.breakout-form', {
      onsubmit: (event) => {
        event.preventDefault();
        const durationS = minutes.value ? Math.round(Number(minutes.value) * 60) : null;
        this.conn.openBreakout({ count: count.value, assign: assign.value, durationS });
      },
    },
    h('label.field', {}, h('span.field-label', {}, t('breakout.count')), count),
    h('label.field', {}, h('span.field-label', {}, t('breakout.assign')), assign),
    h('label.field', {}, h('span.field-label', {}, t('breakout.minutes')), minutes),
    h('button.button.primary#breakout-open', { type: 'submit' }, t('breakout.open')));
    return [h('p.hint', {}, t('breakout.intro')), form];
  }

  // Everyone by room, each with a select to move them, and a button to go to the room.
  moderatorRooms() {
    const rooms = [null, ...this.state.rooms.map((r) => r.room)];
    const people = [...this.people().values()];
    const sections = rooms.map((room) => {
      const members = people.filter((p) => this.roomOf(p.id) === room);
      const heading = h('h3.breakout-room-name', {}, this.roomName(room));
      const go = this.myRoom === room ? h('span.hint', {}, t('breakout.you_here'))
        : h('button.button.small', {
          type: 'button', id: `breakout-visit-${room ?? 'main'}`, dataset: { visit: String(room ?? 'main') },
          onclick: () => this.conn.moveToBreakout(room),
        }, room === null ? t('breakout.back') : t('breakout.visit', { room: this.roomName(room) }));
      const list = h('ul.breakout-people', {}, ...members.map((p) => this.personRow(p, rooms)));
      return h('section.breakout-room', { dataset: { room: String(room ?? 'main') } }, heading, go, list);
    });
    const text = h('textarea#breakout-message', {
      rows: 2, maxlength: '2000', required: true,
      oninput: () => { this.draft = text.value; },
    });
    text.value = this.draft;
    const broadcast = h('form.breakout-form', {
      onsubmit: (event) => {
        event.preventDefault();
        if (text.value.trim()) this.conn.broadcastToRooms(text.value.trim());
        text.value = '';
        this.draft = '';
      },
    },
    h('label.field', {}, h('span.field-label', {}, t('breakout.broadcast.label')), text),
    h('button.button.small#breakout-broadcast', { type: 'submit' }, t('breakout.broadcast')));
    const actions = h('div.host-row',
      {},
      h('button.button.small.primary#breakout-close', { type: 'button', onclick: () => this.conn.closeBreakout(0) },
        t('breakout.call_back')),
      h('button.button.small#breakout-close-later', { type: 'button', onclick: () => this.conn.closeBreakout(60) },
        t('breakout.call_back.later')));
    const timer = this.state.ends_at ? h('p.hint.breakout-timer', { role: 'timer' }, this.timerText()) : null;
    return [timer, actions, broadcast, ...sections].filter(Boolean);
  }

  personRow(p, rooms) {
    const name = p.id === this.selfId ? t('participants.you', { name: p.name }) : p.name;
    const select = h('select', {
      id: `breakout-move-${p.id}`,
      'aria-label': t('breakout.move', { name: p.name }),
      dataset: { move: p.id },
      onchange: () => this.conn.moveToBreakout(select.value === 'main' ? null : Number(select.value), p.id),
    }, ...rooms.map((room) => new Option(this.roomName(room), String(room ?? 'main'), false,
      this.roomOf(p.id) === room)));
    return h('li.breakout-person', {}, h('span', {}, name), select);
  }

  participantRooms() {
    const intro = h('p.hint', {}, t(this.state.choose ? 'breakout.choose' : 'breakout.assigned'));
    const timer = this.state.ends_at ? h('p.hint.breakout-timer', { role: 'timer' }, this.timerText()) : null;
    if (!this.state.choose) return [intro, timer].filter(Boolean);
    const rooms = [...this.state.rooms.map((r) => r.room), null];
    const buttons = rooms.map((room) => {
      const count = Object.values(this.state.where).filter((r) => r === room).length;
      const label = this.roomName(room);
      if (room === this.myRoom) return h('li', {}, h('span.hint', {}, t('breakout.you_in', { room: label })));
      return h('li', {}, h('button.button.small', {
        type: 'button', id: `breakout-choose-${room ?? 'main'}`, dataset: { choose: String(room ?? 'main') },
        onclick: () => this.conn.moveToBreakout(room),
      }, room === null ? t('breakout.back') : t('breakout.join', { room: label })),
      room === null ? null : h('span.hint', {}, ` ${tn('breakout.people', count)}`));
    });
    return [intro, timer, h('ul.breakout-choices', {}, ...buttons)].filter(Boolean);
  }
}
