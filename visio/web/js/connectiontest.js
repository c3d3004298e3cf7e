// The connection test of the pre-join screen: runs the checks (connectivity.js) and the
// devices' own, shows each result, and says in plain words what to tell IT.
import { blockedEndpoints, checkMedia, checkServer, MEDIA_TRANSPORTS, result, verdict } from './connectivity.js';
import { h } from './dom.js';
import { setText, t } from './i18n.js';
import { LevelMeter } from './media.js';

const CHECKS = ['server', ...MEDIA_TRANSPORTS, 'camera', 'microphone'];
const DEVICE_LISTEN_MS = 3_000; // the microphone is listened to this long, and longer
const SILENCE_LISTEN_MS = 6_000; // while nothing was heard
const CAMERA_WAIT_MS = 3_000;
const HEARD_LEVEL = 0.15; // the meter's scale (media.js): about -45 dBFS, more than hiss

const $ = (id) => document.getElementById(id);

export class ConnectionTest {
  // devices(): {tracks: {audio, video}, errors: {audio, video}, micOn, video: <video>}
  constructor(devices) {
    this.devices = devices;
    this.running = false;
    this.last = null; // the results shown, to say them again in another language
    this.els = {
      run: $('connection-test-run'), list: $('connection-test-results'),
      summary: $('connection-test-summary'), advice: $('connection-test-advice'),
    };
    this.listeners = new AbortController();
    const signal = this.listeners.signal;
    this.els.run.addEventListener('click', () => this.run(), { signal });
    window.addEventListener('visio:language', () => this.render(), { signal });
  }

  dispose() {
    this.listeners.abort();
    this.meter?.stop();
  }

  async run() {
    if (this.running) return;
    this.running = true;
    this.els.run.setAttribute('aria-disabled', 'true');
    this.last = { results: Object.fromEntries(CHECKS.map((c) => [c, result('running')])), advice: null };
    this.render();
    const microphone = this.listen();
    const camera = this.checkCamera().then((r) => this.update('camera', r));
    const { result: server, config } = await checkServer();
    this.update('server', server);
    const { results: media, urls } = config ? await checkMedia(config.ice_servers)
      : { results: Object.fromEntries(MEDIA_TRANSPORTS.map((m) => [m, result('skip')])), urls: [] };
    for (const transport of MEDIA_TRANSPORTS) this.update(transport, media[transport]);
    await Promise.all([camera, microphone]);
    this.last.verdict = verdict(this.last.results);
    this.last.advice = advice(this.last.verdict, this.last.results, urls, config);
    this.running = false;
    this.els.run.removeAttribute('aria-disabled');
    this.render();
  }

  update(check, value) {
    if (!this.last || this.listeners.signal.aborted) return;
    this.last.results[check] = value;
    this.renderList();
  }

  async checkCamera() {
    const { tracks, errors, video } = this.devices();
    if (!tracks.video) return errors.video ? result('fail', deviceError('camera', errors.video)) : result('skip', 'prejoin.camera.off');
    const deadline = Date.now() + CAMERA_WAIT_MS;
    while (!(video.videoWidth > 0) && Date.now() < deadline) await sleep(100);
    return tracks.video.readyState === 'live' && video.videoWidth > 0 ? result('ok') : result('fail', 'nettest.reason.frames');
  }

  // The microphone's level, shown while the network checks run; heard or not.
  async listen() {
    const { tracks, errors, micOn } = this.devices();
    if (!tracks.audio) {
      return this.update('microphone', errors.audio ? result('fail', deviceError('mic', errors.audio)) : result('skip'));
    }
    if (!micOn) return this.update('microphone', result('skip', 'nettest.reason.muted'));
    let loudest = 0;
    this.meter?.stop();
    this.meter = new LevelMeter(tracks.audio, (level) => {
      loudest = Math.max(loudest, level);
      const meter = this.els.list.querySelector('[data-check="microphone"] [role="meter"]');
      meter?.style.setProperty('--level', level.toFixed(3));
      meter?.setAttribute('aria-valuenow', String(Math.round(level * 100)));
    });
    const start = Date.now();
    const listening = () => Date.now() - start < (loudest >= HEARD_LEVEL ? DEVICE_LISTEN_MS : SILENCE_LISTEN_MS);
    while (listening()) await sleep(100);
    const measured = this.meter.running;
    this.meter.stop();
    this.meter = null;
    if (loudest >= HEARD_LEVEL) return this.update('microphone', result('ok'));
    this.update('microphone', measured ? result('warn', 'nettest.reason.silent') : result('skip', 'nettest.reason.unmeasured'));
  }

  render() {
    if (!this.last) return;
    this.renderList();
    const { summary, advice } = this.els;
    setText(this.els.run, this.running ? 'nettest.running.button' : 'nettest.again');
    setText(summary, this.running ? 'nettest.running' : `nettest.verdict.${this.last.verdict}`);
    summary.dataset.verdict = this.running ? '' : this.last.verdict;
    advice.replaceChildren();
    const lines = this.last.advice;
    if (!lines?.length) return;
    advice.append(
      h('p', {}, t('nettest.it')),
      h('ul', {}, lines.map(([key, vars]) => h('li', {}, t(key, vars)))),
    );
  }

  renderList() {
    const list = this.els.list;
    list.hidden = false;
    list.replaceChildren(...CHECKS.map((check) => this.item(check, this.last.results[check])));
  }

  item(check, { status, reason }) {
    const li = h('li', { dataset: { check, status } },
      h('span.check-mark', { 'aria-hidden': 'true' }, MARKS[status]),
      h('span.check-name', {}, t(`nettest.check.${check}`)),
      h('span.check-status', {}, t(`nettest.status.${status}`)),
      reason && status !== 'running' ? h('span.check-detail', {}, t(reason)) : null);
    if (check === 'microphone' && status === 'running') {
      li.append(h('span.level-meter.inline', {
        role: 'meter', 'aria-valuemin': '0', 'aria-valuemax': '100', 'aria-valuenow': '0',
        'aria-label': t('prejoin.level'),
      }, h('span.level-bar')));
    }
    return li;
  }
}

const MARKS = { ok: '✓', fail: '✗', warn: '!', skip: '–', running: '…' };

// [[i18n key, values]]: what IT should open, for what failed.
function advice(kind, results, urls, config) {
  const lines = [];
  const origin = window.location.origin;
  if (kind === 'no_server') {
    const reason = results.server.reason;
    if (reason === 'nettest.reason.websocket') lines.push(['nettest.it.websocket', { origin }]);
    else if (reason === 'nettest.reason.http') lines.push(['nettest.it.http', { origin }]);
    else lines.push(['nettest.it.media_down', {}]);
    return lines;
  }
  if (kind === 'ready') return lines;
  for (const { transport, host, port } of blockedEndpoints(urls, results)) {
    lines.push([`nettest.it.${transport}`, { host, port }]);
  }
  if (config?.media_ports) lines.push(['nettest.it.media', { ports: config.media_ports.replace('-', '–') }]);
  return lines;
}

// The pre-join screen's words for a device that could not be opened.
function deviceError(device, kind) {
  return `prejoin.${device}.${kind === 'error' ? 'busy' : kind}`;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
