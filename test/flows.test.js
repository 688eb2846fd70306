'use strict';
// Every flow the package ships (examples/: the editor's Import > Examples, and what `npm start` runs) must load in
// Node-RED with only the types it can have: ours and Node-RED's core nodes, wired to nodes that exist.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const helper = require('node-red-node-test-helper');
const pkg = require('../package.json');

helper.init(require.resolve('node-red'));

const CORE = {
  inject: 'common/20-inject.js',
  debug: 'common/21-debug.js',
  catch: 'common/25-catch.js',
  function: 'function/10-function.js',
  change: 'function/15-change.js',
  'http in': 'network/21-httpin.js',
  'http response': 'network/21-httpin.js',
  'file in': 'storage/10-file.js',
  'rpi-gpio in': 'node-red-node-pi-gpio/36-rpi-gpio.js',
  // The capture-to-cloud dashboard (Dashboard 2.0 is a devDependency: the flow says it needs it installed).
  ...Object.fromEntries(
    ['ui-base', 'ui-page', 'ui-group', 'ui-theme', 'ui-text', 'ui-template', 'ui-chart', 'ui-button'].map((type) => [
      type,
      `@flowfuse/node-red-dashboard/${require('@flowfuse/node-red-dashboard/package.json')['node-red'].nodes[type]}`,
    ]),
  ),
};
const resolveCore = (p) => (/^(node-red-node-pi-gpio|@flowfuse\/node-red-dashboard)\//.test(p) ? require(p) : require(`@node-red/nodes/core/${p}`));
const ours = Object.fromEntries(Object.entries(pkg['node-red'].nodes).map(([type, file]) => [type, require(path.join('..', file))]));

const files = fs
  .readdirSync(path.join(__dirname, '..', 'examples'))
  .filter((f) => f.endsWith('.json'))
  .map((f) => path.join('examples', f));

describe('shipped flows', function () {
  beforeEach(function (done) {
    helper.startServer(done);
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
  });

  it('ships at least one example per non-config node', function () {
    const used = new Set(files.flatMap((f) => JSON.parse(fs.readFileSync(path.join(__dirname, '..', f), 'utf8')).map((n) => n.type)));
    for (const type of Object.keys(ours).filter((t) => !t.endsWith('-config'))) assert.ok(used.has(type), `no example uses ${type}`);
  });

  /**
   * The node as the test loads it: every camera, store and API address points at a closed port on loopback (the
   * examples name real hosts; a test never reaches them), and S3 stores without an endpoint (AWS) get one too.
   */
  function offline(n) {
    const text = JSON.stringify(n).replace(/\b(https?|rtsps?):\/\/(?!127\.0\.0\.1[:/])[^/"\s]+/g, '$1://127.0.0.1:9');
    const out = JSON.parse(text);
    if (out.type === 'uplink-s3-config') Object.assign(out, { endpoint: 'http://127.0.0.1:9', forcePathStyle: true });
    if (out.type === 'uplink-supabase-config' && !/^https?:/.test(out.url || '')) out.url = 'http://127.0.0.1:9';
    return out;
  }

  it('loads examples with every address on loopback', function () {
    const n = offline({ type: 'uplink-recorder', input: 'rtsp://user@192.168.1.64:554/x', url: 'https://abc.supabase.co' });
    assert.strictEqual(n.input, 'rtsp://127.0.0.1:9/x');
    assert.strictEqual(n.url, 'https://127.0.0.1:9');
    assert.strictEqual(offline({ type: 'uplink-s3-config', endpoint: '' }).endpoint, 'http://127.0.0.1:9');
  });

  for (const file of files) {
    it(`${file} uses known types, sound wiring, and loads`, async function () {
      const flow = JSON.parse(fs.readFileSync(path.join(__dirname, '..', file), 'utf8'));
      const ids = new Set(flow.map((n) => n.id));
      assert.strictEqual(ids.size, flow.length, 'ids are unique');
      for (const n of flow) {
        if (n.type === 'tab') continue;
        assert.ok(CORE[n.type] || ours[n.type], `${file}: unknown type ${n.type}`);
        for (const out of n.wires || []) for (const to of out) assert.ok(ids.has(to), `${file}: ${n.id} is wired to missing ${to}`);
        const usesTarget = n.type === 'uplink-uploader' || (n.type === 'uplink-connectivity' && n.probeType === 'target');
        if (usesTarget) {
          const ref = n[n.backend || n.targetType];
          assert.ok(ids.has(ref), `${file}: ${n.id} refers to missing config ${ref}`);
        }
        assert.ok(!JSON.stringify(n).match(/secretAccessKey|"password"\s*:\s*"[^"]/), `${file}: ${n.id} carries a secret`);
      }
      const dbDir = fs.mkdtempSync(path.join(require('os').tmpdir(), 'uplink-flow-'));
      try {
        // Queue databases, images and recordings go to a temp folder instead of the user folder.
        const local = flow.map((n) =>
          offline(
            n.type === 'uplink-offline-queue'
              ? { ...n, db: path.join(dbDir, `${n.id}.db`) }
              : n.type === 'uplink-recorder' || n.type === 'uplink-capture'
                ? { ...n, folder: path.join(dbDir, n.id) }
                : n,
          ),
        );
        const modules = [...new Set(Object.values(CORE))].map(resolveCore);
        await helper.load([...modules, ...Object.values(ours)], local);
        for (const n of local) if (n.type !== 'tab') assert.ok(helper.getNode(n.id), `${file}: ${n.type} ${n.id} did not start`);
      } finally {
        await helper.unload();
        fs.rmSync(dbDir, { recursive: true, force: true });
      }
    });
  }
});
