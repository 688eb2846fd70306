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
const { Watchers } = require('../dist/nodes/common/watch');

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
