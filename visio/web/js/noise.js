// Noise suppression: the microphone goes through RNNoise (noise-worklet.js) in an
// AudioContext at 48 kHz, and the page publishes the denoised track in its place:
//   microphone track → MediaStreamSource → AudioWorklet "rnnoise" → MediaStreamDestination
// Muting still disables the microphone track itself: the worklet then denoises silence.
import { readStorage, writeStorage } from './dom.js';

const STORAGE_KEY = 'visio.noise';
const SAMPLE_RATE = 48000; // RNNoise's only rate
const WORKLET_URL = '/static/js/noise-worklet.js';
const READY_TIMEOUT_MS = 10_000; // the worklet compiles 1.4 MB of WebAssembly first

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

export class NoiseSuppressor {
  constructor() {
    this.graph = null; // {context, node, track} while on
    this.failure = noiseSuppressionUnsupported(); // an i18n key once it cannot work here
  }

  get available() {
    return !this.failure;
  }

  // The track to publish for `microphone`: denoised when `on` and possible, else itself.
  // The previous graph stops only once the new one runs, so that a switch is seamless.
  async apply(microphone, on) {
    let graph = null;
    if (microphone && on && !this.failure) {
      try {
        graph = await build(microphone);
      } catch (err) {
        console.warn('visio: noise suppression unavailable:', err);
        this.failure = 'noise.unsupported.error';
      }
    }
    this.close();
    this.graph = graph;
    return graph?.track || microphone;
  }

  close() {
    if (!this.graph) return;
    stop(this.graph);
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
    await context.resume();
    graph.track = destination.stream.getAudioTracks()[0];
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
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('noise worklet: no answer')), READY_TIMEOUT_MS);
    node.port.onmessage = ({ data }) => {
      if (data !== 'ready') return;
      clearTimeout(timer);
      resolve();
    };
    node.onprocessorerror = (event) => {
      clearTimeout(timer);
      reject(new Error(`noise worklet: ${event.message || 'processor error'}`));
    };
  });
}
