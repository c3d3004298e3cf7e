// Camera backgrounds: MediaPipe's selfie segmentation (served by Visio under /vendor/, never
// a CDN) cuts the person out of each camera frame; a canvas draws them over a blurred copy of
// the camera or over a picture, and the canvas' stream is what the page shows and publishes.
// Where segmentation cannot run, the raw camera is used and the reason is kept.
import { readStorage, writeStorage } from './dom.js';

const VENDOR = '/vendor/@mediapipe/selfie_segmentation/';
// Pictures shipped in /static/img/backgrounds/<id>.svg.
export const PICTURES = ['sky', 'office', 'shelves', 'plain'];
export const STORAGE = { choice: 'visio.background', custom: 'visio.background.custom' };
// Processing is bounded: at most this many frames a second, whatever the camera gives.
export const FPS = 15;
// The model's own input size (landscape model): segmenting a larger image costs more for nothing.
const MASK_SIZE = { width: 256, height: 144 };
const MAX_WIDTH = 1280;
// One's own picture is kept in localStorage as a JPEG data URL of at most this size.
const CUSTOM_SIZE = { width: 1280, height: 720 };
export const CUSTOM_MAX_CHARS = 1_000_000;
const CUSTOM_MAX_FILE_BYTES = 20 * 1024 * 1024;
const LOAD_TIMEOUT_MS = 30_000;
const FIRST_FRAME_TIMEOUT_MS = 10_000;

export class BackgroundError extends Error {
  constructor(code) {
    super(code);
    this.code = code; // i18n: background.error.<code>
  }
}

// Why segmentation cannot run here ('wasm', 'webgl', 'canvas'), or null when it may.
export function unsupportedReason() {
  if (typeof WebAssembly !== 'object') return 'wasm';
  const canvas = document.createElement('canvas');
  if (typeof canvas.captureStream !== 'function') return 'canvas';
  if (!(canvas.getContext('webgl2') || canvas.getContext('webgl'))) return 'webgl';
  return null;
}

export function isValidChoice(choice) {
  return choice === 'none' || choice === 'blur' || choice === 'custom'
    || PICTURES.some((id) => choice === `picture:${id}`);
}

export function pictureUrl(id) {
  return `/static/img/backgrounds/${id}.svg`;
}

export function customPicture() {
  return readStorage(STORAGE.custom);
}

// ---- the segmenter: one for the page, loaded on first use ----------------------------------

let segmenterLoad = null;
let onSegmented = null; // the compositor's drawing, called with the results of each send()

function loadSegmenter() {
  segmenterLoad ??= withTimeout(createSegmenter(), LOAD_TIMEOUT_MS).catch((err) => {
    console.warn('Background segmentation unavailable:', err);
    throw new BackgroundError('load');
  });
  return segmenterLoad;
}

async function createSegmenter() {
  await loadScript(`${VENDOR}selfie_segmentation.js`);
  const segmenter = new window.SelfieSegmentation({ locateFile: (file) => VENDOR + file });
  segmenter.setOptions({ modelSelection: 1, selfieMode: false });
  // The mask is only valid during the callback: the compositor draws there.
  segmenter.onResults((results) => onSegmented?.(results));
  await segmenter.initialize();
  return segmenter;
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(script);
  });
}

function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// A timer that a hidden tab does not slow to once a second (timers in workers are not
// throttled like the page's), so a meeting in a background tab keeps its frame rate.
let clock = null;
const ticks = new Map();
let nextTick = 0;

function sleep(ms) {
  if (!clock && typeof Worker === 'function') {
    try {
      clock = new Worker('/static/js/backgrounds-clock.js');
      clock.onmessage = ({ data }) => { ticks.get(data)?.(); ticks.delete(data); };
    } catch {
      clock = false;
    }
  }
  if (!clock) return new Promise((resolve) => setTimeout(resolve, ms));
  const id = ++nextTick;
  return new Promise((resolve) => {
    ticks.set(id, resolve);
    clock.postMessage({ id, ms });
  });
}

// ---- scenes: what goes behind the person ----------------------------------------------------

const pictures = new Map(); // url -> Promise<HTMLImageElement>

function loadPicture(url) {
  if (!pictures.has(url)) {
    const image = new Image();
    image.decoding = 'async';
    image.src = url;
    pictures.set(url, image.decode().then(() => image, (err) => {
      pictures.delete(url);
      throw err;
    }));
  }
  return pictures.get(url);
}

