'use strict';
// The Uplink status widget's parts that need no browser: the view it makes from what the nodes publish (lib/dashboard),
// the requests its buttons may make, the watchers the nodes publish through, the node without Dashboard 2.0, and the
// shipped build of its Vue component. The widget in a browser: ui-uplink-status-browser.test.js.
//
// Needs `npm run build` first (it reads dist/).
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const helper = require('node-red-node-test-helper');
const { StatusBoard, errorLine, DEPTH_MAX_SAMPLES, DEPTH_WINDOW_MS, ERRORS_KEPT } = require('../dist/lib/dashboard/board');
const { parseStatusAction, ActionError, MAX_ACTION_IDS } = require('../dist/lib/dashboard/actions');
const { parseStatusWidgetConfig } = require('../dist/lib/dashboard/config');
const { budgetPanel, heldText } = require('../dist/lib/dashboard/budget');
const { targetsFedBy } = require('../dist/lib/dashboard/wiring');
const { TargetBudget, NO_BUDGET } = require('../dist/lib/upload/budget');
const { Watchers } = require('../dist/nodes/common/watch');
const { S3Server } = require('./support/s3-server');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

helper.init(require.resolve('node-red'));

const ROOT = path.join(__dirname, '..');
const UMD = path.join(ROOT, 'resources', 'ui-uplink-status.umd.js');

/**
 * Stats as the queue sends them on output 3, with the given counts.
 * @param {Record<string, any>} [over]
 * @returns {import('../dist/lib/queue/status').QueueStats}
 */
function stats(over = {}) {
  const totals = { enqueued: 0, pending: 0, waiting: 0, leased: 0, done: 0, dead: 0, expired: 0, dropped: 0, ...over.totals };
  return {
    online: true, paused: false, notConfigured: null, notQueued: 0, pending: 0, ready: 0, retrying: 0, inFlight: 0, failed: 0, expired: 0, dropped: 0,
    uploaded: 0, queuedBytes: 0, oldestPendingAgeS: null, throughput: { itemsPerMin: 0, bytesPerSec: 0 },
    concurrency: 4, db: '/data/uplink/queue.db', lastError: null, held: null, uploading: [],
    ...over,
    totals,
  };
}

/**
 * A board on a clock the test moves.
 * @param {import('../dist/lib/dashboard/config').ActionsMode} [actions]
 */
function board(actions = 'permission') {
  const clock = { t: 1_000_000 };
  return { clock, board: new StatusBoard(actions, 50, () => clock.t) };
}

