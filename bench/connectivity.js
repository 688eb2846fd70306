'use strict';
// Benchmark of the connectivity monitor (lib/connectivity/monitor.ts) against the design it replaces: a script that checks the
// target once a minute. Real timers, real probes (runProbe, HTTP HEAD) against a local HTTP server on 127.0.0.1 that
// the bench stops (connection refused) and starts again on the same port, over a fixed list of outages.
//
// Two monitors with DEFAULT_TIMING watch the same outages at the same time:
//   - "uploading": uploads are flowing, so the first failed upload at the start of an outage reports it
//     (monitor.report(false), as the connectivity node does for a non-permanent upload error) and the monitor probes
//     at once. Every outage is noticed, so every restore is measured: figures 6a-6d.
//   - "idle": nothing to upload, the monitor only has its own schedule (a probe every 30 s while online), so an
//     outage starts while it waits and short outages can pass unnoticed: figure 6e.
// The 60 s poll is not run: it is computed on the recorded timeline, with a seeded random phase per cycle.
//
// Nothing here fails on a number.
const http = require('http');
const path = require('path');
const h = require('./helpers');
const { portOf } = require('../test/support/net');

const { ConnectivityMonitor, DEFAULT_TIMING } = require('../dist/lib/connectivity/monitor.js');
const { runProbe } = require('../dist/lib/connectivity/probes.js');

/** Outage lengths, seconds: a fixed pseudo-random list between 3 and 12 s (mean 5.9 s, so 20 cycles take about 3 min). */
const OUTAGES_S = [4.2, 9.6, 3.4, 6.1, 11.5, 4.3, 3.2, 5.4, 8.2, 3.7, 7.3, 3.1, 4.9, 12.0, 3.4, 6.8, 3.6, 7.1, 4.0, 5.8];
/** Online time between outages, after both monitors are back online (or gave up waiting). */
const HOLD_MS = 1500;
const POLL_MS = 60_000;
const POLL_SEED = 20251126;

/** mulberry32: a small seeded PRNG, so that the simulated poll phases are the same on every run. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A local HTTP target that can be taken down (listening socket closed: connection refused) and brought back. */
class Target {
  constructor() {
    this.requests = 0;
    this.server = http.createServer((req, res) => {
      this.requests++;
      res.writeHead(204);
      res.end();
    });
    this.port = 0;
  }
  /** Resolves with the time (h.now()) it is listening again. */
  up() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        this.port = portOf(this.server);
        resolve(h.now());
      });
    });
  }
  /** Resolves with the time the listening socket is closed (new connections are refused from then on). */
  down() {
    return new Promise((resolve) => {
      this.server.close(() => resolve(h.now()));
      this.server.closeAllConnections();
    });
  }
}

/** A monitor with DEFAULT_TIMING and real probes, recording every probe attempt and state change (h.now() times). */
function recordedMonitor(spec) {
  const rec = { attempts: [], probes: [], changes: [] };
  const probeFn = (s, timeoutMs) => {
    rec.attempts.push(h.now());
    return runProbe(s, timeoutMs);
  };
  rec.monitor = new ConnectivityMonitor(
    spec,
    DEFAULT_TIMING,
    {
      change: (state) => rec.changes.push({ t: h.now(), online: state.online, reason: state.reason }),
      probed: (result) => rec.probes.push({ t: h.now(), ok: result.ok, reason: result.reason }),
    },
    Date.now,
    probeFn,
  );
  return rec;
}

async function waitFor(cond, maxMs) {
  const end = h.now() + maxMs;
  while (!cond() && h.now() < end) await h.sleep(20);
  return cond();
}

/** @typedef {{ t: number, online: boolean, reason: string }} Change a recorded state change */

/**
 * The first state change of `list` in [from, to) that `pred` accepts.
 * @param {Change[]} list
 * @param {number} from
 * @param {number} to
 * @param {(e: Change) => boolean} [pred]
 */
