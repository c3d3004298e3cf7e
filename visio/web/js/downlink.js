// Stepping received video down when our downlink cannot carry it, and back up when it can.
//
// The congestion signal is what the browser measures as a receiver (quality.js, every 2 s):
// packet loss on everything we receive, the round trip growing above the lowest seen (a
// queue filling before a bottleneck), and audio concealment or video freezes when some loss
// comes with them (alone, they also come from a starved CPU, which fewer layers would not
// cure as surely as a smaller load on the machine). Janus 1.1 gives
// a subscriber no bandwidth estimate of its own (REMB and TWCC feedback from a subscriber
// reach the publisher, not a per-subscriber layer choice), and browsers no longer expose
// their receive estimate, so the receiver's own view is the one signal available everywhere.
//
// Steps, each a cap on what grid.js asks Janus for (the `layer` frame):
//   0 nothing capped; 1 medium layers at most; 2 low layers; 3 one video (a screen share, else
//   the active speaker); 4 audio only.
// Down one step after DOWN_AFTER congested samples in a row, or at once on a SEVERE sample (a
// link that carries a fraction of what comes: waiting would leave the sound broken for
// seconds), straight to low layers at least; up one step after `upAfter` clean
// samples. An up-step that brings congestion back within PROBE_SAMPLES was too much for the
// link: the next attempt waits twice as long (up to MAX_UP_AFTER), so a link at its limit is
// probed less and less often; one that holds resets the wait.

export const STEPS = [
  null,
  { maxLayer: 'medium', video: 'all' },
  { maxLayer: 'low', video: 'all' },
  { maxLayer: 'low', video: 'one' },
  { maxLayer: 'low', video: 'none' },
];

// A sample is congested past any of these (concealment and freezes only with SOME_LOSS_PCT
// lost as well), clean under all of CLEAN.
export const CONGESTED = { lossPct: 5, concealedPct: 5, freezePct: 10, rttRiseMs: 250 };
export const CLEAN = { lossPct: 2, concealedPct: 2, freezePct: 2, rttRiseMs: 100 };
export const SEVERE = { lossPct: 20, rttRiseMs: 1000 };
export const SEVERE_STEP = 2; // low layers: what a severely congested sample goes to at least
export const SOME_LOSS_PCT = 1;
export const DOWN_AFTER = 2;
export const UP_AFTER = 4;
export const MAX_UP_AFTER = 15;
export const PROBE_SAMPLES = 5;

const over = (value, limit) => typeof value === 'number' && value >= limit;

function congested(down, baseRtt) {
  const lossy = over(down.lossPct, SOME_LOSS_PCT);
  return over(down.lossPct, CONGESTED.lossPct)
    || (lossy && over(down.concealedPct, CONGESTED.concealedPct))
    || (lossy && over(down.freezePct, CONGESTED.freezePct))
    || (baseRtt !== null && over(down.rttMs, baseRtt + CONGESTED.rttRiseMs));
}

function severe(down, baseRtt) {
  return over(down.lossPct, SEVERE.lossPct)
    || (baseRtt !== null && over(down.rttMs, baseRtt + SEVERE.rttRiseMs));
}

function clean(down, baseRtt) {
  return !(over(down.lossPct, CLEAN.lossPct)
    || over(down.concealedPct, CLEAN.concealedPct)
    || over(down.freezePct, CLEAN.freezePct)
    || (baseRtt !== null && over(down.rttMs, baseRtt + CLEAN.rttRiseMs)));
}

export class DownlinkGovernor {
  constructor({ onStep } = {}) {
    this.onStep = onStep; // (step, cap, previous step)
    this.step = 0;
    this.congested = 0;
    this.clean = 0;
    this.upAfter = UP_AFTER;
    this.sinceUp = null; // samples since the last up-step, while it is on probation
    this.baseRtt = null;
    this.silent = false; // the last sample received nothing
  }

  get cap() {
    return STEPS[this.step];
  }

  // One downlink summary (quality.js: sample.down); returns the step now in force.
  update(down) {
    if (!down || !(down.received > 0)) {
      this.silent = true; // nothing received: nothing to judge
      return this.step;
    }
    // What was lost while nothing came (a dropped link) is counted once the flow is back:
    // that burst is no sign of a link too weak for what it carries.
    const afterSilence = this.silent;
    this.silent = false;
    if (typeof down.rttMs === 'number') this.baseRtt = Math.min(this.baseRtt ?? down.rttMs, down.rttMs);
    if (this.sinceUp !== null) this.sinceUp += 1;
    if (!afterSilence && severe(down, this.baseRtt) && this.step < STEPS.length - 1) {
      this.down(Math.max(this.step + 1, SEVERE_STEP));
    } else if (congested(down, this.baseRtt)) {
      this.clean = 0;
      this.congested += 1;
      if (this.congested >= DOWN_AFTER && this.step < STEPS.length - 1) this.down();
    } else if (clean(down, this.baseRtt)) {
      this.congested = 0;
      this.clean += 1;
      if (this.sinceUp !== null && this.sinceUp >= PROBE_SAMPLES) {
        this.sinceUp = null; // the last step up held
        this.upAfter = UP_AFTER;
      }
      if (this.clean >= this.upAfter && this.step > 0) this.up();
    } else {
      this.congested = 0;
      this.clean = 0;
    }
    return this.step;
  }

  down(step = this.step + 1) {
    if (this.sinceUp !== null && this.sinceUp < PROBE_SAMPLES) {
      this.upAfter = Math.min(this.upAfter * 2, MAX_UP_AFTER); // that probe failed
    }
    this.sinceUp = null;
    this.set(step);
  }

  up() {
    this.sinceUp = 0;
    this.set(this.step - 1);
  }

  set(step) {
    const previous = this.step;
    this.step = step;
    this.congested = 0;
    this.clean = 0;
    this.onStep?.(step, STEPS[step], previous);
  }
}
