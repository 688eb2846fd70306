'use strict';
// No orphaned capture: a real `node-red` process runs capture -> offline queue -> uploader (to a folder), and is
// SIGKILLed on its third capture at the exact point where the file is on disk and the queue has not committed it:
// right after the file is linked into place, or as the queue is about to commit (a preload from test/fixtures does
// it, in the test's node-red process only). Started again, the capture is queued once, by its journal, and uploaded:
// every file in the images folder is one item in the queue, delivered, and byte-identical in the target folder.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const { startNodeRed } = require('./support/node-red-process');
const { call, until } = require('./support/http-client');
const { tmpDir, rmrf } = require('./support/tmp');
const { QueueStore } = require('../dist/lib/queue/store');

const KILL = path.join(__dirname, 'fixtures', 'kill-capture.js');
const FFMPEG = '/usr/bin/ffmpeg';

/** The captures in a folder: every file, below any folder, whose name does not start with a dot. */
function captures(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? captures(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

function flow(images, nas, db, mode) {
  const source =
    mode === 'clip'
      ? { source: 'ffmpeg', mode: 'clip', input: 'lavfi:testsrc=size=160x120:rate=10', ffmpegPath: FFMPEG, clipLength: 1, clipMax: 5, timeout: 10 }
      : { source: 'test-pattern', patternWidth: 64, patternHeight: 48 };
  return [
    { id: 'tab', type: 'tab', label: 'crash' },
    { id: 'trigger', type: 'inject', z: 'tab', props: [{ p: 'payload' }], payload: '1', payloadType: 'num', repeat: '', once: false, wires: [['cap']] },
    { id: 'cap', type: 'uplink-capture', z: 'tab', camera: 'gate', folder: images, minFreeMB: 0, ...source, wires: [['q']] },
    { id: 'q', type: 'uplink-offline-queue', z: 'tab', db, wires: [['up'], [], []] },
    { id: 'nas-target', type: 'uplink-folder-config', name: 'NAS', folder: nas, timeout: 60, bandwidthKBps: 0 },
    { id: 'up', type: 'uplink-uploader', z: 'tab', backend: 'folder', folder: 'nas-target', wires: [['q'], ['q']] },
  ];
}

describe('a capture killed between its file and the queue commit', function () {
  this.timeout(180000);
  let dir;
  const reds = [];
  beforeEach(() => (dir = tmpDir('uplink-capture-crash-')));
  afterEach(async () => {
    for (const r of reds.splice(0)) await r.stop().catch(() => undefined);
    rmrf(dir);
  });

  async function stats(red) {
    const s = await call(`${red.url}/uplink/queue/q/stats`);
    if (s.status !== 200) return { ok: false, value: s.status };
    return { ok: true, value: s.body };
  }

  /** Presses the inject button, and waits until the queue has committed `total` items in all. */
  async function captureOne(red, total) {
    const r = await call(`${red.url}/inject/trigger`, { method: 'POST' });
    assert.strictEqual(r.status, 200, r.text);
    await until(`item ${total} committed`, async () => {
      const s = await stats(red);
      return { ok: s.ok && s.value.totals.enqueued === total, value: s.value };
    }, 30000);
  }

  for (const [mode, at] of [
    ['still', 'link'],
    ['still', 'enqueue'],
    ['clip', 'link'],
  ]) {
    it(`queues and uploads a ${mode} killed ${at === 'link' ? 'right after its link into place' : 'as the queue was about to commit it'}, once`, async function () {
      if (mode === 'clip' && spawnSync(FFMPEG, ['-version'], { stdio: 'ignore' }).status !== 0) {
        console.log(`      skipped: ${FFMPEG} is not installed`);
        this.skip();
      }
      const userDir = path.join(dir, 'node-red');
      const images = path.join(dir, 'images');
      const nas = path.join(dir, 'nas');
      const db = path.join(userDir, 'queue.db');
      fs.mkdirSync(nas, { recursive: true });

      const first = await startNodeRed({
        userDir,
        flows: flow(images, nas, db, mode),
        require: [KILL],
        env: { UPLINK_TEST_KILL_AT: at, UPLINK_TEST_KILL_ON: '3', UPLINK_TEST_IMAGES: images },
      });
      reds.push(first);
      await captureOne(first, 1);
      await captureOne(first, 2);
      await call(`${first.url}/inject/trigger`, { method: 'POST' }).catch(() => undefined);
      const exit = await Promise.race([first.exited, new Promise((resolve) => setTimeout(() => resolve(null), 60000))]);
      assert.deepStrictEqual(exit, { code: null, signal: 'SIGKILL' }, `killed at the third capture; output ends:\n${first.logs().slice(-2000)}`);
      assert.strictEqual(captures(images).length, 3, 'the third capture is on disk');

      const second = await startNodeRed({ userDir });
      reds.push(second);
      await until('the third capture queued and every item delivered', async () => {
        const s = await stats(second);
        return { ok: s.ok && s.value.totals.enqueued === 3 && s.value.uploaded === 3, value: s.value };
      }, 60000);
      assert.match(second.logs(), /sent again 1 capture\(s\) the last run wrote but no queue had committed/);
      // And the node goes on capturing as before.
      await captureOne(second, 4);
      await until('the fourth delivered', async () => {
        const s = await stats(second);
        return { ok: s.ok && s.value.uploaded === 4, value: s.value };
      });
      await second.stop();

      const files = captures(images).sort();
      assert.strictEqual(files.length, 4);
      const store = await QueueStore.open(db, {}, { owner: 'the test' });
      let rows;
      try {
        rows = await store.list({ limit: 1000 });
      } finally {
        await store.close();
      }
      assert.deepStrictEqual(rows.map((r) => r.file).sort(), files, 'each capture queued exactly once');
      assert.deepStrictEqual(rows.map((r) => r.state), ['done', 'done', 'done', 'done']);
      for (const file of files) {
        const key = path.relative(images, file);
        assert.ok(fs.readFileSync(path.join(nas, key)).equals(fs.readFileSync(file)), `${key} uploaded byte-identical`);
      }
      assert.strictEqual(captures(nas).length, 4, 'nothing else uploaded');
    });
  }
});
