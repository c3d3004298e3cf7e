// The video stage: one camera tile per person, screen shares shown large, remote audio,
// active speaker, reactions, each tile's connection quality, and the simulcast layer that
// fits each tile (within the cap downlink.js sets when our downlink cannot carry more).
import { debounce, h, hueFor, icon, initials } from './dom.js';
import { t } from './i18n.js';
import { applySpeaker } from './media.js';
import { personBadges } from './participants.js';

const TILE_ASPECT = 16 / 9;
const GAP_PX = 8;
const MIN_TILE_PX = 160;
const REACTION_MS = 4000;
const LAYER_DEBOUNCE_MS = 300;

export function qualityForWidth(width) {
  if (width < 320) return 'low';
  if (width < 800) return 'medium';
  return 'high';
}

const LAYER_ORDER = ['off', 'low', 'medium', 'high'];

// The layer a tile asks for: what fits its size, never above the cap; 'off' when the cap
// keeps video for only some tiles (video: 'all' | 'one' | 'none') and this is not one.
export function cappedLayer(fitted, cap, { chosen = true } = {}) {
  if (!cap) return fitted;
  if (cap.video === 'none' || (cap.video === 'one' && !chosen)) return 'off';
  const limit = LAYER_ORDER.indexOf(cap.maxLayer || 'high');
  return LAYER_ORDER[Math.min(LAYER_ORDER.indexOf(fitted), limit)];
}

// Columns that give the largest 16:9 tiles for n tiles in a width × height box.
export function bestFit(n, width, height, gap = GAP_PX) {
  let best = { cols: 1, rows: Math.max(n, 1), size: 0 };
  for (let cols = 1; cols <= Math.max(n, 1); cols += 1) {
    const rows = Math.ceil(n / cols);
    const w = (width - gap * (cols - 1)) / cols;
    const hgt = (height - gap * (rows - 1)) / rows;
    const size = Math.min(w, hgt * TILE_ASPECT);
    if (size > best.size) best = { cols, rows, size };
  }
  if (best.size < MIN_TILE_PX && n > 1) {
    const cols = Math.max(1, Math.floor((width + gap) / (MIN_TILE_PX + gap)));
    best = { cols, rows: Math.ceil(n / cols), size: Math.min(width, (width - gap * (cols - 1)) / cols) };
  }
  return best;
}

const keyOf = (id, target) => `${id}:${target}`;

export class Grid {
  constructor({ stage, grid, presentation, audioSink, onLayer, onAudioBlocked }) {
    Object.assign(this, { stage, grid, presentation, audioSink, onLayer, onAudioBlocked });
    this.tiles = new Map(); // "id:target" -> tile
    this.audios = new Map(); // mid -> <audio>
    this.people = new Map(); // id -> participant (what tiles show)
    this.selfId = null;
    this.sinkId = '';
    this.cap = null; // {maxLayer, video} from downlink.js; null: no cap
    this.lastSpeaker = null;
    this.layoutSoon = debounce(() => this.layout(), 30);
    this.fitSoon = debounce(() => this.fitLayers(), LAYER_DEBOUNCE_MS);
    this.observer = new ResizeObserver(() => {
      this.layoutSoon();
      this.fitSoon();
    });
    this.observer.observe(grid);
    this.observer.observe(presentation);
  }

  destroy() {
    this.observer.disconnect();
    this.layoutSoon.cancel();
    this.fitSoon.cancel();
    for (const tile of this.tiles.values()) clearVideo(tile.video);
    for (const audio of this.audios.values()) audio.srcObject = null;
    this.grid.replaceChildren();
    this.presentation.replaceChildren();
    this.audioSink.replaceChildren();
  }

  // ---- people ---------------------------------------------------------------------------

  setSelf(participant) {
    if (this.selfId && this.selfId !== participant.id) {
      // A fresh join after a long disconnection gives a new id: keep our tiles.
      for (const target of ['camera', 'screen']) this.rekey(this.selfId, participant.id, target);
      this.people.delete(this.selfId);
    }
    this.selfId = participant.id;
    this.upsert(participant);
  }

  rekey(oldId, newId, target) {
    const tile = this.tiles.get(keyOf(oldId, target));
    if (!tile) return;
    this.tiles.delete(keyOf(oldId, target));
    tile.id = newId;
    tile.el.dataset.tile = keyOf(newId, target);
    this.tiles.set(keyOf(newId, target), tile);
  }

  upsert(participant) {
    this.people.set(participant.id, participant);
    const tile = this.tiles.get(keyOf(participant.id, 'camera')) || this.createTile(participant.id, 'camera');
    this.renderTile(tile);
    const screen = this.tiles.get(keyOf(participant.id, 'screen'));
    if (screen) this.renderTile(screen);
  }

  remove(id) {
    for (const target of ['camera', 'screen']) this.removeTile(id, target);
    this.people.delete(id);
  }

