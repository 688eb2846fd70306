'use strict';
// `npm start` (scripts/start.js) on a user folder that a power cut left behind: flows.json and settings.js of 0 bytes
// (what ext4 leaves of files written without fsync), or a flow cut off mid-write beside a settings file of the user's
// own. The script must set the broken files aside, write them anew, and start Node-RED listening on 127.0.0.1 only
// (checked in the kernel's socket table, since Node-RED prints 127.0.0.1 even when it listens on every interface),
// running the shipped pipeline: captures reach the queue.
//
// And with the variables each shipped flow reads: a camera whose login is in its URL, a Supabase project and an HTTP
// API, all real servers on 127.0.0.1; the credentials file under a key of its own that nothing in this repository
// opens; and a data folder an earlier version set up with a published key, moved to a new one.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { freePort, PACKAGE_DIR } = require('./support/node-red-process');
const { call, until, deploy } = require('./support/http-client');
const { tmpDir, rmrf } = require('./support/tmp');
const { startScript } = require('./support/start-script');
const { startCamera } = require('./support/camera-server');
const { SupabaseServer } = require('./support/supabase-server');
const { startTarget } = require('./support/http-target');
const rtsp = require('./support/rtsp-server');
const SHIPPED_FLOW = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'examples', 'capture-to-cloud.json'), 'utf8'));

/** The addresses (hex, as the kernel lists them) of the sockets listening on `port`, IPv4 and IPv6. */
function listeners(port) {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const out = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.trim().split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      const [addr, p] = local.split(':');
      if (p === hexPort && state === '0A') out.push(addr);
    }
  }
  return out;
}

const LOOPBACK = new Set(['0100007F', '0000000000000000FFFF00000100007F', '00000000000000000000000001000000']);

