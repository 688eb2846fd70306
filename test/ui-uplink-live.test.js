'use strict';
// The live camera widget's parts that need no browser: the view it sends (lib/dashboard/live), the node inside the
// Node-RED runtime with a real recorder and a real capture node (which recorder it plays, the still it serves and what
// it refuses), and the shipped build of its Vue component with HLS.js. The widget in a browser, against a real RTSP
// camera: ui-uplink-live-browser.test.js.
//
// Needs `npm run build` first (it reads dist/).
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const helper = require('node-red-node-test-helper');
const request = require('supertest');
const { liveView, livePaths, parseLiveWidgetConfig, stillToShow, stillCaption } = require('../dist/lib/dashboard/live');
const { liveSlug } = require('../dist/lib/recorder/config');

helper.init(require.resolve('node-red'));

const ROOT = path.join(__dirname, '..');
const UMD = path.join(ROOT, 'resources', 'ui-uplink-live.umd.js');

/**
 * A ui-group as Dashboard 2.0's offers itself to widgets (register, getBase), recording what the widget sends to the
 * browsers; and the HTTP node server of the runtime it is loaded into.
 */
const dashboard = { sent: [], app: null };
function fakeDashboardGroup(RED) {
  dashboard.app = RED.httpNode;
  function UiGroup(n) {
    RED.nodes.createNode(this, n);
    const base = {
      emit: (event, msg) => dashboard.sent.push({ event, msg }),
      stores: { data: { save: () => undefined } },
      ui: { widgets: new Map() },
    };
    this.register = () => undefined;
    this.getBase = () => base;
  }
  RED.nodes.registerType('ui-group', UiGroup);
}

