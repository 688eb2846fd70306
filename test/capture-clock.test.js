'use strict';
// Clocks that lie after boot: captures taken while the wall clock is not known to be right keep the monotonic clock's
// reading and the boot; once the clock is right their time and key are corrected (lib/message/clock.ts), across a
// reboot they keep their time, flagged, and no key ever carries a 1970 date. The clock is a source injected into lib:
// the tests move it forward, backward and from 1970 as NTP would.
const assert = require('assert');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { Capturer } = require('../dist/lib/capture/still');
const { CaptureJournal } = require('../dist/lib/capture/journal');
const { TestPatternSource } = require('../dist/lib/capture/sources/test-pattern');
const clockLib = require('../dist/lib/message/clock');

const { needsClockCorrection, CaptureTimes, PLAUSIBLE_AFTER_MS } = clockLib;
/** correctCapture, its verdict read without narrowing (the tests assert its kind). @returns {any} */
const correctCapture = (msg, reading, opts) => clockLib.correctCapture(msg, reading, opts);
/** CaptureTimes.settle, its message read as the tests expect it. @returns {Promise<any>} */
const settleWith = (times, msg) => times.settle(msg);
const { SystemClock } = require('../dist/lib/capture/system-clock');
const { renderKey } = require('../dist/lib/message/object-key');
const { readUplink } = require('../dist/lib/message/uplink');
const { tmpDir, rmrf } = require('./support/tmp');
const { portOf } = require('./support/net');

const never = new AbortController().signal;
const TEMPLATE = '{camera}/{date}_{time}_{width}_{height}.{ext}';
const TRUE_BOOT = Date.UTC(2026, 2, 4, 5, 0, 0); // the real time at which the device booted (monotonic 0)

/**
 * A device's clocks as a test drives them: the monotonic clock counts from boot, the wall clock is whatever the
 * device believes (offset from the truth), and `synced` is what the sync probe would say.
 */
class FakeClock {
  constructor({ wallAtBoot, synced = false, bootId = 'boot-1' }) {
    this.mono = 1000;
    this.wallAtBoot = wallAtBoot;
    this.synced = synced;
    this.bootId = bootId;
  }
  advance(ms) {
    this.mono += ms;
  }
  /** NTP sets the clock: the wall clock now tells the truth. */
  sync() {
    this.wallAtBoot = TRUE_BOOT;
    this.synced = true;
  }
  trueTime(mono = this.mono) {
    return TRUE_BOOT + mono;
  }
  async read() {
    return { wallMs: this.wallAtBoot + this.mono, monoMs: this.mono, bootId: this.bootId, synced: this.synced, source: this.synced ? 'test-ntp' : 'test' };
  }
}