async function sceneFor(choice) {
  if (choice === 'blur') return { blur: true };
  const url = choice === 'custom' ? customPicture() : pictureUrl(choice.slice('picture:'.length));
  if (!url) throw new BackgroundError('missing');
  return { picture: await loadPicture(url) };
}

// ---- the compositor: camera in, processed track out ------------------------------------------

const canRequestFrame = typeof CanvasCaptureMediaStreamTrack !== 'undefined'
  && 'requestFrame' in CanvasCaptureMediaStreamTrack.prototype;
const canFilter = typeof CanvasRenderingContext2D !== 'undefined'
  && 'filter' in CanvasRenderingContext2D.prototype;

class Compositor {
  constructor(camera, segmenter, scene) {
    this.camera = camera;
    this.segmenter = segmenter;
    this.scene = scene;
    this.stopped = false;
    this.video = Object.assign(document.createElement('video'), { muted: true, playsInline: true });
    this.video.srcObject = new MediaStream([camera]);
    this.canvas = document.createElement('canvas');
    this.context = this.canvas.getContext('2d');
    this.small = Object.assign(document.createElement('canvas'), MASK_SIZE);
    this.smallContext = this.small.getContext('2d');
    this.blurred = document.createElement('canvas');
    this.blurredContext = this.blurred.getContext('2d');
    this.frames = 0;
    // A frame is sent for each one drawn (Chromium's timed capture sent about every other).
    this.track = this.canvas.captureStream(canRequestFrame ? 0 : FPS).getVideoTracks()[0];
    this.track.contentHint = 'motion';
  }

  // Resolves once the first frame is drawn.
  async start() {
    await withTimeout(this.video.play(), FIRST_FRAME_TIMEOUT_MS);
    await withTimeout(this.frame(), FIRST_FRAME_TIMEOUT_MS);
    this.loop();
  }

  async loop() {
    while (!this.stopped) {
      const started = performance.now();
      try {
        await this.frame();
      } catch (err) {
        console.warn('Background frame failed:', err);
      }
      await sleep(Math.max(5, 1000 / FPS - (performance.now() - started)));
    }
  }

  async frame() {
    const { video } = this;
    if (this.stopped || video.readyState < 2 || !video.videoWidth) return;
    this.resize(video.videoWidth, video.videoHeight);
    this.smallContext.drawImage(video, 0, 0, MASK_SIZE.width, MASK_SIZE.height);
    onSegmented = (results) => this.draw(results.segmentationMask);
    try {
      await this.segmenter.send({ image: this.small });
    } finally {
      onSegmented = null;
    }
  }

  resize(width, height) {
    const scale = Math.min(1, MAX_WIDTH / width);
    const w = Math.round(width * scale);
    const h = Math.round(height * scale);
    if (this.canvas.width === w && this.canvas.height === h) return;
    Object.assign(this.canvas, { width: w, height: h });
    Object.assign(this.blurred, { width: Math.ceil(w / 8), height: Math.ceil(h / 8) });
  }

  // Person from the camera where the mask says so, the scene everywhere else.
  draw(mask) {
    if (this.stopped) return;
    const { context: ctx, video } = this;
    const { width, height } = this.canvas;
    ctx.globalCompositeOperation = 'copy';
    ctx.drawImage(mask, 0, 0, width, height);
    ctx.globalCompositeOperation = 'source-in';
    ctx.drawImage(video, 0, 0, width, height);
    ctx.globalCompositeOperation = 'destination-over';
    if (this.scene.blur) this.drawBlurred(width, height);
    else drawCover(ctx, this.scene.picture, width, height);
    ctx.globalCompositeOperation = 'source-over';
    if (canRequestFrame) this.track.requestFrame();
    this.frames += 1;
  }

  // Blurring an eighth-size copy, then scaling it up, costs a fraction of a full-size blur.
  drawBlurred(width, height) {
    const { blurred, blurredContext: bctx } = this;
    bctx.filter = 'none';
    bctx.drawImage(this.video, 0, 0, blurred.width, blurred.height); // edges stay opaque
    if (canFilter) {
      bctx.filter = 'blur(2px)';
      bctx.drawImage(blurred, 0, 0);
    }
    this.context.imageSmoothingQuality = 'high';
    this.context.drawImage(blurred, 0, 0, width, height);
  }

  stop() {
    this.stopped = true;
    this.track.stop();
    this.video.srcObject = null;
  }
}

// Draw the picture to fill the canvas, cropping what overflows (CSS object-fit: cover).
function drawCover(ctx, picture, width, height) {
  const pw = picture.naturalWidth || picture.width;
  const ph = picture.naturalHeight || picture.height;
  const scale = Math.max(width / pw, height / ph);
  const sw = width / scale;
  const sh = height / scale;
  ctx.drawImage(picture, (pw - sw) / 2, (ph - sh) / 2, sw, sh, 0, 0, width, height);
}

