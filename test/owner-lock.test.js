'use strict';
const assert = require('assert');
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { acquireOwnerLock, OwnerLockError } = require('../dist/lib/util/owner-lock');
const { QueueStore } = require('../dist/lib/queue/store');
const { SegmentStore } = require('../dist/lib/recorder/store');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

const LOCK_MODULE = path.resolve(__dirname, '../dist/lib/util/owner-lock');

/**
 * @typedef {import('child_process').ChildProcessByStdio<null, import('stream').Readable, null> & { lines: any[], gone: Promise<unknown> }} Child
 */

/**
 * A Node process that runs `body` (with `say(obj)` to report a JSON line) and stays until killed.
 * @param {string} body
 * @returns {Child}
 */
function child(body) {
  const script = `
    const say = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
    ${body}
    setInterval(() => {}, 1000);`;
  const proc = /** @type {Child} */ (spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] }));
  proc.lines = [];
  let buf = '';
  proc.stdout.on('data', (d) => {
    buf += d;
    const parts = buf.split('\n');
    buf = parts.pop();
    for (const p of parts) proc.lines.push(JSON.parse(p));
  });
  proc.gone = new Promise((r) => proc.once('exit', r));
  return proc;
}

describe('owner lock', function () {
  this.timeout(30000);
  let dir;
  const procs = [];
  beforeEach(() => {
    dir = tmpDir();
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) {
      p.kill('SIGKILL');
      await p.gone;
    }
    rmrf(dir);
  });

  it('refuses a second process while the first holds the lock, naming the holder', async function () {
    const file = path.join(dir, 'x.lock');
    const holder = child(`require(${JSON.stringify(LOCK_MODULE)}).acquireOwnerLock(${JSON.stringify(file)}, 'the thing'); say({ held: true });`);
    procs.push(holder);
    await waitFor(() => holder.lines.length > 0, { what: 'the child to take the lock' });
    assert.throws(
      () => acquireOwnerLock(file, 'the thing'),
      (e) => e instanceof OwnerLockError && e.holderPid === holder.pid && e.message === `the thing is in use by another process (pid ${holder.pid})`,
    );
    holder.kill('SIGKILL');
    await holder.gone;
    const lock = acquireOwnerLock(file, 'the thing');
    assert.strictEqual(fs.readFileSync(file, 'utf8').split(' ')[0], String(process.pid), 'a dead holder\'s lock is taken over');
    lock.release();
    assert.ok(!fs.existsSync(file));
  });

  it('gives the lock to exactly one of several processes starting together, with or without a stale lock in place', async function () {
    for (const stale of [undefined, '1 12345']) {
      const file = path.join(dir, `race-${stale ? 'stale' : 'none'}.lock`);
      if (stale) fs.writeFileSync(file, stale); // pid 1 is alive, but did not start at tick 12345: left by a reboot
      const at = Date.now() + 1500;
      const racers = [];
      for (let i = 0; i < 4; i++) {
        const p = child(`
          const { acquireOwnerLock } = require(${JSON.stringify(LOCK_MODULE)});
          setTimeout(() => {
            try { acquireOwnerLock(${JSON.stringify(file)}, 'the thing'); say({ won: true }); }
            catch (e) { say({ won: false, code: e.code }); }
          }, ${at} - Date.now());`);
        racers.push(p);
        procs.push(p);
      }
      await waitFor(() => racers.every((p) => p.lines.length > 0), { timeout: 20000, what: 'every racer to try' });
      const results = racers.map((p) => p.lines[0]);
      assert.strictEqual(results.filter((r) => r.won).length, 1, JSON.stringify(results));
      assert.ok(results.every((r) => r.won || r.code === 'LOCKED'), JSON.stringify(results));
      const winner = racers[results.findIndex((r) => r.won)];
      assert.strictEqual(fs.readFileSync(file, 'utf8').split(' ')[0], String(winner.pid));
      assert.deepStrictEqual(fs.readdirSync(dir).filter((n) => n.endsWith('.takeover')), [], 'nothing left beside the lock');
    }
  });

  it('release leaves alone a lock that another process has since taken over', function () {
    const file = path.join(dir, 'x.lock');
    const lock = acquireOwnerLock(file, 'the thing');
    fs.writeFileSync(file, '1 -'); // pid 1, start time unknown: alive, so it holds the lock
    lock.release();
    assert.strictEqual(fs.readFileSync(file, 'utf8'), '1 -');
    assert.throws(() => acquireOwnerLock(file, 'the thing'), /in use by another process \(pid 1\)/);
  });

  it('the queue refuses a database another process delivers from', async function () {
    const file = path.join(dir, 'q.db');
    const store = path.resolve(__dirname, '../dist/lib/queue/store');
    const holder = child(`require(${JSON.stringify(store)}).QueueStore.open(${JSON.stringify(file)}, {}, { recoverLeases: true }).then(() => say({ open: true }));`);
    procs.push(holder);
    await waitFor(() => holder.lines.length > 0, { what: 'the child to open the queue' });
    await assert.rejects(
      QueueStore.open(file, {}, { recoverLeases: true }),
      (/** @type {Error & { code?: string }} */ e) => e.code === 'DB_IN_USE' && e.message === `the queue database ${file} is in use by another process (pid ${holder.pid})`,
    );
  });

  it('the recorder refuses a folder another process records into', async function () {
    const folder = path.join(dir, 'rec');
    const options = { folder, camera: 'gate', nameTemplate: '{camera}_%Y%m%d_%H%M%S.mp4', ffprobePath: 'ffprobe', requestedS: 1 };
    const store = path.resolve(__dirname, '../dist/lib/recorder/store');
    const holder = child(`require(${JSON.stringify(store)}).SegmentStore.open({ ...${JSON.stringify(options)}, warn: () => {} }).then(() => say({ open: true }));`);
    procs.push(holder);
    await waitFor(() => holder.lines.length > 0, { what: 'the child to open the folder' });
    await assert.rejects(SegmentStore.open({ ...options, warn: () => {} }), (/** @type {Error} */ e) => {
      assert.ok(e.message.startsWith(`process ${holder.pid} already records into ${folder} `), e.message);
      assert.match(e.message, /give each recorder its own folder$/);
      return true;
    });
    holder.kill('SIGKILL');
    await holder.gone;
    const mine = await SegmentStore.open({ ...options, warn: () => {} });
    await mine.close();
    assert.deepStrictEqual(fs.readdirSync(path.join(folder, '.uplink-recorder')).filter((n) => n.includes('lock')), [], 'the lock goes with the store');
  });
});