  setSpeaking(id, speaking) {
    this.tiles.get(keyOf(id, 'camera'))?.el.classList.toggle('speaking', speaking);
    if (speaking && id !== this.selfId && id !== this.lastSpeaker) {
      this.lastSpeaker = id;
      if (this.cap?.video === 'one') this.fitSoon();
    }
  }

  // The connection quality shown on a person's camera tile: 'good' | 'fair' | 'poor' | null.
  // Not a live region: screen readers read it with the tile, and are not told each change.
  setQuality(id, level) {
    const tile = this.tiles.get(keyOf(id, 'camera'));
    if (!tile || tile.quality.dataset.level === (level || '')) return;
    tile.quality.dataset.level = level || '';
    tile.quality.hidden = !level;
    const label = level ? t(`quality.${level}`) : '';
    tile.quality.setAttribute('aria-label', label);
    tile.quality.title = label;
  }

  // Caps the layers asked for (downlink.js); null lifts the cap.
  setCap(cap) {
    this.cap = cap;
    this.fitLayers();
  }

  showReaction(id, emoji) {
    const tile = this.tiles.get(keyOf(id, 'camera'));
    if (!tile) return;
    const bubble = h('span.reaction-float', {}, emoji);
    bubble.style.setProperty('--drift', `${Math.round(Math.random() * 40 - 20)}px`);
    tile.reactions.append(bubble);
    setTimeout(() => bubble.remove(), REACTION_MS);
  }

  // ---- tiles ----------------------------------------------------------------------------

  createTile(id, target) {
    const avatar = h('div.tile-avatar', { 'aria-hidden': 'true' }, h('span'));
    const name = h('span.tile-name');
    const badges = h('span.tile-badges');
    const mic = h('span.tile-mic', { role: 'img' }, icon('mic-off'));
    const hand = h('span.tile-hand', { role: 'img' }, icon('hand'));
    const status = h('div.tile-status', { hidden: true });
    const quality = h('span.tile-quality', { role: 'img', hidden: true, dataset: { level: '' } },
      h('i', { 'aria-hidden': 'true' }), h('i', { 'aria-hidden': 'true' }), h('i', { 'aria-hidden': 'true' }));
    const reactions = h('div.tile-reactions', { 'aria-hidden': 'true' });
    const el = h(`div.tile.tile-${target}`, { role: 'group', dataset: { tile: keyOf(id, target) } },
      avatar, status, reactions, h('div.tile-label', {}, quality, hand, mic, name, badges));
    if (target !== 'camera') quality.remove();
    const tile = {
      id, target, el, avatar, name, badges, mic, hand, status, quality, reactions, video: null, mid: null, paused: false,
    };
    this.tiles.set(keyOf(id, target), tile);
    if (target === 'screen') this.presentation.append(el);
    else if (id === this.selfId) this.grid.prepend(el);
    else this.grid.append(el);
    this.observer.observe(el);
    this.afterChange();
    return tile;
  }

  removeTile(id, target) {
    const tile = this.tiles.get(keyOf(id, target));
    if (!tile) return;
    this.tiles.delete(keyOf(id, target));
    this.observer.unobserve(tile.el);
    clearVideo(tile.video);
    tile.el.remove();
    this.afterChange();
  }

  renderTile(tile) {
    const p = this.people.get(tile.id) || { id: tile.id, name: '' };
    const self = tile.id === this.selfId;
    const label = tile.target === 'screen'
      ? (self ? t('tile.you.presenting') : t('tile.presenting', { name: p.name }))
      : (self ? t('participants.you', { name: p.name }) : p.name);
    tile.name.textContent = label;
    const badges = tile.target === 'camera' ? personBadges(p) : [];
    tile.badges.replaceChildren(...badges);
    tile.el.setAttribute('aria-label', [label, ...badges.map((b) => b.textContent)].join(', '));
    tile.avatar.firstChild.textContent = initials(p.name);
    tile.avatar.style.setProperty('--hue', hueFor(tile.id));
    const isCamera = tile.target === 'camera';
    tile.mic.hidden = !isCamera || p.audio !== false;
    tile.mic.setAttribute('aria-label', t('tile.muted'));
    tile.hand.hidden = !isCamera || !p.hand;
    tile.hand.setAttribute('aria-label', t('tile.hand'));
    const showVideo = !!tile.video && !tile.paused && (!isCamera || p.video !== false);
    tile.el.classList.toggle('has-video', showVideo);
    tile.el.classList.toggle('hand-raised', isCamera && !!p.hand);
    const reconnecting = p.connection === 'reconnecting';
    tile.el.classList.toggle('reconnecting', reconnecting);
    tile.el.classList.toggle('video-paused', tile.paused);
    const status = reconnecting ? 'tile.reconnecting' : (tile.paused ? 'tile.video.paused' : null);
    tile.status.hidden = !status;
    tile.status.textContent = status ? t(status) : '';
    const level = tile.quality.dataset.level;
    if (level) tile.quality.setAttribute('aria-label', t(`quality.${level}`));
    if (level) tile.quality.title = t(`quality.${level}`);
  }