describe('clock: correcting captures taken before the clock was right', function () {
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  function capturer(clock, camera = 'gate') {
    const c = new Capturer(new TestPatternSource({ camera, width: 64, height: 48 }), {
      imagesFolder: path.join(dir, 'images'),
      nameTemplate: TEMPLATE,
      camera,
      minFreeBytes: 0,
      maxBytes: 1e6,
    });
    c.clock = clock;
    return c;
  }
  const asMsg = (r) => ({ topic: 't', uplink: { ...r } });
  /** The key a capture taken at `ms` gets from a clock that is right. */
  const keyAt = (ms, ext = 'png') => renderKey(TEMPLATE, { camera: 'gate', capturedAt: new Date(ms).toISOString(), width: 64, height: 48, ext });

  it('a capture taken while synchronized says so and needs nothing', async function () {
    const clock = new FakeClock({ wallAtBoot: TRUE_BOOT, synced: true });
    const r = await capturer(clock).capture(never);
    assert.strictEqual(r.clockSynced, true);
    assert.strictEqual(r.capturedMono, undefined);
    assert.strictEqual(needsClockCorrection(asMsg(r)), false);
    assert.deepStrictEqual(correctCapture(asMsg(r), await clock.read()), { kind: 'as-is' });
    assert.strictEqual(r.key, keyAt(clock.trueTime()));
  });

  it('from 1970: the capture keeps its monotonic time, and once NTP sets the clock its time and key are the true ones', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 }); // no RTC: the clock starts at 1970
    clock.advance(42_250);
    const r = await capturer(clock).capture(never);
    const takenAt = clock.trueTime();
    assert.strictEqual(r.clockSynced, false);
    assert.ok(r.capturedAt.startsWith('1970-01-01'), r.capturedAt);
    assert.ok(r.key.includes('1970-01-01'), 'the file on disk is named by the clock it was taken with');
    assert.strictEqual(r.capturedMono, clock.mono);
    assert.strictEqual(r.bootId, 'boot-1');
    assert.strictEqual(r.keyTemplate, TEMPLATE);
    assert.ok(fs.existsSync(r.file));

    // Still not synchronized: wait.
    clock.advance(5000);
    const waiting = correctCapture(asMsg(r), await clock.read());
    assert.strictEqual(waiting.kind, 'wait');

    // NTP steps the clock forward by 56 years, an hour later.
    clock.advance(3600_000);
    clock.sync();
    const v = correctCapture(asMsg(r), await clock.read());
    assert.strictEqual(v.kind, 'settled');
    const u = v.msg.uplink;
    assert.strictEqual(u.capturedAt, new Date(takenAt).toISOString());
    assert.strictEqual(u.key, keyAt(takenAt));
    assert.ok(!u.key.includes('1970'));
    assert.strictEqual(u.clockCorrection.state, 'corrected');
    assert.strictEqual(u.clockCorrection.from, r.capturedAt);
    assert.strictEqual(u.clockCorrection.fromKey, r.key);
    assert.strictEqual(u.clockCorrection.byS, (takenAt - Date.parse(r.capturedAt)) / 1000);
    assert.strictEqual(u.file, r.file, 'the file stays where it is: only what is uploaded changes');
    assert.match(v.text, /time corrected from 1970-01-01T00:00:43.250Z to 2026-03-04T05:00:43.250Z/);
    // The message given is not changed, and a settled one needs nothing more.
    assert.strictEqual(r.capturedAt.startsWith('1970'), true);
    assert.strictEqual(needsClockCorrection(v.msg), false);
    assert.strictEqual(readUplink(v.msg).clockCorrection.state, 'corrected');
  });

  it('forward: a clock that started at the last shutdown (fake-hwclock) is corrected by the offset NTP brings', async function () {
    const lastShutdown = TRUE_BOOT - 9 * 24 * 3600_000; // powered off nine days
    const clock = new FakeClock({ wallAtBoot: lastShutdown });
    clock.advance(120_000);
    const r = await capturer(clock).capture(never);
    const takenAt = clock.trueTime();
    clock.advance(30_000);
    clock.sync();
    const v = correctCapture(asMsg(r), await clock.read());
    assert.strictEqual(v.msg.uplink.capturedAt, new Date(takenAt).toISOString());
    assert.strictEqual(v.msg.uplink.key, keyAt(takenAt));
    assert.strictEqual(v.correction.byS, 9 * 24 * 3600);
  });

  it('backward: a clock ahead of the truth is set back, and the capture moves back with it', async function () {
    const clock = new FakeClock({ wallAtBoot: TRUE_BOOT + 3 * 3600_000 }); // a clock set three hours ahead
    clock.advance(60_000);
    const r = await capturer(clock).capture(never);
    const takenAt = clock.trueTime();
    clock.advance(1000);
    clock.sync();
    const v = correctCapture(asMsg(r), await clock.read());
    assert.strictEqual(v.msg.uplink.capturedAt, new Date(takenAt).toISOString());
    assert.strictEqual(v.correction.byS, -3 * 3600);
    assert.strictEqual(v.msg.uplink.key, keyAt(takenAt));
  });

  it('two captures whose names collided keep apart after the correction (name_1)', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 });
    const c = capturer(clock);
    const a = await c.capture(never);
    const b = await c.capture(never); // same monotonic instant: the second file is name_1
    assert.ok(b.key.endsWith('_1.png'), b.key);
    clock.sync();
    const now = await clock.read();
    const ka = correctCapture(asMsg(a), now).msg.uplink.key;
    const kb = correctCapture(asMsg(b), now).msg.uplink.key;
    assert.strictEqual(ka, keyAt(clock.trueTime(a.capturedMono)));
    assert.strictEqual(kb, ka.replace(/\.png$/, '_1.png'));
  });

  it('across a reboot the correction is impossible: the time is kept and flagged, and a 1970 one stays out of the key', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 });
    clock.advance(5000);
    const r = await capturer(clock).capture(never);
    const rebooted = new FakeClock({ wallAtBoot: TRUE_BOOT + 86400_000, synced: true, bootId: 'boot-2' });
    const v = correctCapture({ uplink: { ...r, item: { id: 17 } } }, await rebooted.read());
    assert.strictEqual(v.kind, 'settled');
    assert.strictEqual(v.correction.state, 'rebooted');
    assert.strictEqual(v.msg.uplink.capturedAt, r.capturedAt, 'keeps its time');
    assert.ok(!v.msg.uplink.key.includes('1970'), v.msg.uplink.key);
    assert.strictEqual(v.msg.uplink.key, 'gate/undated_17_64_48.png');
    assert.match(v.text, /taken before the last reboot/);

    // A plausible time (fake-hwclock's) is kept in the key as it is, flagged.
    const hw = new FakeClock({ wallAtBoot: TRUE_BOOT - 86400_000 });
    const r2 = await capturer(hw).capture(never);
    const v2 = correctCapture({ uplink: r2 }, await rebooted.read());
    assert.strictEqual(v2.correction.state, 'rebooted');
    assert.strictEqual(v2.msg.uplink.key, r2.key);
  });

  it('still unsynchronized when the wait is over: flagged, and undated in the key when the time is 1970', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 });
    const r = await capturer(clock).capture(never);
    const v = correctCapture({ uplink: r }, await clock.read(), { giveUp: true });
    assert.strictEqual(v.correction.state, 'unsynced');
    assert.ok(v.msg.uplink.key.startsWith('gate/undated_'), v.msg.uplink.key);
    assert.ok(Date.parse(v.msg.uplink.capturedAt) < PLAUSIBLE_AFTER_MS);
  });

  it('a recovered capture carries what corrects it: the journal keeps the clock facts', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 });
    const events = { warn() {}, log() {} };
    const c = capturer(clock);
    const journal = await CaptureJournal.open(path.join(dir, 'images'), 'cap', events);
    c.journal = journal;
    const r = await c.capture(never);
    const other = await c.capture(never);
    await journal.queued(other.journal.entry); // a queue has confirmed this node's captures once
    await journal.close();
    const again = await CaptureJournal.open(path.join(dir, 'images'), 'cap', events);
    const [rec] = again.takeRecovered();
    await again.close();
    assert.strictEqual(rec.result.key, r.key);
    assert.strictEqual(rec.result.clockSynced, false);
    assert.strictEqual(rec.result.capturedMono, r.capturedMono);
    assert.strictEqual(rec.result.bootId, 'boot-1');
    clock.sync();
    const v = correctCapture({ uplink: rec.result }, await clock.read());
    assert.strictEqual(v.msg.uplink.key, keyAt(clock.trueTime(r.capturedMono)));
  });

  it('a key a user set that is not the template\'s is kept when the time is corrected', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 });
    const r = await capturer(clock).capture(never);
    clock.sync();
    const v = correctCapture({ uplink: { ...r, key: 'my/own-key.png' } }, await clock.read());
    assert.strictEqual(v.msg.uplink.key, 'my/own-key.png');
    assert.strictEqual(v.msg.uplink.capturedAt, new Date(clock.trueTime(r.capturedMono)).toISOString());
  });
});