const firstIn = (list, from, to, pred = () => true) => list.find((e) => e.t >= from && e.t < to && pred(e));
const countIn = (times, from, to) => times.filter((t) => t >= from && t < to).length;

/** Probes a monitor with these timings makes in `seconds` of an outage it learns about at once (from the schedule). */
function scheduledProbes(timing, seconds) {
  let t = 0;
  let n = 1; // the probe the failed upload asks for
  let interval = timing.offlineMinMs;
  for (;;) {
    t += interval;
    if (t >= seconds * 1000) return n;
    n++;
    interval = Math.min(timing.offlineMaxMs, Math.round(interval * timing.growth));
  }
}

const s = (ms) => ms / 1000;
const fmtS = (ms) => `${h.fmtNum(s(ms), 1)} s`;

async function connectivity(ctx) {
  const outages = ctx.quick ? OUTAGES_S.slice(0, 6) : OUTAGES_S;
  const target = new Target();
  const t0 = await target.up();
  const spec = { kind: 'http', url: `http://127.0.0.1:${target.port}/`, method: 'HEAD' };
  const up = recordedMonitor(spec); // uploads flowing: told of each outage by a failed upload
  const idle = recordedMonitor(spec); // nothing to upload: its own schedule only
  const cycles = [];
  try {
    up.monitor.start();
    idle.monitor.start();
    if (!(await waitFor(() => up.monitor.current().online === true && idle.monitor.current().online === true, 10_000))) {
      throw new Error(`monitors not online against a listening server: ${up.monitor.current().reason} / ${idle.monitor.current().reason}`);
    }
    await h.sleep(HOLD_MS);
    for (let i = 0; i < outages.length; i++) {
      const lengthMs = outages[i] * 1000;
      // Out of budget: stop early (keeping a few cycles), so the remaining figures still run.
      if (i >= 5 && Date.now() + lengthMs + 8000 > ctx.deadline) {
        ctx.log(`  out of time budget after ${i} cycles`);
        break;
      }
      const idleBefore = idle.probes.at(-1);
      const start = await target.down();
      up.monitor.report(false, 'upload failed: connection refused');
      await h.sleep(Math.max(0, start + lengthMs - h.now()));
      const restore = await target.up();
      const back = await waitFor(() => up.monitor.current().online === true && idle.monitor.current().online !== false, 30_000);
      cycles.push({ start, restore, lengthMs, idleBefore, back });
      const on = firstIn(up.changes, restore, Infinity, (e) => e.online === true);
      ctx.log(
        `  cycle ${i + 1}/${outages.length}: outage ${fmtS(restore - start)}, uploading monitor online ${on ? `${fmtS(on.t - restore)} after the restore` : 'NOT AGAIN'}` +
          ` (${countIn(up.attempts, start, restore)} probes during the outage); idle monitor ${firstIn(idle.changes, start, restore, (e) => e.online === false) ? 'went offline' : 'did not notice'}`,
      );
      await h.sleep(HOLD_MS);
    }
  } finally {
    up.monitor.stop();
    idle.monitor.stop();
    await target.down();
  }
  if (cycles.length === 0) throw new Error('no outage cycle ran');

  // ---- ours, measured --------------------------------------------------------------------------------------------
  const ends = cycles.map((c, i) => (i + 1 < cycles.length ? cycles[i + 1].start : Infinity));
  const measure = (rec) =>
    cycles.map((c, i) => {
      const off = firstIn(rec.changes, c.start, ends[i], (e) => e.online === false);
      const on = off ? firstIn(rec.changes, c.restore, ends[i], (e) => e.online === true) : undefined;
      return {
        offlineMs: off ? off.t - c.start : null,
        restoreMs: on ? on.t - c.restore : null,
        probes: countIn(rec.attempts, c.start, c.restore),
        outageMs: c.restore - c.start,
      };
    });
  const U = measure(up);
  const I = measure(idle);
  const outageMsTotal = cycles.reduce((a, c) => a + (c.restore - c.start), 0);
  const restoreU = U.map((x) => x.restoreMs).filter((x) => x !== null);
  const offlineU = U.map((x) => x.offlineMs).filter((x) => x !== null);
  const probesPerHour = (list) => (list.reduce((a, x) => a + x.probes, 0) / outageMsTotal) * 3_600_000;

  // The idle monitor: when it went offline if it noticed; otherwise when it would have, had the outage lasted (its next
  // probe was already scheduled 30 s after its last one, plus the confirming probe offlineMinMs later).
  const idleOffline = cycles.map((c, i) => {
    if (I[i].offlineMs !== null) return { ms: I[i].offlineMs, seen: true };
    const last = c.idleBefore;
    if (!last || !last.ok) return { ms: null, seen: false };
    return { ms: last.t + DEFAULT_TIMING.onlineIntervalMs + DEFAULT_TIMING.offlineMinMs - c.start, seen: false };
  });
  const idleSeen = idleOffline.filter((x) => x.seen);
  const idleRestore = I.map((x) => x.restoreMs).filter((x) => x !== null);

  // Timer lateness of the uploading monitor while offline: each probe's start against the end of the previous probe
  // plus the interval the schedule asked for (1 s, 1.3 s, 1.69 s, ... after the probe the failed upload triggered).
  const late = [];
  for (const c of cycles) {
    const starts = up.attempts.filter((t) => t >= c.start && t < c.restore);
    const done = up.probes.filter((p) => p.t >= c.start && p.t < c.restore);
    let interval = DEFAULT_TIMING.offlineMinMs;
    for (let k = 1; k < starts.length && k - 1 < done.length; k++) {
      late.push(starts[k] - (done[k - 1].t + interval));
      interval = Math.min(DEFAULT_TIMING.offlineMaxMs, Math.round(interval * DEFAULT_TIMING.growth));
    }
  }

  // ---- the 60 s poll, computed on the same timeline ----------------------------------------------------------------
  // Ticks at t0 + phase + k * 60 s, a fresh seeded phase per cycle. It goes offline at the second failing tick (the same
  // 2-failure hysteresis as ours) and online at the first tick after the restore; it ignores failed uploads.
  const rand = prng(POLL_SEED);
  const nextTick = (phase, t) => t0 + phase + Math.ceil((t - t0 - phase) / POLL_MS) * POLL_MS;
  const poll = cycles.map((c) => {
    const phase = rand() * POLL_MS;
    const first = nextTick(phase, c.start);
    return {
      restoreMs: nextTick(phase, c.restore) - c.restore,
      offlineMs: first + POLL_MS - c.start, // had the outage lasted long enough
      seen2: first + POLL_MS < c.restore,
      offline1Ms: first - c.start,
      seen1: first < c.restore,
    };
  });
  const pollRestore = poll.map((p) => p.restoreMs);
  const pollOffline = poll.map((p) => p.offlineMs);

  // ---- rows --------------------------------------------------------------------------------------------------------
  const n = cycles.length;
  const lengths = cycles.map((c) => c.restore - c.start);
  const timeline = `${n} outages of ${fmtS(Math.min(...lengths))}-${fmtS(Math.max(...lengths))} (total ${h.fmtNum(s(outageMsTotal), 0)} s)`;
  const pollBase = `fixed 60 s poll, seeded random phase per cycle (seed ${POLL_SEED})`;
  const row = (id, figure, valueMs, baseMs, extra) => ({
    id, figure, value: s(valueMs), unit: 's', baseValue: s(baseMs), ratio: valueMs / baseMs, spread: null, target: '', ...extra,
  });
  const missed = n - restoreU.length;
  ctx.rows.push(
    row('6a', 'restore -> online event, median', h.median(restoreU), h.median(pollRestore), {
      baseline: `${pollBase}: next tick after the restore, U[0,60) s`,
      note: `uploading monitor, ${timeline}; range ${fmtS(Math.min(...restoreU))}-${fmtS(Math.max(...restoreU))}${missed ? `; ${missed} cycles without an online event` : ''}`,
      rounds: restoreU.map(s),
      baseRounds: pollRestore.map(s),
    }),
    row('6b', 'restore -> online event, worst', Math.max(...restoreU), Math.max(...pollRestore), {
      baseline: `${pollBase}: worst of ${n} cycles`,
      note: `the schedule's own gap at the worst point was ${fmtS(worstGap(cycles, up))}; timer lateness while offline median ${h.fmtNum(h.median(late), 0)} ms, worst ${h.fmtNum(Math.max(...late, 0), 0)} ms`,
    }),
    {
      id: '6c', figure: 'probe requests per hour while offline', value: probesPerHour(U), unit: 'probes/h',
      baseline: 'fixed 60 s poll: 60 probes/h', baseValue: 60, ratio: probesPerHour(U) / 60, spread: null, target: '',
      note: `uploading monitor, ${U.reduce((a, x) => a + x.probes, 0)} probe attempts in ${h.fmtNum(s(outageMsTotal), 0)} s of outage (idle monitor: ${h.fmtNum(probesPerHour(I), 0)}/h);` +
        ` outages this short never reach the 15 s cap: a 1 h outage costs ${scheduledProbes(DEFAULT_TIMING, 3600)} probes by the schedule, ${3_600_000 / DEFAULT_TIMING.offlineMaxMs}/h at the cap`,
    },
    row('6d', 'outage start -> offline event, median (uploads failing)', h.median(offlineU), h.median(pollOffline), {
      baseline: `${pollBase}: 2nd failing tick (same 2-failure hysteresis), had the outage lasted; ignores uploads`,
      note: `uploading monitor, ${offlineU.length}/${n} outages noticed; poll noticed ${poll.filter((p) => p.seen2).length}/${n} (needs >= 60 s of outage)`,
    }),
    row('6e', 'outage start -> offline event, median (idle, no uploads)', h.median(idleOffline.map((x) => x.ms)), h.median(pollOffline), {
      baseline: `${pollBase}: 2nd failing tick, had the outage lasted; 1 tick without hysteresis: median ${fmtS(h.median(poll.map((p) => p.offline1Ms)))}`,
      note: `idle monitor, had the outage lasted: measured where it noticed (${idleSeen.length}/${n}, median ${fmtS(h.median(idleSeen.map((x) => x.ms)))}),` +
        ` else its next scheduled probe + ${s(DEFAULT_TIMING.offlineMinMs)} s; poll noticed ${poll.filter((p) => p.seen2).length}/${n} (1-tick: ${poll.filter((p) => p.seen1).length}/${n});` +
        ` idle monitor's restore -> online median ${idleRestore.length ? fmtS(h.median(idleRestore)) : '-'} over ${idleRestore.length}`,
      display: `${h.fmtNum(s(h.median(idleOffline.map((x) => x.ms))), 1)} s (${idleSeen.length}/${n} seen)`,
    }),
  );
}

/** For the cycle with the slowest restore: the scheduled interval between the last failing probe and the first good one. */
function worstGap(cycles, rec) {
  let worst = null;
  for (const c of cycles) {
    const on = firstIn(rec.changes, c.restore, Infinity, (e) => e.online === true);
    if (!on) continue;
    if (!worst || on.t - c.restore > worst.delay) {
      const before = rec.probes.filter((p) => p.t < c.restore).at(-1);
      worst = { delay: on.t - c.restore, gap: before ? on.t - before.t : NaN };
    }
  }
  return worst ? worst.gap : NaN;
}

/** @type {import('./helpers').Figure[]} */
const FIGURES = [['6', 'connectivity: outage detection and restore', connectivity]];

module.exports = { FIGURES };