  renderAll() {
    for (const tile of this.tiles.values()) this.renderTile(tile);
  }

  // ---- media ----------------------------------------------------------------------------

  setLocalVideo(track) {
    const tile = this.tiles.get(keyOf(this.selfId, 'camera'));
    if (!tile) return;
    this.setVideo(tile, track, { local: 'camera' });
  }

  setLocalScreen(track) {
    if (!track) return this.removeTile(this.selfId, 'screen');
    const tile = this.tiles.get(keyOf(this.selfId, 'screen')) || this.createTile(this.selfId, 'screen');
    this.setVideo(tile, track, { local: 'screen' });
  }

  attachTrack({ mid, participant, target, media, track }) {
    if (media === 'audio') return this.attachAudio(mid, participant, target, track);
    const tile = this.tiles.get(keyOf(participant, target)) || this.createTile(participant, target);
    tile.mid = mid;
    tile.paused = false;
    this.setVideo(tile, track, { participant, target });
    this.fitSoon();
  }

  detachTrack({ mid, participant, target, media }) {
    if (media === 'audio') {
      const audio = this.audios.get(mid);
      if (audio) audio.srcObject = null;
      audio?.remove();
      this.audios.delete(mid);
      return;
    }
    const tile = this.tiles.get(keyOf(participant, target));
    if (!tile || tile.mid !== mid) return;
    if (target === 'screen') return this.removeTile(participant, target);
    tile.mid = null;
    tile.paused = false;
    this.setVideo(tile, null);
  }

  setVideo(tile, track, attributes = {}) {
    clearVideo(tile.video);
    tile.video = null;
    if (track) {
      // Muted and inline so autoplay policies never block it; sound plays via <audio>.
      const video = h('video', { autoplay: true, playsInline: true, muted: true });
      video.setAttribute('muted', '');
      video.setAttribute('playsinline', '');
      if (attributes.local) video.dataset.local = attributes.local;
      else Object.assign(video.dataset, { participant: attributes.participant, target: attributes.target });
      if (attributes.local === 'camera') video.classList.add('mirrored');
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => {});
      tile.el.prepend(video);
      tile.video = video;
    }
    this.renderTile(tile);
  }

  attachAudio(mid, participant, target, track) {
    this.audios.get(mid)?.remove();
    const audio = h('audio', { autoplay: true, dataset: { participant, target, mid } });
    audio.srcObject = new MediaStream([track]);
    this.audioSink.append(audio);
    this.audios.set(mid, audio);
    applySpeaker(audio, this.sinkId);
    audio.play().catch((err) => {
      if (err.name === 'NotAllowedError') this.onAudioBlocked?.();
    });
  }

  resumeAudio() {
    for (const audio of this.audios.values()) audio.play().catch(() => {});
  }

  setSpeaker(sinkId) {
    this.sinkId = sinkId || '';
    for (const audio of this.audios.values()) applySpeaker(audio, this.sinkId);
  }

  // ---- layout ---------------------------------------------------------------------------

  afterChange() {
    const presenting = this.presentation.children.length > 0;
    this.presentation.hidden = !presenting;
    this.stage.classList.toggle('presenting', presenting);
    this.presentation.dataset.count = String(this.presentation.children.length);
    this.grid.dataset.count = String(this.grid.children.length);
    this.layoutSoon();
    this.fitSoon();
  }

  layout() {
    for (const box of [this.grid, this.presentation]) {
      const n = box.children.length;
      if (!n || box.hidden) continue;
      const { cols, size } = bestFit(n, box.clientWidth, box.clientHeight);
      box.style.setProperty('--cols', String(cols));
      box.style.setProperty('--tile-width', `${Math.floor(size)}px`);
    }
  }

  // Ask each remote video for the simulcast layer its tile needs, within the cap.
  fitLayers() {
    const chosen = this.chosenVideo();
    for (const tile of this.tiles.values()) {
      if (!tile.mid) continue;
      const visible = !document.hidden && tile.el.isConnected && tile.el.offsetParent !== null;
      const fitted = visible ? qualityForWidth(tile.el.clientWidth) : 'low';
      const layer = cappedLayer(fitted, this.cap, { chosen: tile === chosen });
      const paused = layer === 'off';
      if (paused !== tile.paused) {
        tile.paused = paused;
        this.renderTile(tile);
      }
      this.onLayer?.(tile.mid, layer);
    }
  }

  // The one remote video kept when the cap allows only one: a screen share, else the last
  // person who spoke, else the first remote camera.
  chosenVideo() {
    const remote = [...this.tiles.values()].filter((tile) => tile.mid && tile.id !== this.selfId);
    return remote.find((tile) => tile.target === 'screen')
      || remote.find((tile) => tile.id === this.lastSpeaker)
      || remote[0] || null;
  }

  // How many remote videos are asked for now (telemetry).
  videoTiles() {
    return [...this.tiles.values()].filter((tile) => tile.mid && !tile.paused).length;
  }
}

function clearVideo(video) {
  if (!video) return;
  video.srcObject = null;
  video.remove();
}
