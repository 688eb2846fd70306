'use strict';
// Every flow the package ships (examples/: the editor's Import > Examples, and what `npm start` runs) is
// documentation: it must load in a stock Node-RED with only Node-RED's and Uplink's nodes (a flow that needs another
// package says so in its tab info), contact no address the user has not given it, and read cleanly in the editor.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const helper = require('node-red-node-test-helper');
const pkg = require('../package.json');
const { layoutProblems } = require('./support/flow-geometry');
const { BACKENDS } = require('../dist/lib/upload/registry');
const { parseConnectivityConfig } = require('../dist/lib/connectivity/config');
const { parseCaptureConfig } = require('../dist/lib/capture/config');
const { createSource } = require('../dist/lib/capture/sources/index');
const { parseRecorderConfig } = require('../dist/lib/recorder/config');
const { NotConfiguredError } = require('../dist/lib/util/settings');

helper.init(require.resolve('node-red'));

/** Node-RED's own nodes that shipped flows use, by type: the file that defines each. */
const CORE = {
  inject: 'common/20-inject.js',
  debug: 'common/21-debug.js',
  catch: 'common/25-catch.js',
  comment: 'common/90-comment.js',
  'link in': 'common/60-link.js',
  'link out': 'common/60-link.js',
  function: 'function/10-function.js',
  change: 'function/15-change.js',
  'http in': 'network/21-httpin.js',
  'http response': 'network/21-httpin.js',
  'file in': 'storage/10-file.js',
  switch: 'function/10-switch.js',
  'mqtt out': 'network/10-mqtt.js',
  'mqtt-broker': 'network/10-mqtt.js',
  'http request': 'network/21-httprequest.js',
};

/** Nodes of other packages, each allowed only in the flows whose tab info names the package. */
const DASHBOARD = '@flowfuse/node-red-dashboard';
const GPIO = 'node-red-node-pi-gpio';
const EXTRA = {
  'rpi-gpio in': { module: GPIO, file: 'node-red-node-pi-gpio/36-rpi-gpio.js' },
  ...Object.fromEntries(
    ['ui-base', 'ui-page', 'ui-group', 'ui-theme', 'ui-text', 'ui-template', 'ui-chart', 'ui-button'].map((type) => [
      type,
      { module: DASHBOARD, file: `${DASHBOARD}/${require(`${DASHBOARD}/package.json`)['node-red'].nodes[type]}` },
    ]),
  ),
};
/** The only flows that may need another package, and which. The pipelines themselves need none. */
const NEEDS = { 'capture-to-cloud-dashboard.json': [DASHBOARD], 'capture-on-button.json': [GPIO] };

const ours = Object.fromEntries(Object.entries(pkg['node-red'].nodes).map(([type, file]) => [type, require(path.join('..', file))]));
const EXAMPLES = path.join(__dirname, '..', 'examples');
const files = fs.readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
const read = (f) => JSON.parse(fs.readFileSync(path.join(EXAMPLES, f), 'utf8'));
const NOT_NODES = new Set(['tab', 'group']);

/** The packages a flow's nodes come from, other than Node-RED and Uplink. */
function packagesOf(flow) {
  return [...new Set(flow.filter((n) => EXTRA[n.type]).map((n) => EXTRA[n.type].module))].sort();
}

/**
 * What a node would contact imported into a Node-RED without Uplink's variables (every ${UPLINK_...} left in place),
 * or null: the node's settings parsed as the node parses them at deploy.
 */
