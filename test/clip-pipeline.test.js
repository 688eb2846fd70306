'use strict';
// The court-camera story end to end in the real Node-RED runtime: a trigger with the session's metadata records a
// clip from a real RTSP camera (GStreamer, digest login), the offline queue holds it, and the uploader stores it in a
// Supabase-protocol server with one row per clip, mapped the way examples/clip-to-supabase.json maps it.
const assert = require('assert');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const helper = require('node-red-node-test-helper');
const captureNode = require('../dist/nodes/capture/capture.js');
const queueNode = require('../dist/nodes/offline-queue/offline-queue.js');
const uploaderNode = require('../dist/nodes/uploader/uploader.js');
const supabaseConfigNode = require('../dist/nodes/supabase-config/supabase-config.js');
const { SupabaseServer } = require('./support/supabase-server');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');
const rtsp = require('./support/rtsp-server');

helper.init(require.resolve('node-red'));

const USER = 'coach';
const PASSWORD = 'court-pass-7';
const EXAMPLE = path.join(__dirname, '..', 'examples', 'clip-to-supabase.json');

describe('a clip on a trigger, through the queue, to Supabase with a row per clip', function () {
  this.timeout(60000);
  let camera;
  let sb;
  let dir;

  before(async function () {
    if (spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status !== 0) {
      console.log('      skipped: ffmpeg is not installed');
      this.skip();
    }
    if (!rtsp.available()) {
      console.log(`      skipped: ${rtsp.unavailableReason()}`);
      this.skip();
    }
    camera = await rtsp.startRtspServer({ user: USER, password: PASSWORD });
  });
  after(async function () {
    if (camera) await camera.close();
  });
  beforeEach(async function () {
    dir = tmpDir('uplink-clip-pipe-');
    sb = new SupabaseServer({ buckets: ['clips'], tables: { clips: { unique: ['clip_url'] } } });
    await sb.start();
    await new Promise((r) => helper.startServer(r));
  });
  afterEach(async function () {
    await helper.unload();
    await new Promise((r) => helper.stopServer(r));
    await sb.stop();
    rmrf(dir);
  });

  it('stores the clip and writes its row: real length, not partial, the session from the trigger, the court from the node', async function () {
    // The example's own nodes, pointed at the test camera, server and folders.
    const example = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8'));
    const cfg = example.find((n) => n.type === 'uplink-supabase-config');
    const cap = example.find((n) => n.type === 'uplink-capture');
    const queue = example.find((n) => n.type === 'uplink-offline-queue');
    const up = example.find((n) => n.type === 'uplink-uploader');
    const flow = [
      { id: 'tab', type: 'tab' },
      { ...cfg, url: sb.url },
      { ...cap, z: 'tab', input: camera.url, clipLength: 2, folder: path.join(dir, 'clips'), minFreeMB: 0, wires: [['q']], id: 'cap' },
      // Without the example's connectivity node the queue starts online.
      { ...queue, z: 'tab', id: 'q', db: path.join(dir, 'q.db'), startOffline: false, wires: [['up'], [], []] },
      { ...up, z: 'tab', id: 'up', wires: [['q', 'done'], ['q']] },
      { id: 'done', type: 'helper', z: 'tab' },
    ];
    const credentials = { [cfg.id]: { key: sb.key }, cap: { username: USER, password: PASSWORD } };
    await helper.load([captureNode, queueNode, uploaderNode, supabaseConfigNode], flow, credentials);
    const uploaded = [];
    helper.getNode('done').on('input', (m) => uploaded.push(m));
    helper.getNode('cap').receive({ payload: 1, metadata: { session: 'S-12' } });

    await waitFor(() => uploaded.length === 1, { timeout: 30000, what: 'the clip uploaded' }).catch((e) => {
      console.log(helper.log().args.map((a) => JSON.stringify(a[0]).slice(0, 300)).join('\n'));
      throw e;
    });
    const m = uploaded[0];
    assert.strictEqual(m.uplink.contentType, 'video/mp4');
    assert.ok(!m.uplink.partial);
    const rows = sb.rows.clips;
    assert.strictEqual(rows.length, 1, JSON.stringify(rows));
    const row = rows[0];
    assert.strictEqual(row.session, 'S-12', 'from the trigger');
    assert.strictEqual(row.arena, 'north', 'from the node');
    assert.strictEqual(row.court, '1');
    assert.strictEqual(row.partial, false);
    assert.ok(Math.abs(row.duration_s - 2) <= 1, `duration ${row.duration_s}`);
    assert.strictEqual(row.camera_name, 'court-1');
    assert.ok(row.clip_url.includes(m.uplink.upload.key), row.clip_url);
    const stored = sb.object('clips', m.uplink.upload.key);
    assert.ok(stored.bytes.equals(fs.readFileSync(m.uplink.file)), 'the stored clip is the file');
    assert.strictEqual(stored.contentType, 'video/mp4');
  });
});
