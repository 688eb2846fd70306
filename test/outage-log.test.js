'use strict';
// The outage log on a real SQLite file: what is kept, how outages and offline time per day are read from it, its
// bounds, and that a row written is there after the writing process is killed.
const assert = require('assert');
const path = require('path');
const { spawnSync } = require('child_process');
const { OutageLog, summarize } = require('../dist/lib/connectivity/outage-log');
const { tmpDir, rmrf } = require('./support/tmp');

const H = 3600_000;
const at = (s) => new Date(s).getTime();
const change = (monitor, when, online, reason = online ? 'HTTP 403' : 'connection refused') => ({ monitor, target: 'HEAD http://127.0.0.1:9000/', at: at(when), online, reason, previousMs: null });

describe('outage log', function () {
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  it('reads outages, the longest first, and offline time per day split at midnight', function () {
    const entries = [
      change('cloud', '2026-03-01T00:00:00', true),
      change('cloud', '2026-03-01T10:00:00', false),
      change('cloud', '2026-03-01T10:30:00', true),
      change('cloud', '2026-03-01T23:00:00', false, 'network unreachable'),
      change('cloud', '2026-03-02T01:00:00', true),
      change('nas', '2026-03-02T05:00:00', false),
    ];
    const s = summarize(entries, at('2026-02-01T00:00:00'), at('2026-03-02T06:00:00'));
    assert.strictEqual(s.outages.length, 3);
    assert.deepStrictEqual(s.longest.map((o) => [o.monitor, o.durationMs / H]), [['cloud', 2], ['nas', 1], ['cloud', 0.5]]);
    assert.strictEqual(s.longest[1].end, null, 'the one that still lasts');
    assert.strictEqual(s.longest[0].reason, 'network unreachable');
    assert.deepStrictEqual(s.perDay, [
      { day: '2026-03-01', offlineS: 1.5 * 3600, outages: 2 },
      { day: '2026-03-02', offlineS: 2 * 3600, outages: 1 },
    ]);
    assert.strictEqual(s.totalOfflineS, 3.5 * 3600);
    // A window that starts inside an outage cuts it at its edge.
    const cut = summarize(entries, at('2026-03-02T00:00:00'), at('2026-03-02T06:00:00'));
    assert.deepStrictEqual(cut.outages.map((o) => o.durationMs / H), [1, 1]);
  });

  it('keeps changes in SQLite, trims by age and count, and opens read-only for looking', async function () {
    const file = path.join(dir, 'sub', 'outages.db');
    const log = await OutageLog.open(file, { limits: { maxAgeDays: 10, maxRows: 5 } });
    const now = at('2026-03-20T12:00:00');
    await log.record(change('cloud', '2026-03-01T00:00:00', false)); // older than 10 days
    for (let i = 0; i < 8; i++) await log.record(change('cloud', `2026-03-20T0${i}:00:00`, i % 2 === 1));
    await log.trim(now);
    const kept = await log.entries();
    assert.strictEqual(kept.length, 5);
    assert.strictEqual(kept[0].at, at('2026-03-20T07:00:00'), 'newest first');
    assert.strictEqual(kept[0].target, 'HEAD http://127.0.0.1:9000/');
    await log.close();

    const reader = await OutageLog.open(file, { readOnly: true });
    const s = await reader.summary({ days: 1, now });
    // Kept: online at 03, 05, 07 and offline at 04, 06 (the day-old and the oldest rows are gone).
    assert.deepStrictEqual(s.outages.map((o) => new Date(o.start).getHours()), [4, 6]);
    await assert.rejects(reader.record(change('x', '2026-03-20T09:00:00', false)), /readonly|read-only/i);
    await reader.close();
    await assert.rejects(OutageLog.open(path.join(dir, 'none.db'), { readOnly: true }), /SQLITE_CANTOPEN/);
  });

  it('still has a change after the process that wrote it was killed', function () {
    const file = path.join(dir, 'outages.db');
    const script = `
      const { OutageLog } = require(${JSON.stringify(path.join(__dirname, '../dist/lib/connectivity/outage-log'))});
      OutageLog.open(${JSON.stringify(file)}).then(async (log) => {
        await log.record({ monitor: 'cloud', target: 't', at: Date.now(), online: false, reason: 'refused', previousMs: 1000 });
        process.kill(process.pid, 'SIGKILL');
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { timeout: 20000 });
    assert.strictEqual(r.signal, 'SIGKILL', String(r.stderr));
    return OutageLog.open(file, { readOnly: true }).then(async (log) => {
      const e = await log.entries();
      await log.close();
      assert.deepStrictEqual(e.map((x) => [x.monitor, x.online, x.reason, x.previousMs]), [['cloud', false, 'refused', 1000]]);
    });
  });
});