describe('clock: what the uploader calls before it makes a key (CaptureTimes)', function () {
  const unsyncedMsg = (clock) => ({
    uplink: { camera: 'gate', width: 64, height: 48, capturedAt: new Date(clock.wallAtBoot + clock.mono).toISOString(), key: 'gate/1970-01-01_00-00-01_64_48.png', clockSynced: false, capturedMono: clock.mono, bootId: clock.bootId, keyTemplate: TEMPLATE },
  });

  it('waits for the clock, polling, and corrects once it is right', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 });
    const msg = unsyncedMsg(clock);
    let polls = 0;
    let t = 0;
    const times = new CaptureTimes(clock, {
      waitMs: 60_000,
      mono: () => t,
      sleep: async (ms) => {
        t += ms;
        if (++polls === 3) clock.sync();
      },
    });
    const { msg: out, log } = await settleWith(times, msg);
    assert.strictEqual(polls, 3);
    assert.strictEqual(out.uplink.clockCorrection.state, 'corrected');
    assert.ok(out.uplink.key.startsWith('gate/2026-03-04_05-00-01'), out.uplink.key);
    assert.match(log, /time corrected/);
  });

  it('asks the target for its Date while the clock is not right, and trusts it', async function () {
    const server = http.createServer((req, res) => {
      res.writeHead(403, { date: new Date(TRUE_BOOT + 10_000).toUTCString() });
      res.end();
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', () => r(undefined)));
    try {
      let mono = 11_000;
      const sys = new SystemClock({ wall: () => mono, mono: () => mono, bootId: () => 'boot-1', syncedFile: '/nonexistent/x', run: async () => { throw Object.assign(new Error('no'), { code: 'ENOENT' }); } });
      const before = await sys.read();
      assert.strictEqual(before.synced, false);
      assert.strictEqual(before.source, 'implausible');
      const msg = { uplink: { camera: 'gate', width: 64, height: 48, capturedAt: new Date(1000).toISOString(), key: 'gate/1970-01-01_00-00-01_64_48.png', clockSynced: false, capturedMono: 1000, bootId: 'boot-1', keyTemplate: TEMPLATE } };
      let slept = 0;
      const times = new CaptureTimes(sys, { trustedUrl: `http://127.0.0.1:${portOf(server)}/bucket`, sleep: async () => void slept++ });
      const { msg: out } = await settleWith(times, msg);
      assert.strictEqual(slept, 0, 'no wait: the Date answered');
      assert.strictEqual(out.uplink.clockCorrection.source, 'http-date');
      // The server said TRUE_BOOT + 10 s (to the second) at monotonic ~11 s: the capture at monotonic 1 s was ~TRUE_BOOT.
      const at = Date.parse(out.uplink.capturedAt);
      assert.ok(Math.abs(at - TRUE_BOOT) <= 1500, out.uplink.capturedAt);
      assert.ok(out.uplink.key.startsWith('gate/2026-03-04_'), out.uplink.key);
      const after = await sys.read();
      assert.strictEqual(after.synced, true);
      assert.strictEqual(after.source, 'http-date');
    } finally {
      server.close();
    }
  });

  it('gives up waiting after the wait: flagged, undated, and the next item does not wait again', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 });
    let t = 0;
    let slept = 0;
    const times = new CaptureTimes(clock, { waitMs: 10_000, pollMs: 2000, mono: () => t, sleep: async (ms) => { t += ms; slept++; } });
    const first = await settleWith(times, { uplink: { ...unsyncedMsg(clock).uplink, sha256: 'ab'.repeat(32) } });
    assert.strictEqual(slept, 5);
    assert.strictEqual(first.msg.uplink.clockCorrection.state, 'unsynced');
    assert.ok(first.msg.uplink.key.startsWith('gate/undated_abababab'), first.msg.uplink.key);
    const second = await settleWith(times, unsyncedMsg(clock));
    assert.strictEqual(slept, 5, 'no second wait');
    assert.strictEqual(second.msg.uplink.clockCorrection.state, 'unsynced');
  });

  it('a wait while the target does not answer does not count: the next upload waits again', async function () {
    /** @type {any} */
    const clock = new FakeClock({ wallAtBoot: 0 });
    let asked = 0;
    clock.learnFromHttpDate = async () => (asked++, 'unreachable');
    let t = 0;
    let slept = 0;
    const times = new CaptureTimes(clock, { trustedUrl: 'http://target', waitMs: 10_000, pollMs: 2000, askEveryMs: 4000, mono: () => t, sleep: async (ms) => { t += ms; slept++; } });
    const first = await settleWith(times, unsyncedMsg(clock));
    assert.strictEqual(first.msg.uplink.clockCorrection.state, 'unsynced', 'never a 1970 key, even then');
    assert.ok(!first.msg.uplink.key.includes('1970'), first.msg.uplink.key);
    assert.strictEqual(asked, 3, 'asked every 4 s of the 10 s');
    assert.strictEqual(slept, 5);
    await settleWith(times, unsyncedMsg(clock));
    assert.strictEqual(slept, 10, 'waited again');
  });

  it('passes everything else through untouched', async function () {
    const clock = new FakeClock({ wallAtBoot: 0 });
    const times = new CaptureTimes(clock, { sleep: async () => assert.fail('no wait') });
    for (const msg of [{ payload: 'reading' }, { uplink: { file: '/x', clockSynced: true } }, { uplink: { clockSynced: false } }]) {
      assert.strictEqual((await settleWith(times, msg)).msg, msg);
    }
  });
});

