'use strict';
// Byte budgets for metered links: calendar periods in a chosen time zone, how full a budget is, which items wait, and
// the ledger of bytes sent on a real SQLite file (kept across a restart, written in batches).
const assert = require('assert');
const path = require('path');
const { spawnSync } = require('child_process');
const { periodsOf, nextReset, judgeBudget, decide, readBudget, NO_BUDGET } = require('../dist/lib/upload/budget');
const { BudgetLedger } = require('../dist/lib/upload/budget-ledger');
const { SettingsReader } = require('../dist/lib/util/settings');
const { tmpDir, rmrf } = require('./support/tmp');

const MB = 1024 * 1024;
const GB = 1024 * MB;

describe('byte budgets', function () {
  it('counts days and months in the chosen time zone, and knows when they start again, across a DST change', function () {
    const t = Date.parse('2026-03-28T23:30:00Z'); // 00:30 on the 29th in Berlin (CET, +1)
    assert.deepStrictEqual(periodsOf(t, 'UTC'), { day: '2026-03-28', month: '2026-03' });
    assert.deepStrictEqual(periodsOf(t, 'Europe/Berlin'), { day: '2026-03-29', month: '2026-03' });
    // Berlin's next midnight comes after the switch to summer time (+2): 22:00 UTC.
    assert.strictEqual(new Date(nextReset(t, 'Europe/Berlin', 'day')).toISOString(), '2026-03-29T22:00:00.000Z');
    assert.strictEqual(new Date(nextReset(t, 'UTC', 'day')).toISOString(), '2026-03-29T00:00:00.000Z');
    assert.strictEqual(new Date(nextReset(t, 'Europe/Berlin', 'month')).toISOString(), '2026-03-31T22:00:00.000Z');
    assert.strictEqual(new Date(nextReset(Date.parse('2026-12-31T12:00:00Z'), 'UTC', 'month')).toISOString(), '2027-01-01T00:00:00.000Z');
  });

  it('reads the settings in MB, and refuses a time zone the system does not know', function () {
    const r = new SettingsReader({ budgetDailyMB: '200', budgetMonthlyMB: '2048', budgetTimeZone: 'Europe/Berlin', unmeteredOnlyFromMB: '50' });
    const s = readBudget(r);
    assert.deepStrictEqual(r.errors, []);
    assert.strictEqual(s.dailyBytes, 200 * MB);
    assert.strictEqual(s.monthlyBytes, 2 * GB);
    assert.strictEqual(s.unmeteredOnlyFromBytes, 50 * MB);
    const bad = new SettingsReader({ budgetDailyMB: '-1', budgetTimeZone: 'Mars/Olympus' });
    readBudget(bad);
    assert.strictEqual(bad.errors.length, 2, bad.errors.join('; '));
    assert.match(bad.errors.join(';'), /Daily budget must be/);
    assert.match(bad.errors.join(';'), /"Mars\/Olympus" is not a time zone/);
  });

  it('holds items above the priority while near, and all but small urgent ones once spent, until the period ends', function () {
    const s = { ...NO_BUDGET, dailyBytes: 2 * GB, timeZone: 'UTC' };
    const now = Date.parse('2026-12-07T15:00:00Z');
    const usage = (bytes) => ({ day: { period: '2026-12-07', bytes }, month: { period: '2026-12', bytes } });
    const video = { priority: 5, bytes: 50 * MB };
    const event = { priority: 1, bytes: 2000 };
    const urgentVideo = { priority: 1, bytes: 50 * MB };

    const ok = judgeBudget(s, usage(GB), now);
    assert.strictEqual(ok.state, 'ok');
    assert.deepStrictEqual(decide(s, ok, video, true, now), { go: true });

    const near = judgeBudget(s, usage(1.85 * GB), now);
    assert.strictEqual(near.state, 'near');
    assert.strictEqual(near.text, 'budget: 1.85 GB of 2.00 GB today');
    const held = decide(s, near, video, true, now);
    assert.strictEqual(held.go, false);
    assert.strictEqual(held.until, Date.parse('2026-12-08T00:00:00Z'));
    assert.match(held.reason, /^budget: 1\.85 GB of 2\.00 GB today, priority 5 and below held until 00:00$/);
    assert.deepStrictEqual(decide(s, near, urgentVideo, true, now), { go: true }, 'near: urgent items of any size still go');

    const spent = judgeBudget(s, usage(2.1 * GB), now);
    assert.strictEqual(spent.state, 'spent');
    assert.deepStrictEqual(decide(s, spent, event, true, now), { go: true }, 'a small urgent event still goes');
    const big = decide(s, spent, urgentVideo, true, now);
    assert.strictEqual(big.go, false);
    assert.match(big.reason, /large items held until 00:00/);
  });

  it('lets the fuller budget decide, and keeps large items for an unmetered link when asked', function () {
    const s = { ...NO_BUDGET, dailyBytes: 500 * MB, monthlyBytes: 10 * GB, timeZone: 'UTC', unmeteredOnlyFromBytes: 20 * MB };
    const now = Date.parse('2026-12-07T15:00:00Z');
    const v = judgeBudget(s, { day: { period: 'd', bytes: 10 * MB }, month: { period: 'm', bytes: 10 * GB } }, now);
    assert.strictEqual(v.state, 'spent');
    assert.match(v.text, /this month/);
    assert.strictEqual(v.resetsAt, Date.parse('2027-01-01T00:00:00Z'));
    const fresh = judgeBudget(s, { day: { period: 'd', bytes: 0 }, month: { period: 'm', bytes: 0 } }, now);
    const clip = { priority: 3, bytes: 30 * MB };
    assert.deepStrictEqual(decide(s, fresh, clip, true, now), { go: false, reason: '30.0 MB waits for an unmetered link', until: null });
    assert.strictEqual(decide(s, fresh, clip, null, now).go, false, 'unknown counts as metered');
    assert.deepStrictEqual(decide(s, fresh, clip, false, now), { go: true });
  });
});

