// Large meetings and webinars in the web app: the queue of raised hands, what moderators
// do about them (let speak or present, take it back, lower hands), the spotlight (one
// person shown large to everyone), moderators named during the meeting, the room's rules
// (attendees publish or not, anyone may mute anyone), and picture-in-picture of the
// active speaker. The server decides; this shows it (docs/PROTOCOL.md, "Large meetings").
import { h, icon } from './dom.js';
import { t } from './i18n.js';
import { announce, toast } from './notify.js';
import { updateRoom } from './api.js';

const MODERATOR_ROLES = ['owner', 'admin'];
// action -> [icon, label key] for the participants panel (participants.js shows them).
export const STAGE_ACTIONS = {
  allow_speak: ['mic', 'stage.allow_speak'],
  revoke_speak: ['mic-off', 'stage.revoke_speak'],
  allow_present: ['screen', 'stage.allow_present'],
  revoke_present: ['screen-off', 'stage.revoke_present'],
  lower_hand: ['hand', 'stage.lower_hand'],
  spotlight: ['video-plus', 'stage.spotlight'],
  unspotlight: ['cam-off', 'stage.unspotlight'],
  promote: ['people', 'stage.promote'],
  demote: ['person-remove', 'stage.demote'],
};
const RULES = ['attendees_publish', 'everyone_can_mute'];

export class StageControls {
  // conn: the VisioConnection; grid: the Grid; self(): our participant;
  // els: {lowerHands, rules: {attendees_publish, everyone_can_mute}, pip};
  // onHandLowered(): a moderator lowered our hand; onChange(): redraw controls and panel.
  constructor({ conn, grid, self, roomId, els, onHandLowered, onChange }) {
    Object.assign(this, { conn, grid, self, roomId, els, onHandLowered, onChange });
    this.rules = { attendees_publish: true, everyone_can_mute: false };
    this.queue = [];
    this.spotlightId = null;
    this.listeners = new AbortController();
    const signal = this.listeners.signal;
    els.lowerHands.addEventListener('click', () => this.lowerAllHands(), { signal });
    for (const rule of RULES) {
      els.rules[rule].addEventListener('change', () => this.changeRule(rule), { signal });
    }
    // Only where the page API exists (Chromium, Safari, Firefox from 153 on): else no button.
    els.pip.hidden = !document.pictureInPictureEnabled;
    els.pip.addEventListener('click', () => this.togglePip(), { signal });
    for (const type of ['enterpictureinpicture', 'leavepictureinpicture']) {
      document.addEventListener(type, () => this.renderPip(), { signal, capture: true });
    }
    const on = (type, fn) => conn.addEventListener(type, (ev) => fn.call(this, ev.detail), { signal });
    on('hands', ({ queue }) => this.onHands(queue));
    on('spotlight', ({ id, by }) => this.onSpotlight(id, by));
    on('granted', this.onGranted);
    on('hand-lowered', ({ by }) => {
      toast(t('stage.hand_lowered', { name: by?.name || t('moderated.someone') }));
      this.onHandLowered?.();
    });
    on('participant-joined', () => this.placeSpotlight());
    on('track', () => this.placeSpotlight());
    on('speaking', ({ id, speaking }) => { if (speaking) this.followSpeaker(id); });
    this.renderPip();
  }

  destroy() {
    this.listeners.abort();
    if (document.pictureInPictureElement) document.exitPictureInPicture().catch(() => {});
    this.els.lowerHands.hidden = true;
  }

  get isModerator() {
    return MODERATOR_ROLES.includes(this.self()?.role);
  }

  // The room's rules and spotlight, from 'joined' and 'room'.
  onRoom(room) {
    const stage = room?.stage;
    if (!stage) return;
    this.rules.attendees_publish = stage.attendees_publish !== false;
    this.rules.everyone_can_mute = !!stage.everyone_can_mute;
    if (Array.isArray(stage.hands)) this.queue = stage.hands;
    this.showSpotlight(stage.spotlight ?? null);
    this.render();
  }

  onHands(queue) {
    const added = queue.filter((id) => !this.queue.includes(id));
    this.queue = queue;
    if (this.isModerator && added.length) {
      const name = this.conn.participants.get(added[0])?.name;
      if (name) announce(t('stage.hand_queue', { name, n: queue.indexOf(added[0]) + 1 }));
    }
    this.render();
    this.onChange?.();
  }

  onSpotlight(id, by) {
    this.showSpotlight(id);
    if (id) {
      const name = id === this.self()?.id ? t('stage.you') : (this.conn.participants.get(id)?.name || '');
      toast(t('stage.spotlight_on', { name, by: by?.name || t('moderated.someone') }));
    }
    this.onChange?.();
  }

  onGranted({ right, on, by }) {
    const name = by?.name || t('moderated.someone');
    toast(t(`stage.${on ? 'granted' : 'revoked'}.${right}`, { name }), { timeout: 8000 });
    if (on && right === 'speak') this.onHandLowered?.(); // the server lowered it
    this.onChange?.();
  }

  // Raised hands first, in the order they went up (participants.js sorts by this).
  rank(p) {
    const at = this.queue.indexOf(p.id);
    return at < 0 ? Infinity : at;
  }

  // ---- the moderators' actions ------------------------------------------------------------

