'use strict';
// A metered link's byte budget in a real `node-red` process, against a real S3-protocol server on 127.0.0.1: items go
// until the day's budget is spent; then ordinary items wait (the queue's stats and status say why and until when)
// while a small urgent one still goes; a large item waits for an unmetered link and goes as soon as the flow says the
// link is unmetered; and the count survives a restart. The device monitor's metrics show the budget.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { S3Server } = require('./support/s3-server');
const { call, until, deploy } = require('./support/http-client');
const { tmpDir, rmrf } = require('./support/tmp');

const KB = 1024;

function flows(s3) {
  const entry = (id, url, rules, to) => [
    { id, type: 'http in', z: 'tab', url, method: 'post', wires: [[`${id}-set`, `${id}-ok`]] },
    { id: `${id}-set`, type: 'change', z: 'tab', rules, wires: [[to]] },
    { id: `${id}-ok`, type: 'http response', z: 'tab', statusCode: '200', wires: [] },
  ];
  const priority = (p) => [{ t: 'set', p: 'priority', pt: 'msg', to: String(p), tot: 'num' }];
  return [
    { id: 'tab', type: 'tab', label: 'metered' },
    {
      id: 'cfg', type: 'uplink-s3-config', name: 'bucket', ...s3.config(), concurrency: 1, timeout: 10,
      // 100 KB a day on a UTC calendar; items from 200 KB only on an unmetered link.
      budgetDailyMB: String(100 / 1024), budgetTimeZone: 'UTC', budgetNearPercent: 90, budgetHoldAbove: 2, budgetUrgentMaxMB: 1,
      unmeteredOnlyFromMB: String(200 / 1024), credentials: s3.credentials,
    },
    ...entry('bulk', '/bulk', priority(5), 'q'),
    ...entry('urgent', '/urgent', priority(1), 'q'),
    ...entry('metered', '/metered', [{ t: 'set', p: 'topic', pt: 'msg', to: 'metered', tot: 'str' }], 'up'),
    { id: 'q', type: 'uplink-offline-queue', z: 'tab', name: 'queue', db: 'uplink/q.db', concurrency: 1, backoffBase: 0.2, backoffCap: 1, statsInterval: 0.2, wires: [['up'], [], []] },
    { id: 'up', type: 'uplink-uploader', z: 'tab', name: 'to s3', backend: 's3', s3: 'cfg', keyTemplate: 'items/{id}.bin', wires: [['q'], ['q']] },
    { id: 'mon', type: 'uplink-monitor', z: 'tab', name: 'watch', minDiskFreeMB: 0, checkEveryS: 1, wires: [[]] },
  ];
}

describe('byte budget of a metered link in a real Node-RED', function () {
  this.timeout(120000);
  let dir;
  let s3;
  const reds = [];
  before(async function () {
    dir = tmpDir();
    s3 = await new S3Server({ buckets: ['metered'] }).start();
  });
  after(async function () {
    for (const r of reds) await r.stop();
    if (s3) await s3.destroy();
    rmrf(dir);
  });

  it('holds ordinary items once the day\'s budget is spent, lets a small urgent one through, waits for an unmetered link, and keeps the count across a restart', async function () {
    const userDir = path.join(dir, 'user');
    fs.mkdirSync(userDir, { recursive: true });
    let red = await startNodeRed({ userDir, flows: [] });
    reds.push(red);
    await deploy(red, flows(s3));
    await until('the flow to start', async () => ({ ok: (await call(`${red.url}/uplink/queue/q/stats`)).status === 200 }));
    const post = (p, body) => call(`${red.url}${p}`, { method: 'POST', text: body });
    const stats = async () => (await call(`${red.url}/uplink/queue/q/stats`)).body;
    const stored = async () => (await s3.list('metered')).length;

    // Four items of 28 KB: the last one starts below 90 % (84 KB) and spends the budget (112 KB of 100 KB).
    for (let i = 0; i < 4; i++) {
      assert.strictEqual((await post('/bulk', 'b'.repeat(28 * KB))).status, 200);
      await until(`item ${i + 1} stored`, async () => ({ ok: (await stored()) === i + 1, value: { stored: await stored(), stats: await stats() } }));
    }
    // The fifth waits, untried, with the reason and the end of the hold in the stats and the status.
    assert.strictEqual((await post('/bulk', 'b'.repeat(28 * KB))).status, 200);
    const held = await until('the fifth item held', async () => {
      const s = await stats();
      return { ok: typeof s.held === 'string' && s.retrying === 1, value: s };
    });
    assert.match(held.held, /^budget: 112 KB of 100 KB today, priority 5 and below held until 00:00$/);
    assert.strictEqual(held.failed, 0);
    // A small urgent item still goes.
    assert.strictEqual((await post('/urgent', 'u'.repeat(500))).status, 200);
    await until('the urgent item stored', async () => ({ ok: (await stored()) === 5, value: await stored() }));
    // A large urgent item waits for an unmetered link, and goes as soon as the flow says the link is unmetered.
    assert.strictEqual((await post('/urgent', 'L'.repeat(250 * KB))).status, 200);
    await until('the large item waiting for an unmetered link', async () => {
      const s = await stats();
      return { ok: /waits for an unmetered link/.test(s.held ?? '') && s.retrying === 2, value: s };
    });
    assert.strictEqual(await stored(), 5);
    assert.strictEqual((await post('/metered', 'false')).status, 200);
    await until('the large item stored once the link is unmetered', async () => ({ ok: (await stored()) === 6, value: await stored() }));
    assert.strictEqual((await stats()).retrying, 1, 'the budget still holds the ordinary item');

    // The monitor shows the day's count against its limit.
    const metrics = (await call(`${red.url}/uplink/metrics`)).text;
    const used = Number(/^uplink_budget_used_bytes\{node="to s3",period="day"\} (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(used >= 4 * 28 * KB + 500 + 250 * KB, `counted ${used}`);
    assert.match(metrics, new RegExp(`^uplink_budget_limit_bytes\\{node="to s3",period="day"\\} ${100 * KB}$`, 'm'));
    const health = (await call(`${red.url}/uplink/health`)).body;
    assert.strictEqual(health.budgets[0].state, 'spent');

    // A restart does not hand out the day's allowance again.
    await red.stop();
    red = await startNodeRed({ userDir });
    reds.push(red);
    assert.strictEqual((await post('/bulk', 'c'.repeat(10 * KB))).status, 200);
    const after = await until('the new item held after the restart', async () => {
      const s = await stats();
      return { ok: typeof s.held === 'string' && s.retrying >= 1, value: s };
    });
    assert.match(after.held, /^budget: \d+ KB of 100 KB today/);
    assert.strictEqual(await stored(), 6);
  });
});
