'use strict';
// Starts a real `node-red` process with this package installed, for end-to-end tests and benchmarks.
//
//   const red = await startNodeRed({ flows, settings: { adminAuth }, userDir, env });
//   await fetch(`${red.url}/uplink/queue/q1/stats`);
//   await red.stop();
//
// Node-RED finds the package the way it finds a user-installed one: <userDir>/node_modules/node-red-contrib-uplink is a
// symlink to this repository (Node-RED 4.1's registry scans <userDir>/node_modules and follows the link; `require`
// then resolves the package's own dependencies, such as sqlite3, from the repository's node_modules). So the package
// must be built (`npm run build`) and its dist/ must hold each node's .html, or Node-RED skips the node.
//
// Every wait is bounded, and no process outlives the test run: stop() sends SIGINT then SIGKILL, the test process
// kills what is left when it exits (or gets SIGINT/SIGTERM/SIGHUP), and each node-red process also kills itself, and
// deletes the temporary user folder made for it, when the test process dies without saying so (its stdin pipe closes;
// see exit-with-parent.js).
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { portOf } = require('./net');

const PACKAGE_DIR = path.resolve(__dirname, '../..');
const PACKAGE_NAME = require(path.join(PACKAGE_DIR, 'package.json')).name;
const NODE_RED_BIN = fs.realpathSync(path.join(PACKAGE_DIR, 'node_modules', '.bin', 'node-red'));
const EXIT_WITH_PARENT = path.join(__dirname, 'exit-with-parent.js');
const CREDENTIAL_SECRET = 'uplink-test-credential-secret';

/** Running processes and the temp folders this module created, for the last-resort cleanup at exit. */
const live = new Set();
const ownedDirs = new Set();