  // What a moderator may do about p, beyond muting and removing (meeting.js adds those).
  actionsFor(p) {
    const me = this.self();
    if (!this.isModerator || !me || p.id === me.id) return [];
    const actions = [];
    const moderates = MODERATOR_ROLES.includes(p.role);
    if (p.hand) actions.push('lower_hand');
    if (!moderates && !this.rules.attendees_publish) {
      const granted = p.granted || [];
      actions.push(granted.includes('speak') ? 'revoke_speak' : 'allow_speak');
      actions.push(granted.includes('present') ? 'revoke_present' : 'allow_present');
    }
    actions.push(this.spotlightId === p.id ? 'unspotlight' : 'spotlight');
    if (!moderates) actions.push('promote');
    else if (p.role === 'admin' && me.role === 'owner') actions.push('demote');
    return actions;
  }

  handles(action) {
    return action in STAGE_ACTIONS;
  }

  act(action, p) {
    const frames = {
      allow_speak: { type: 'grant', id: p.id, right: 'speak', on: true },
      revoke_speak: { type: 'grant', id: p.id, right: 'speak', on: false },
      allow_present: { type: 'grant', id: p.id, right: 'present', on: true },
      revoke_present: { type: 'grant', id: p.id, right: 'present', on: false },
      lower_hand: { type: 'lower_hand', id: p.id },
      spotlight: { type: 'spotlight', id: p.id },
      unspotlight: { type: 'spotlight', id: null },
      promote: { type: 'promote', id: p.id },
      demote: { type: 'demote', id: p.id },
    };
    return this.conn.moderatorFrame(frames[action]);
  }

  lowerAllHands() {
    if (this.conn.moderatorFrame({ type: 'lower_hand', all: true })) toast(t('stage.hands_lowered'));
  }

  async changeRule(rule) {
    const box = this.els.rules[rule];
    box.disabled = true;
    try {
      const room = await updateRoom(this.roomId, { [rule]: box.checked });
      this.rules[rule] = !!room[rule];
    } catch {
      toast(t('stage.rule_error'));
    } finally {
      box.disabled = false;
      this.render();
    }
  }

  // ---- the spotlight: that person's camera tile goes where presentations go -------------

  showSpotlight(id) {
    if (id === this.spotlightId) return this.placeSpotlight();
    const previous = this.grid.tiles.get(`${this.spotlightId}:camera`);
    if (previous) {
      previous.el.classList.remove('spotlight');
      if (previous.el.parentElement === this.grid.presentation) this.grid.grid.append(previous.el);
    }
    this.spotlightId = id;
    this.placeSpotlight();
  }

  placeSpotlight() {
    const tile = this.spotlightId && this.grid.tiles.get(`${this.spotlightId}:camera`);
    if (tile && tile.el.parentElement !== this.grid.presentation) {
      tile.el.classList.add('spotlight');
      this.grid.presentation.prepend(tile.el);
    }
    this.grid.afterChange();
  }

  // ---- picture-in-picture of the active speaker (Chromium and Safari) -------------------

  speakerVideo(id = this.grid.lastSpeaker) {
    const tiles = [...this.grid.tiles.values()].filter((tile) => tile.video && tile.id !== this.grid.selfId);
    const pick = tiles.find((tile) => tile.id === id && tile.target === 'camera')
      || tiles.find((tile) => tile.id === this.spotlightId && tile.target === 'camera')
      || tiles.find((tile) => tile.target === 'camera')
      || tiles[0];
    return pick?.video || null;
  }

  async togglePip() {
    if (document.pictureInPictureElement) {
      await document.exitPictureInPicture().catch(() => {});
      return;
    }
    const video = this.speakerVideo();
    if (!video) return toast(t('stage.pip_nobody'));
    try {
      await video.requestPictureInPicture();
    } catch {
      toast(t('stage.pip_error'));
    }
  }

  // While the floating window is open, it follows whoever speaks.
  followSpeaker(id) {
    if (!document.pictureInPictureElement || id === this.grid.selfId) return;
    const video = this.speakerVideo(id);
    if (video && video !== document.pictureInPictureElement) video.requestPictureInPicture().catch(() => {});
  }

  renderPip() {
    const open = !!document.pictureInPictureElement;
    const { pip } = this.els;
    pip.setAttribute('aria-pressed', String(open));
    const label = t(open ? 'stage.pip.stop' : 'stage.pip.start');
    pip.setAttribute('aria-label', label);
    pip.title = label;
  }

  // ---- rendering ---------------------------------------------------------------------------

  render() {
    const moderator = this.isModerator;
    this.els.lowerHands.hidden = !moderator;
    this.els.lowerHands.disabled = this.queue.length === 0;
    for (const rule of RULES) {
      const box = this.els.rules[rule];
      if (!box.disabled) box.checked = this.rules[rule];
    }
    this.renderPip();
  }
}

// The button of one stage action in the participants panel.
export function stageButton(action, p) {
  const [iconName, labelKey] = STAGE_ACTIONS[action];
  const label = t(labelKey, { name: p.name });
  return h(`button.icon-button.small.stage-${action}`, {
    type: 'button', 'aria-label': label, title: label, dataset: { action, participant: p.id },
  }, icon(iconName));
}
