'use strict';
// The editor html as the build makes it: partials from nodes/common/editor put into each node's html, nothing left to
// include, and the shared editor script defined once however many of our nodes one editor page loads.
//
// Needs `npm run build` first (it reads dist/nodes).
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const vm = require('vm');
const pkg = require('../package.json');
const { expand } = require('../scripts/copy-assets');

const ROOT = path.join(__dirname, '..');
const editors = Object.entries(pkg['node-red'].nodes).map(([type, file]) => ({ type, file: path.join(ROOT, file.replace(/\.js$/, '.html')) }));

/** A stand-in for the editor page: RED that records registerType, and a jQuery that accepts anything. */
function editorPage() {
  const registered = {};
  const anything = () => new Proxy(function () {}, { get: (_t, k) => (k === Symbol.toPrimitive ? () => '' : anything()), apply: () => anything() });
  const RED = {
    nodes: { registerType: (type, def) => (registered[type] = def) },
    validators: { number: () => (v) => v !== '' && !isNaN(Number(v)) },
  };
  const page = vm.createContext({ RED, $: anything() });
  page.window = page;
  return { page, registered };
}

const scriptsOf = (html) => [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]);

describe('editor html', function () {
  it('has every partial put in and no include left', function () {
    for (const { type, file } of editors) {
      const html = fs.readFileSync(file, 'utf8');
      assert.doesNotMatch(html, /<!--\s*include/, `${type}: an include marker is left`);
      assert.match(html, /window\.uplinkEditor =/, `${type}: the shared editor script`);
    }
    const html = (dir) => fs.readFileSync(path.join(ROOT, 'dist', 'nodes', dir, `${dir}.html`), 'utf8');
    for (const dir of ['capture', 'recorder']) {
      for (const id of ['input', 'kind', 'rtspTransport', 'ffmpegPath', 'username', 'password', 'metadata-container']) {
        assert.strictEqual(html(dir).split(`id="node-input-${id}"`).length, 2, `${dir}: one node-input-${id}`);
      }
    }
    for (const dir of ['s3-config', 'supabase-config', 'http-config']) {
      for (const id of ['concurrency', 'timeout', 'bandwidthKBps']) assert.match(html(dir), new RegExp(`id="node-config-input-${id}"`), `${dir}: ${id}`);
    }
    assert.match(html('folder-config'), /id="node-config-input-bandwidthKBps"/);
    assert.ok(!fs.existsSync(path.join(ROOT, 'dist', 'nodes', 'common', 'editor')), 'partials are not shipped on their own');
  });

  it('registers each node from its own html alone', function () {
    for (const { type, file } of editors) {
      const { page, registered } = editorPage();
      for (const code of scriptsOf(fs.readFileSync(file, 'utf8'))) vm.runInContext(code, page);
      assert.ok(registered[type], `${type} is registered`);
    }
  });

  it('defines the shared editor script once when one page loads every node', function () {
    const { page, registered } = editorPage();
    let first;
    for (const { file } of editors) {
      for (const code of scriptsOf(fs.readFileSync(file, 'utf8'))) vm.runInContext(code, page);
      first = first || page.uplinkEditor;
      assert.strictEqual(page.uplinkEditor, first, `${path.basename(file)} kept the first definition`);
    }
    assert.deepStrictEqual(Object.keys(registered).sort(), editors.map((e) => e.type).sort());
    assert.deepStrictEqual(Object.keys(page).sort(), ['$', 'RED', 'uplinkEditor', 'window'], 'no other page globals');
  });

  it('checks metadata rows the same way in the capture node and the recorder', function () {
    const { page, registered } = editorPage();
    for (const { file } of editors) for (const code of scriptsOf(fs.readFileSync(file, 'utf8'))) vm.runInContext(code, page);
    for (const type of ['uplink-capture', 'uplink-recorder']) {
      const valid = registered[type].defaults.metadata.validate;
      assert.strictEqual(valid([{ name: 'site', value: 'barn' }, { name: '', value: '' }]), true, type);
      assert.strictEqual(valid([{ name: '1st', value: 'x' }]), false, `${type}: a name that starts with a digit`);
      assert.strictEqual(valid([{ name: 'a', value: 'x' }, { name: 'a', value: 'y' }]), false, `${type}: a name given twice`);
    }
  });

  it('gives both dashboard widgets the group and size settings and rows, ahead of their own, in the dashboard category', function () {
    const { page, registered } = editorPage();
    for (const { file } of editors) for (const code of scriptsOf(fs.readFileSync(file, 'utf8'))) vm.runInContext(code, page);
    const own = { 'ui-uplink-status': ['queue', 'connectivity', 'capture', 'actions'], 'ui-uplink-live': ['label', 'recorder', 'capture'] };
    for (const [type, fields] of Object.entries(own)) {
      const def = registered[type];
      assert.deepStrictEqual(Object.keys(def.defaults), ['name', 'group', 'order', 'width', 'height', ...fields], type);
      assert.deepStrictEqual(Object.keys(def).slice(0, 3), ['category', 'color', 'defaults'], type);
      assert.strictEqual(def.category, 'dashboard 2', type);
      assert.strictEqual(def.defaults.group.type, 'ui-group', type);
      assert.strictEqual(typeof def.oneditprepare, 'function', type);
      const html = fs.readFileSync(path.join(ROOT, 'dist', 'nodes', type, `${type}.html`), 'utf8');
      for (const id of ['name', 'group', 'width', 'height', 'size']) assert.strictEqual(html.split(`id="node-input-${id}"`).length, 2, `${type}: one node-input-${id}`);
    }
  });

  it('splits a login off a pasted camera URL exactly as the runtime does', function () {
    const { splitUrlLogin } = require('../dist/lib/util/url-login');
    const { page } = editorPage();
    for (const code of scriptsOf(fs.readFileSync(editors.find((e) => e.type === 'uplink-capture').file, 'utf8'))) vm.runInContext(code, page);
    const cases = [
      'http://admin:pass@192.168.1.20/snapshot.jpg',
      `rtsp://${encodeURIComponent('cam user')}:${encodeURIComponent('@:/%#? é')}@10.0.0.2:554/h264?x=1#y`,
      'http://admin:p@ss:w@rd@cam/snap.jpg',
      'http://admin:100%@cam/',
      'rtsp://admin@cam/x',
      'rtsp://admin:@cam/x',
      'http://cam/a@b',
      'http://cam/?mail=a@b',
      '/dev/video0',
      '',
    ];
    for (const url of cases) {
      // Objects made in the editor's context: compared by their JSON.
      assert.deepStrictEqual(JSON.parse(JSON.stringify(page.uplinkEditor.urlLogin.split(url))), splitUrlLogin(url), url);
    }
  });

  describe('the build step', function () {
    let dir;
    beforeEach(function () {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-partials-'));
    });
    afterEach(function () {
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const write = (name, text) => fs.writeFileSync(path.join(dir, name), text);

    it('puts in partials, nested ones too, at the indent of their include line', function () {
      write('outer.html', '<div>\n  <!-- include: inner.html -->\n</div>\n');
      write('inner.html', '<p>one</p>\n<p>two</p>\n');
      write('node.html', '<script type="text/html">\n  <!-- include: outer.html -->\n</script>\n');
      assert.strictEqual(expand(path.join(dir, 'node.html'), dir), '<script type="text/html">\n  <div>\n    <p>one</p>\n    <p>two</p>\n  </div>\n</script>\n');
    });

    it('stops on a missing partial, an include cycle, and a marker that is not a line of its own', function () {
      write('missing.html', '<div></div>\n<!-- include: nowhere.html -->\n');
      assert.throws(() => expand(path.join(dir, 'missing.html'), dir), /missing\.html:2: there is no partial .*nowhere\.html/);
      write('a.html', '<!-- include: b.html -->\n');
      write('b.html', '<!-- include: a.html -->\n');
      assert.throws(() => expand(path.join(dir, 'a.html'), dir), /includes itself/);
      write('inline.html', '<div><!-- include: b.html --></div>\n');
      assert.throws(() => expand(path.join(dir, 'inline.html'), dir), /inline\.html:1: an include must be a line of its own/);
    });
  });
});