describe('the live camera widget', function () {
  describe('its view', function () {
    it('says where to play from, below httpNodeRoot, as the recorder serves its live view', function () {
      const slug = liveSlug('Gate Camera #1');
      assert.deepStrictEqual(livePaths(slug), { playlist: `uplink/live/${slug}/index.m3u8`, status: `uplink/live/${slug}/status` });
      const v = liveView({ slug, camera: 'Gate Camera #1' }, undefined, 5);
      assert.deepStrictEqual(v, { at: 5, camera: 'Gate Camera #1', playlist: `uplink/live/${slug}/index.m3u8`, status: `uplink/live/${slug}/status`, problem: null, still: null });
    });

    it('says why there is nothing to play', function () {
      assert.strictEqual(liveView(null, undefined).problem, 'the recorder picked in this widget is not deployed');
      const v = liveView({ camera: 'gate', problem: 'the recorder is waiting (not configured: set the camera input)' }, undefined);
      assert.deepStrictEqual([v.playlist, v.status, v.problem], [null, null, 'the recorder is waiting (not configured: set the camera input)']);
    });

    it('names the still by its file name, never its folder, and shows images only', function () {
      const u = { file: '/home/pi/.node-red/uplink/images/gate/still_1.jpg', contentType: 'image/jpeg', capturedAt: '2026-03-04T05:06:07Z', width: 640, height: 360 };
      const v = liveView({ slug: 'gate' }, u);
      assert.deepStrictEqual(v.still, { name: 'still_1.jpg', capturedAt: '2026-03-04T05:06:07Z', width: 640, height: 360 });
      assert.doesNotMatch(JSON.stringify(v), /\/home\/pi/);
      assert.strictEqual(liveView({ slug: 'gate' }, { file: '/x/clip.mp4', contentType: 'video/mp4' }).still, null, 'a clip is no still');
    });

    describe('the still it shows while the stream is not up', function () {
      const status = (at) => ({ state: 'waiting', lastFrameAt: at, still: `uplink/live/gate/still.jpg?v=${Date.parse(at)}` });
      const capture = (at) => ({ name: 'still_2.jpg', capturedAt: at, width: 1280, height: 720 });
      const clock = (t) => new Date(t).toISOString().slice(11, 19);

      it('the live view\'s last frame when it is newer than the capture', function () {
        const c = stillToShow(status('2026-03-04T05:06:09Z'), capture('2026-03-04T05:06:07Z'), 'w1');
        assert.deepStrictEqual(c, { kind: 'frame', path: `uplink/live/gate/still.jpg?v=${Date.parse('2026-03-04T05:06:09Z')}`, at: Date.parse('2026-03-04T05:06:09Z'), label: 'last frame', name: null, width: null, height: null });
        assert.strictEqual(stillCaption(c, clock), 'last frame 05:06:09');
      });

      it('the capture node\'s image when it is newer, served by the widget node by its id', function () {
        const c = stillToShow(status('2026-03-04T05:06:07Z'), capture('2026-03-04T05:06:09Z'), 'w 1');
        assert.deepStrictEqual(c, { kind: 'capture', path: 'uplink-live/w%201/still?v=2026-03-04T05%3A06%3A09Z', at: Date.parse('2026-03-04T05:06:09Z'), label: 'last capture', name: 'still_2.jpg', width: 1280, height: 720 });
        assert.strictEqual(stillCaption(c, clock), 'last capture 05:06:09');
      });

      it('the frame on a tie, and over a capture whose time is not known', function () {
        assert.strictEqual(stillToShow(status('2026-03-04T05:06:07Z'), capture('2026-03-04T05:06:07Z'), 'w1').kind, 'frame');
        assert.strictEqual(stillToShow(status('2026-03-04T05:06:07Z'), { ...capture(null), capturedAt: null }, 'w1').kind, 'frame');
      });

      it('the only one there is', function () {
        assert.strictEqual(stillToShow(status('2026-03-04T05:06:07Z'), null, 'w1').kind, 'frame');
        assert.strictEqual(stillToShow(null, capture('2026-03-04T05:06:07Z'), 'w1').kind, 'capture');
        // A live view with no fragment yet (no lastFrameAt, no still) leaves the capture.
        assert.strictEqual(stillToShow({ state: 'waiting', viewers: 0 }, capture('2026-03-04T05:06:07Z'), 'w1').kind, 'capture');
        // A capture with no time: named by its file.
        const unknown = stillToShow(undefined, { name: 'still_3.jpg', capturedAt: null, width: null, height: null }, 'w1');
        assert.strictEqual(stillCaption(unknown, clock), 'last capture still_3.jpg');
        assert.strictEqual(unknown.path, 'uplink-live/w1/still?v=still_3.jpg');
      });

      it('none when there is neither, and a caption that says so', function () {
        assert.strictEqual(stillToShow(null, null, 'w1'), null);
        assert.strictEqual(stillToShow({ state: 'waiting' }, undefined, 'w1'), null);
        assert.strictEqual(stillToShow({ lastFrameAt: 'not a time', still: 'uplink/live/gate/still.jpg?v=1' }, null, 'w1'), null, 'a frame whose time cannot be read');
        assert.strictEqual(stillToShow({ lastFrameAt: '2026-03-04T05:06:07Z' }, null, 'w1'), null, 'a time with no picture');
        assert.strictEqual(stillCaption(null, clock), 'no picture yet');
      });

      it('keeps the frame\'s path below httpNodeRoot (no leading slash), as the status gives it', function () {
        assert.strictEqual(stillToShow({ lastFrameAt: '2026-03-04T05:06:07Z', still: '/uplink/live/gate/still.jpg?v=3' }, null, 'w1').path, 'uplink/live/gate/still.jpg?v=3');
      });
    });

    it('needs a recorder picked', function () {
      assert.deepStrictEqual(parseLiveWidgetConfig({ recorder: 'r1' }), { recorder: 'r1', capture: '' });
      assert.throws(() => parseLiveWidgetConfig({ recorder: '' }), /pick the recorder/);
    });
  });

  describe('the node, with a real recorder and capture node', function () {
    let dir;
    beforeEach(function (done) {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-live-widget-'));
      dashboard.sent = [];
      helper.settings({ userDir: dir });
      helper.startServer(done);
    });
    afterEach(async function () {
      await helper.unload();
      helper.settings({});
      await new Promise((r) => helper.stopServer(r));
      fs.rmSync(dir, { recursive: true, force: true });
    });

    const recorder = (over = {}) => ({
      id: 'rec', type: 'uplink-recorder', name: 'gate camera', camera: 'Gate Cam', input: 'lavfi:testsrc=size=160x120:rate=10', segmentSeconds: 2,
      folder: path.join(dir, 'rec'), budget: 0, keepFreeMB: 0, autoStart: false, liveView: true, wires: [[], []], ...over,
    });
    const flow = (rec) => [
      { id: 'grp', type: 'ui-group', name: 'g' },
      rec,
      { id: 'cap', type: 'uplink-capture', name: 'still', camera: 'gate', source: 'test-pattern', patternWidth: 160, patternHeight: 90, folder: path.join(dir, 'images'), minFreeMB: 0, wires: [[]] },
      { id: 'w1', type: 'ui-uplink-live', name: 'live', group: 'grp', recorder: 'rec', capture: 'cap' },
    ];
    const load = async (f) => {
      await helper.load([fakeDashboardGroup, require('../dist/nodes/recorder/recorder.js'), require('../dist/nodes/capture/capture.js'), require('../dist/nodes/ui-uplink-live/ui-uplink-live.js')], f);
      helper._events.emit('flows:started');
    };
    const lastView = () => {
      const sent = dashboard.sent.filter((s) => s.event === 'msg-input:w1');
      return sent.length ? sent[sent.length - 1].msg.payload : null;
    };
    async function until(what, test, timeoutMs = 10000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const v = test();
        if (v) return v;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    it('finds the recorder\'s live view, serves no still before a capture and the image after one, and refuses paths', async function () {
      this.timeout(20000);
      await load(flow(recorder()));
      const view = await until('a view', lastView);
      assert.deepStrictEqual([view.camera, view.playlist, view.status, view.problem, view.still], ['Gate Cam', 'uplink/live/gate-cam/index.m3u8', 'uplink/live/gate-cam/status', null, null]);
      assert.deepStrictEqual(helper.getNode('rec').liveSlug, 'gate-cam');

      const app = dashboard.app;
      await request(app).get('/uplink-live/w1/still').expect(404);

      helper.getNode('cap').receive({ payload: 'go' });
      const withStill = await until('the still in the view', () => lastView()?.still && lastView());
      assert.match(withStill.still.name, /\.png$/);
      assert.doesNotMatch(JSON.stringify(withStill), new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no folder of this machine reaches a browser');
      const r = await request(app).get('/uplink-live/w1/still').buffer(true).parse((res, cb) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      }).expect(200);
      assert.strictEqual(r.headers['content-type'], 'image/png');
      assert.strictEqual(r.headers['cache-control'], 'no-store');
      assert.ok(r.body.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'a PNG');

      // The file is the one the capture node reported: nothing the browser sends names another.
      const same = await request(app).get('/uplink-live/w1/still?file=/etc/passwd&path=../../etc/passwd').buffer(true).parse((res, cb) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => cb(null, Buffer.concat(chunks)));
      }).expect(200);
      assert.ok(same.body.equals(r.body), 'the same still, whatever the query says');
      await request(app).get('/uplink-live/..%2F..%2F..%2Fetc%2Fpasswd/still').expect(404);
      await request(app).get('/uplink-live/%2Fetc%2Fpasswd/still').expect(404);
      await request(app).get('/uplink-live/cap/still').expect(404, '', 'the capture node is not a widget');
      await request(app).get('/uplink-live/rec/still').expect(404);
    });

    it('says why there is no live view: the recorder\'s live view off, the recorder waiting, no such recorder', async function () {
      this.timeout(20000);
      await load(flow(recorder({ liveView: false })));
      let view = await until('a view', lastView);
      assert.strictEqual(view.playlist, null);
      assert.match(view.problem, /live view is off/);
      await helper.unload();
      dashboard.sent = [];

      await load(flow(recorder({ input: '' })));
      view = await until('a view', lastView);
      assert.strictEqual(view.playlist, null);
      assert.match(view.problem, /the recorder is waiting \(not configured: set the camera input\)/);
      await helper.unload();
      dashboard.sent = [];

      await load(flow(recorder()).map((n) => (n.id === 'w1' ? { ...n, recorder: 'cap' } : n)));
      view = await until('a view', lastView);
      assert.strictEqual(view.problem, 'the recorder picked in this widget is not deployed');
    });

    it('loads without Dashboard 2.0 and says what it needs in its status', async function () {
      await helper.load(require('../dist/nodes/ui-uplink-live/ui-uplink-live.js'), [{ id: 'w1', type: 'ui-uplink-live', name: 'live', group: 'no-such-group', recorder: 'r' }]);
      const node = helper.getNode('w1');
      const statuses = node.status.getCalls().filter((c) => c.thisValue === node).map((c) => c.args[0]);
      assert.deepStrictEqual(statuses, [{ fill: 'red', shape: 'ring', text: 'needs Dashboard 2.0 and a ui-group' }]);
    });
  });

  describe('its shipped build', function () {
    it('is what ui/ builds to (rebuild with npm run build:widget)', function () {
      this.timeout(120000);
      const out = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-live-widget-'));
      try {
        execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'ui/vite.live.config.mjs'], {
          cwd: ROOT,
          env: { ...process.env, UPLINK_WIDGET_OUT_DIR: out },
          stdio: 'pipe',
          timeout: 120000,
        });
        const built = fs.readFileSync(path.join(out, 'ui-uplink-live.umd.js'), 'utf8');
        assert.ok(built === fs.readFileSync(UMD, 'utf8'), 'resources/ui-uplink-live.umd.js is out of date: run npm run build:widget and commit it');
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
      }
    });

    it('bundles the still\'s choice from lib/dashboard/live.ts, which imports nothing a browser lacks', function () {
      const { builtinModules } = require('module');
      const source = fs.readFileSync(path.join(ROOT, 'lib', 'dashboard', 'live.ts'), 'utf8');
      const imports = [...source.matchAll(/^import\s+(type\s+)?[^'"]*from\s+'([^']+)'/gm)].filter((m) => !m[1]).map((m) => m[2]);
      assert.ok(imports.length > 0, 'the imports were read');
      for (const spec of imports) {
        assert.ok(spec.startsWith('.') && !builtinModules.includes(spec.replace(/^node:/, '')), `lib/dashboard/live.ts imports ${spec}`);
        const file = path.join(ROOT, 'lib', 'dashboard', `${spec}.ts`);
        assert.doesNotMatch(fs.readFileSync(file, 'utf8'), /^import\s+(?!type\s)/m, `${spec} imports at run time`);
      }
      assert.match(fs.readFileSync(path.join(ROOT, 'ui', 'components', 'UIUplinkLive.vue'), 'utf8'), /from '\.\.\/\.\.\/lib\/dashboard\/live'/);
      assert.match(fs.readFileSync(UMD, 'utf8'), /label:`last frame`/, 'the choice is in the build');
    });

    it('npm run build:widget builds both widgets', function () {
      /** @type {{ scripts: Record<string, string> }} */
      const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
      const script = pkg.scripts['build:widget'];
      assert.match(script, /--config ui\/vite\.config\.mjs/);
      assert.match(script, /--config ui\/vite\.live\.config\.mjs/);
    });

    it('exposes the component package.json names, carries HLS.js and its license, and leaves Vue to the page', function () {
      const vm = require('vm');
      const pkg = require('../package.json');
      const entry = pkg['node-red-dashboard-2'].widgets['ui-uplink-live'];
      assert.strictEqual(entry.output, path.basename(UMD));
      const text = fs.readFileSync(UMD, 'utf8');
      const hls = require('hls.js/package.json');
      assert.ok(text.startsWith('/*!'), 'the license notice heads the file');
      assert.ok(text.includes(`${hls.name} ${hls.version} (Apache-2.0)`) && text.includes('Copyright (c) 2017 Dailymotion'), 'HLS.js\'s license notice');
      assert.doesNotMatch(text, /cdn\.jsdelivr|unpkg\.com|cdnjs/, 'nothing fetched from a CDN');
      // Loaded as Dashboard 2.0 loads it: a script on a page whose window.Vue is the dashboard's own.
      const page = vm.createContext({ Vue: {}, self: {}, navigator: { userAgent: 'node' } });
      vm.runInContext(text, page);
      assert.strictEqual(page['ui-uplink-live'][entry.component].name, 'UIUplinkLive');
      assert.ok(fs.statSync(UMD).size < 512 * 1024, `the build is ${fs.statSync(UMD).size} bytes`);
    });
  });
});
