'use strict';
// The device monitor in a real `node-red` process, on 127.0.0.1 only: a capture, queue, uploader and connectivity
// pipeline to a local folder target, watched through GET /uplink/health and /uplink/metrics behind httpNodeAuth. The
// target goes away (its folder is moved) and comes back; a camera with a login starts failing. Health answers 503
// while the device is unhealthy and 200 again after; alerts are written once per episode; no answer holds the
// camera's password; the outage log outlives a kill -9 and the CLI reads it.
//
// Needs `npm run build` first.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { startNodeRed, PACKAGE_DIR } = require('./support/node-red-process');
const { call, until, deploy } = require('./support/http-client');
const { tmpDir, rmrf } = require('./support/tmp');

const SECRET = 'door-pass-7Q2x';
const USER = 'watcher';
const PASS = 'look-but-dont-touch';
const bcrypt = require(require.resolve('bcryptjs', { paths: [path.dirname(require.resolve('node-red'))] }));

/** `outbox`: an absolute folder, which the uploader never creates (a mount point): moving it away is an outage. */
function flows(outbox) {
  return [
    { id: 'tab', type: 'tab', label: 'watched' },
    { id: 'outbox-cfg', type: 'uplink-folder-config', name: 'outbox', folder: outbox, timeout: 10 },
    { id: 'tick', type: 'inject', z: 'tab', repeat: '0.5', once: true, onceDelay: '0.2', topic: '', payload: '', payloadType: 'date', wires: [['cap']] },
    { id: 'cap', type: 'uplink-capture', z: 'tab', name: 'yard cam', camera: 'yard', source: 'test-pattern', patternWidth: 64, patternHeight: 48, folder: 'images', minFreeMB: 0, minInterval: 0.2, wires: [['q']] },
    // (Ids differ from every setting's value: Node-RED takes a value equal to a node id for a reference.)
    // A camera whose login is in the credentials: it answers nothing (port 9 on loopback), so each capture fails.
    { id: 'door-in', type: 'http in', z: 'tab', url: '/door', method: 'post', wires: [['door-cap', 'door-ok']] },
    { id: 'door-ok', type: 'http response', z: 'tab', statusCode: '200', wires: [] },
    {
      id: 'door-cap', type: 'uplink-capture', z: 'tab', name: 'door cam', camera: 'door', source: 'http', url: 'http://127.0.0.1:9/snap.jpg', auth: 'basic', timeout: 2,
      folder: 'images', minFreeMB: 0, minInterval: 0, overlap: 'queue', credentials: { username: 'admin', password: SECRET }, wires: [['q']],
    },
    { id: 'q', type: 'uplink-offline-queue', z: 'tab', name: 'queue', db: 'uplink/q.db', concurrency: 2, backoffBase: 0.2, backoffCap: 1, statsInterval: 0.2, wires: [['up'], [], []] },
    { id: 'up', type: 'uplink-uploader', z: 'tab', name: 'to outbox', backend: 'folder', folder: 'outbox-cfg', keyTemplate: '{camera}/{id}.{ext}', wires: [['q', 'conn'], ['q', 'conn']] },
    {
      id: 'conn', type: 'uplink-connectivity', z: 'tab', name: 'outbox link', probeType: 'target', targetType: 'folder', folder: 'outbox-cfg',
      timeout: 1, interval: 0.3, offlineMin: 0.2, offlineMax: 0.4, failures: 1, wires: [['q']],
    },
    {
      id: 'mon', type: 'uplink-monitor', z: 'tab', name: 'watch', device: 'test-pi', health: true, metrics: true, offlineForS: 2, captureFailures: 2,
      minDiskFreeMB: 0, maxOldestPendingS: 3600, checkEveryS: 0.3, raiseAfterS: 0, clearAfterS: 1.5, minIntervalS: 0, wires: [['alerts']],
    },
    { id: 'alerts', type: 'file', z: 'tab', filename: 'alerts.jsonl', filenameType: 'str', appendNewline: true, createDir: true, overwriteFile: 'false', encoding: 'utf8', wires: [] },
  ];
}

