'use strict';
// The device monitor's Node-RED-free parts: the board (what the nodes report), health from its snapshot, alerts over
// time (one raise and one clear per episode), the clock watch, and the Prometheus text, against a real queue on a real
// SQLite file. Times are injected: nothing here waits for a clock.
const assert = require('assert');
const path = require('path');
const { Board } = require('../dist/lib/monitor/board');
const { conditionsOf, verdictOf, DEFAULT_THRESHOLDS } = require('../dist/lib/monitor/health');
const { AlertBook } = require('../dist/lib/monitor/alerts');
const { DeviceMonitor } = require('../dist/lib/monitor/device-monitor');
const { parseMonitorConfig } = require('../dist/lib/monitor/config');
const { uploadFailureKind } = require('../dist/lib/monitor/metrics');
const { OfflineQueue } = require('../dist/lib/queue/engine');
const { parseQueueConfig } = require('../dist/lib/queue/config');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

const S = 1000;
const quietEvents = () => ({ deliver() {}, stats() {}, status() {}, warn() {}, log() {} });

/** A queue's stats as the engine gives them, with what a test sets. */
function queueStats(over = {}) {
  return {
    online: true, paused: false, notConfigured: null, notQueued: 0, pending: 0, ready: 0, retrying: 0, inFlight: 0, failed: 0, expired: 0,
    dropped: 0, uploaded: 0, queuedBytes: 0, oldestPendingAgeS: null,
    totals: { enqueued: 0, pending: 0, waiting: 0, leased: 0, done: 0, dead: 0, expired: 0, dropped: 0 },
    throughput: { itemsPerMin: 0, bytesPerSec: 0 }, concurrency: 1, db: 'q.db', lastError: null, held: null, uploading: [], ...over,
  };
}

/** A board with a clock the test moves. */
function boardAt(start = 1_700_000_000_000) {
  const clock = { t: start };
  const board = new Board(() => clock.t);
  return { board, clock };
}

/** Parses Prometheus text into { 'name{labels}': value }. */
function parseMetrics(text) {
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out[line.slice(0, i)] = Number(line.slice(i + 1));
  }
  return out;
}