describe('the Uplink status widget', function () {
  describe('its view', function () {
    it('shows the counts the queue\'s stats say, failed and expired together', function () {
      const { board: b } = board();
      b.setStats(stats({ pending: 12, ready: 9, retrying: 3, inFlight: 2, uploaded: 40, failed: 1, expired: 2, queuedBytes: 5000, oldestPendingAgeS: 30 }));
      assert.deepStrictEqual(b.view().counts, { pending: 12, inFlight: 2, uploaded: 40, failed: 3, retrying: 3, queuedBytes: 5000, oldestPendingAgeS: 30 });
      assert.deepStrictEqual(b.view().queue, { running: true, problem: null });
    });

    it('says what keeps it from showing a queue until stats come', function () {
      const { board: b } = board();
      assert.strictEqual(b.view().counts, null);
      b.setProblem('the offline queue picked in this widget is not deployed');
      assert.deepStrictEqual(b.view().queue, { running: false, problem: 'the offline queue picked in this widget is not deployed' });
    });

    it('samples the depth at each change only, over the last half hour, and at most so many samples', function () {
      const { clock, board: b } = board();
      b.setStats(stats({ pending: 1 }));
      clock.t += 1000;
      b.setStats(stats({ pending: 1, uploaded: 1 })); // same depth: no sample
      clock.t += 1000;
      b.setStats(stats({ pending: 2, inFlight: 1 }));
      assert.deepStrictEqual(b.view().depth, [[1_000_000, 1], [1_002_000, 3]]);
      clock.t += DEPTH_WINDOW_MS + 5000;
      b.setStats(stats({ pending: 0 }));
      // The one before the window stays: it is the depth at the window's start.
      assert.deepStrictEqual(b.view().depth.map(([, d]) => d), [3, 0]);
      for (let i = 0; i < DEPTH_MAX_SAMPLES * 2; i++) {
        clock.t += 10;
        b.setStats(stats({ pending: i % 2 }));
      }
      assert.strictEqual(b.view().depth.length, DEPTH_MAX_SAMPLES);
    });

    it('asks for the failed list again only when the failed items may have changed', function () {
      const { board: b } = board();
      assert.strictEqual(b.setStats(stats()), true, 'the first time');
      assert.strictEqual(b.setStats(stats({ pending: 3 })), false);
      assert.strictEqual(b.setStats(stats({ failed: 1, totals: { dead: 1 } })), true);
      // One retried and another failed meanwhile: the same count, a new item.
      assert.strictEqual(b.setStats(stats({ failed: 1, totals: { dead: 2 } })), true);
      assert.strictEqual(b.setStats(stats({ failed: 1, totals: { dead: 2 }, uploaded: 5 })), false);
    });

    it('lists failed items by file name with attempts and last error, never their folders', function () {
      const { board: b } = board();
      /** @type {any[]} failed rows as the queue lists them */
      const rows = [
        { id: 7, state: 'dead', attempts: 10, lastError: 'AccessDenied', kind: 'file', file: '/home/pi/.node-red/uplink/images/gate/a.jpg', bytes: 100, createdAt: 5, doneAt: 9 },
        { id: 8, state: 'expired', attempts: 0, lastError: null, kind: 'inline', file: null, bytes: 20, createdAt: 6, doneAt: null },
      ];
      b.setFailed(rows, 60);
      const v = b.view();
      assert.deepStrictEqual(v.failed.items, [
        { id: 7, state: 'dead', attempts: 10, lastError: 'AccessDenied', name: 'a.jpg', bytes: 100, at: 9 },
        { id: 8, state: 'expired', attempts: 0, lastError: null, name: 'inline item 8', bytes: 20, at: 6 },
      ]);
      assert.strictEqual(v.failed.more, 58);
      assert.deepStrictEqual(b.shownFailedIds(), [7, 8]);
      b.setCapture({ file: '/home/pi/.node-red/uplink/images/gate/b.jpg', contentType: 'image/jpeg', capturedAt: '2026-03-04T05:06:07Z', bytes: 9, width: 4, height: 3 });
      assert.doesNotMatch(JSON.stringify(b.view()), /\/home\/pi/, 'no path of this machine goes to a browser');
      assert.strictEqual(b.view().capture.image, true);
      b.setCapture({ file: '/x/clip.mp4', contentType: 'video/mp4', durationS: 30 });
      assert.strictEqual(b.view().capture.image, false, 'a clip is named, not shown');
    });

    it('takes the link from the connectivity node, and from the queue without one', function () {
      const { clock, board: b } = board();
      b.setStats(stats({ online: false }));
      assert.deepStrictEqual(b.view().link, { state: 'offline', paused: false, since: null, reason: '', latencyMs: null, target: null });
      clock.t += 5000;
      b.setStats(stats({ online: true, paused: true }));
      assert.deepStrictEqual(b.view().link, { state: 'online', paused: true, since: clock.t, reason: '', latencyMs: null, target: null });
      b.setStats(stats({ online: false, notConfigured: 'not configured: set the bucket' }));
      assert.strictEqual(b.view().link.state, 'not-configured');

      b.setLink({ online: null, since: '2026-03-04T05:06:07.000Z', reason: 'starting' });
      assert.strictEqual(b.view().link.state, 'unknown');
      b.setLink({ online: true, since: '2026-03-04T05:06:07.000Z', latency: 23, reason: 'HTTP 403', target: 'HEAD https://s3/x' });
      assert.deepStrictEqual(b.view().link, { state: 'online', paused: false, since: Date.parse('2026-03-04T05:06:07.000Z'), reason: 'HTTP 403', latencyMs: 23, target: 'HEAD https://s3/x' });
      b.setLink({ online: false, configured: false, since: '2026-03-04T05:06:07.000Z', reason: 'not configured: set the bucket' });
      assert.strictEqual(b.view().link.state, 'not-configured');
    });

    it('lists each error once: an upload failure from the uploader, anything else from a Catch node', function () {
      const uploadFailed = { uplink: { ack: false, file: '/d/a.png', error: { class: 'permanent', message: 'access denied' } } };
      assert.strictEqual(errorLine(uploadFailed), 'upload of a.png failed: access denied');
      assert.strictEqual(errorLine({ uplink: { ack: false, item: { id: 4 }, error: { class: 'retryable', message: 'timeout' } } }), 'upload of item 4 will be retried: timeout');
      assert.strictEqual(errorLine({ error: { message: 'access denied', source: { type: 'uplink-uploader', name: 'upload' } } }), null, 'the Catch copy of the same failure');
      assert.strictEqual(errorLine({ error: { message: 'no image within 10 s', source: { type: 'uplink-capture', name: 'camera' } } }), 'camera: no image within 10 s');
      assert.strictEqual(errorLine({ uplink: { ack: true } }), null);
      assert.strictEqual(errorLine({ payload: 'hello' }), null);

      const { clock, board: b } = board();
      for (let i = 0; i < ERRORS_KEPT + 2; i++) {
        clock.t += 1;
        assert.strictEqual(b.noteMessage({ error: { message: `e${i}`, source: { name: 'n' } } }), true);
      }
      assert.deepStrictEqual(b.view().errors.map((e) => e.text), ['n: e6', 'n: e5', 'n: e4', 'n: e3', 'n: e2']);
      b.setStats(stats({ lastError: 'the disk is full' }));
      assert.strictEqual(b.view().errors[0].text, 'queue: the disk is full');
    });
  });

  describe('its budget bars', function () {
    const KB = 1024;
    // 01:00 UTC on 8 Dec 2026: the day resets in 23 h, the month on 1 Jan.
    const NOW = Date.parse('2026-12-08T01:00:00Z');
    /**
     * A target's budget as the uploader's TargetBudget gives it, after `sent` bytes today.
     * @param {Partial<import('../dist/lib/upload/budget').BudgetSettings>} settings
     * @param {number} sent
     */
    const figures = (settings, sent) => {
      const b = new TargetBudget('cfg', { ...NO_BUDGET, timeZone: 'UTC', ...settings }, () => NOW);
      b.count(sent);
      return b.snapshot();
    };

    it('draws a budget with room left as ok, with its percent, its figures and when it resets', function () {
      const p = budgetPanel('bucket', figures({ dailyBytes: 100 * KB }, 45 * KB), NOW);
      assert.deepStrictEqual(p, {
        target: 'bucket',
        state: 'ok',
        bars: [{ period: 'day', label: 'today', used: 45 * KB, limit: 100 * KB, percent: 45, fill: 45, nearAt: 90, state: 'ok', figures: '45 KB of 100 KB', resets: 'resets 00:00 UTC' }],
        held: null,
        unmetered: null,
      });
    });

    it('draws a budget as near from the share its settings say, and names the priorities held', function () {
      const at89 = budgetPanel('bucket', figures({ dailyBytes: 100 * KB }, 89.9 * KB), NOW);
      assert.deepStrictEqual([at89.bars[0].percent, at89.bars[0].state, at89.held], [89, 'ok', null], '89.9 % is not yet near');
      const p = budgetPanel('bucket', figures({ dailyBytes: 100 * KB }, 90 * KB), NOW);
      assert.deepStrictEqual([p.state, p.bars[0].percent, p.bars[0].state], ['near', 90, 'near']);
      assert.strictEqual(p.held, 'priority 3 and higher held · priorities 1–2 still go');
      const early = budgetPanel('bucket', figures({ dailyBytes: 100 * KB, nearShare: 0.5, holdAbovePriority: 1 }, 60 * KB), NOW);
      assert.deepStrictEqual([early.state, early.bars[0].nearAt, early.held], ['near', 50, 'priority 2 and higher held · priority 1 still go']);
    });

    it('draws a spent budget full, with its percent past 100, and says only small urgent items go', function () {
      const p = budgetPanel('bucket', figures({ dailyBytes: 100 * KB }, 112 * KB), NOW);
      assert.deepStrictEqual([p.state, p.bars[0].state, p.bars[0].percent, p.bars[0].fill, p.bars[0].figures], ['spent', 'spent', 112, 100, '112 KB of 100 KB']);
      assert.strictEqual(p.held, 'priority 3 and higher held · priorities 1–2 go up to 1.0 MB');
      assert.strictEqual(heldText('spent', { holdAbovePriority: 2, urgentMaxBytes: 0 }), 'every item held');
      assert.strictEqual(heldText('near', { holdAbovePriority: 0, urgentMaxBytes: 1024 * KB }), 'every item held');
    });

    it('draws a bar for each period, the fuller one deciding, each with its own reset in the budget\'s zone', function () {
      const p = budgetPanel('lte', figures({ dailyBytes: 1000 * KB, monthlyBytes: 400 * KB, timeZone: 'Europe/Berlin' }, 380 * KB), NOW);
      assert.deepStrictEqual(p.bars.map((b) => [b.period, b.label, b.percent, b.state, b.resets]), [
        ['day', 'today', 38, 'ok', 'resets 00:00 CET'],
        ['month', 'this month', 95, 'near', 'resets 1 Jan 00:00 CET'],
      ]);
      assert.strictEqual(p.state, 'near');
      assert.match(p.held, /held/);
      const machine = budgetPanel('lte', figures({ monthlyBytes: 400 * KB, timeZone: '' }, 0), NOW);
      assert.match(machine.bars[0].resets, /^resets 1 Jan \d\d:\d\d$/, 'the machine\'s own zone is not named');
    });

    it('draws nothing for a target without a budget, and says the unmetered-only rule where there is one', function () {
      assert.strictEqual(budgetPanel('bucket', figures({}, 10 * KB), NOW), null);
      const only = budgetPanel('bucket', figures({ unmeteredOnlyFromBytes: 50 * 1024 * KB }, 0), NOW);
      assert.deepStrictEqual([only.bars, only.unmetered, only.held], [[], 'items from 50.0 MB wait for an unmetered link', null]);
      const f = figures({ dailyBytes: 100 * KB, unmeteredOnlyFromBytes: 50 * 1024 * KB }, 0);
      assert.strictEqual(budgetPanel('bucket', { ...f, metered: false }, NOW).unmetered, 'link unmetered: items from 50.0 MB go now');

      const { board: b } = board();
      assert.deepStrictEqual(b.view().budgets, [], 'no source: nothing drawn');
      b.setBudgetSource(() => [
        { target: 'plain', figures: undefined },
        { target: 'no limits', figures: figures({}, 0) },
        { target: 'lte', figures: figures({ dailyBytes: 100 * KB }, 95 * KB) },
      ]);
      assert.deepStrictEqual(b.view().budgets.map((p) => [p.target, p.state, p.bars[0].percent]), [['lte', 'near', 95]]);
      b.setBudgetSource(() => {
        throw new Error('the target closed');
      });
      assert.deepStrictEqual(b.view().budgets, [], 'a source that fails draws nothing and breaks nothing');
    });

    it('finds the targets a queue feeds: through nodes between, through link nodes, each once, not past another queue', function () {
      const flow = [
        { id: 'q', type: 'uplink-offline-queue', wires: [['resize'], ['rejected-up'], ['stats-up']] },
        { id: 'resize', type: 'function', wires: [['up-a'], ['to-b']] },
        { id: 'up-a', type: 'uplink-uploader', backend: 's3', s3: 'cfg-s3', wires: [['q'], ['q']] },
        { id: 'to-b', type: 'link out', mode: 'link', links: ['from-a'], wires: [] },
        { id: 'from-a', type: 'link in', links: ['to-b'], wires: [['up-b', 'up-a2']] },
        { id: 'up-b', type: 'uplink-uploader', backend: 'http', http: 'cfg-http', s3: 'stale-s3', wires: [[], []] },
        { id: 'up-a2', type: 'uplink-uploader', s3: 'cfg-s3', wires: [[], []] },
        { id: 'rejected-up', type: 'uplink-uploader', backend: 's3', s3: 'cfg-rejected', wires: [[], []] },
        { id: 'stats-up', type: 'uplink-uploader', backend: 's3', s3: 'cfg-stats', wires: [[], []] },
      ];
      assert.deepStrictEqual(targetsFedBy('q', flow), [
        { config: 'cfg-s3', uploaders: ['up-a', 'up-a2'] },
        { config: 'cfg-http', uploaders: ['up-b'] },
      ]);
      const chained = [
        { id: 'q1', type: 'uplink-offline-queue', wires: [['q2']] },
        { id: 'q2', type: 'uplink-offline-queue', wires: [['far']] },
        { id: 'far', type: 'uplink-uploader', backend: 's3', s3: 'cfg-far', wires: [] },
        { id: 'off', type: 'uplink-uploader', backend: 's3', s3: 'cfg-off', d: true, wires: [] },
        { id: 'q3', type: 'uplink-offline-queue', wires: [['off']] },
      ];
      assert.deepStrictEqual(targetsFedBy('q1', chained), [], 'the second queue feeds its own uploader');
      assert.deepStrictEqual(targetsFedBy('q3', chained), [], 'a disabled uploader sends nothing');
      assert.deepStrictEqual(targetsFedBy('nope', chained), []);
      // A loop in the flow ends.
      assert.deepStrictEqual(targetsFedBy('q', [{ id: 'q', type: 'uplink-offline-queue', wires: [['a']] }, { id: 'a', type: 'function', wires: [['b']] }, { id: 'b', type: 'function', wires: [['a']] }]), []);
    });
  });

  describe('its buttons\' requests', function () {
    it('are retry or purge, of all failed items or of listed ids', function () {
      assert.deepStrictEqual(parseStatusAction('retry', {}), { command: 'retry-failed' });
      assert.deepStrictEqual(parseStatusAction('purge', undefined), { command: 'purge-failed' });
      assert.deepStrictEqual(parseStatusAction('retry', { ids: [3, 3, 9] }), { command: 'retry-failed', ids: [3, 9] });
    });

    it('refuse everything else, so nothing else reaches the queue', function () {
      const refused = (action, body) => {
        assert.throws(() => parseStatusAction(action, body), (e) => e instanceof ActionError && e.status === 400, `${action} ${JSON.stringify(body)}`);
      };
      refused('pause', {});
      refused('purge-failed', {});
      refused('retry', { ids: [] });
      refused('retry', { ids: 'all' });
      refused('retry', { ids: [0] });
      refused('retry', { ids: [1.5] });
      refused('retry', { ids: ['7'] });
      refused('retry', { ids: ['1; DELETE FROM items'] });
      refused('retry', { ids: Array.from({ length: MAX_ACTION_IDS + 1 }, (_, i) => i + 1) });
    });

    it('are allowed, turned off or hidden by the widget\'s setting; a queue must be picked', function () {
      assert.strictEqual(parseStatusWidgetConfig({ queue: 'q1' }).actions, 'permission');
      assert.strictEqual(parseStatusWidgetConfig({ queue: 'q1', actions: 'hidden' }).actions, 'hidden');
      assert.throws(() => parseStatusWidgetConfig({ queue: 'q1', actions: 'everyone' }), /one of permission, disabled, hidden/);
      assert.throws(() => parseStatusWidgetConfig({ queue: '' }), /pick the offline queue/);
    });
  });

  describe('the watchers nodes publish through', function () {
    it('give a late listener the last value, then each new one, and stop at unsubscribe', function () {
      const w = new Watchers();
      w.publish(1);
      const seen = [];
      const stop = w.watch((v) => seen.push(v));
      w.publish(2);
      stop();
      w.publish(3);
      assert.deepStrictEqual(seen, [1, 2]);
      assert.strictEqual(w.last, 3);
    });

    it('keep a listener that throws from breaking the publisher or the others', function () {
      const w = new Watchers();
      const seen = [];
      w.watch(() => {
        throw new Error('faulty widget');
      });
      w.watch((v) => seen.push(v));
      w.publish('a');
      w.clear();
      w.publish('b');
      assert.deepStrictEqual(seen, ['a']);
    });
  });

  describe('the node', function () {
    beforeEach(function (done) {
      helper.startServer(done);
    });
    afterEach(async function () {
      await helper.unload();
      await new Promise((r) => helper.stopServer(r));
    });

    it('loads without Dashboard 2.0 and says what it needs in its status', async function () {
      const widget = require('../dist/nodes/ui-uplink-status/ui-uplink-status.js');
      await helper.load(widget, [{ id: 'w1', type: 'ui-uplink-status', name: 'status', group: 'no-such-group', queue: 'q1' }]);
      const node = helper.getNode('w1');
      assert.ok(node, 'the node starts');
      const statuses = node.status.getCalls().filter((c) => c.thisValue === node).map((c) => c.args[0]);
      assert.deepStrictEqual(statuses, [{ fill: 'red', shape: 'ring', text: 'needs Dashboard 2.0 and a ui-group' }]);
      const errors = helper.log().args.filter((a) => a[0].level === helper.log().ERROR).map((a) => a[0].msg);
      assert.deepStrictEqual(errors, ['this widget needs Node-RED Dashboard 2.0 (@flowfuse/node-red-dashboard) and a ui-group to show it in']);
    });
  });

  describe('the node, with a budgeted target', function () {
    const KB = 1024;
    let s3;
    let dir;
    before(async function () {
      s3 = await new S3Server({ buckets: ['metered'] }).start();
    });
    after(async function () {
      if (s3) await s3.destroy();
    });
    beforeEach(function (done) {
      dir = tmpDir('uplink-widget-budget-');
      // The budget's ledger lives in the user folder.
      helper.settings({ userDir: dir });
      helper.startServer(done);
    });
    afterEach(async function () {
      await helper.unload();
      await new Promise((r) => helper.stopServer(r));
      helper.settings({});
      rmrf(dir);
    });

    /**
     * A stand-in for Dashboard 2.0's ui-group: the widget API the node uses (register, getBase), recording what the
     * node sends to the browsers.
     * @param {any} RED
     */
    function dashboardGroup(RED) {
      function UiGroup(def) {
        RED.nodes.createNode(this, def);
        const sent = [];
        this.sent = sent;
        this.register = () => undefined;
        const base = { emit: (event, msg) => sent.push({ event, msg }), stores: { data: { save: () => undefined } }, ui: { widgets: new Map() } };
        this.getBase = () => base;
      }
      RED.nodes.registerType('ui-group', UiGroup);
    }

    it('draws the budget of the target the queue\'s uploader sends to, through nodes between, and none for a queue without one', async function () {
      this.timeout(30000);
      const nodes = ['s3-config/s3-config', 'offline-queue/offline-queue', 'uploader/uploader', 'ui-uplink-status/ui-uplink-status'].map((n) => require(`../dist/nodes/${n}.js`));
      const flow = [
        { id: 'tab', type: 'tab', label: 'budget' },
        {
          id: 'cfg', type: 'uplink-s3-config', name: 'metered bucket', ...s3.config(), concurrency: 1, timeout: 5,
          budgetDailyMB: String(100 / 1024), budgetMonthlyMB: '1', budgetTimeZone: 'UTC', budgetNearPercent: 90, budgetHoldAbove: 2, budgetUrgentMaxMB: 1,
        },
        { id: 'plain', type: 'uplink-s3-config', name: 'plain bucket', ...s3.config(), concurrency: 1, timeout: 5 },
        { id: 'q', type: 'uplink-offline-queue', z: 'tab', db: path.join(dir, 'q.db'), concurrency: 1, statsInterval: 0.1, wires: [['between'], [], []] },
        { id: 'between', type: 'function', z: 'tab', func: 'return msg;', outputs: 1, wires: [['up']] },
        { id: 'up', type: 'uplink-uploader', z: 'tab', name: 'to bucket', backend: 's3', s3: 'cfg', keyTemplate: 'items/{id}.bin', wires: [['q'], ['q']] },
        { id: 'q2', type: 'uplink-offline-queue', z: 'tab', db: path.join(dir, 'q2.db'), statsInterval: 0.1, wires: [['up2'], [], []] },
        { id: 'up2', type: 'uplink-uploader', z: 'tab', backend: 's3', s3: 'plain', keyTemplate: 'plain/{id}.bin', wires: [['q2'], ['q2']] },
        { id: 'g', type: 'ui-group', name: 'group' },
        { id: 'w', type: 'ui-uplink-status', z: 'tab', group: 'g', queue: 'q', wires: [] },
        { id: 'w2', type: 'ui-uplink-status', z: 'tab', group: 'g', queue: 'q2', wires: [] },
      ];
      await helper.load([dashboardGroup, ...nodes, require('@node-red/nodes/core/function/10-function.js')], flow, { cfg: s3.credentials, plain: s3.credentials });
      await helper.getNode('q').ready;
      await helper.getNode('q2').ready;
      const group = helper.getNode('g');
      /** @param {string} id @returns {any} the last view the widget sent */
      const lastView = (id) => group.sent.filter((s) => s.event === `msg-input:${id}`).map((s) => s.msg.payload).pop();

      await waitFor(() => lastView('w')?.budgets.length === 1, { what: 'the budget drawn before anything was sent', timeout: 5000 });
      assert.deepStrictEqual(lastView('w').budgets[0].bars.map((b) => [b.period, b.percent, b.state]), [['day', 0, 'ok'], ['month', 0, 'ok']]);

      helper.getNode('q').receive({ payload: Buffer.alloc(92 * KB, 7) });
      await waitFor(() => lastView('w')?.counts?.uploaded === 1 && lastView('w').budgets[0].bars[0].used > 0, { what: 'the upload counted in the widget', timeout: 15000 });
      const sent = helper.getNode('cfg').target.budget.snapshot();
      assert.ok(sent.day.bytes >= 92 * KB, `the budget counted the body: ${sent.day.bytes}`);
      const [panel] = lastView('w').budgets;
      assert.strictEqual(panel.target, 'metered bucket');
      assert.deepStrictEqual(panel.bars.map((b) => [b.period, b.used, b.limit, b.percent, b.state]), [
        ['day', sent.day.bytes, 100 * KB, Math.floor((sent.day.bytes / (100 * KB)) * 100), 'near'],
        ['month', sent.month.bytes, 1024 * KB, Math.floor((sent.month.bytes / (1024 * KB)) * 100), 'ok'],
      ]);
      assert.strictEqual(panel.state, 'near');
      assert.strictEqual(panel.bars[0].resets, 'resets 00:00 UTC');
      assert.strictEqual(panel.held, 'priority 3 and higher held · priorities 1–2 still go');

      await waitFor(() => lastView('w2')?.queue.running, { what: 'the second widget showing its queue', timeout: 5000 });
      assert.deepStrictEqual(lastView('w2').budgets, [], 'a target without a budget: nothing drawn');
    });
  });

  describe('its shipped build', function () {
    it('is what ui/ builds to (rebuild with npm run build:widget)', function () {
      this.timeout(60000);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-widget-'));
      try {
        execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'ui/vite.config.mjs'], {
          cwd: ROOT,
          env: { ...process.env, UPLINK_WIDGET_OUT_DIR: out },
          stdio: 'pipe',
          timeout: 60000,
        });
        const built = fs.readFileSync(path.join(out, 'ui-uplink-status.umd.js'), 'utf8');
        assert.ok(built === fs.readFileSync(UMD, 'utf8'), 'resources/ui-uplink-status.umd.js is out of date: run npm run build:widget and commit it');
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    });

    it('exposes the component package.json names, and leaves Vue to the dashboard\'s page', function () {
      const vm = require('vm');
      const pkg = require('../package.json');
      const entry = pkg['node-red-dashboard-2'].widgets['ui-uplink-status'];
      assert.strictEqual(entry.output, path.basename(UMD));
      // Loaded as Dashboard 2.0 loads it: a script on a page whose window.Vue is the dashboard's own.
      const page = vm.createContext({ Vue: {} });
      vm.runInContext(fs.readFileSync(UMD, 'utf8'), page);
      assert.ok(page['ui-uplink-status'], 'the library global');
      assert.strictEqual(page['ui-uplink-status'][entry.component].name, 'UIUplinkStatus');
      assert.ok(pkg.files.includes('resources/'), 'the build ships');
      // Vue alone is over 100 KB minified: a build this small does not carry a second copy.
      assert.ok(fs.statSync(UMD).size < 64 * 1024, `the build is ${fs.statSync(UMD).size} bytes`);
    });

    it('ships the build and the node, not the sources, in well under 1 MB', function () {
      this.timeout(60000);
      const [packed] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: ROOT, encoding: 'utf8', timeout: 60000 }));
      const files = new Map(packed.files.map((f) => [f.path, f.size]));
      for (const f of ['resources/ui-uplink-status.umd.js', 'dist/nodes/ui-uplink-status/ui-uplink-status.js', 'dist/nodes/ui-uplink-status/ui-uplink-status.html', 'dist/lib/dashboard/board.js']) {
        assert.ok(files.has(f), `${f} is packed`);
      }
      assert.ok(![...files.keys()].some((f) => f.startsWith('ui/')), 'the Vue sources are not packed');
      const widgetBytes = [...files].filter(([f]) => /ui-uplink-status|\/dashboard\/|common\/watch/.test(f)).reduce((sum, [, size]) => sum + size, 0);
      assert.ok(widgetBytes < 200 * 1024, `the widget's files take ${widgetBytes} bytes`);
    });
  });
});
