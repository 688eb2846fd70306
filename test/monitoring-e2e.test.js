'use strict';
// Device monitoring the way it is run: a real `node-red` process with a pipeline (test-pattern capture -> offline
// queue -> S3 uploader, a connectivity node probing the store) and the shipped device-monitoring flow (a device monitor
// whose alerts go to MQTT and a webhook), scraped by a real Prometheus that evaluates the shipped alert rules, its
// alerts read back from a real Mosquitto. The store (s3rver on 127.0.0.1) goes away and comes back; then it flaps;
// then the queue's disk fills up. Each time the health endpoint, Prometheus and the alert messages must tell the same
// story, and none of them may carry a key or password the flows were given.
const assert = require('assert');
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startNodeRed, PACKAGE_DIR } = require('./support/node-red-process');
const { S3Server } = require('./support/s3-server');
const { startTarget } = require('./support/http-target');
const { call, until, deploy } = require('./support/http-client');
const prometheus = require('./support/prometheus');
const mosquitto = require('./support/mosquitto');

const EXAMPLE = path.join(PACKAGE_DIR, 'examples', 'device-monitoring.json');
const RULES = path.join(PACKAGE_DIR, 'examples', 'prometheus', 'uplink-alerts.yml');
const CLI = path.join(PACKAGE_DIR, 'dist', 'bin', 'uplink-queue.js');

// Secrets given to the flows: none may appear in any answer, alert or log line.
const S3_SECRET = 'e2e-s3-secret-Kx93fQ';
const MQTT_PASSWORD = 'e2e-mqtt-password-Vb27';
const SCRAPE_PASSWORD = 'e2e-scrape-password-Tn55'; // httpNodeAuth: Prometheus and the health checks log in with it
const SCRAPE_USER = 'prometheus';

// The monitor's thresholds, shortened so that an episode takes seconds: an outage longer than OFFLINE_FOR_S makes
// the device unhealthy and raises "offline"; an alert clears once its condition has been gone for CLEAR_AFTER_S.
const OFFLINE_FOR_S = 3;
const CLEAR_AFTER_S = 10;
const MIN_INTERVAL_S = 5;
const MIN_DISK_FREE_MB = 1;

function bcryptHash(password) {
  // bcryptjs comes with node-red (httpNodeAuth uses it); cost 8 keeps the test quick.
  const bcrypt = require(require.resolve('bcryptjs', { paths: [path.join(PACKAGE_DIR, 'node_modules', 'node-red')] }));
  return bcrypt.hashSync(password, 8);
}

/** The pipeline, on its own tab. The queue's database lives in `queueDir` (a small tmpfs when mounting is allowed). */
function pipeline(s3, queueDir) {
  return [
    { id: 'pipe', type: 'tab', label: 'pipeline' },
    {
      id: 'cfg', type: 'uplink-s3-config', name: 'bucket', ...s3.config(), concurrency: 2, timeout: 5,
      credentials: { accessKeyId: s3.credentials.accessKeyId, secretAccessKey: S3_SECRET },
    },
    { id: 'cap-now', type: 'inject', z: 'pipe', name: 'capture now', props: [{ p: 'payload' }], repeat: '', once: false, payload: '', payloadType: 'date', x: 100, y: 100, wires: [['camera']] },
    { id: 'camera', type: 'uplink-capture', z: 'pipe', name: 'camera', camera: 'door', source: 'test-pattern', patternWidth: 320, patternHeight: 240, minFreeMB: 0, minInterval: 0, x: 250, y: 100, wires: [['queue']] },
    {
      id: 'queue', type: 'uplink-offline-queue', z: 'pipe', name: 'queue', db: path.join(queueDir, 'queue.db'), concurrency: 2, backoffBase: 0.2, backoffCap: 1,
      statsInterval: 0.5, startOffline: true, x: 400, y: 100, wires: [['upload'], [], []],
    },
    { id: 'upload', type: 'uplink-uploader', z: 'pipe', name: 'upload', backend: 's3', s3: 'cfg', keyTemplate: '{camera}/{id}.{ext}', x: 550, y: 100, wires: [['queue', 'link'], ['queue', 'link']] },
    {
      id: 'link', type: 'uplink-connectivity', z: 'pipe', name: 'link', probeType: 'target', targetType: 's3', s3: 'cfg', timeout: 1, interval: 0.5,
      offlineMin: 0.2, offlineMax: 0.5, failures: 1, gate: false, outputs: 1, x: 400, y: 200, wires: [['queue']],
    },
  ];
}