function reachesOut(n, flow) {
  const wait = (fn) => {
    try {
      return fn();
    } catch (e) {
      if (e instanceof NotConfiguredError) return null;
      throw e;
    }
  };
  const entry = { 'uplink-s3-config': BACKENDS.s3, 'uplink-supabase-config': BACKENDS.supabase, 'uplink-http-config': BACKENDS.http }[n.type];
  if (entry) {
    const target = wait(() => entry.createTarget(n, {}, { userDir: '/tmp/uplink-user-dir' }));
    if (!target) return null;
    const endpoint = target.backend.endpoint();
    void target.close();
    return endpoint;
  }
  if (n.type === 'uplink-connectivity' && n.probeType !== 'target') {
    const c = wait(() => parseConnectivityConfig(n, { localBase: 'http://127.0.0.1:1880' }));
    if (!c) return null;
    const p = c.probe;
    if (p.kind === 'http') return new URL(p.url).hostname === '127.0.0.1' ? null : p.url;
    return p.kind === 'path' ? null : `${p.kind} ${p.host ?? p.hostname}`;
  }
  if (n.type === 'uplink-capture') {
    const source = wait(() => {
      const c = parseCaptureConfig(n, '/tmp/uplink-user-dir');
      return createSource(c.source, n, {}, c.camera);
    });
    if (!source) return null;
    void source.close();
    return source.kind === 'test-pattern' ? null : `a ${source.kind} camera`;
  }
  if (n.type === 'uplink-recorder') {
    const c = wait(() => parseRecorderConfig(n, {}, '/tmp/uplink-user-dir'));
    return c ? c.source.input : null;
  }
  void flow;
  return null;
}

