// Noise suppression: the microphone goes through RNNoise (noise-worklet.js) in an
// AudioContext at 48 kHz, and the page publishes the denoised track in its place:
//   microphone track → MediaStreamSource → AudioWorklet "rnnoise" → MediaStreamDestination
// Muting still disables the microphone track itself: the worklet then denoises silence.
import { readStorage, writeStorage } from './dom.js';
import { t } from './i18n.js';

const STORAGE_KEY = 'visio.noise';
const SAMPLE_RATE = 48000; // RNNoise's only rate
const WORKLET_URL = '/static/js/noise-worklet.js';
const READY_TIMEOUT_MS = 10_000; // the worklet compiles 1.4 MB of WebAssembly first
// Web Audio runs only with a sound output (and, before any click, maybe not at all): the
// microphone is then published as it is rather than waited on.
const RUNNING_TIMEOUT_MS = 3_000;

// On unless the person turned it off.
export function noiseSuppressionChosen() {
  return readStorage(STORAGE_KEY, 'on') !== 'off';
}

export function rememberNoiseSuppression(on) {
  writeStorage(STORAGE_KEY, on ? 'on' : 'off');
}

// Why this browser cannot suppress noise (an i18n key), or null when it can.
export function noiseSuppressionUnsupported() {
  if (typeof AudioWorkletNode !== 'function' || !window.AudioContext) return 'noise.unsupported.worklet';
  if (typeof WebAssembly !== 'object') return 'noise.unsupported.wasm';
  return null;
}

// Why it does not run, in a sentence: 'Noise suppression: not available in this browser…'.
export function unavailableText(failure) {
  return t('noise.unavailable', { reason: t(failure) });
}

// What is published of the microphone. The meeting publishes the microphone itself at
// once, then tells this object about it: the denoised track replaces it once its graph
// runs (a second or so), through `publish(track)`. Changes are applied one at a time, the
// latest state winning, and a previous graph stops only once its successor is published.
export class NoiseSuppressor {
  constructor({ publish }) {
    this.publish = publish;
    this.microphone = null;
    this.on = false;
    this.graph = null; // {context, node, track, microphone} while denoising
    this.failure = noiseSuppressionUnsupported(); // an i18n key once it cannot work here
    this.closed = false;
    this.queue = Promise.resolve();
  }

  get available() {
    return !this.failure;
  }

  // Resolves once what is asked for is published.
  update({ microphone = this.microphone, on = this.on }) {
    this.microphone = microphone;
    this.on = on;
    this.queue = this.queue.then(() => this.apply()).catch((err) => console.warn('visio: noise:', err));
    return this.queue;
  }

  async apply() {
    const want = this.on && !!this.microphone && !this.failure;
    if (this.closed || (want ? this.graph?.microphone === this.microphone : !this.graph)) return;
    let graph = null;
    if (want) {
      try {
        graph = await build(this.microphone);
      } catch (err) {
        console.warn('visio: noise suppression unavailable:', err);
        this.failure = 'noise.unsupported.error';
      }
    }
    if (this.closed) return graph && stop(graph);
    const previous = this.graph;
    this.graph = graph;
    await this.publish(graph?.track || this.microphone);
    if (previous) stop(previous);
  }

  close() {
    this.closed = true;
    if (this.graph) stop(this.graph);
    this.graph = null;
  }
}

async function build(microphone) {
  const graph = { context: new AudioContext({ sampleRate: SAMPLE_RATE, latencyHint: 'interactive' }) };
  try {
    const { context } = graph;
    await context.audioWorklet.addModule(WORKLET_URL);
    const source = context.createMediaStreamSource(new MediaStream([microphone]));
    graph.node = new AudioWorkletNode(context, 'rnnoise', {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
      channelCount: 1, channelCountMode: 'explicit',
    });
    const ready = workletReady(graph.node);
    const destination = context.createMediaStreamDestination();
    destination.channelCount = 1;
    source.connect(graph.node).connect(destination);
    await ready;
    await within(context.resume(), RUNNING_TIMEOUT_MS, 'the audio context does not run');
    graph.track = destination.stream.getAudioTracks()[0];
    graph.microphone = microphone;
    return graph;
  } catch (err) {
    stop(graph);
    throw err;
  }
}

function stop({ context, node, track }) {
  node?.port.postMessage('stop');
  node?.disconnect();
  track?.stop();
  context.close().catch(() => {});
}

// The processor says 'ready' once RNNoise is compiled and its state made; a WebAssembly
// refused by the page's CSP, or any other failure there, is a processorerror instead.
function workletReady(node) {
  const ready = new Promise((resolve, reject) => {
    node.port.onmessage = ({ data }) => {
      if (data === 'ready') resolve();
    };
    node.onprocessorerror = (event) => reject(new Error(`noise worklet: ${event.message || 'processor error'}`));
  });
  return within(ready, READY_TIMEOUT_MS, 'the noise worklet does not answer');
}

function within(promise, ms, why) {
  let timer;
  const late = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(why)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