// ---- the effect: what the page uses ---------------------------------------------------------

// Events: 'change' whenever `output` (the track to show and publish) or the state changes.
export class BackgroundEffect extends EventTarget {
  constructor() {
    super();
    const saved = readStorage(STORAGE.choice, 'none');
    this.choice = isValidChoice(saved) ? saved : 'none';
    this.unavailable = unsupportedReason(); // or 'load' once loading failed
    this.loading = false;
    this.camera = null;
    this.compositor = null;
    this.queue = Promise.resolve();
  }

  // The track to show and publish: the processed one when it runs, else the camera itself.
  get output() {
    const { compositor } = this;
    return compositor && compositor.camera === this.camera ? compositor.track : this.camera;
  }

  // Process this camera track (null: none). Returns what to publish now; 'change' tells later.
  use(camera) {
    if (camera !== this.camera) {
      this.camera = camera;
      this.update();
    }
    return this.output;
  }

  async choose(choice) {
    if (!isValidChoice(choice)) return;
    this.choice = choice;
    writeStorage(STORAGE.choice, choice);
    await this.update();
  }

  // Keep one's own picture (resized to a JPEG data URL) and use it.
  async setCustomPicture(file) {
    const dataUrl = await shrinkPicture(file);
    try {
      localStorage.setItem(STORAGE.custom, dataUrl);
    } catch {
      throw new BackgroundError('storage');
    }
    pictures.delete(dataUrl);
    await this.choose('custom');
  }

  // Release the compositor (not the camera, which belongs to whoever passed it).
  stop() {
    this.camera = null;
    this.setCompositor(null);
    this.update();
  }

  // Changes are applied one after the other, each seeing the latest wishes.
  update() {
    this.queue = this.queue.then(() => this.apply()).catch((err) => console.warn('Background:', err));
    return this.queue;
  }

  async apply() {
    const camera = this.camera;
    if (!camera || this.choice === 'none' || this.unavailable) return this.setCompositor(null);
    let scene;
    try {
      scene = await sceneFor(this.choice);
    } catch {
      this.choice = 'none'; // a picture that went missing: back to the plain camera
      writeStorage(STORAGE.choice, 'none');
      return this.setCompositor(null);
    }
    if (this.compositor?.camera === camera) {
      this.compositor.scene = scene;
      return this.emit();
    }
    this.loading = true;
    this.emit();
    try {
      const segmenter = await loadSegmenter();
      const compositor = new Compositor(camera, segmenter, scene);
      try {
        await compositor.start();
      } catch (err) {
        compositor.stop();
        throw err;
      }
      if (this.camera !== camera || this.choice === 'none') compositor.stop();
      else this.setCompositor(compositor);
    } catch (err) {
      if (err instanceof BackgroundError) this.unavailable = err.code;
      else console.warn('Background could not start:', err);
      this.setCompositor(null);
    } finally {
      this.loading = false;
      this.emit();
    }
  }

  // The new track is announced before the old one stops, so that a sender never sends nothing.
  setCompositor(compositor) {
    if (compositor === this.compositor) return;
    const old = this.compositor;
    this.compositor = compositor;
    this.emit();
    old?.stop();
  }

  emit() {
    this.dispatchEvent(new Event('change'));
  }

  // For tests and benchmarks: frames drawn by the running compositor.
  get framesDrawn() {
    return this.compositor?.frames ?? 0;
  }
}

async function shrinkPicture(file) {
  if (!file || !/^image\//.test(file.type)) throw new BackgroundError('type');
  if (file.size > CUSTOM_MAX_FILE_BYTES) throw new BackgroundError('size');
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new BackgroundError('type');
  }
  const scale = Math.min(1, Math.max(CUSTOM_SIZE.width / bitmap.width, CUSTOM_SIZE.height / bitmap.height));
  const canvas = Object.assign(document.createElement('canvas'), {
    width: Math.max(1, Math.round(bitmap.width * scale)), height: Math.max(1, Math.round(bitmap.height * scale)),
  });
  canvas.getContext('2d').drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  for (const quality of [0.85, 0.7, 0.5]) {
    const dataUrl = canvas.toDataURL('image/jpeg', quality);
    if (dataUrl.length <= CUSTOM_MAX_CHARS) return dataUrl;
  }
  throw new BackgroundError('size');
}