describe('shipped flows', function () {
  beforeEach(function (done) {
    helper.startServer(done);
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
  });

  it('ships at least one example per non-config node', function () {
    const used = new Set(files.flatMap((f) => read(f).map((n) => n.type)));
    for (const type of Object.keys(ours).filter((t) => !t.endsWith('-config'))) assert.ok(used.has(type), `no example uses ${type}`);
  });

  it('reads flows laid out badly as such (the layout rules can fail)', function () {
    const base = { z: 't', wires: [[]] };
    const a = { ...base, id: 'a', type: 'inject', name: 'a', x: 100, y: 100, wires: [['b']] };
    const b = { ...base, id: 'b', type: 'debug', name: 'b', x: 300, y: 100, wires: [] };
    assert.deepStrictEqual(layoutProblems([a, b]), []);
    assert.match(layoutProblems([a, { ...b, x: 150 }]).join('\n'), /overlap/);
    assert.match(layoutProblems([{ ...a, x: 400 }, b]).join('\n'), /runs backwards/);
    const between = { ...base, id: 'c', type: 'function', name: 'in the way', x: 200, y: 100 };
    assert.match(layoutProblems([{ ...a, x: 60 }, { ...b, x: 380 }, between]).join('\n'), /passes through function "in the way"/);
    const group = { id: 'g', type: 'group', z: 't', name: 'g', nodes: ['a'], x: 0, y: 0, w: 100, h: 100 };
    assert.match(layoutProblems([{ ...a, g: 'g' }, b, group]).join('\n'), /does not hold its nodes/);
    assert.match(layoutProblems([{ ...a, name: '' }, b]).join('\n'), /has no name/);
  });

  it('reads a flow as contacting an address when it would', function () {
    assert.strictEqual(reachesOut({ type: 'uplink-s3-config', bucket: 'my-bucket', region: 'eu-central-1' }), 'https://s3.eu-central-1.amazonaws.com/');
    assert.strictEqual(reachesOut({ type: 'uplink-s3-config', bucket: '${UPLINK_S3_BUCKET}' }), null);
    assert.strictEqual(reachesOut({ type: 'uplink-recorder', input: 'rtsp://192.168.1.64/x' }), 'rtsp://192.168.1.64/x');
    assert.strictEqual(reachesOut({ type: 'uplink-connectivity', probeType: 'http', url: 'https://s3.amazonaws.com/' }), 'https://s3.amazonaws.com/');
    assert.strictEqual(reachesOut({ type: 'uplink-connectivity', probeType: 'http', url: '/uplink-demo/target' }), null);
    assert.strictEqual(reachesOut({ type: 'uplink-capture', source: 'auto', url: '${UPLINK_CAMERA_URL}' }), null);
  });

  for (const file of files) {
    describe(file, function () {
      const flow = read(file);
      const tabs = flow.filter((n) => n.type === 'tab');

      it('is one tab whose info says what it does and what it needs', function () {
        assert.strictEqual(tabs.length, 1, 'one tab');
        const info = tabs[0].info || '';
        assert.match(info, /\*\*Needs/, 'the tab info has a "Needs" paragraph');
        for (const module of packagesOf(flow)) assert.ok(info.includes(module), `the tab info names ${module}, which the flow needs`);
      });

      it('needs nothing but Node-RED and Uplink, unless it is an example of another package', function () {
        assert.deepStrictEqual(packagesOf(flow), NEEDS[file] ?? []);
      });

      it('contacts no address in a Node-RED without Uplink variables', function () {
        const reached = flow.map((n) => [n.id, reachesOut(n, flow)]).filter(([, r]) => r !== null);
        assert.deepStrictEqual(reached, []);
      });

      it('is laid out to be read: left to right, grouped, nothing on anything', function () {
        assert.deepStrictEqual(layoutProblems(flow), []);
        assert.ok(flow.some((n) => n.type === 'group'), 'its nodes are in named groups');
        for (const n of flow.filter((x) => typeof x.x === 'number' && !NOT_NODES.has(x.type))) assert.ok(n.g, `${n.type} "${n.name || n.id}" is in a group`);
      });

      it('uses known types, sound wiring, and loads', async function () {
        const ids = new Set(flow.map((n) => n.id));
        assert.strictEqual(ids.size, flow.length, 'ids are unique');
        for (const n of flow) {
          if (NOT_NODES.has(n.type)) continue;
          assert.ok(CORE[n.type] || EXTRA[n.type] || ours[n.type], `${file}: unknown type ${n.type}`);
          for (const out of n.wires || []) for (const to of out) assert.ok(ids.has(to), `${file}: ${n.id} is wired to missing ${to}`);
          for (const to of n.links || []) assert.ok(ids.has(to), `${file}: link ${n.id} points at missing ${to}`);
          if (n.type === 'link out') for (const to of n.links) assert.ok(flow.find((m) => m.id === to).links.includes(n.id), `${file}: ${to} links back to ${n.id}`);
          const usesTarget = n.type === 'uplink-uploader' || (n.type === 'uplink-connectivity' && n.probeType === 'target');
          if (usesTarget) assert.ok(ids.has(n[n.backend || n.targetType]), `${file}: ${n.id} refers to a missing config node`);
          assert.ok(!JSON.stringify(n).match(/secretAccessKey|"password"\s*:\s*"[^"]/), `${file}: ${n.id} carries a secret`);
        }
        const dbDir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'uplink-flow-'));
        helper.settings({ userDir: dbDir });
        try {
          const modules = [...new Set(Object.values(CORE))].map((p) => require(`@node-red/nodes/core/${p}`));
          const extras = [...new Set(flow.filter((n) => EXTRA[n.type]).map((n) => EXTRA[n.type].file))].map((p) => require(p));
          await helper.load([...modules, ...extras, ...Object.values(ours)], flow);
          for (const n of flow) if (!NOT_NODES.has(n.type)) assert.ok(helper.getNode(n.id), `${file}: ${n.type} ${n.id} did not start`);
        } finally {
          await helper.unload();
          helper.settings({});
          fs.rmSync(dbDir, { recursive: true, force: true });
        }
      });
    });
  }

  it('capture-to-cloud-dashboard is capture-to-cloud plus the dashboard, so they cannot drift apart', function () {
    const main = read('capture-to-cloud.json');
    const dash = read('capture-to-cloud-dashboard.json');
    const twin = (id) => id.replace(/^c2c-/, 'c2cd-');
    const byId = new Map(dash.map((n) => [n.id, n]));
    for (const n of main) {
      const d = byId.get(twin(n.id));
      assert.ok(d, `${n.id} has a twin in the dashboard flow`);
      const same = (o) => {
        const c = JSON.parse(JSON.stringify(o).replace(/"c2cd?-/g, '"ID-'));
        for (const k of ['wires', 'links', 'info', 'label', 'nodes', 'w', 'h', 'x', 'y', 'db']) delete c[k];
        return c;
      };
      assert.deepStrictEqual(same(d), same(n), `${n.id}: the same settings`);
      (n.wires || []).forEach((out, i) => {
        for (const to of out) assert.ok(d.wires[i].includes(twin(to)), `${d.id} output ${i + 1} still goes to ${twin(to)}`);
      });
      for (const to of n.links || []) assert.ok(d.links.includes(twin(to)), `${d.id} still links to ${twin(to)}`);
    }
    assert.notStrictEqual(byId.get('c2cd-queue').db, main.find((n) => n.id === 'c2c-queue').db, 'each has a queue database of its own, so both can be imported');
  });
});