/** The shipped device-monitoring flow, its broker moved to the test's Mosquitto and its monitor's waits shortened. */
function monitoringFlow(brokerPort) {
  const flow = JSON.parse(fs.readFileSync(EXAMPLE, 'utf8'));
  const monitor = flow.find((n) => n.type === 'uplink-monitor');
  Object.assign(monitor, {
    device: 'e2e-device', offlineForS: OFFLINE_FOR_S, raiseAfterS: 0, clearAfterS: CLEAR_AFTER_S, minIntervalS: MIN_INTERVAL_S,
    minDiskFreeMB: MIN_DISK_FREE_MB, checkEveryS: 0.5,
  });
  const broker = flow.find((n) => n.type === 'mqtt-broker');
  assert.strictEqual(broker.broker, '127.0.0.1');
  Object.assign(broker, { port: String(brokerPort), credentials: { user: 'alerts', password: MQTT_PASSWORD } });
  return flow;
}

/** A copy of the shipped rules whose `for:` durations are shortened to seconds, so they fire within the test. */
function shortenedRules(dir) {
  const text = fs.readFileSync(RULES, 'utf8');
  const short = text.replace(/^(\s+for: )\d+m$/gm, '$12s');
  assert.notStrictEqual(short, text, 'the rules have for: durations to shorten');
  const file = path.join(dir, 'uplink-alerts.yml');
  fs.writeFileSync(file, short);
  return file;
}

/** Mounts a small tmpfs at `dir`; answers null, or why it cannot. */
function mountTmpfs(dir) {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'uplink-e2e', dir], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return r.error.message;
  return r.status === 0 ? null : `mount -t tmpfs failed (${`${r.stderr || r.stdout}`.trim() || `exit ${r.status}`})`;
}

