// The AudioWorklet side of noise suppression (noise.js builds the graph): RNNoise, compiled
// to WebAssembly, denoises the microphone in 10 ms frames on the audio rendering thread.
//
// rnnoise-sync.js is the build of @jitsi/rnnoise-wasm made for worklets: the WebAssembly
// is inlined and compiled synchronously, because a worklet can neither fetch nor wait.
import createRNNWasmModuleSync from '/vendor/@jitsi/rnnoise-wasm/dist/rnnoise-sync.js';

const FRAME = 480; // RNNoise's frame: 10 ms at 48 kHz
const PCM_SCALE = 32768; // RNNoise works on floats in the 16-bit range
// Output runs one frame behind the input: with 128-sample quanta, a frame is complete
// only every 3.75 quanta, and the output must never run dry meanwhile.
const LATENCY = FRAME;
const RING = FRAME * 4;

class RnnoiseProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.wasm = createRNNWasmModuleSync();
    this.state = this.wasm._rnnoise_create();
    this.frameBytes = FRAME * Float32Array.BYTES_PER_ELEMENT;
    this.inPtr = this.wasm._malloc(this.frameBytes);
    this.outPtr = this.wasm._malloc(this.frameBytes);
    this.pending = new Float32Array(FRAME); // input not yet a whole frame
    this.pendingLength = 0;
    this.ring = new Float32Array(RING); // denoised samples waiting to be played out
    this.readAt = 0;
    this.writeAt = LATENCY;
    this.alive = true;
    this.port.onmessage = ({ data }) => {
      if (data === 'stop') this.stop();
    };
    this.port.postMessage('ready');
  }

  process(inputs, outputs) {
    if (!this.alive) return false;
    const input = inputs[0]?.[0]; // mono: a microphone's first channel
    const output = outputs[0][0];
    for (let i = 0; i < output.length; i++) {
      this.pending[this.pendingLength++] = input ? input[i] * PCM_SCALE : 0;
      if (this.pendingLength === FRAME) this.denoiseFrame();
      output[i] = this.ring[this.readAt];
      this.readAt = (this.readAt + 1) % RING;
    }
    return true;
  }

  denoiseFrame() {
    const heap = this.wasm.HEAPF32; // read each time: the memory may have grown
    heap.set(this.pending, this.inPtr >> 2);
    this.wasm._rnnoise_process_frame(this.state, this.outPtr, this.inPtr);
    const denoised = heap.subarray(this.outPtr >> 2, (this.outPtr >> 2) + FRAME);
    for (let i = 0; i < FRAME; i++) {
      this.ring[this.writeAt] = denoised[i] / PCM_SCALE;
      this.writeAt = (this.writeAt + 1) % RING;
    }
    this.pendingLength = 0;
  }

  stop() {
    if (!this.alive) return;
    this.alive = false;
    this.wasm._rnnoise_destroy(this.state);
    this.wasm._free(this.inPtr);
    this.wasm._free(this.outPtr);
  }
}

registerProcessor('rnnoise', RnnoiseProcessor);