describe('clock: whether this machine\'s clock is synchronized (SystemClock)', function () {
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));
  const NOW = TRUE_BOOT;

  /**
   * @param {{ files?: { dir?: boolean, synced?: boolean }, commands?: Record<string, string | Error>, wall?: () => number, mono?: () => number }} [o]
   */
  function sys({ files = {}, commands = {}, wall = () => NOW, mono = () => 5000 } = {}) {
    const calls = [];
    const syncedFile = path.join(dir, 'timesync', 'synchronized');
    if (files.dir) fs.mkdirSync(path.dirname(syncedFile), { recursive: true });
    if (files.synced) fs.writeFileSync(syncedFile, '');
    const run = async (cmd, args) => {
      calls.push(cmd);
      const answer = commands[cmd];
      if (answer === undefined) throw Object.assign(new Error(`spawn ${cmd} ENOENT`), { code: 'ENOENT' });
      if (answer instanceof Error) throw answer;
      return answer;
    };
    return { clock: new SystemClock({ syncedFile, run, wall, mono, bootId: () => 'b' }), calls, syncedFile };
  }

  it('timesyncd\'s flag file says synchronized without running anything', async function () {
    const { clock, calls } = sys({ files: { dir: true, synced: true } });
    const r = await clock.read();
    assert.deepStrictEqual([r.synced, r.source], [true, 'timesyncd']);
    assert.deepStrictEqual(calls, []);
  });

  it('timesyncd running and not synchronized: not synchronized, even at a plausible time', async function () {
    const { clock } = sys({ files: { dir: true } });
    const r = await clock.read();
    assert.deepStrictEqual([r.synced, r.source], [false, 'timesyncd']);
  });

  it('timedatectl: the kernel\'s flag, yes or no', async function () {
    assert.deepStrictEqual(await sys({ commands: { timedatectl: 'yes\n' } }).clock.read().then((r) => [r.synced, r.source]), [true, 'timedatectl']);
    assert.deepStrictEqual(await sys({ commands: { timedatectl: 'no\n' } }).clock.read().then((r) => [r.synced, r.source]), [false, 'timedatectl']);
  });

  it('chrony: "Leap status : Not synchronised" until it has a source', async function () {
    const tracking = (leap) => `Reference ID    : 00000000 ()\nStratum         : 0\nLeap status     : ${leap}\n`;
    const no = sys({ commands: { timedatectl: Object.assign(new Error('System has not been booted with systemd as init system (PID 1). Can\'t operate.'), { code: 1 }), chronyc: tracking('Not synchronised') } });
    assert.deepStrictEqual(await no.clock.read().then((r) => [r.synced, r.source]), [false, 'chrony']);
    assert.deepStrictEqual(await sys({ commands: { chronyc: tracking('Normal') } }).clock.read().then((r) => [r.synced, r.source]), [true, 'chrony']);
  });

  it('nothing answers: a plausible time is believed, 1970 never is, whatever a probe says', async function () {
    assert.deepStrictEqual(await sys().clock.read().then((r) => [r.synced, r.source]), [true, 'assumed']);
    assert.deepStrictEqual(await sys({ wall: () => 5000 }).clock.read().then((r) => [r.synced, r.source]), [false, 'implausible']);
    assert.deepStrictEqual(await sys({ wall: () => 5000, files: { dir: true, synced: true } }).clock.read().then((r) => [r.synced, r.source]), [false, 'implausible']);
  });

  it('probes that are missing are not run again, and a jump of the wall clock looks again at once', async function () {
    let wall = 5000;
    let mono = 5000;
    const s = sys({ files: { dir: true }, wall: () => wall, mono: () => mono });
    assert.strictEqual((await s.clock.read()).synced, false);
    const callsAfterFirst = s.calls.length;
    mono += 1000;
    wall += 1000;
    await s.clock.read(); // within the 10 s: no new probe
    assert.strictEqual(s.calls.length, callsAfterFirst);
    assert.deepStrictEqual(s.calls, ['timedatectl', 'chronyc'], 'each asked once, then known to be missing');
    // NTP steps the clock and timesyncd writes its flag: seen at the next read, not 10 s later.
    fs.writeFileSync(s.syncedFile, '');
    wall = NOW;
    mono += 10;
    const r = await s.clock.read();
    assert.deepStrictEqual([r.synced, r.source, r.wallMs], [true, 'timesyncd', NOW]);
  });

  it('reads this machine: a boot id and a monotonic clock that goes on', async function () {
    const c = new SystemClock();
    const a = await c.read();
    const b = await c.read();
    assert.ok(a.bootId.length > 0);
    assert.ok(b.monoMs >= a.monoMs);
    assert.strictEqual(typeof a.synced, 'boolean');
  });
});