describe('budget ledger', function () {
  let dir;
  beforeEach(() => (dir = tmpDir()));
  afterEach(() => rmrf(dir));

  it('counts per target, day and month, and keeps the count across a restart', async function () {
    const file = path.join(dir, 'budget.db');
    let l = await BudgetLedger.open(file, { flushMs: 10_000 });
    l.setTimeZone('s3', 'UTC');
    const t = Date.parse('2026-12-07T23:59:00Z');
    l.add('s3', 1000, t);
    l.add('s3', 500, t);
    l.add('s3', 300, t + 120_000); // the next day, same month
    l.add('http', 7, t);
    assert.deepStrictEqual(l.usage('s3', t), { day: { period: '2026-12-07', bytes: 1500 }, month: { period: '2026-12', bytes: 1800 } });
    await l.close();
    l = await BudgetLedger.open(file);
    l.setTimeZone('s3', 'UTC');
    assert.deepStrictEqual(l.usage('s3', t + 120_000), { day: { period: '2026-12-08', bytes: 300 }, month: { period: '2026-12', bytes: 1800 } });
    assert.strictEqual(l.usage('http', t).day.bytes, 7);
    await l.close();
  });

  it('has written what it counted a few seconds before a kill -9', function () {
    const file = path.join(dir, 'budget.db');
    const script = `
      const { BudgetLedger } = require(${JSON.stringify(path.join(__dirname, '../dist/lib/upload/budget-ledger'))});
      BudgetLedger.open(${JSON.stringify(file)}, { flushMs: 50 }).then((l) => {
        l.add('s3', 4096);
        setTimeout(() => process.kill(process.pid, 'SIGKILL'), 1000);
      });`;
    const r = spawnSync(process.execPath, ['-e', script], { timeout: 20000 });
    assert.strictEqual(r.signal, 'SIGKILL', String(r.stderr));
    return BudgetLedger.open(file).then(async (l) => {
      const u = l.usage('s3');
      await l.close();
      assert.strictEqual(u.day.bytes, 4096);
    });
  });
});
