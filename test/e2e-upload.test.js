'use strict';
// Queue and uploader inside a real `node-red` process, uploading to a real S3-protocol server, with the S3 keys
// deployed the way the editor deploys them: they must land in Node-RED's encrypted credentials (which needs the
// runtime registration to declare them; the test helper does not check that) and survive a restart.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { S3Server } = require('./support/s3-server');
const { call, until } = require('./support/http-client');

const SECRET = 'S3RVER';

function flows(s3) {
  return [
    { id: 'tab', type: 'tab', label: 'upload' },
    { id: 'cfg', type: 'uplink-s3-config', name: 'bucket', ...s3.config(), concurrency: 2, timeout: 5 },
    { id: 'in', type: 'http in', z: 'tab', url: '/enqueue', method: 'post', wires: [['q', 'reply']] },
    { id: 'reply', type: 'http response', z: 'tab', statusCode: '200', wires: [] },
    { id: 'q', type: 'uplink-offline-queue', z: 'tab', db: 'uplink/e2e-upload.db', concurrency: 2, backoffBase: 0.2, backoffCap: 1, statsInterval: 0.2, wires: [['up'], [], []] },
    { id: 'up', type: 'uplink-uploader', z: 'tab', backend: 's3', s3: 'cfg', keyTemplate: 'e2e/{id}.{ext}', wires: [['q'], ['q']] },
  ];
}

describe('queue and uploader in a real Node-RED process, to a real S3-protocol server', function () {
  this.timeout(90000);
  let s3;
  let userDir;
  const reds = [];

  before(async function () {
    s3 = await new S3Server({ buckets: ['e2e-bucket'] }).start();
    userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-e2e-upload-'));
  });
  after(async function () {
    for (const r of reds) await r.stop().catch(() => undefined);
    await s3.destroy();
    fs.rmSync(userDir, { recursive: true, force: true });
  });

  async function stats(red) {
    const r = await call(`${red.url}/uplink/queue/q/stats`);
    assert.strictEqual(r.status, 200, r.text);
    return r.body;
  }

  it('keeps the S3 secret in encrypted credentials, uploads, and still uploads after a restart', async function () {
    const red = await startNodeRed({ userDir, flows: [] });
    reds.push(red);
    // Deploy as the editor does: credentials travel inside the node, once.
    const deployed = flows(s3).map((n) => (n.id === 'cfg' ? { ...n, credentials: { accessKeyId: SECRET, secretAccessKey: SECRET } } : n));
    const d = await call(`${red.url}/flows`, { method: 'POST', json: deployed, headers: { 'Node-RED-Deployment-Type': 'full' } });
    assert.strictEqual(d.status, 204, d.text);
    // The deploy answers before the new flows have started: wait until the queue node answers.
    await until('the deployed flow to start', async () => {
      const r = await call(`${red.url}/uplink/queue/q/stats`);
      return { ok: r.status === 200, value: r.text };
    });

    for (let i = 0; i < 5; i++) assert.strictEqual((await call(`${red.url}/enqueue`, { method: 'POST', json: { n: i } })).status, 200);
    await until('5 uploaded', async () => {
      const s = await stats(red);
      return { ok: s.uploaded === 5, value: s };
    });
    assert.strictEqual((await s3.list()).length, 5);

    const flowText = fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8');
    assert.ok(!flowText.includes(SECRET), 'the secret is not in flows.json');
    const credText = fs.readFileSync(path.join(userDir, 'flows_cred.json'), 'utf8');
    assert.ok(!credText.includes(SECRET), 'flows_cred.json holds it encrypted, not in clear');
    const editorView = await call(`${red.url}/flows`);
    const cfg = editorView.body.find((n) => n.id === 'cfg');
    assert.ok(!JSON.stringify(cfg).includes(SECRET) || !('secretAccessKey' in (cfg.credentials || {})), 'the editor API does not hand out the secret');
    const logText = red.logs();
    assert.ok(!logText.includes(`secretAccessKey":"${SECRET}`), 'the secret is not logged');

    await red.stop();
    const again = await startNodeRed({ userDir });
    reds.push(again);
    await until('the restarted flow to start', async () => {
      const r = await call(`${again.url}/uplink/queue/q/stats`);
      return { ok: r.status === 200, value: r.text };
    });
    for (let i = 5; i < 8; i++) assert.strictEqual((await call(`${again.url}/enqueue`, { method: 'POST', json: { n: i } })).status, 200);
    const s = await until('3 more uploaded after the restart', async () => {
      const st = await stats(again);
      return { ok: st.uploaded === 8 && st.pending === 0, value: st };
    });
    assert.strictEqual(s.failed, 0, 'no item failed: the restored credentials were accepted');
    const objects = await s3.list();
    assert.strictEqual(objects.length, 8);
    const one = await s3.get(objects[0].key);
    assert.strictEqual(one.contentType, 'application/json');
  });
});
