'use strict';
// `npm start` (scripts/start.js) on a user folder that a power cut left behind: flows.json and settings.js of 0 bytes
// (what ext4 leaves of files written without fsync), or a flow cut off mid-write beside a settings file of the user's
// own. The script must set the broken files aside, write them anew, and start Node-RED listening on 127.0.0.1 only
// (checked in the kernel's socket table, since Node-RED prints 127.0.0.1 even when it listens on every interface),
// running the shipped pipeline: captures reach the queue.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const { freePort, PACKAGE_DIR } = require('./support/node-red-process');
const { call, until } = require('./support/http-client');
const { tmpDir, rmrf } = require('./support/tmp');

const START = path.join(PACKAGE_DIR, 'scripts', 'start.js');
const EXIT_WITH_PARENT = path.join(__dirname, 'support', 'exit-with-parent.js');
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

/** Runs `node scripts/start.js` on `dataDir`; resolves once Node-RED runs its flows. */
async function startScript(dataDir, port, env = {}) {
  const child = spawn(process.execPath, [START], {
    cwd: PACKAGE_DIR,
    // The group lets the test kill Node-RED with the script; the preload ends both if this test process dies.
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...process.env,
      UPLINK_DATA_DIR: dataDir,
      UPLINK_PORT: String(port),
      UPLINK_CAPTURE_INTERVAL_S: '1',
      UPLINK_CAMERA_URL: '',
      UPLINK_HOST: '',
      UPLINK_S3_ENDPOINT: '',
      NODE_OPTIONS: `${process.env.NODE_OPTIONS || ''} --require ${EXIT_WITH_PARENT}`.trim(),
      ...env,
    },
  });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  child.stdin.on('error', () => undefined);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const run = {
    child,
    logs: () => output,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      let timer;
      const r = await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(() => resolve(null), 15000)))]);
      clearTimeout(timer);
      if (!r) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
        await exited;
      }
    },
  };
  try {
    await until('Node-RED to run its flows', async () => {
      if (child.exitCode !== null) throw Object.assign(new Error(`start.js exited (${child.exitCode}):\n${output}`), { fatal: true });
      return { ok: /Started flows/.test(output) && /Server now running/.test(output), value: output.slice(-400) };
    }, 60000);
  } catch (e) {
    await run.stop();
    throw e;
  }
  return run;
}

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
    run = await startScript(dataDir, port);

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
    run = await startScript(dataDir, port);

    assert.match(run.logs(), /flows\.json is not JSON \(.*\): kept aside as flows\.json\.broken-/);
    assert.strictEqual(fs.readFileSync(path.join(userDir, 'settings.js'), 'utf8'), own, 'the user\'s settings are kept');
    assert.deepStrictEqual(asideFiles(userDir, 'settings.js'), []);
    await assertPipelineOnLoopback(port);
  });
});