describe('device monitoring end to end: Node-RED, Prometheus and Mosquitto, through outages and a full disk', function () {
  this.timeout(180000);
  let s3;
  let s3Port;
  let broker;
  let alertsSub;
  let webhook;
  let red;
  let prom;
  let dir;
  let queueDir;
  let tmpfsProblem = null;
  const auth = { authorization: `Basic ${Buffer.from(`${SCRAPE_USER}:${SCRAPE_PASSWORD}`).toString('base64')}` };
  const hash = bcryptHash(SCRAPE_PASSWORD);

  before(async function () {
    this.timeout(120000);
    for (const why of [prometheus.unavailableReason(), mosquitto.unavailableReason()]) {
      if (why) {
        console.log(`      skipped: ${why}`);
        this.skip();
      }
    }
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-e2e-monitoring-'));
    queueDir = path.join(dir, 'queue');
    fs.mkdirSync(queueDir);
    tmpfsProblem = mountTmpfs(queueDir);
    if (tmpfsProblem) console.log(`      the queue is on the ordinary disk: ${tmpfsProblem}`);

    s3 = await new S3Server({ buckets: ['monitoring'] }).start();
    s3Port = s3.port;
    broker = await mosquitto.startMosquitto();
    alertsSub = await mosquitto.subscribe(broker.url, 'uplink/alert/#');
    webhook = await startTarget();

    red = await startNodeRed({
      flows: [],
      settings: { httpNodeAuth: { user: SCRAPE_USER, pass: hash } },
      env: { UPLINK_ALERT_WEBHOOK: `${webhook.url}/alerts` },
    });
    await deploy(red, [...pipeline(s3, queueDir), ...monitoringFlow(broker.port)]);
    await until('the monitor to answer', async () => {
      const r = await call(`${red.url}/uplink/health`, { headers: auth });
      return { ok: r.status === 200 && r.body.queues?.length === 1 && r.body.links?.[0]?.online === true, value: r.body };
    });

    prom = await prometheus.startPrometheus({
      targets: [`127.0.0.1:${red.port}`],
      metricsPath: '/uplink/metrics',
      basicAuth: { username: SCRAPE_USER, password: SCRAPE_PASSWORD },
      ruleFiles: [shortenedRules(dir)],
    });
    await prom.scraped();
  });

  after(async function () {
    this.timeout(60000);
    if (prom) await prom.stop();
    if (red) await red.stop();
    if (alertsSub) await alertsSub.close();
    if (broker) await broker.stop();
    if (webhook) await webhook.close();
    if (s3) await s3.destroy();
    if (dir) {
      if (!tmpfsProblem) spawnSync('umount', ['-l', queueDir], { timeout: 10_000 });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  afterEach(async function () {
    // A test that failed during an outage leaves the store running for the next one.
    if (s3 && !s3.server) await s3.start(s3Port);
  });

  const health = () => call(`${red.url}/uplink/health`, { headers: auth });
  const press = async (id) => assert.strictEqual((await call(`${red.url}/inject/${id}`, { method: 'POST' })).status, 200, `press ${id}`);
  const stats = async () => (await call(`${red.url}/uplink/queue/queue/stats`)).body;
  /** The messages of one alert that reached the broker, as "alert state" lines. */
  const mqttAlerts = (name) => alertsSub.messages.filter((m) => m.payload.alert === name).map((m) => `${m.payload.alert} ${m.payload.state}`);
  const webhookAlerts = (name) =>
    webhook.requests
      .map((r) => JSON.parse(r.body.toString('utf8')))
      .filter((p) => p.alert === name)
      .map((p) => `${p.alert} ${p.state}`);

  /** Waits until Prometheus has the alert firing (or, with `firing` false, not firing); returns its labels. */
  async function promAlert(name, firing = true) {
    return until(`Prometheus alert ${name} ${firing ? 'firing' : 'resolved'}`, async () => {
      const a = await prom.firing(name);
      return { ok: firing ? a.length > 0 : a.length === 0, value: a.map((x) => x.labels) };
    }, 30000);
  }

  it('serves health and metrics only to a client that logs in, as httpNodeAuth says', async function () {
    assert.strictEqual((await call(`${red.url}/uplink/health`)).status, 401);
    assert.strictEqual((await call(`${red.url}/uplink/metrics`)).status, 401);
    const h = await health();
    assert.strictEqual(h.status, 200, h.text);
    assert.strictEqual(h.body.status, 'healthy', JSON.stringify(h.body.reasons));
    assert.strictEqual(h.body.device, 'e2e-device');
    const targets = await prom.targets();
    assert.strictEqual(targets[0].health, 'up', 'Prometheus scrapes with the login');
  });

  it("sends the example flow's test alert to the broker and the webhook", async function () {
    await press('dm-test');
    await alertsSub.waitFor('the test alert at the broker', () => mqttAlerts('test').length >= 1, 15000);
    await until('the test alert at the webhook', async () => ({ ok: webhookAlerts('test').length >= 1, value: webhook.requests.length }), 15000);
    assert.deepStrictEqual(mqttAlerts('test'), ['test raised']);
    assert.deepStrictEqual(webhookAlerts('test'), ['test raised']);
    const post = webhook.requests.find((r) => JSON.parse(r.body.toString('utf8')).alert === 'test');
    assert.strictEqual(post.method, 'POST');
    assert.strictEqual(post.url, '/alerts');
    assert.match(post.headers['content-type'], /^application\/json/);
  });

  it('exposes every metric the shipped alert rules read', async function () {
    const text = (await call(`${red.url}/uplink/metrics`, { headers: auth })).text;
    const rules = fs.readFileSync(RULES, 'utf8');
    const used = [...new Set(rules.match(/\buplink_[a-z_]+/g))];
    assert.ok(used.length >= 6, `the rules read uplink metrics: ${used}`);
    for (const name of used) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), `/uplink/metrics declares ${name}`);
  });

  it('counts uploads the way Prometheus sees them', async function () {
    const before = (await stats()).uploaded;
    for (let i = 0; i < 3; i++) {
      await press('cap-now');
      await until(`capture ${i + 1} uploaded`, async () => {
        const s = await stats();
        return { ok: s.uploaded >= before + i + 1 && s.pending === 0 && s.inFlight === 0, value: s };
      }, 20000);
    }
    const uploaded = (await stats()).uploaded;
    const seen = await until('Prometheus to count the uploads', async () => {
      const v = await prom.value('uplink_queue_uploaded_total{node="queue"}');
      return { ok: v === uploaded, value: v };
    }, 20000);
    assert.strictEqual(seen, uploaded);
    assert.strictEqual(await prom.value('uplink_connectivity_up{node="link"}'), 1);
    assert.strictEqual(await prom.value('uplink_health_status'), 0, 'healthy');
  });

  it('an outage: degraded, then unhealthy with an offline alert (once), seen by Prometheus; healthy again after it', async function () {
    const changesBefore = await prom.value('uplink_connectivity_changes_total{node="link"}');
    await s3.stop();
    await press('cap-now');
    await press('cap-now');

    // Shorter than OFFLINE_FOR_S: degraded (still 200); longer: unhealthy (503), with the outage as the reason.
    const degraded = await until('health degraded', async () => {
      const r = await health();
      return { ok: r.status === 200 && r.body.status === 'degraded' && r.body.online === false, value: r.body };
    }, 15000);
    assert.match(degraded.reasons.join('\n'), /"link": the upload target has been offline/);
    const unhealthy = await until('health unhealthy', async () => {
      const r = await health();
      return { ok: r.status === 503, value: r.body };
    }, 15000);
    assert.strictEqual(unhealthy.status, 'unhealthy');
    assert.match(unhealthy.reasons.join('\n'), /"link": the upload target has been offline/);
    assert.ok(unhealthy.pending >= 1, 'the captures wait in the queue');
    // The alert is raised at the monitor's next look (every 0.5 s here), and listed in the answer from then on.
    const listed = await until('the offline alert listed in the health answer', async () => {
      const r = await health();
      return { ok: r.body.alerts.length > 0, value: r.body.alerts };
    }, 10000);
    assert.deepStrictEqual(listed.map((a) => a.alert), ['offline']);

    await until('Prometheus to see the link down', async () => {
      const v = await prom.value('uplink_connectivity_up{node="link"}');
      return { ok: v === 0, value: v };
    }, 20000);
    const offline = await promAlert('UplinkTargetOffline');
    assert.deepStrictEqual(offline.map((l) => [l.node, l.severity]), [['link', 'critical']]);
    // The shortened rule (for: 2 s) can fire before the device's own threshold (3 s) has passed: the scrape after
    // that shows the verdict.
    await until('Prometheus to see the device unhealthy', async () => {
      const v = await prom.value('uplink_health_status');
      return { ok: v === 2, value: v };
    }, 10000);
    // Nothing else is wrong: no other shipped rule fires, but the one for the queue's small disk (a 4 MB tmpfs is under
    // the rule's 500 MB, as it should be).
    const others = (await prom.alerts()).filter((a) => a.state === 'firing' && a.labels.alertname !== 'UplinkTargetOffline');
    const expectedOthers = tmpfsProblem ? [] : ['UplinkDiskLow queue'];
    assert.deepStrictEqual(others.map((a) => `${a.labels.alertname} ${a.labels.node}`).sort(), expectedOthers);
    await alertsSub.waitFor('the offline alert at the broker', () => mqttAlerts('offline').length >= 1, 15000);

    await s3.start(s3Port);
    await until('health back to 200', async () => {
      const r = await health();
      return { ok: r.status === 200 && r.body.online === true, value: r.body };
    }, 20000);
    await until('Prometheus to see the link up', async () => {
      const v = await prom.value('uplink_connectivity_up{node="link"}');
      return { ok: v === 1, value: v };
    }, 20000);
    await promAlert('UplinkTargetOffline', false);
    assert.strictEqual(await prom.value('min_over_time(uplink_connectivity_up{node="link"}[5m])'), 0, 'the outage is in Prometheus');
    const changes = await prom.value('uplink_connectivity_changes_total{node="link"}');
    assert.ok(changes >= changesBefore + 2, `offline and online again counted (${changesBefore} -> ${changes})`);

    await alertsSub.waitFor('the offline alert cleared', () => mqttAlerts('offline').length >= 2, CLEAR_AFTER_S * 1000 + 15000);
    assert.deepStrictEqual(mqttAlerts('offline'), ['offline raised', 'offline cleared'], 'one alert for the outage, one when it ended');
    await until('the webhook to get both', async () => ({ ok: webhookAlerts('offline').length >= 2, value: webhookAlerts('offline') }), 10000);
    assert.deepStrictEqual(webhookAlerts('offline'), ['offline raised', 'offline cleared']);
    const raised = alertsSub.messages.find((m) => m.payload.alert === 'offline' && m.payload.state === 'raised');
    assert.strictEqual(raised.topic, 'uplink/alert/offline');
    assert.strictEqual(raised.payload.severity, 'critical');
    assert.strictEqual(raised.payload.device, 'e2e-device');
    assert.strictEqual(raised.payload.threshold, OFFLINE_FOR_S);

    // The captures taken during the outage are uploaded, and Prometheus counts them.
    const drained = await until('the queue drained', async () => {
      const s = await stats();
      return { ok: s.pending === 0 && s.inFlight === 0, value: s };
    }, 30000);
    await until('Prometheus to count the uploads made after the outage', async () => {
      const v = await prom.value('uplink_queue_uploaded_total{node="queue"}');
      return { ok: v === drained.uploaded, value: v };
    }, 20000);
    const h = await health();
    assert.strictEqual(h.body.status, 'healthy', JSON.stringify(h.body.reasons));
  });

  it('a flapping link: several drops inside one episode give one raised and one cleared alert', async function () {
    const lastRaise = Math.max(0, ...alertsSub.messages.filter((m) => m.payload.state === 'raised').map((m) => Date.parse(m.payload.at)));
    const rest = lastRaise + MIN_INTERVAL_S * 1000 - Date.now();
    if (rest > 0) await new Promise((r) => setTimeout(r, rest + 500));
    const before = mqttAlerts('offline').length;
    const flapStart = Date.now();

    // Each drop is longer than OFFLINE_FOR_S (each alone would raise the alert); the link is back for about a second
    // between them, far less than CLEAR_AFTER_S.
    for (let drop = 0; drop < 3; drop++) {
      await s3.stop();
      await until(`drop ${drop + 1}: unhealthy`, async () => {
        const r = await health();
        return { ok: r.status === 503, value: r.body.reasons };
      }, 15000);
      await s3.start(s3Port);
      await until(`drop ${drop + 1}: back online`, async () => {
        const r = await health();
        return { ok: r.body.online === true, value: r.body.links };
      }, 15000);
      await new Promise((r) => setTimeout(r, 1000));
    }
    await alertsSub.waitFor('the flapping episode to clear', () => mqttAlerts('offline').length >= before + 2, CLEAR_AFTER_S * 1000 + 15000);
    // Past another clear wait: nothing more arrives for this episode.
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepStrictEqual(mqttAlerts('offline').slice(before), ['offline raised', 'offline cleared']);
    await until('the webhook to get the episode', async () => ({ ok: webhookAlerts('offline').length >= before + 2, value: webhookAlerts('offline') }), 10000);
    assert.deepStrictEqual(webhookAlerts('offline').slice(before), ['offline raised', 'offline cleared']);
    const history = (await call(`${red.url}/uplink/connectivity/link/history`)).body;
    const offlines = (history.history || []).filter((e) => Date.parse(e.at) >= flapStart && e.online === false);
    assert.ok(offlines.length >= 3, `the link went offline three times (history: ${JSON.stringify(history.history).slice(0, 800)})`);
    // The outage log (SQLite, kept across restarts) has each drop as an outage of its own.
    const logged = history.outages.outages.filter((o) => o.monitor === 'link' && o.start >= flapStart);
    assert.strictEqual(logged.length, 3, `three outages logged: ${JSON.stringify(logged)}`);
    assert.ok(logged.every((o) => o.end !== null && o.durationMs > OFFLINE_FOR_S * 1000), 'each longer than the offline threshold, and over');
  });

  it('a full disk under the queue: unhealthy with a disk reason and a disk-low alert; healthy once freed', async function () {
    if (tmpfsProblem) {
      console.log(`      skipped: no small disk to fill: ${tmpfsProblem}`);
      this.skip();
    }
    const filler = path.join(queueDir, 'filler.bin');
    const chunk = Buffer.alloc(64 * 1024, 1);
    const fd = fs.openSync(filler, 'w');
    try {
      for (let i = 0; i < 1000; i++) fs.writeSync(fd, chunk);
      assert.fail('a 4 MB tmpfs took 64 MB');
    } catch (e) {
      if (/** @type {NodeJS.ErrnoException} */ (e).code !== 'ENOSPC') throw e;
    } finally {
      fs.closeSync(fd);
    }
    try {
      const full = await until('health unhealthy for the disk', async () => {
        const r = await health();
        return { ok: r.status === 503, value: r.body };
      }, 20000);
      assert.match(full.reasons.join('\n'), /free on the disk of "queue"/);
      assert.ok(full.diskFreeBytes < MIN_DISK_FREE_MB * 1024 * 1024, `diskFreeBytes ${full.diskFreeBytes}`);
      await until('Prometheus to see the disk full', async () => {
        const v = await prom.value('uplink_disk_free_bytes{node="queue"}');
        return { ok: v !== null && v < MIN_DISK_FREE_MB * 1024 * 1024, value: v };
      }, 20000);
      await alertsSub.waitFor('the disk-low alert', () => mqttAlerts('disk-low').length >= 1, 15000);
    } finally {
      fs.rmSync(filler, { force: true });
    }
    const freed = await until('health back to healthy', async () => {
      const r = await health();
      return { ok: r.status === 200 && r.body.status === 'healthy', value: r.body };
    }, 20000);
    assert.ok(freed.diskFreeBytes > MIN_DISK_FREE_MB * 1024 * 1024);
    await alertsSub.waitFor('the disk-low alert cleared', () => mqttAlerts('disk-low').length >= 2, CLEAR_AFTER_S * 1000 + 15000);
    assert.deepStrictEqual(mqttAlerts('disk-low'), ['disk-low raised', 'disk-low cleared']);
    assert.strictEqual(alertsSub.messages.find((m) => m.payload.alert === 'disk-low').payload.severity, 'critical');
  });

  it('gives away no key or password: not in health, metrics, alerts, the connectivity history, the outage report or the log', async function () {
    const answers = {
      health: (await health()).text,
      metrics: (await call(`${red.url}/uplink/metrics`, { headers: auth })).text,
      history: (await call(`${red.url}/uplink/connectivity/link/history`)).text,
      mqtt: JSON.stringify(alertsSub.messages),
      webhook: webhook.requests.map((r) => r.body.toString('utf8')).join('\n'),
      log: red.logs(),
    };
    const outagesDb = path.join(red.userDir, 'uplink', 'outages.db');
    assert.ok(fs.existsSync(outagesDb), 'the connectivity node keeps its outage log in the user folder');
    answers.outages = execFileSync(process.execPath, [CLI, 'outages', outagesDb], { encoding: 'utf8', timeout: 20000 });
    answers.outagesJson = execFileSync(process.execPath, [CLI, 'outages', '--json', outagesDb], { encoding: 'utf8', timeout: 20000 });
    assert.match(answers.outages, /link/, 'the outage report names the link');
    assert.ok(answers.history.includes('"outages"'), 'the history endpoint answers with its outages');
    assert.ok(answers.mqtt.includes('offline'), 'the alerts were read');
    for (const [where, text] of Object.entries(answers)) {
      for (const secret of [S3_SECRET, MQTT_PASSWORD, SCRAPE_PASSWORD, hash]) assert.ok(!text.includes(secret), `${where} gives away a secret`);
    }
  });
});
