// What the meeting does with the call's quality (quality.js): the indicator on each tile
// and on our own, video stepped down when our downlink cannot carry it (downlink.js) with
// a notice saying so, and the summary sent to the server every TELEMETRY_MS.
import { QualityMonitor, SteadyLevel, TelemetryWindow, TELEMETRY_MS } from './quality.js';
import { DownlinkGovernor } from './downlink.js';
import { t } from './i18n.js';
import { announce } from './notify.js';

const LAYER_RANK = ['off', 'low', 'medium', 'high'];
const RESTORED_MS = 6000;
// What the notice says at each step (0: nothing, or that video is back).
const NOTICES = [null, 'quality.reduced', 'quality.reduced', 'quality.reduced.one', 'quality.reduced.none'];

export class CallQuality {
  constructor({ conn, grid, notice }) {
    this.conn = conn;
    this.grid = grid;
    this.notice = notice; // the visible notice; screen readers hear each change once
    this.noticeKey = null;
    this.noticeTimer = null;
    this.governor = new DownlinkGovernor({ onStep: (step, cap, previous) => this.stepped(step, cap, previous) });
    this.monitor = new QualityMonitor(conn);
    this.levels = new Map(); // participant id -> SteadyLevel
    this.telemetry = new TelemetryWindow();
    this.sentAt = performance.now();
    this.last = null; // the last sample (tests and the console read it)
    this.onSample = (ev) => this.update(ev.detail);
    this.monitor.addEventListener('sample', this.onSample);
  }

  start() {
    this.monitor.start();
  }

  stop() {
    this.monitor.stop();
    this.monitor.removeEventListener('sample', this.onSample);
    clearTimeout(this.noticeTimer);
    this.showNotice(null);
  }

  stepped(step, cap, previous) {
    this.grid.setCap(cap);
    if (step > 0) this.showNotice(NOTICES[step]);
    else if (previous > 0) {
      this.showNotice('quality.restored');
      clearTimeout(this.noticeTimer);
      this.noticeTimer = setTimeout(() => this.showNotice(null), RESTORED_MS);
    }
  }

  showNotice(key) {
    if (key !== 'quality.restored') clearTimeout(this.noticeTimer);
    if (!this.notice || key === this.noticeKey) return;
    this.noticeKey = key;
    this.notice.hidden = !key;
    this.notice.dataset.key = key || '';
    this.notice.textContent = key ? t(key) : '';
    if (key) announce(t(key));
  }

  // The language changed.
  render() {
    if (this.notice && this.noticeKey) this.notice.textContent = t(this.noticeKey);
  }

  update(sample) {
    this.last = sample;
    const selfId = this.grid.selfId;
    const shown = new Set();
    for (const [id, level] of sample.people) {
      this.grid.setQuality(id, this.steady(id, level));
      shown.add(id);
    }
    if (selfId) {
      this.grid.setQuality(selfId, this.steady(selfId, sample.level));
      shown.add(selfId);
    }
    for (const id of [...this.levels.keys()]) {
      if (shown.has(id)) continue;
      this.levels.delete(id); // nothing received from them now: nothing to say
      this.grid.setQuality(id, null);
    }
    this.governor.update(sample.down);
    this.telemetry.add(sample, {
      layer: this.bestLayer(), videoTiles: this.grid.videoTiles(), step: this.governor.step,
    });
    if (performance.now() - this.sentAt >= TELEMETRY_MS) this.flush();
  }

  steady(id, level) {
    if (!this.levels.has(id)) this.levels.set(id, new SteadyLevel());
    return this.levels.get(id).update(level);
  }

  // The best layer we ask for among the videos we receive; null without any.
  bestLayer() {
    let best = -1;
    for (const [mid, layer] of this.conn.layers) {
      if (this.conn.subscriber?.active.has(mid)) best = Math.max(best, LAYER_RANK.indexOf(layer));
    }
    return best < 0 ? null : LAYER_RANK[best];
  }

  flush() {
    const frame = this.telemetry.frame();
    this.sentAt = performance.now();
    this.telemetry.reset();
    if (frame) this.conn.sendQuality(frame);
  }
}
