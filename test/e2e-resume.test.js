'use strict';
// A 50 MB file uploading from a real `node-red` process to a real S3-protocol server; Node-RED is killed with SIGKILL
// halfway. After the restart the upload continues from the parts the store confirmed (kept in the queue's SQLite
// row): the store receives fewer bytes than a fresh upload would send, and the object is byte-identical. The same
// against stores that refuse to list the parts: plain s3rver (405, the server `npm start` embeds) and a key whose
// policy lacks s3:ListMultipartUploadParts (403 AccessDenied); the upload goes on from the parts the row recorded.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { S3Server } = require('./support/s3-server');
const { SupabaseServer } = require('./support/supabase-server');
const { call, until, deploy } = require('./support/http-client');

const MB = 1024 * 1024;

/** Waits (bounded) until a byte counter stops moving: what was in flight when Node-RED died has arrived. */
async function settled(counter) {
  let last = -1;
  for (let i = 0; i < 50 && last !== counter(); i++) {
    last = counter();
    await new Promise((r) => setTimeout(r, 100));
  }
}

function flows(cfg, file, backend = 's3') {
  return [
    { id: 'tab', type: 'tab', label: 'resume' },
    cfg,
    { id: 'in', type: 'http in', z: 'tab', url: '/enqueue', method: 'post', wires: [['set', 'reply']] },
    { id: 'reply', type: 'http response', z: 'tab', statusCode: '200', wires: [] },
    { id: 'set', type: 'change', z: 'tab', rules: [{ t: 'set', p: 'uplink.file', pt: 'msg', to: file, tot: 'str' }, { t: 'delete', p: 'payload', pt: 'msg' }], wires: [['q']] },
    { id: 'q', type: 'uplink-offline-queue', z: 'tab', db: 'uplink/resume.db', concurrency: 2, backoffBase: 0.2, backoffCap: 1, statsInterval: 0.2, wires: [['up'], [], []] },
    { id: 'up', type: 'uplink-uploader', z: 'tab', backend, [backend]: 'cfg', keyTemplate: 'videos/{name}', wires: [['q'], ['q']] },
  ];
}

/** How often the log of a Node-RED process says the store refused to list the parts. */
const refusedProbes = (red) => (red.logs().match(/refused to list the parts/g) || []).length;

const STORES = [
  { label: 'the project\'s S3 test server (with ListParts)', options: {}, probe: 'answered' },
  { label: 'plain s3rver (ListParts answers 405)', options: { multipartExtensions: false }, probe: 'HTTP 405 MethodNotAllowed' },
  { label: 'a key without s3:ListMultipartUploadParts (403 AccessDenied)', options: { refuse: { listParts: 'AccessDenied' } }, probe: 'HTTP 403 AccessDenied' },
];

