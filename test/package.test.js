'use strict';
// The Node-RED Flow Library's scorecard (node-red-dev validate) needs its online catalogue, which tests cannot reach;
// these are its checks that can be made here, on package.json and the shipped examples.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const pkg = require('../package.json');

describe('package scorecard', function () {
  it('has a license, a repository, and the node-red keyword (P01, P03, P05)', function () {
    assert.strictEqual(pkg.license, 'Apache-2.0');
    assert.ok(fs.existsSync(path.join(__dirname, '..', 'LICENSE')));
    assert.match(pkg.repository.url, /^https:\/\//);
    assert.ok(pkg.keywords.includes('node-red'));
    assert.match(pkg.name, /^node-red-contrib-/, 'a node-red prefix must be node-red-contrib (P04)');
  });

  it('declares the Node-RED and Node.js versions it works with (P06, P07)', function () {
    assert.strictEqual(pkg['node-red'].version, '>=3.1.0');
    assert.strictEqual(pkg.engines.node, '>=20');
    assert.ok(Number(process.versions.node.split('.')[0]) >= 20, `this Node ${process.versions.node}`);
  });

  it('keeps its runtime dependencies few, and Node-RED and the dashboard out of them (D01)', function () {
    const deps = Object.keys(pkg.dependencies);
    assert.ok(deps.length <= 6, `at most 6 dependencies (has ${deps.length}: ${deps.join(', ')})`);
    for (const heavy of ['node-red', '@flowfuse/node-red-dashboard', 's3rver']) assert.ok(!deps.includes(heavy), `${heavy} is not a runtime dependency`);
    // Resizing stills is optional: where sharp's prebuilt binaries do not install, every node still does.
    assert.deepStrictEqual(Object.keys(pkg.optionalDependencies || {}), ['sharp']);
  });

  it('ships its built nodes, each with its editor file and an example (N02)', function () {
    assert.ok(pkg.files.includes('dist/') && pkg.files.includes('examples/'));
    const examples = fs.readdirSync(path.join(__dirname, '..', 'examples')).filter((f) => f.endsWith('.json')).flatMap((f) => JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'examples', f), 'utf8')));
    const used = new Set(examples.map((n) => n.type));
    for (const [type, file] of Object.entries(pkg['node-red'].nodes)) {
      assert.match(file, /^dist\//);
      assert.ok(fs.existsSync(path.join(__dirname, '..', file)), `${file} is built`);
      assert.ok(fs.existsSync(path.join(__dirname, '..', file.replace(/\.js$/, '.html'))), `${type} has its editor file beside it`);
      if (!type.endsWith('-config')) assert.ok(used.has(type), `an example uses ${type}`);
    }
  });

  it('has a main entry that loads and exports the logic for scripts', function () {
    const main = require(path.join(__dirname, '..'));
    for (const name of ['OfflineQueue', 'QueueStore', 'parseQueueConfig', 'Uploader', 'UploadTarget', 'ConnectivityMonitor', 'Capturer', 'Recorder', 'readUplink']) {
      assert.strictEqual(typeof main[name], 'function', `exports ${name}`);
    }
    assert.deepStrictEqual(Object.keys(main.BACKENDS).sort(), ['folder', 'http', 's3', 'supabase']);
    assert.ok(fs.existsSync(path.join(__dirname, '..', pkg.types)), 'with its type declarations');
  });
});