describe('npm start after a power cut', function () {
  this.timeout(120000);
  let dataDir;
  let run;
  beforeEach(() => (dataDir = tmpDir('uplink-start-')));
  afterEach(async () => {
    await run?.stop();
    run = undefined;
    rmrf(dataDir);
  });

  /** Node-RED listens on 127.0.0.1 only, runs the shipped pipeline, and its captures reach the queue. */
  async function assertPipelineOnLoopback(port) {
    const addrs = listeners(port);
    assert.ok(addrs.length > 0, `something listens on port ${port}`);
    for (const a of addrs) assert.ok(LOOPBACK.has(a), `port ${port} is open on ${a}, not only on 127.0.0.1 (${addrs.join(', ')})`);
    const flows = await call(`http://127.0.0.1:${port}/flows`);
    assert.strictEqual(flows.status, 200);
    assert.ok(flows.body.some((n) => n.type === 'uplink-capture'), 'the pipeline is deployed');
    await until('captures in the queue', async () => {
      const s = await call(`http://127.0.0.1:${port}/uplink/queue/c2c-queue/stats`);
      return { ok: s.status === 200 && s.body.totals.enqueued >= 2, value: s.body };
    }, 30000);
  }

  function asideFiles(userDir, name) {
    return fs.readdirSync(userDir).filter((f) => f.startsWith(`${name}.broken-`));
  }

  it('sets empty flows.json and settings.js aside, writes them anew, and runs the pipeline on 127.0.0.1 only', async function () {
    const userDir = path.join(dataDir, 'node-red');
    fs.mkdirSync(userDir, { recursive: true });
    fs.writeFileSync(path.join(userDir, 'flows.json'), '');
    fs.writeFileSync(path.join(userDir, 'settings.js'), '');
    const port = await freePort();
    run = await startScript(dataDir, port, { UPLINK_CAPTURE_INTERVAL_S: '1' });

    assert.match(run.logs(), /flows\.json is empty: kept aside as flows\.json\.broken-/);
    assert.match(run.logs(), /settings\.js is empty: kept aside as settings\.js\.broken-/);
    assert.deepStrictEqual(JSON.parse(fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8')), SHIPPED_FLOW);
    const settings = require(path.join(userDir, 'settings.js'));
    assert.strictEqual(settings.uiHost, '127.0.0.1');
    assert.strictEqual(settings.flowFile, 'flows.json');
    for (const name of ['flows.json', 'settings.js']) {
      const aside = asideFiles(userDir, name);
      assert.strictEqual(aside.length, 1, `${name} kept aside once`);
      assert.strictEqual(fs.statSync(path.join(userDir, aside[0])).size, 0);
    }
    assert.deepStrictEqual(fs.readdirSync(userDir).filter((f) => f.endsWith('.tmp')), [], 'no temp file left');
    await assertPipelineOnLoopback(port);
  });

  it('keeps a usable settings file of the user, but never lets it open Node-RED to every interface', async function () {
    const userDir = path.join(dataDir, 'node-red');
    fs.mkdirSync(userDir, { recursive: true });
    // Cut off mid-write, and a settings file that says nothing of the address (Node-RED's default: every interface).
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(SHIPPED_FLOW).slice(0, 500));
    const own = "module.exports = { flowFile: 'flows.json', credentialSecret: 'my-own-secret', editorTheme: { tours: false } };\n";
    fs.writeFileSync(path.join(userDir, 'settings.js'), own);
    const port = await freePort();
    run = await startScript(dataDir, port, { UPLINK_CAPTURE_INTERVAL_S: '1' });

    assert.match(run.logs(), /flows\.json is not JSON \(.*\): kept aside as flows\.json\.broken-/);
    assert.strictEqual(fs.readFileSync(path.join(userDir, 'settings.js'), 'utf8'), own, 'the user\'s settings are kept');
    assert.deepStrictEqual(asideFiles(userDir, 'settings.js'), []);
    await assertPipelineOnLoopback(port);
  });
});

/** Node-RED's own reading of flows_cred.json (@node-red/runtime/lib/nodes/credentials.js), written out here. */
function nodeRedDecrypt(secret, text) {
  const stored = JSON.parse(text);
  const key = crypto.createHash('sha256').update(secret).digest();
  const decipher = crypto.createDecipheriv('aes-256-ctr', key, Buffer.from(stored.$.substring(0, 32), 'hex'));
  return JSON.parse(decipher.update(stored.$.substring(32), 'base64', 'utf8') + decipher.final('utf8'));
}

function nodeRedEncrypt(secret, credentials) {
  const key = crypto.createHash('sha256').update(secret).digest();
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-ctr', key, iv);
  return JSON.stringify({ $: iv.toString('hex') + cipher.update(JSON.stringify(credentials), 'utf8', 'base64') + cipher.final('base64') });
}

/** Every quoted string literal ('…', "…", `…`) in the repository's files: the keys anyone with the source can try. */
function repositoryStrings() {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: PACKAGE_DIR, encoding: 'utf8' }).split('\0').filter(Boolean);
  const out = new Set();
  for (const f of files) {
    let text;
    try {
      const file = path.join(PACKAGE_DIR, f);
      if (!fs.lstatSync(file).isFile() || fs.statSync(file).size > 4 * 1024 * 1024) continue;
      text = fs.readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(/'((?:[^'\\\n]|\\.){1,200})'|"((?:[^"\\\n]|\\.){1,200})"|`((?:[^`\\]|\\.){1,200})`/g)) out.add(m[1] ?? m[2] ?? m[3]);
  }
  return out;
}

/** The inject nodes wired to a capture node in the running flow, pressed as the editor's button does. */
async function pressCapture(url) {
  const flows = (await call(`${url}/flows`)).body;
  const capture = flows.find((n) => n.type === 'uplink-capture');
  const injects = flows.filter((n) => n.type === 'inject' && (n.wires || []).flat().includes(capture.id));
  assert.ok(injects.length > 0, 'an inject node triggers the capture');
  const r = await call(`${url}/inject/${injects[0].id}`, { method: 'POST' });
  assert.strictEqual(r.status, 200, r.text);
}