const auth = { authorization: `Basic ${Buffer.from(`${USER}:${PASS}`).toString('base64')}` };

function alertsOf(userDir) {
  const f = path.join(userDir, 'alerts.jsonl');
  if (!fs.existsSync(f)) return [];
  return fs.readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

describe('device monitor in a real Node-RED', function () {
  this.timeout(120000);
  let dir;
  const reds = [];
  before(() => (dir = tmpDir()));
  after(async function () {
    for (const r of reds) await r.stop();
    rmrf(dir);
  });

  it('answers health and metrics behind httpNodeAuth, turns unhealthy and back across an outage and a failing camera, and keeps the outage log', async function () {
    const userDir = path.join(dir, 'user');
    fs.mkdirSync(path.join(userDir, 'outbox'), { recursive: true });
    const settings = { httpNodeAuth: { user: USER, pass: bcrypt.hashSync(PASS, 8) } };
    const red = await startNodeRed({ userDir, flows: [], settings });
    reds.push(red);
    // Deployed as the editor does, so the camera's login lands in Node-RED's encrypted credentials.
    await deploy(red, flows(path.join(userDir, 'outbox')));
    const health = () => call(`${red.url}/uplink/health`, { headers: auth });
    const metrics = () => call(`${red.url}/uplink/metrics`, { headers: auth });

    assert.strictEqual((await call(`${red.url}/uplink/health`)).status, 401, 'httpNodeAuth applies');
    assert.strictEqual((await call(`${red.url}/uplink/metrics`)).status, 401, 'httpNodeAuth applies');

    const healthy = await until('a healthy device with uploads', async () => {
      const r = await health();
      return { ok: r.status === 200 && r.body.status === 'healthy' && r.body.uploads >= 2, value: r.body };
    });
    assert.strictEqual(healthy.device, 'test-pi');
    assert.strictEqual(healthy.online, true);
    assert.ok(healthy.captures >= 2 && healthy.lastCaptureAt && healthy.lastUploadAt, JSON.stringify(healthy));
    assert.ok(healthy.diskFreeBytes > 0);
    assert.deepStrictEqual(healthy.queues.map((q) => q.name), ['queue']);
    assert.deepStrictEqual(healthy.cameras.map((c) => c.camera).sort(), ['door', 'yard']);

    // The target goes away: degraded at once, unhealthy once it has been gone for longer than 2 s.
    fs.renameSync(path.join(userDir, 'outbox'), path.join(userDir, 'outbox-away'));
    const down = await until('503 during the outage', async () => {
      const r = await health();
      return { ok: r.status === 503, value: r.body };
    });
    assert.strictEqual(down.status, 'unhealthy');
    assert.strictEqual(down.online, false);
    assert.match(down.reasons[0], /"outbox link": the upload target has been offline for \d+ s/);
    // The alert check runs on its own timer (every 0.3 s here): the scrape shows it once it has run.
    const during = await until('the offline alert in the metrics', async () => {
      const r = await metrics();
      return { ok: r.status === 200 && /^uplink_alert_active\{alert="offline"\} 1$/m.test(r.text), value: r };
    });
    assert.match(during.text, /^uplink_connectivity_up\{node="outbox link"\} 0$/m);
    assert.match(during.text, /^uplink_health_status 2$/m);
    assert.match(during.text, /^process_resident_memory_bytes \d+/m, 'process figures too');

    // Back: 200 again, and the queue drains.
    fs.renameSync(path.join(userDir, 'outbox-away'), path.join(userDir, 'outbox'));
    const back = await until('healthy again, queue drained', async () => {
      const r = await health();
      return { ok: r.status === 200 && r.body.status === 'healthy' && r.body.pending === 0, value: r.body };
    });
    assert.strictEqual(back.online, true);
    const m = await metrics();
    const uploaded = Number(/^uplink_queue_uploaded_total\{node="queue"\} (\d+)$/m.exec(m.text)[1]);
    assert.ok(uploaded >= back.uploads, `${uploaded} counted`);
    assert.match(m.text, /^uplink_upload_duration_seconds_count\{node="to outbox",backend="folder"\} [1-9]\d*$/m);
    assert.match(m.text, /^uplink_captures_total\{node="yard cam",camera="yard",result="ok"\} [1-9]\d*$/m);

    // The camera with a login fails twice: unhealthy, and the reason names it without its password.
    for (let i = 0; i < 2; i++) assert.strictEqual((await call(`${red.url}/door`, { method: 'POST', headers: auth, timeoutMs: 10000 })).status, 200);
    const failing = await until('the failing camera to make the device unhealthy', async () => {
      const r = await health();
      return { ok: r.status === 503 && r.body.reasons.some((x) => /camera "door"/.test(x)), value: r.body };
    });
    assert.strictEqual(failing.cameras.find((c) => c.camera === 'door').failuresInARow, 2);

    // Alerts: the outage raised once and cleared once; the camera raised.
    const alerts = await until('the alerts to be written', async () => {
      const a = alertsOf(userDir);
      return { ok: a.some((x) => x.alert === 'camera-failing' && x.state === 'raised') && a.some((x) => x.alert === 'offline' && x.state === 'cleared'), value: a };
    });
    const offline = alerts.filter((a) => a.alert === 'offline').map((a) => a.state);
    assert.deepStrictEqual(offline, ['raised', 'cleared']);
    assert.ok(alerts.every((a) => a.device === 'test-pi' && typeof a.message === 'string'));

    // No answer holds the camera's password.
    const answers = [JSON.stringify(failing), (await metrics()).text, fs.readFileSync(path.join(userDir, 'alerts.jsonl'), 'utf8')];
    for (const text of answers) assert.ok(!text.includes(SECRET), 'the camera password appears in an answer');

    // The outage log outlives a kill -9, and the CLI reads it.
    await red.kill('SIGKILL');
    const out = execFileSync(process.execPath, [path.join(PACKAGE_DIR, 'dist/bin/uplink-queue.js'), 'outages', path.join(userDir, 'uplink/outages.db'), '--json'], { encoding: 'utf8' });
    const summary = JSON.parse(out);
    assert.strictEqual(summary.outages.length, 1, out);
    assert.ok(summary.outages[0].durationMs >= 2000, out);
    assert.strictEqual(summary.outages[0].monitor, 'outbox link');
    assert.ok(summary.perDay.length >= 1 && summary.totalOfflineS >= 2, out);
    const human = execFileSync(process.execPath, [path.join(PACKAGE_DIR, 'dist/bin/uplink-queue.js'), 'outages', path.join(userDir, 'uplink/outages.db')], { encoding: 'utf8' });
    assert.match(human, /1 outage, \d+ s offline in all/);
    assert.match(human, /outbox link: /);

    // Restarted without a monitor node: the paths are Node-RED's 404 again; the history still has the outage.
    const again = await startNodeRed({ userDir, settings });
    reds.push(again);
    await deploy(again, flows(path.join(userDir, 'outbox')).filter((n) => n.id !== 'mon' && n.id !== 'alerts'));
    assert.strictEqual((await call(`${again.url}/uplink/health`, { headers: auth })).status, 404);
    assert.strictEqual((await call(`${again.url}/uplink/metrics`, { headers: auth })).status, 404);
    const history = await until('the history with the logged outage', async () => {
      const r = await call(`${again.url}/uplink/connectivity/conn/history`);
      return { ok: r.status === 200 && r.body.outages && r.body.outages.outages.length >= 1, value: r.body };
    });
    assert.ok(history.log.some((e) => e.online === false));
    await again.stop();
  });
});