describe('device monitor: health', function () {
  it('is healthy with nothing wrong, and names every reason when something is', async function () {
    const { board, clock } = boardAt();
    let stats = queueStats({ pending: 2, ready: 2, oldestPendingAgeS: 5 });
    board.addQueue('q1', { name: 'photos', folder: '/nonexistent-folder', stats: async () => stats });
    const link = { online: true, since: clock.t - 60 * S, latencyMs: 12, reason: 'HTTP 403' };
    board.addLink('c1', { name: 'cloud', current: () => link, changes: () => 1 });
    const cam = board.capture('cap1', 'door', 'front', '/nonexistent-folder');
    const t = { ...DEFAULT_THRESHOLDS, minDiskFreeBytes: 0 };

    let v = verdictOf(conditionsOf(await board.snapshot(), t));
    assert.deepStrictEqual(v, { status: 'healthy', reasons: [] });

    // A short outage only lowers health; a long one makes the device unhealthy.
    Object.assign(link, { online: false, since: clock.t, reason: 'connection refused' });
    clock.t += 30 * S;
    v = verdictOf(conditionsOf(await board.snapshot(), t));
    assert.strictEqual(v.status, 'degraded');
    assert.match(v.reasons[0], /"cloud": the upload target has been offline for 30 s \(connection refused\)/);
    clock.t += t.offlineForS * S;
    v = verdictOf(conditionsOf(await board.snapshot(), t));
    assert.strictEqual(v.status, 'unhealthy');

    // Captures failing in a row, with a camera login in the error: masked.
    Object.assign(link, { online: true, since: clock.t });
    for (let i = 0; i < 3; i++) cam.tally.failedWith(clock.t, 'HTTP 401 from http://admin:s3cret@10.0.0.9/snap.jpg');
    clock.t += S;
    v = verdictOf(conditionsOf(await board.snapshot(), t));
    assert.strictEqual(v.status, 'unhealthy');
    assert.match(v.reasons.join('\n'), /camera "front" \(door\): 3 failed captures in a row/);
    assert.doesNotMatch(v.reasons.join('\n'), /s3cret/);
    cam.tally.succeeded(clock.t);

    // The oldest item waits too long; failed items and a paused queue lower health.
    stats = queueStats({ pending: 1, ready: 1, oldestPendingAgeS: t.maxOldestPendingS + 150, failed: 2, paused: true });
    clock.t += S;
    v = verdictOf(conditionsOf(await board.snapshot(), t));
    assert.strictEqual(v.status, 'unhealthy');
    assert.match(v.reasons[0], /oldest pending item waits for 1 h 2 min \(over 1 h\)/);
    assert.ok(v.reasons.some((r) => /2 failed items/.test(r)));
    assert.ok(v.reasons.some((r) => /is paused/.test(r)));
  });

  it('says unhealthy when a disk in use is nearly full, and the recorder stopped on its own', async function () {
    const { board, clock } = boardAt();
    const dir = tmpDir();
    try {
      board.setUserDir(dir);
      let view = { state: 'recording', camera: 'yard', segments: 3, gaps: { count: 0 } };
      board.addRecorder('r1', { name: 'yard rec', folder: dir, snapshot: () => view });
      let snap = await board.snapshot();
      const free = snap.disks.find((d) => d.node === 'userDir').freeBytes;
      assert.ok(free > 0, 'free space is known here');
      const t = { ...DEFAULT_THRESHOLDS, minDiskFreeBytes: free * 2 };
      let v = verdictOf(conditionsOf(snap, t));
      assert.strictEqual(v.status, 'unhealthy');
      assert.match(v.reasons[0], /free on the disk of (Node-RED's folder|"yard rec")/);

      const ok = { ...DEFAULT_THRESHOLDS, minDiskFreeBytes: 0 };
      view = { ...view, state: 'reconnecting' };
      clock.t += S;
      assert.strictEqual(verdictOf(conditionsOf(await board.snapshot(), ok)).status, 'healthy', 'a short reconnect is not yet a fault');
      clock.t += (ok.recorderStalledS + 1) * S;
      v = verdictOf(conditionsOf(await board.snapshot(), ok));
      assert.strictEqual(v.status, 'unhealthy');
      assert.match(v.reasons[0], /recorder "yard rec" \(yard\) has been reconnecting for/);
      // Stopped by a message is a person's choice.
      view = { ...view, state: 'stopped' };
      clock.t += (ok.recorderStalledS + 1) * S;
      snap = await board.snapshot();
      assert.strictEqual(verdictOf(conditionsOf(snap, ok)).status, 'healthy');
    } finally {
      rmrf(dir);
    }
  });

  it('says unhealthy while a node cannot work because of its settings, without the login in them', async function () {
    const { board } = boardAt();
    const remove = board.addProblem('u1', { name: 'to s3', type: 'uplink-uploader', message: 'configuration error: URL "http://me:pw-77@10.0.0.1/" is wrong' });
    const v = verdictOf(conditionsOf(await board.snapshot(), { ...DEFAULT_THRESHOLDS, minDiskFreeBytes: 0 }));
    assert.strictEqual(v.status, 'unhealthy');
    assert.match(v.reasons[0], /^uploader "to s3" is not working: configuration error/);
    assert.doesNotMatch(v.reasons[0], /pw-77/);
    remove();
    assert.strictEqual(verdictOf(conditionsOf(await board.snapshot(), DEFAULT_THRESHOLDS)).status, 'healthy');
  });

  it('takes a node off the board when it closes', async function () {
    const { board } = boardAt();
    const remove = board.addQueue('q1', { name: 'q', folder: '/x', stats: async () => queueStats() });
    const cam = board.capture('c', 'cam', 'cam', '/x');
    assert.strictEqual((await board.snapshot()).queues.length, 1);
    remove();
    cam.remove();
    const snap = await board.snapshot();
    assert.strictEqual(snap.queues.length + snap.captures.length, 0);
    assert.ok(board.empty);
  });

  it('answers with a queue that cannot be read as not running, and keeps going', async function () {
    const { board } = boardAt();
    board.addQueue('q1', { name: 'broken', folder: '/x', stats: async () => { throw new Error('the disk is full'); } });
    const v = verdictOf(conditionsOf(await board.snapshot(), { ...DEFAULT_THRESHOLDS, minDiskFreeBytes: 0 }));
    assert.strictEqual(v.status, 'unhealthy');
    assert.match(v.reasons[0], /queue "broken" is not running: the disk is full/);
  });
});

describe('device monitor: alerts', function () {
  /** @returns {import('../dist/lib/monitor/health').Condition} */
  const cond = (active, subject = 'cloud') => ({ alert: 'offline', subject, severity: 'critical', active, message: `"${subject}" offline`, value: 1, threshold: 0 });

  it('gives one raise and one clear for a flapping link, however often it flaps within the clear time', function () {
    const book = new AlertBook({ raiseAfterS: 0, clearAfterS: 30, minIntervalS: 300 });
    const events = [];
    let t = 0;
    // Down 5 s, up 5 s, twenty times: one episode.
    for (let i = 0; i < 40; i++, t += 5 * S) events.push(...book.update([cond(i % 2 === 0)], t));
    assert.deepStrictEqual(events.map((e) => e.state), ['raised']);
    assert.strictEqual(book.active().length, 1);
    // Then up for good: cleared once the clear time has passed.
    for (let i = 0; i < 10; i++, t += 5 * S) events.push(...book.update([cond(false)], t));
    assert.deepStrictEqual(events.map((e) => e.state), ['raised', 'cleared']);
    assert.match(events[1].message, /^cleared: /);
    assert.strictEqual(book.active().length, 0);
  });

  it('waits for raise-after before raising, and holds a new raise back for the minimum interval', function () {
    const book = new AlertBook({ raiseAfterS: 20, clearAfterS: 10, minIntervalS: 120 });
    let t = 0;
    const at = (active, dt) => {
      t += dt * S;
      return book.update([cond(active)], t).map((e) => e.state);
    };
    assert.deepStrictEqual(at(true, 0), []);
    assert.deepStrictEqual(at(true, 10), [], 'held for 10 s of 20');
    assert.deepStrictEqual(at(false, 1), [], 'gone before raise-after: nothing at all');
    assert.deepStrictEqual(at(true, 1), []);
    assert.deepStrictEqual(at(true, 20), ['raised']);
    assert.deepStrictEqual(at(false, 1), []);
    assert.deepStrictEqual(at(false, 10), ['cleared']);
    // A second episode within two minutes of the first raise waits for the interval to pass.
    assert.deepStrictEqual(at(true, 5), []);
    assert.deepStrictEqual(at(true, 25), []);
    assert.deepStrictEqual(at(true, 70), [], 'still inside the interval');
    assert.deepStrictEqual(at(true, 20), ['raised']);
  });

  it('keeps subjects apart, and clears the alert of a subject that left the board', function () {
    const book = new AlertBook({ raiseAfterS: 0, clearAfterS: 10, minIntervalS: 0 });
    const a = book.update([cond(true, 'a'), cond(true, 'b')], 0);
    assert.deepStrictEqual(a.map((e) => `${e.subject} ${e.state}`), ['a raised', 'b raised']);
    assert.deepStrictEqual(book.update([cond(true, 'a')], 5 * S), []);
    const later = book.update([cond(true, 'a')], 20 * S);
    assert.deepStrictEqual(later.map((e) => `${e.subject} ${e.state}`), ['b cleared']);
  });
});

describe('device monitor: the clock', function () {
  function monitorWith(clocks, over = {}) {
    const { board } = boardAt();
    const config = parseMonitorConfig({ clockJumpS: '60', clearAfterS: '0', minIntervalS: '0', minDiskFreeMB: '0', ...over }, 'pi');
    const alerts = [];
    const m = new DeviceMonitor(board, config, (a) => alerts.push(a), clocks);
    return { m, alerts };
  }

  for (const [name, jump] of /** @type {[string, number][]} */ ([['forward', 3600 * S], ['backward', -3600 * S]])) {
    it(`notices a jump ${name} of the wall clock against the monotonic one`, async function () {
      const c = { wall: 1_700_000_000_000, mono: 5000 };
      const { m, alerts } = monitorWith({ wall: () => c.wall, mono: () => c.mono });
      c.wall += 15 * S;
      c.mono += 15 * S;
      assert.strictEqual((await m.check()).status, 'healthy', 'a steady clock');
      c.wall += 15 * S + jump;
      c.mono += 15 * S;
      const v = await m.check();
      assert.strictEqual(v.status, 'degraded');
      assert.match(v.reasons[0], new RegExp(`the clock jumped by ${jump > 0 ? '\\+3600' : '-3600'} s`));
      assert.deepStrictEqual(alerts.map((a) => `${a.alert} ${a.state}`), ['clock-jump raised']);
      assert.strictEqual(alerts[0].device, 'pi');
      // Shown for ten minutes, then cleared.
      c.wall += 11 * 60 * S;
      c.mono += 11 * 60 * S;
      assert.strictEqual((await m.check()).status, 'healthy');
      assert.deepStrictEqual(alerts.map((a) => `${a.alert} ${a.state}`), ['clock-jump raised', 'clock-jump cleared']);
    });
  }

  it('takes a Pi booting at 1970 and then setting its clock as one jump, and a slow drift as none', async function () {
    const c = { wall: 10 * S, mono: 10 * S };
    const { m, alerts } = monitorWith({ wall: () => c.wall, mono: () => c.mono });
    for (let i = 0; i < 10; i++) {
      c.wall += 15 * S + 50; // 50 ms fast per look: NTP slewing, not a jump
      c.mono += 15 * S;
      await m.check();
    }
    assert.deepStrictEqual(alerts, []);
    c.wall = 1_765_000_000_000;
    c.mono += 15 * S;
    await m.check();
    assert.deepStrictEqual(alerts.map((a) => a.alert), ['clock-jump']);
  });
});

describe('device monitor: settings', function () {
  it('has defaults, and lists every wrong setting at once', function () {
    const c = parseMonitorConfig({}, 'pi-7');
    assert.strictEqual(c.device, 'pi-7');
    assert.strictEqual(c.health, true);
    assert.strictEqual(c.metrics, true);
    assert.strictEqual(c.thresholds.minDiskFreeBytes, 500 * 1024 * 1024);
    assert.strictEqual(c.checkEveryMs, 15000);
    assert.throws(
      () => parseMonitorConfig({ maxPending: 'lots', offlineForS: '-1', checkEveryS: '0' }),
      (/** @type {Error} */ e) => /Pending items must be a whole number/.test(e.message) && /Offline for must be a number/.test(e.message) && /Check every/.test(e.message),
    );
    assert.strictEqual(parseMonitorConfig({ health: false, metrics: 'false' }).metrics, false);
  });

  it('names upload failures by a bounded kind', function () {
    assert.strictEqual(uploadFailureKind('ECONNREFUSED'), 'network');
    assert.strictEqual(uploadFailureKind('TIMEOUT'), 'timeout');
    assert.strictEqual(uploadFailureKind('HTTP_503', 503), 'server');
    assert.strictEqual(uploadFailureKind('SlowDown', 503), 'throttled');
    assert.strictEqual(uploadFailureKind('x', 429), 'throttled');
    assert.strictEqual(uploadFailureKind('AccessDenied', 403), 'client');
    assert.strictEqual(uploadFailureKind('weird'), 'other');
  });
});

describe('device monitor: metrics', function () {
  this.timeout(20000);
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  it('serves the queue database\'s totals (surviving a restart), the live counts, and what nodes counted', async function () {
    const dbFile = path.join(dir, 'q.db');
    const config = () => ({ ...parseQueueConfig({ db: dbFile, concurrency: 1 }, dir), token: 'q' });
    const delivered = [];
    const events = { ...quietEvents(), deliver: (m) => delivered.push(m) };
    let q = await OfflineQueue.start(config(), events, 'test');
    for (let i = 0; i < 3; i++) await q.handle({ payload: `item ${i}` });
    await waitFor(() => delivered.length >= 1, { what: 'a delivery' });
    await q.handle({ uplink: { ack: true, item: delivered[0].uplink.item } });
    await q.close();

    // A restart: a new queue on the same file, a new board.
    q = await OfflineQueue.start({ ...config(), startOnline: false }, { ...quietEvents() }, 'test');
    const { board } = boardAt(Date.now());
    board.addQueue('q', { name: 'photos', folder: dir, stats: () => q.stats() });
    const cam = board.capture('c1', 'door', 'front', dir);
    cam.tally.succeeded(Date.now());
    cam.tally.failedWith(Date.now(), 'no image');
    const up = board.uploader('u1', 'to s3', 's3');
    up.tally.uploaded(Date.now(), 1000, 0.2);
    up.tally.uploaded(Date.now(), 500, 3);
    up.tally.retried('network');
    const link = { online: false, since: Date.now(), latencyMs: null, reason: 'refused' };
    board.addLink('l', { name: 'cloud', current: () => link, changes: () => 4 });
    board.addRecorder('r', { name: 'yard rec', folder: dir, snapshot: () => ({ state: 'recording', camera: 'yard', segments: 7, gaps: { count: 2 } }) });
    board.metrics.verdict = async () => ({ status: 'degraded', activeAlerts: ['offline'] });

    const { contentType, body } = await board.metrics.text();
    assert.match(contentType, /^text\/plain; version=0\.0\.4/);
    const m = parseMetrics(body);
    assert.strictEqual(m['uplink_queue_enqueued_total{node="photos"}'], 3);
    assert.strictEqual(m['uplink_queue_uploaded_total{node="photos"}'], 1);
    // The same numbers as the queue's own stats (items leased ahead before the restart may still be in flight).
    const st = await q.stats();
    assert.strictEqual(st.pending + st.inFlight, 2);
    assert.strictEqual(m['uplink_queue_pending_items{node="photos"}'], st.pending);
    assert.strictEqual(m['uplink_queue_items{node="photos",state="ready"}'], st.ready);
    assert.strictEqual(m['uplink_queue_items{node="photos",state="in_flight"}'], st.inFlight);
    assert.strictEqual(m['uplink_queue_items{node="photos",state="failed"}'], 0);
    assert.ok(m['uplink_queue_oldest_pending_age_seconds{node="photos"}'] >= 0);
    assert.strictEqual(m['uplink_captures_total{node="door",camera="front",result="ok"}'], 1);
    assert.strictEqual(m['uplink_captures_total{node="door",camera="front",result="failed"}'], 1);
    assert.strictEqual(m['uplink_capture_failures_in_a_row{node="door",camera="front"}'], 1);
    assert.strictEqual(m['uplink_upload_bytes_total{node="to s3",backend="s3"}'], 1500);
    assert.strictEqual(m['uplink_upload_duration_seconds_count{node="to s3",backend="s3"}'], 2);
    assert.strictEqual(m['uplink_upload_duration_seconds_bucket{le="0.25",node="to s3",backend="s3"}'], 1);
    assert.strictEqual(m['uplink_upload_retries_total{node="to s3",backend="s3",class="network"}'], 1);
    assert.strictEqual(m['uplink_connectivity_up{node="cloud"}'], 0);
    assert.strictEqual(m['uplink_connectivity_changes_total{node="cloud"}'], 4);
    assert.strictEqual(m['uplink_recorder_recording{node="yard rec",camera="yard"}'], 1);
    assert.strictEqual(m['uplink_recorder_segments_total{node="yard rec",camera="yard"}'], 7);
    assert.strictEqual(m['uplink_recorder_state{node="yard rec",camera="yard",state="recording"}'], 1);
    assert.strictEqual(m['uplink_recorder_gaps_total{node="yard rec",camera="yard"}'], 2);
    assert.ok(m['uplink_disk_free_bytes{node="photos"}'] > 0);
    assert.strictEqual(m['uplink_health_status'], 1);
    assert.strictEqual(m['uplink_alert_active{alert="offline"}'], 1);
    // Nothing unbounded: no label holds a path or a file name.
    for (const key of Object.keys(m)) assert.ok(!key.includes(dir), `${key} names a path`);
    await q.close();
  });

  it('drops a closed node\'s series from the next scrape', async function () {
    const { board } = boardAt(Date.now());
    const cam = board.capture('c1', 'door', 'front', dir);
    cam.tally.succeeded(Date.now());
    assert.match((await board.metrics.text()).body, /uplink_captures_total\{node="door"/);
    cam.remove();
    assert.doesNotMatch((await board.metrics.text()).body, /node="door"/);
  });
});