describe('npm start with the variables of each flow', function () {
  this.timeout(120000);
  const SUPABASE_KEY = 'service-role-9f2c1e7a4b';
  const CAMERA_PASSWORD = 'pa55 w&rd#é@:/%?';
  let dataDir;
  let run;
  let camera;
  let supabase;
  let target;
  beforeEach(() => (dataDir = tmpDir('uplink-start-vars-')));
  afterEach(async () => {
    await run?.stop();
    run = undefined;
    await camera?.close();
    await supabase?.stop();
    await target?.close();
    camera = supabase = target = undefined;
    rmrf(dataDir);
  });

  async function startSupabase() {
    supabase = new SupabaseServer({ key: SUPABASE_KEY, buckets: ['device-photos'], tables: { shots: { unique: ['image_url'] } } });
    await supabase.start();
    return supabase;
  }

  it('capture-to-supabase: the camera login in UPLINK_CAMERA_URL (digest), the project from UPLINK_SUPABASE_*', async function () {
    camera = await startCamera({ username: 'admin', password: CAMERA_PASSWORD });
    await startSupabase();
    const cameraUrl = `http://admin:${encodeURIComponent(CAMERA_PASSWORD)}@127.0.0.1:${camera.port}/digest/sha-256/snap.jpg`;
    run = await startScript(dataDir, await freePort(), {
      UPLINK_FLOW: 'capture-to-supabase',
      UPLINK_CAMERA_URL: cameraUrl,
      UPLINK_SUPABASE_URL: supabase.url,
      UPLINK_SUPABASE_KEY: SUPABASE_KEY,
      UPLINK_SUPABASE_BUCKET: 'device-photos',
      UPLINK_SUPABASE_TABLE: 'shots',
    });
    await pressCapture(run.url);
    await until('the image and its row in the Supabase project', async () => {
      const objects = [...supabase.objects.keys()].filter((k) => k.startsWith('device-photos/'));
      return { ok: objects.length >= 1 && supabase.rows.shots.length >= 1, value: { objects, rows: supabase.rows.shots } };
    }, 60000);
    assert.ok(camera.served.length >= 1, 'the camera was asked, with its digest login');

    const logs = run.logs();
    assert.match(logs, /Camera: +http:\/\/admin:\*\*\*@127\.0\.0\.1:\d+\/digest\/sha-256\/snap\.jpg \(login from the URL\)\n/);
    assert.match(logs, /Storage: +Supabase http:\/\/127\.0\.0\.1:\d+, bucket device-photos, a row per item in table shots\n/);
    // Only what this flow uses: no S3 store, no capture interval it does not read.
    assert.doesNotMatch(logs, /S3|embedded|every \d+ s/);
    assert.ok(!fs.existsSync(path.join(dataDir, 'embedded-s3')), 'no embedded store started');
    const userDir = path.join(dataDir, 'node-red');
    const flowText = fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8');
    const credText = fs.readFileSync(path.join(userDir, 'flows_cred.json'), 'utf8');
    for (const secret of [CAMERA_PASSWORD, encodeURIComponent(CAMERA_PASSWORD), SUPABASE_KEY]) {
      assert.ok(!flowText.includes(secret), 'no secret in flows.json');
      assert.ok(!credText.includes(secret), 'no secret in flows_cred.json');
      assert.ok(!logs.includes(secret), 'no secret in the log');
    }
    // The credentials name the variables; Node-RED reads them at every start.
    const key = fs.readFileSync(path.join(dataDir, 'credential-secret'), 'utf8').trim();
    const creds = nodeRedDecrypt(key, credText);
    const cfg = JSON.parse(flowText).find((n) => n.type === 'uplink-supabase-config');
    assert.deepStrictEqual(creds[cfg.id], { key: '${UPLINK_SUPABASE_KEY}' });
  });

  it('capture-to-http: the API from UPLINK_HTTP_*, the camera login from UPLINK_CAMERA_USER/PASSWORD over the URL\'s', async function () {
    camera = await startCamera({ username: 'cam', password: CAMERA_PASSWORD });
    target = await startTarget();
    run = await startScript(dataDir, await freePort(), {
      UPLINK_FLOW: 'capture-to-http',
      // The URL's own login is wrong: the variables' one wins.
      UPLINK_CAMERA_URL: `http://cam:not-this-one@127.0.0.1:${camera.port}/digest/md5/snap.jpg`,
      UPLINK_CAMERA_USER: 'cam',
      UPLINK_CAMERA_PASSWORD: CAMERA_PASSWORD,
      UPLINK_HTTP_URL: `${target.url}/captures`,
      UPLINK_HTTP_TOKEN: 'api-token-51d0',
    });
    await pressCapture(run.url);
    const upload = await until('the image POSTed to the API', async () => {
      const r = target.requests.find((q) => q.method === 'POST' && q.url === '/captures' && q.done);
      return { ok: !!r, value: r };
    }, 60000);
    assert.strictEqual(upload.headers.authorization, 'Bearer api-token-51d0');
    const image = upload.multipart.files.find((f) => f.field === 'image');
    assert.deepStrictEqual(image.data.subarray(0, 2), Buffer.from([0xff, 0xd8]), 'a JPEG from the camera');
    const logs = run.logs();
    assert.match(logs, /Camera: +http:\/\/cam:\*\*\*@127\.0\.0\.1:\d+\/digest\/md5\/snap\.jpg \(login: UPLINK_CAMERA_USER cam\)\n/);
    assert.match(logs, /Storage: +HTTP to http:\/\/127\.0\.0\.1:\d+\/captures with a bearer token \(UPLINK_HTTP_TOKEN\)\n/);
    assert.doesNotMatch(logs, /S3|embedded|Supabase|not-this-one|api-token-51d0/);
    assert.ok(!logs.includes(CAMERA_PASSWORD));
  });

  it('live-camera-dashboard: the RTSP camera and its login from UPLINK_CAMERA_*, live at /uplink/live/gate/ with its last picture', async function () {
    if (!rtsp.available()) {
      console.log(`      skipped: ${rtsp.unavailableReason()}`);
      this.skip();
    }
    const cam = await rtsp.startRtspServer({ user: 'live', password: CAMERA_PASSWORD });
    try {
      run = await startScript(dataDir, await freePort(), {
        UPLINK_FLOW: 'live-camera-dashboard',
        UPLINK_CAMERA_URL: cam.url,
        UPLINK_CAMERA_USER: 'live',
        UPLINK_CAMERA_PASSWORD: CAMERA_PASSWORD,
      });
      const status = await until('the live view streaming', async () => {
        const r = await call(`${run.url}/uplink/live/gate/status`);
        return { ok: r.status === 200 && r.body.state === 'live', value: r.body };
      }, 60000);
      assert.strictEqual(status.camera, 'gate');
      assert.strictEqual((await call(`${run.url}/uplink/live/gate/index.m3u8`)).status, 200, 'the playlist');
      // The last picture the camera sent, from the live view's memory, where its status says (no capture node asks
      // the camera for one: the widget picks none).
      const framed = await until('the status to name the last picture', async () => {
        const r = await call(`${run.url}/uplink/live/gate/status`);
        return { ok: r.status === 200 && typeof r.body.still === 'string', value: r.body };
      }, 30000);
      assert.ok(!Number.isNaN(Date.parse(framed.lastFrameAt)), `lastFrameAt is a time: ${framed.lastFrameAt}`);
      assert.match(framed.still, /^uplink\/live\/gate\/still\.jpg\?v=\d+$/);
      const still = await fetch(`${run.url}/${framed.still}`);
      const body = Buffer.from(await still.arrayBuffer());
      assert.deepStrictEqual([still.status, still.headers.get('content-type'), body[0], body[1]], [200, 'image/jpeg', 0xff, 0xd8], 'a JPEG');
      assert.strictEqual((await call(`${run.url}/uplink-live/live-ui-live/still`)).status, 404, 'no capture node picked in the widget');
      const logs = run.logs();
      assert.match(logs, /Dashboard: http:\/\/127\.0\.0\.1:\d+\/dashboard\n/);
      assert.match(logs, /Camera: +rtsp:\/\/127\.0\.0\.1:\d+\/cam \(login: UPLINK_CAMERA_USER live\)\n/);
      assert.doesNotMatch(logs, /S3|embedded|Supabase/);
      const flowText = fs.readFileSync(path.join(dataDir, 'node-red', 'flows.json'), 'utf8');
      for (const text of [logs, flowText]) assert.ok(!text.includes(CAMERA_PASSWORD), 'no camera password in the log or flows.json');
    } finally {
      await cam.close();
    }
  });

  it('encrypts flows_cred.json with a random key of its own, which no string in the repository decrypts', async function () {
    await startSupabase();
    run = await startScript(dataDir, await freePort(), { UPLINK_FLOW: 'capture-to-supabase', UPLINK_SUPABASE_URL: supabase.url, UPLINK_SUPABASE_KEY: SUPABASE_KEY });
    // A secret typed into the editor and deployed: Node-RED itself writes it into flows_cred.json.
    const flows = (await call(`${run.url}/flows`)).body;
    const cfg = flows.find((n) => n.type === 'uplink-supabase-config');
    const typed = 'typed-in-the-editor-6b1d';
    await deploy(run, flows.map((n) => (n.id === cfg.id ? { ...n, credentials: { key: typed } } : n)));
    const credFile = path.join(dataDir, 'node-red', 'flows_cred.json');
    const stored = await until('Node-RED to save the credentials', async () => {
      const text = fs.readFileSync(credFile, 'utf8');
      const key = fs.readFileSync(path.join(dataDir, 'credential-secret'), 'utf8').trim();
      const creds = nodeRedDecrypt(key, text);
      return { ok: creds[cfg.id]?.key === typed, value: text };
    });
    assert.ok(!stored.includes(typed));

    const keyFile = path.join(dataDir, 'credential-secret');
    assert.strictEqual(fs.statSync(keyFile).mode & 0o777, 0o600, 'the key is readable by its owner only');
    assert.match(fs.readFileSync(keyFile, 'utf8'), /^[0-9a-f]{64}\n$/);
    const candidates = repositoryStrings();
    assert.ok(candidates.has('uplink-demo-change-me') && candidates.size > 1000, `the repository's strings were read (${candidates.size})`);
    for (const s of candidates) {
      let creds;
      try {
        creds = nodeRedDecrypt(s, stored);
      } catch {
        continue;
      }
      assert.fail(`flows_cred.json decrypts with the string "${s}" from the repository: ${JSON.stringify(creds).slice(0, 80)}`);
    }
  });

  it('moves a device that an earlier npm start set up off the published key, and its credentials still work', async function () {
    await startSupabase();
    // What an earlier version left: its settings (the key printed in its source), a flow the user configured in the
    // editor, and the service key encrypted with the published key.
    const userDir = path.join(dataDir, 'node-red');
    fs.mkdirSync(userDir, { recursive: true });
    const oldSettings = `module.exports = {
  flowFile: 'flows.json',
  // Credentials are encrypted with this key; set UPLINK_CREDENTIAL_SECRET to your own before storing real secrets.
  credentialSecret: process.env.UPLINK_CREDENTIAL_SECRET || 'uplink-demo-change-me',
  uiHost: process.env.UPLINK_HOST || '127.0.0.1',
  logging: { console: { level: 'info', metrics: false, audit: false } },
  editorTheme: { projects: { enabled: false }, tours: false },
};
`;
    fs.writeFileSync(path.join(userDir, 'settings.js'), oldSettings);
    const shipped = JSON.parse(fs.readFileSync(path.join(PACKAGE_DIR, 'examples', 'capture-to-supabase.json'), 'utf8'));
    const cfgId = shipped.find((n) => n.type === 'uplink-supabase-config').id;
    const configured = shipped.map((n) => (n.id === cfgId ? { ...n, url: supabase.url, bucket: 'device-photos', table: 'shots' } : n));
    fs.writeFileSync(path.join(userDir, 'flows.json'), JSON.stringify(configured));
    fs.writeFileSync(path.join(userDir, 'flows_cred.json'), nodeRedEncrypt('uplink-demo-change-me', { [cfgId]: { key: SUPABASE_KEY } }));

    run = await startScript(dataDir, await freePort(), { UPLINK_SUPABASE_BUCKET: 'elsewhere' });
    const logs = run.logs();
    assert.match(logs, /fell back on a key printed in Uplink's source/);
    assert.match(logs, /flows_cred\.json was encrypted with the key earlier versions of npm start printed in their source .*; it is now encrypted with the key in /);
    // A variable the user's own flow does not read is not silently ignored.
    assert.match(logs, /UPLINK_SUPABASE_BUCKET is set, but the flow in .* does not read it/);

    const settings = fs.readFileSync(path.join(userDir, 'settings.js'), 'utf8');
    assert.ok(!settings.includes('uplink-demo-change-me'));
    assert.match(settings, /telemetry: \{ enabled: false \}/);
    const credText = fs.readFileSync(path.join(userDir, 'flows_cred.json'), 'utf8');
    assert.throws(() => nodeRedDecrypt('uplink-demo-change-me', credText));
    const key = fs.readFileSync(path.join(dataDir, 'credential-secret'), 'utf8').trim();
    assert.deepStrictEqual(nodeRedDecrypt(key, credText), { [cfgId]: { key: SUPABASE_KEY } });

    // Node-RED read the key: the device uploads as before.
    await pressCapture(run.url);
    await until('an upload with the kept key', async () => ({ ok: [...supabase.objects.keys()].some((k) => k.startsWith('device-photos/')), value: [...supabase.objects.keys()] }), 60000);
  });
});
