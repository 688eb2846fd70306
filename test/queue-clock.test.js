'use strict';
// A Pi without a clock of its own queues items at 1970 (or at its last shutdown) until NTP sets the clock. The queue
// moves the times it wrote before the jump, so an item queued a minute before the clock was set is a minute old
// after it: not expired at once under "Expire after", not 56 years old in the stats. Real SQLite; injected clocks.
const assert = require('assert');
const path = require('path');
const { OfflineQueue } = require('../dist/lib/queue/engine');
const { parseQueueConfig } = require('../dist/lib/queue/config');
const { tmpDir, rmrf } = require('./support/tmp');

const H = 3600_000;

describe('the queue when the clock jumps', function () {
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  async function queueAt(c) {
    const logs = [];
    const events = { deliver() {}, stats() {}, status() {}, warn: (t) => logs.push(t), log: (t) => logs.push(t) };
    const config = { ...parseQueueConfig({ db: path.join(dir, 'q.db'), ttl: '2' }, dir), token: 'q', startOnline: false };
    const q = await OfflineQueue.start(config, events, 'test', () => c.wall, () => c.mono);
    return { q, logs };
  }

  it('moves items queued before NTP set the clock with it: they neither expire at once nor look decades old', async function () {
    const c = { wall: 30_000, mono: 5_000 }; // 1970, 30 s after the epoch
    const { q, logs } = await queueAt(c);
    await q.handle({ payload: 'at boot 1' });
    c.wall += 30_000;
    c.mono += 30_000;
    await q.handle({ payload: 'at boot 2' });
    // 60 s later NTP sets the clock to 2026.
    const set = Date.parse('2026-12-07T08:00:00Z');
    c.mono += 60_000;
    c.wall = set;
    await q.handle({ payload: 'after the sync' });
    const rows = await q.store.list();
    assert.deepStrictEqual(rows.map((r) => r.createdAt), [set - 90_000, set - 60_000, set]);
    assert.ok(logs.some((l) => /the clock jumped by \+\d+ s: the times of 2 items queued before were moved with it/.test(l)), logs.join('\n'));
    assert.strictEqual((await q.stats()).oldestPendingAgeS, 90);
    // Expire after 2 h counts from the moved times.
    assert.deepStrictEqual(await q.store.expireOld(), []);
    c.wall += 2 * H;
    c.mono += 2 * H;
    assert.strictEqual((await q.store.expireOld()).length, 3);
    await q.close();
  });

  it('moves them back when the clock jumps backwards, and leaves a slow drift alone', async function () {
    const start = Date.parse('2030-01-01T00:00:00Z'); // a clock far ahead
    const c = { wall: start, mono: 1_000 };
    const { q } = await queueAt(c);
    await q.handle({ payload: 'ahead' });
    for (let i = 0; i < 10; i++) {
      c.wall += 10_000 + 500; // half a second fast every 10 s: drift, not a jump
      c.mono += 10_000;
      await q.handle({ payload: `drift ${i}` });
    }
    const before = (await q.store.list()).map((r) => r.createdAt);
    assert.strictEqual(before[0], start, 'drift moves nothing');
    const right = Date.parse('2026-12-07T08:00:00Z');
    c.wall = right;
    c.mono += 1_000;
    await q.handle({ payload: 'after' });
    const rows = await q.store.list();
    const shift = right - (before[before.length - 1] + 1_000);
    assert.deepStrictEqual(rows.slice(0, -1).map((r) => r.createdAt), before.map((t) => t + shift));
    assert.strictEqual(rows[rows.length - 1].createdAt, right);
    assert.ok((await q.stats()).oldestPendingAgeS < 200);
    await q.close();
  });
});