describe('a large upload survives a SIGKILL of Node-RED and resumes', function () {
  this.timeout(180000);
  let dir;
  const reds = [];
  const servers = [];

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-e2e-resume-'));
  });
  after(async function () {
    for (const r of reds) await r.stop().catch(() => undefined);
    for (const s of servers) await s.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const store of STORES) {
    it(`continues from the confirmed parts after the restart against ${store.label}; the object is byte-identical`, async function () {
      const s3 = await new S3Server({ buckets: ['resume-bucket'], ...store.options }).start();
      servers.push(s3);
      const file = path.join(dir, 'clip.mp4');
      const data = crypto.randomBytes(50 * MB);
      fs.writeFileSync(file, data);
      const userDir = fs.mkdtempSync(path.join(dir, 'user-'));
      const red = await startNodeRed({ userDir, flows: [] });
      reds.push(red);
      // Deployed as the editor does, so the keys land in Node-RED's encrypted credentials.
      // A bandwidth limit keeps the upload going long enough to kill Node-RED in the middle of it.
      const cfg = { id: 'cfg', type: 'uplink-s3-config', name: 'bucket', ...s3.config(), multipartMB: 5, partMB: 5, bandwidthKBps: 8192, concurrency: 2, timeout: 10 };
      const deployed = flows(cfg, file).map((n) => (n.id === 'cfg' ? { ...n, credentials: s3.credentials } : n));
      await deploy(red, deployed);
      await until('the flow to start', async () => ({ ok: (await call(`${red.url}/uplink/queue/q/stats`)).status === 200 }));
      assert.strictEqual((await call(`${red.url}/enqueue`, { method: 'POST', json: {} })).status, 200);

      // Kill it once the store holds more than a third of the file (the progress is in the queue's stats).
      const seen = await until('the upload to pass a third', async () => {
        const s = (await call(`${red.url}/uplink/queue/q/stats`)).body;
        const u = s.uploading && s.uploading[0];
        return { ok: !!u && u.sent > data.length / 3, value: s };
      });
      assert.strictEqual(seen.uploading[0].bytes, data.length);
      assert.ok(seen.uploading[0].percent > 30 && seen.uploading[0].percent < 100, JSON.stringify(seen.uploading));
      await red.kill('SIGKILL');
      assert.strictEqual((await s3.list('resume-bucket')).length, 0, 'not uploaded yet');
      // Bytes still in flight reach the server; then measure what the second run sends.
      await settled(() => s3.bytesReceived);
      const firstRun = s3.bytesReceived;
      assert.ok(firstRun > data.length / 3);

      const again = await startNodeRed({ userDir });
      reds.push(again);
      const s = await until('the upload to complete after the restart', async () => {
        const st = (await call(`${again.url}/uplink/queue/q/stats`)).body;
        // A failed item ends the wait at once: it fails the test below, with the stats that show it.
        return { ok: st.uploaded === 1 || st.failed > 0, value: st };
      }, 120000);
      assert.strictEqual(s.failed, 0, JSON.stringify(s));
      const secondRun = s3.bytesReceived - firstRun;
      assert.ok(secondRun < data.length, `the second run sent ${secondRun} bytes, a fresh upload sends ${data.length}`);
      assert.ok(secondRun <= data.length - 10 * MB, `at least two confirmed parts were not sent again (${secondRun})`);
      assert.ok(s3.bytesReceived <= 1.6 * data.length, `the store received ${s3.bytesReceived} bytes in all for ${data.length}`);
      const got = await s3.get('videos/clip.mp4', 'resume-bucket');
      assert.strictEqual(got.body.length, data.length);
      assert.ok(got.body.equals(data), 'byte-identical');
      assert.deepStrictEqual(s3.openUploads('resume-bucket'), [], 'no multipart upload left open');
      assert.strictEqual(s3.calls.listParts, 1, 'the restarted run asked the store which parts it holds');
      if (store.probe === 'answered') {
        assert.strictEqual(refusedProbes(again), 0);
      } else {
        // Said once in Node-RED's log, with what the store answered; not once per part.
        assert.strictEqual(refusedProbes(again), 1, again.logs());
        assert.match(again.logs(), new RegExp(`\\[warn\\].*refused to list the parts of the multipart upload of videos/clip\\.mp4 \\(${store.probe}\\): continuing from the \\d+ of 10 parts recorded as confirmed`));
      }
      await again.stop();
    });
  }

  it('continues a Supabase resumable (TUS) upload after the restart; the object is byte-identical', async function () {
    const sb = new SupabaseServer({ buckets: ['clips'], maxBytes: 200 * MB });
    await sb.start();
    try {
      const file = path.join(dir, 'match.mp4');
      const data = crypto.randomBytes(50 * MB);
      fs.writeFileSync(file, data);
      const userDir = path.join(dir, 'user-tus');
      fs.mkdirSync(userDir);
      const red = await startNodeRed({ userDir, flows: [] });
      reds.push(red);
      const cfg = { id: 'cfg', type: 'uplink-supabase-config', name: 'project', url: sb.url, bucket: 'clips', concurrency: 2, timeout: 10, bandwidthKBps: 8192 };
      const deployed = flows(cfg, file, 'supabase').map((n) => (n.id === 'cfg' ? { ...n, credentials: { key: sb.key } } : n));
      await deploy(red, deployed);
      await until('the flow to start', async () => ({ ok: (await call(`${red.url}/uplink/queue/q/stats`)).status === 200 }));
      assert.strictEqual((await call(`${red.url}/enqueue`, { method: 'POST', json: {} })).status, 200);
      await until('the upload to pass a third', async () => {
        const s = (await call(`${red.url}/uplink/queue/q/stats`)).body;
        const u = s.uploading && s.uploading[0];
        return { ok: !!u && u.sent > data.length / 3, value: s };
      });
      await red.kill('SIGKILL');
      await settled(() => sb.tusBytesReceived);
      const firstRun = sb.tusBytesReceived;
      assert.ok(firstRun > data.length / 3 && firstRun < data.length, `first run: ${firstRun}`);
      assert.strictEqual(sb.object('clips', 'videos/match.mp4'), undefined, 'not stored yet');

      const again = await startNodeRed({ userDir });
      reds.push(again);
      const s = await until('the upload to complete after the restart', async () => {
        const st = (await call(`${again.url}/uplink/queue/q/stats`)).body;
        return { ok: st.uploaded === 1, value: st };
      }, 120000);
      assert.strictEqual(s.failed, 0);
      const secondRun = sb.tusBytesReceived - firstRun;
      assert.ok(secondRun < data.length, `the second run sent ${secondRun} bytes, a fresh upload sends ${data.length}`);
      assert.ok(secondRun <= data.length - 12 * MB, `at least two confirmed chunks were not sent again (${secondRun})`);
      const stored = sb.object('clips', 'videos/match.mp4');
      assert.ok(stored && stored.bytes.equals(data), 'byte-identical');
      assert.strictEqual(stored.contentType, 'video/mp4');
      await again.stop();
    } finally {
      await sb.stop();
    }
  });
});
