// Debian's Firefox ESR driven over WebDriver BiDi (puppeteer-core), for Python tests.
//
// One JSON request a line on stdin, {"id", "method", "params"}; one JSON reply a line on
// stdout, {"id", "result"} or {"id", "error"}. The first line out is {"ready": version}.
// Methods: newPage, closePage, goto, evaluate (a function's source and one JSON argument;
// promises are awaited), click, type, setViewport, errors (the page's uncaught errors),
// close (Firefox, then the driver).
// Firefox gets a fake camera and microphone and no permission prompts, and never
// downloads anything (puppeteer-core brings no browser; PUPPETEER_SKIP_DOWNLOAD is set).

import { createInterface } from 'node:readline';
import puppeteer from 'puppeteer-core';

const PREFS = {
  'media.navigator.streams.fake': true,
  'media.navigator.permission.disabled': true,
  'media.autoplay.default': 0, // allowed: remote media plays without a click
  'media.autoplay.blocking_policy': 0,
  // Nothing in the test network namespace reaches Mozilla's services: don't try.
  'app.update.enabled': false,
  'browser.safebrowsing.malware.enabled': false,
  'browser.safebrowsing.phishing.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
};

const browser = await puppeteer.launch({
  browser: 'firefox',
  executablePath: process.env.FIREFOX || '/usr/bin/firefox-esr',
  // FIREFOX_HEADLESS=0: a window on $DISPLAY (an Xvfb screen), which it can share.
  headless: process.env.FIREFOX_HEADLESS !== '0',
  // FIREFOX_PREFS: more prefs for this Firefox, as JSON (visio.testing.firefox).
  extraPrefsFirefox: { ...PREFS, ...JSON.parse(process.env.FIREFOX_PREFS || '{}') },
  args: ['--width=1280', '--height=720'],
});
const pages = [];

const methods = {
  async newPage() {
    // Each page in a context of its own: its own cookies, as another person's browser.
    const context = await browser.createBrowserContext();
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (error) => page.errors.push(`${page.url()}: ${error.message || error}`));
    await page.setViewport({ width: 1280, height: 720 });
    pages.push(page);
    return pages.length - 1;
  },
  async closePage({ page }) {
    await pages[page].browserContext().close();
  },
  async goto({ page, url }) {
    await pages[page].goto(url, { waitUntil: 'load' });
  },
  async evaluate({ page, fn, arg }) {
    return pages[page].evaluate(`(${fn})(${JSON.stringify(arg ?? null)})`);
  },
  async click({ page, selector }) {
    await pages[page].click(selector);
  },
  async type({ page, selector, text }) {
    const input = await pages[page].$(selector);
    await input.click({ count: 3 });
    await input.type(text);
  },
  async setViewport({ page, width, height }) {
    await pages[page].setViewport({ width, height });
  },
  async errors({ page }) {
    return pages[page].errors;
  },
};

const reply = (message) => process.stdout.write(`${JSON.stringify(message)}\n`);
reply({ ready: await browser.version() });

const pending = new Set();
for await (const line of createInterface({ input: process.stdin })) {
  const { id, method, params } = JSON.parse(line);
  if (method === 'close') break;
  // Requests run as they come (two pages may wait at once); each has its own reply.
  const done = (async () => {
    try {
      if (!Object.hasOwn(methods, method)) throw new Error(`unknown method ${method}`);
      reply({ id, result: (await methods[method](params || {})) ?? null });
    } catch (error) {
      reply({ id, error: String(error?.message || error) });
    }
  })();
  pending.add(done);
  done.finally(() => pending.delete(done));
}
await Promise.allSettled([...pending]);
await browser.close();
