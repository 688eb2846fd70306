'use strict';
/**
 * A real MQTT broker (Debian's `mosquitto`) on 127.0.0.1 for end-to-end tests, and a small subscriber to read what
 * reached it.
 *
 *   const { startMosquitto, subscribe, available, unavailableReason } = require('./support/mosquitto');
 *
 *   available() -> boolean; unavailableReason() -> string | null     (print the reason before this.skip())
 *
 *   const broker = await startMosquitto();
 *     broker.url        'mqtt://127.0.0.1:PORT'      broker.port   PORT
 *     broker.logs()     what mosquitto printed
 *     broker.stop()     SIGTERM, SIGKILL after 5 s; removes its config folder
 *
 *   const sub = await subscribe(broker.url, 'uplink/alert/#');
 *     sub.messages      [{ topic, payload (parsed JSON when it is JSON, else the text), retain, at }]
 *     sub.waitFor(what, (messages) => boolean, timeoutMs)  -> the messages once the check holds (bounded)
 *     sub.close()
 *
 * The broker listens on 127.0.0.1 only, takes anonymous clients (a test broker) and keeps nothing on disk. The client
 * is the `mqtt` package Node-RED's own MQTT nodes use (a dependency of @node-red/nodes), so the tests add no package
 * of their own. The broker never outlives the test process: it is started through `setpriv --pdeathsig KILL`, and what
 * is left is killed when this process exits.
 */
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { freePort } = require('./node-red-process');
const { guardedCommand } = require('../../dist/lib/util/child-guard');

const MOSQUITTO = process.env.UPLINK_MOSQUITTO || '/usr/sbin/mosquitto';
const START_TIMEOUT_MS = 15_000;
const STOP_GRACE_MS = 5_000;

/** The MQTT client Node-RED's MQTT nodes load, found from Node-RED's core nodes package. */
function mqttClient() {
  const nodes = require.resolve('@node-red/nodes/package.json', { paths: [path.dirname(require.resolve('node-red'))] });
  return require(require.resolve('mqtt', { paths: [path.dirname(nodes)] }));
}

const live = new Set();
const ownedDirs = new Set();

function unavailableReason() {
  return fs.existsSync(MOSQUITTO) ? null : `${MOSQUITTO} is not installed (apt-get install mosquitto)`;
}

function available() {
  return unavailableReason() === null;
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, timeoutMs) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true });
  ownedDirs.delete(dir);
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
function accepts(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

async function startMosquitto() {
  const reason = unavailableReason();
  if (reason) throw new Error(`mosquitto cannot run: ${reason}`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-mosquitto-'));
  ownedDirs.add(dir);
  const configFile = path.join(dir, 'mosquitto.conf');

  let output = '';
  // The port is free when picked but may be taken before mosquitto binds it: a few attempts, each on a new one.
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    fs.writeFileSync(
      configFile,
      [
        '# written by test/support/mosquitto.js: a broker for one test run',
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence false',
        'log_dest stderr',
        'log_type error',
        'log_type warning',
        'log_type notice',
        '',
      ].join('\n'),
    );
    const cmd = guardedCommand(MOSQUITTO, ['-c', configFile], 'KILL');
    const proc = spawn(cmd.file, cmd.args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const onData = (d) => {
      if (output.length < 100_000) output += d;
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    /** @type {Error | null} */
    let spawnError = null;
    proc.once('error', (e) => {
      spawnError = e;
    });

    const end = Date.now() + START_TIMEOUT_MS;
    let up = false;
    while (!up && !spawnError && !exited(proc) && Date.now() < end) {
      up = await accepts(port);
      if (!up) await new Promise((r) => setTimeout(r, 50));
    }
    if (up) {
      return {
        url: `mqtt://127.0.0.1:${port}`,
        port,
        pid: proc.pid,
        logs: () => output,
        async stop() {
          if (!exited(proc)) {
            proc.kill('SIGTERM');
            if (!(await waitExit(proc, STOP_GRACE_MS))) {
              proc.kill('SIGKILL');
              await waitExit(proc, STOP_GRACE_MS);
            }
          }
          removeDir(dir);
        },
      };
    }
    proc.kill('SIGKILL');
    await waitExit(proc, STOP_GRACE_MS);
    const why = spawnError ? spawnError.message : exited(proc) ? `exited (code ${proc.exitCode}, signal ${proc.signalCode})` : `not accepting connections within ${START_TIMEOUT_MS / 1000} s`;
    if (!/Address already in use/i.test(output) || attempt >= 3) {
      removeDir(dir);
      throw new Error(`mosquitto did not start: ${why}: ${output.trim().slice(-1000)}`);
    }
    output = '';
  }
}

/**
 * Subscribes to `topic` (wildcards allowed) on the broker at `url`; resolves once the broker confirmed it.
 * @param {string} url
 * @param {string} topic
 */
async function subscribe(url, topic) {
  const mqtt = mqttClient();
  const client = mqtt.connect(url, { reconnectPeriod: 500, connectTimeout: 5000, clientId: `uplink-test-${process.pid}-${Date.now()}` });
  /** @type {{ topic: string, payload: any, retain: boolean, at: number }[]} */
  const messages = [];
  client.on('message', (t, buf, packet) => {
    const text = buf.toString('utf8');
    let payload = text;
    try {
      payload = JSON.parse(text);
    } catch {
      /* text */
    }
    messages.push({ topic: t, payload, retain: !!packet.retain, at: Date.now() });
  });
  client.on('error', () => undefined); // reconnects on its own; a test reads what arrived
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.end(true);
      reject(new Error(`no MQTT connection to ${url} within 10 s`));
    }, 10_000);
    client.once('connect', () => {
      client.subscribe(topic, { qos: 1 }, (err) => {
        clearTimeout(timer);
        if (err) {
          client.end(true);
          reject(err);
        } else resolve(undefined);
      });
    });
  });

  return {
    messages,
    /**
     * @param {string} what
     * @param {(messages: { topic: string, payload: any, retain: boolean, at: number }[]) => boolean} check
     * @param {number} [timeoutMs]
     */
    async waitFor(what, check, timeoutMs = 30_000) {
      const end = Date.now() + timeoutMs;
      while (!check(messages)) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}; MQTT messages so far: ${JSON.stringify(messages).slice(0, 2000)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return messages;
    },
    close() {
      return new Promise((resolve) => client.end(true, {}, () => resolve(undefined)));
    },
  };
}

process.on('exit', () => {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const dir of ownedDirs) {
    try {
      removeDir(dir);
    } catch {
      /* best effort */
    }
  }
});

module.exports = { startMosquitto, subscribe, mqttClient, available, unavailableReason };
