'use strict';
// The layout's rules, checked so that a later change cannot quietly undo them: lib never imports Node-RED, folders
// depend downwards only, and loading a node loads no native module it does not use.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');

const ROOT = path.join(__dirname, '..');

/** Every .ts file below a folder of the repository. */
function sources(dir) {
  const out = [];
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...sources(rel));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(rel);
  }
  return out;
}

/** The modules a source file imports: package names as written, relative ones resolved to a path below the root. */
function importsOf(file) {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+'([^']+)'/g)].map((m) => m[1]);
  return specs.map((s) => (s.startsWith('.') ? path.normalize(path.join(path.dirname(file), s)) : s));
}

/** The concern a lib path belongs to: lib/queue/store -> queue. */
function concern(p) {
  const parts = p.split(path.sep);
  return parts[0] === 'lib' && parts.length > 2 ? parts[1] : parts[0] === 'lib' ? 'index' : parts[0];
}

// Which lib folders each one may import from. Upload may use the queue's ItemProgress contract, never the reverse.
const ALLOWED = {
  util: [],
  message: ['util'],
  media: ['util'],
  connectivity: ['util', 'message'],
  queue: ['util', 'message'],
  capture: ['util', 'message', 'media'],
  recorder: ['util', 'message', 'media'],
  upload: ['util', 'message', 'queue'],
  // The device monitor reads what the queue and the link report (their stats' types), never the reverse.
  monitor: ['util', 'queue', 'connectivity'],
  // The dashboard widget's view reads what the queue and the connectivity node publish.
  dashboard: ['util', 'message', 'queue', 'connectivity'],
};

describe('layout', function () {
  it('lib never imports Node-RED or express', function () {
    for (const file of sources('lib')) {
      for (const spec of importsOf(file)) {
        assert.ok(!/^(node-red|@node-red\/|express)/.test(spec), `${file} imports ${spec}`);
      }
    }
  });

  it('lib folders depend only on the folders below them', function () {
    const seen = new Set();
    for (const file of sources('lib')) {
      const from = concern(file);
      if (from === 'index') continue;
      assert.ok(from in ALLOWED, `${file} is in a folder the layout does not name (${from})`);
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('lib')) continue;
        const to = concern(spec);
        if (to === from) continue;
        seen.add(`${from}->${to}`);
        assert.ok(ALLOWED[from].includes(to), `${file} imports ${spec}: ${from} must not depend on ${to}`);
      }
    }
    // The rule is not vacuous: the folders do use what is below them.
    for (const edge of ['capture->media', 'recorder->media', 'queue->message', 'upload->queue']) assert.ok(seen.has(edge), `expected ${edge}`);
  });

  it('node files import lib and the shared adapter helpers, never another node', function () {
    for (const file of sources('nodes')) {
      const own = file.split(path.sep)[1];
      for (const spec of importsOf(file)) {
        if (!spec.startsWith('nodes')) continue;
        const other = spec.split(path.sep)[1];
        assert.ok(other === own || other === 'common', `${file} imports ${spec}`);
      }
    }
  });

  it('only the offline-queue node loads the sqlite3 binding', function () {
    const script = (files) => `
      const RED = { nodes: { registerType() {}, createNode() {}, getNode() {} }, settings: {}, events: { once() {}, removeListener() {} },
        auth: { needsPermission: () => (req, res, next) => next() }, httpAdmin: { get() {}, post() {} }, httpNode: { get() {} } };
      for (const f of ${JSON.stringify(files)}) require(f)(RED);
      process.stdout.write(String(Object.keys(require.cache).some((k) => k.includes(require('path').sep + 'sqlite3' + require('path').sep))));`;
    const pkg = require('../package.json');
    const nodeFiles = Object.entries(pkg['node-red'].nodes);
    const others = nodeFiles.filter(([type]) => type !== 'uplink-offline-queue').map(([, f]) => path.join(ROOT, f));
    const queue = nodeFiles.filter(([type]) => type === 'uplink-offline-queue').map(([, f]) => path.join(ROOT, f));
    assert.strictEqual(others.length, nodeFiles.length - 1);
    assert.strictEqual(execFileSync(process.execPath, ['-e', script(others)], { encoding: 'utf8' }), 'false', 'capture, recorder, uploader, connectivity, monitor and the config nodes load without sqlite3 (the outage log loads it when a connectivity node opens one)');
    assert.strictEqual(execFileSync(process.execPath, ['-e', script(queue)], { encoding: 'utf8' }), 'true', 'the queue node does load it');
  });
});