/** A port that was free a moment ago on 127.0.0.1 (the kernel picks it; we close and hand it on). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = portOf(srv);
      srv.close(() => resolve(port));
    });
  });
}

/** Settings as JavaScript source: JSON-like values, plus functions (written as their source, so no closures). */
function toSource(value, indent = '') {
  const next = indent + '  ';
  if (typeof value === 'function') return value.toString();
  if (value instanceof RegExp) return value.toString();
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    return `[\n${value.map((v) => next + toSource(v, next)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const keys = Object.keys(value).filter((k) => value[k] !== undefined);
    if (keys.length === 0) return '{}';
    return `{\n${keys.map((k) => `${next}${JSON.stringify(k)}: ${toSource(value[k], next)}`).join(',\n')}\n${indent}}`;
  }
  if (value === undefined) return 'undefined';
  return JSON.stringify(value);
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof RegExp);
}

function merge(base, extra) {
  const out = { ...base };
  for (const [k, v] of Object.entries(extra || {})) out[k] = isPlainObject(v) && isPlainObject(out[k]) ? merge(out[k], v) : v;
  return out;
}

function linkPackage(userDir, packageDir) {
  const modules = path.join(userDir, 'node_modules');
  fs.mkdirSync(modules, { recursive: true });
  // The shipped pipeline's GPIO button node (it loads without GPIO hardware and says so in its status).
  const gpio = path.join(PACKAGE_DIR, 'node_modules', 'node-red-node-pi-gpio');
  const gpioLink = path.join(modules, 'node-red-node-pi-gpio');
  if (fs.existsSync(gpio) && !fs.existsSync(gpioLink)) fs.symlinkSync(gpio, gpioLink, 'dir');
  // The shipped pipeline's dashboard (Dashboard 2.0, a devDependency): a scoped package, so its @flowfuse folder first.
  const dashboard = path.join(PACKAGE_DIR, 'node_modules', '@flowfuse', 'node-red-dashboard');
  const dashboardLink = path.join(modules, '@flowfuse', 'node-red-dashboard');
  if (fs.existsSync(dashboard) && !fs.existsSync(dashboardLink)) {
    fs.mkdirSync(path.dirname(dashboardLink), { recursive: true });
    fs.symlinkSync(dashboard, dashboardLink, 'dir');
  }
  const link = path.join(modules, PACKAGE_NAME);
  let current;
  try {
    current = fs.readlinkSync(link);
  } catch {
    /* not there yet (or not a link: replaced below) */
  }
  if (current === packageDir) return;
  fs.rmSync(link, { recursive: true, force: true });
  fs.symlinkSync(packageDir, link, 'dir');
}

/**
 * Node-RED looks for node packages in the user folder and in every node_modules folder above its core nodes. Core
 * nodes reached through <userDir>/.stock/node_modules/@node-red/nodes (a link to the real ones) leave no other
 * node_modules on that way up but the user folder's own.
 */
function stockCoreNodes(userDir) {
  const real = path.dirname(require.resolve('@node-red/nodes/package.json', { paths: [path.dirname(NODE_RED_BIN)] }));
  const link = path.join(userDir, '.stock', 'node_modules', '@node-red', 'nodes');
  if (!fs.existsSync(link)) {
    fs.mkdirSync(path.dirname(link), { recursive: true });
    fs.symlinkSync(real, link, 'dir');
  }
  return link;
}

function removeDir(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    /* best effort */
  }
  ownedDirs.delete(dir);
}

/**
 * @param {object} [options]
 * @param {object[]} [options.flows] written to <userDir>/flows.json (when omitted, an existing flows file is kept)
 * @param {object} [options.settings] extra settings merged over the defaults (adminAuth, httpNodeRoot, ...)
 * @param {string} [options.userDir] reuse a folder (a restart): it is then never deleted by this module
 * @param {object} [options.env] extra environment variables for the node-red process
 * @param {number} [options.port] listen here instead of a free port
 * @param {string} [options.logLevel] Node-RED console log level (default 'info': the start is detected in the log)
 * @param {number} [options.startTimeoutMs] how long to wait for "Started flows" (default 20 s)
 * @param {string} [options.packageDir] the package folder to install (default: this repository)
 * @param {boolean} [options.linkPackages] false: link nothing into <userDir>/node_modules (the caller installed what
 *   the user folder should have, as a user would: see packed-install.js)
 * @param {boolean} [options.stock] true: a stock Node-RED, which finds node packages only in the user folder. (Node-RED
 *   also loads every node package installed beside itself, and this repository's node_modules holds Dashboard 2.0 and
 *   node-red-node-pi-gpio as devDependencies; its core nodes are reached here through a folder of their own instead.)
 * @param {boolean} [options.echo] copy node-red's output to this process's stderr (or set UPLINK_E2E_ECHO=1)
 * @param {string[]} [options.require] scripts to preload into the node-red process (node --require), such as a test's
 *   fault injection
 */
async function startNodeRed(options = {}) {
  const packageDir = path.resolve(options.packageDir || process.env.UPLINK_PACKAGE_DIR || PACKAGE_DIR);
  const ownDir = !options.userDir;
  const userDir = ownDir ? fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-node-red-')) : path.resolve(options.userDir);
  if (ownDir) ownedDirs.add(userDir);
  fs.mkdirSync(userDir, { recursive: true });

  let proc;
  let port;
  try {
    port = options.port || (await freePort());
    const flowFile = path.join(userDir, 'flows.json');
    if (options.flows) fs.writeFileSync(flowFile, JSON.stringify(options.flows, null, 2));
    if (options.linkPackages !== false) linkPackage(userDir, packageDir);

    const settings = merge(
      {
        uiHost: '127.0.0.1',
        uiPort: port,
        userDir,
        flowFile,
        credentialSecret: CREDENTIAL_SECRET,
        logging: { console: { level: options.logLevel || 'info', metrics: false, audit: false } },
        // Nothing that reaches the network or spawns npm at start: tests run offline.
        telemetry: { enabled: false, updateNotification: false },
        externalModules: { palette: { allowInstall: false }, modules: { allowInstall: false } },
        functionExternalModules: false,
        editorTheme: { tours: false },
      },
      options.settings,
    );
    if (options.stock) settings.coreNodesDir = stockCoreNodes(userDir);
    const settingsFile = path.join(userDir, 'settings.js');
    fs.writeFileSync(settingsFile, `// written by test/support/node-red-process.js\nmodule.exports = ${toSource(settings)};\n`);

    proc = spawn(
      process.execPath,
      ['--require', EXIT_WITH_PARENT, ...(options.require || []).flatMap((f) => ['--require', f]), NODE_RED_BIN, '--userDir', userDir, '--settings', settingsFile, '--port', String(port)],
      {
        cwd: userDir,
        env: { ...process.env, NODE_RED_HOME: undefined, UPLINK_E2E_TEMP_USERDIR: ownDir ? userDir : undefined, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
  } catch (e) {
    if (ownDir) removeDir(userDir);
    throw e;
  }

  const echo = options.echo || process.env.UPLINK_E2E_ECHO === '1';
  let output = '';
  let exitInfo = null;
  const waiters = new Set();
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      live.delete(instance);
      for (const w of waiters) w.check();
      resolve(exitInfo);
    });
  });
  proc.once('error', (err) => {
    // Could not spawn (or signal) the process: make every wait fail with the reason instead of timing out.
    output += `\n[node-red-process] ${err.message}\n`;
    if (proc.exitCode === null && proc.pid === undefined) {
      exitInfo = { code: null, signal: null, error: err };
      live.delete(instance);
      for (const w of waiters) w.check();
    }
  });
  const onData = (chunk) => {
    const text = chunk.toString();
    output += text;
    if (echo) process.stderr.write(text.replace(/^/gm, `[node-red ${proc.pid}] `).replace(/\[node-red \d+\] $/, ''));
    for (const w of waiters) w.check();
  };
  proc.stdout.on('data', onData);
  proc.stderr.on('data', onData);
  proc.stdin.on('error', () => undefined); // EPIPE once the process is gone

  function tail(n = 40) {
    return output.trim().split('\n').slice(-n).join('\n');
  }

  /** Resolves with the match once `regex` appears in the output (from `from` on); rejects after `timeoutMs` or at exit. */
  function waitFor(regex, timeoutMs = 10_000, { from = 0 } = {}) {
    return new Promise((resolve, reject) => {
      const w = {
        check() {
          const m = regex.exec(output.slice(from));
          if (m) return finish(null, m);
          if (exitInfo) finish(new Error(`node-red exited (code ${exitInfo.code}, signal ${exitInfo.signal}) before printing ${regex}; its output ends:\n${tail()}`));
        },
      };
      const timer = setTimeout(() => finish(new Error(`node-red did not print ${regex} within ${timeoutMs} ms; its output ends:\n${tail()}`)), timeoutMs);
      function finish(err, m) {
        clearTimeout(timer);
        waiters.delete(w);
        if (err) reject(err);
        else resolve(m);
      }
      waiters.add(w);
      w.check();
    });
  }

  /** Sends a signal; resolves with {code, signal} once the process has exited (or null after `timeoutMs`). */
  async function kill(signal = 'SIGKILL', timeoutMs = 10_000) {
    if (!exitInfo) {
      try {
        proc.kill(signal);
      } catch {
        /* already gone */
      }
    }
    let timer;
    const r = await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)))]);
    clearTimeout(timer);
    return r;
  }

  let stopping;
  /** Stops node-red as Ctrl-C does (SIGINT, so nodes close), SIGKILL after `graceMs`; deletes the userDir it made. */
  function stop({ graceMs = 10_000 } = {}) {
    stopping ??= (async () => {
      if (!exitInfo) {
        const r = await kill('SIGINT', graceMs);
        if (!r) await kill('SIGKILL', 5_000);
      }
      if (ownDir) removeDir(userDir);
      return exitInfo;
    })();
    return stopping;
  }

  const instance = {
    url: `http://127.0.0.1:${port}`,
    port,
    pid: proc.pid,
    userDir,
    process: proc,
    logs: () => output,
    waitFor,
    kill,
    stop,
    exited,
    killNow: () => {
      if (!exitInfo) proc.kill('SIGKILL');
    },
  };
  live.add(instance);

  const startTimeoutMs = options.startTimeoutMs || 20_000;
  try {
    const m = await waitFor(/Started flows|Waiting for missing types to be registered:/, startTimeoutMs);
    if (m[0] !== 'Started flows') {
      await new Promise((resolve) => setTimeout(resolve, 300)); // the list of types follows on the next lines
      const after = output.slice(output.indexOf(m[0])).split('\n').slice(1);
      const types = after.filter((line) => /\]\s+- \S/.test(line)).map((line) => line.replace(/^.*\]\s+- /, ''));
      throw new Error(`node-red cannot start the flows: node types are missing (is the package built and its package.json "node-red" section right?): ${types.join(', ')}`);
    }
    await waitFor(/Server now running at/, startTimeoutMs);
  } catch (e) {
    await stop();
    throw e;
  }
  return instance;
}

function killAllNow() {
  for (const inst of live) inst.killNow();
  for (const dir of ownedDirs) removeDir(dir);
}

process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, () => {
    killAllNow();
    // Let the signal do what it would have done without us.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

module.exports = { startNodeRed, freePort, PACKAGE_DIR, CREDENTIAL_SECRET };
