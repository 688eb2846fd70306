'use strict';
// Starts a real Node-RED (the devDependency) with one uplink-offline-queue node on a given database, waits until the
// node has opened it and answers its stats endpoint, then reads the process's resident memory a few times.
const fs = require('fs');
const http = require('http');
const net = require('net');
const path = require('path');
const { spawn } = require('child_process');
const h = require('./helpers');
const { portOf } = require('../test/support/net');

const ROOT = path.join(__dirname, '..');
const RED_JS = require.resolve('node-red/red.js', { paths: [ROOT] });
const NODE_ID = 'b1e5c0de00000001';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = portOf(s);
      s.close(() => resolve(port));
    });
  });
}

function getJson(port, urlPath, timeoutMs = 2000) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, body: JSON.parse(body) });
        } catch {
          resolve({ status: res.statusCode, body });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

function rssKB(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

function writeUserDir(userDir, port, dbFile) {
  fs.mkdirSync(path.join(userDir, 'node_modules'), { recursive: true });
  // Node-RED scans <userDir>/node_modules for packages with a "node-red" section; a link avoids an npm install.
  fs.symlinkSync(ROOT, path.join(userDir, 'node_modules', 'node-red-contrib-uplink'), 'dir');
  const settings = path.join(userDir, 'settings.js');
  fs.writeFileSync(
    settings,
    `module.exports = ${JSON.stringify(
      {
        uiHost: '127.0.0.1',
        uiPort: port,
        userDir,
        flowFile: 'flows.json',
        credentialSecret: false,
        logging: { console: { level: 'info', metrics: false, audit: false } },
        editorTheme: { projects: { enabled: false }, tours: false },
        telemetry: { enabled: false, updateNotification: false },
        diagnostics: { enabled: false, ui: false },
        externalModules: { autoInstall: false, palette: { allowInstall: false } },
      },
      null,
      2,
    )};\n`,
  );
  fs.writeFileSync(
    path.join(userDir, 'flows.json'),
    JSON.stringify([
      { id: 'b1e5c0de000000aa', type: 'tab', label: 'bench' },
      { id: NODE_ID, type: 'uplink-offline-queue', z: 'b1e5c0de000000aa', name: 'bench queue', db: dbFile, startOffline: true, x: 200, y: 100, wires: [[], [], []] },
    ]),
  );
  return settings;
}

/**
 * @param {{ dbFile: string, expectPending: number, log?: (line: string) => void,
 *   registerChild?: (child: import('child_process').ChildProcess) => () => void, samples?: number }} opts
 * @returns {Promise<{rssKB:number, samplesKB:number[], startMs:number, pending:number|null, problems:string[]}>}
 */
async function nodeRedMemory({ dbFile, expectPending, log = () => {}, registerChild = () => () => {}, samples = 5 }) {
  const userDir = h.tempDir('userdir');
  const port = await freePort();
  const settings = writeUserDir(userDir, port, dbFile);
  const t0 = h.now();
  const child = spawn(process.execPath, [RED_JS, '--userDir', userDir, '--port', String(port), '--settings', settings, 'flows.json'], {
    cwd: userDir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const unregister = registerChild(child);
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (c) => (output += c));
  child.stderr.setEncoding('utf8').on('data', (c) => (output += c));
  let exited = null;
  const exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))));
  const problems = [];
  try {
    const started = await waitFor(() => /Started flows/.test(output), 60_000, () => exited);
    if (!started) throw new Error(`node-red did not start flows in 60 s${exited ? ` (exited ${JSON.stringify(exited)})` : ''}:\n${output.slice(-2000)}`);
    if (/Waiting for missing types/.test(output)) throw new Error(`node-red does not know uplink-offline-queue:\n${output.slice(-2000)}`);
    // Settled: the node has opened the database and answers with the right count.
    let pending = null;
    const settled = await waitFor(async () => {
      try {
        const r = await getJson(port, `/uplink/queue/${NODE_ID}/stats`);
        if (r.status === 200 && typeof r.body.pending === 'number') pending = r.body.pending;
        return pending === expectPending;
      } catch {
        return false;
      }
    }, 30_000, () => exited);
    const startMs = h.now() - t0;
    if (!settled) problems.push(`stats endpoint never reported ${expectPending} pending (last: ${pending})`);
    await h.sleep(2000);
    const samplesKB = [];
    for (let i = 0; i < samples; i++) {
      if (exited) throw new Error(`node-red exited while sampling: ${JSON.stringify(exited)}\n${output.slice(-2000)}`);
      samplesKB.push(rssKB(child.pid));
      if (i < samples - 1) await h.sleep(1000);
    }
    for (const line of output.split('\n')) {
      if (/\[(error|warn)\]/.test(line) && /uplink|offline-queue|bench queue/i.test(line)) problems.push(line.replace(/^.*?\[(error|warn)\]\s*/, '$1: ').slice(0, 160));
    }
    return { rssKB: h.median(samplesKB), samplesKB, startMs, pending, problems };
  } finally {
    if (!exited) {
      child.kill('SIGTERM');
      const t = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, 5000);
      await exitPromise;
      clearTimeout(t);
    }
    unregister();
  }
}

async function waitFor(test, timeoutMs, aborted) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await test()) return true;
    if (aborted()) return false;
    await h.sleep(100);
  }
  return false;
}

module.exports = { nodeRedMemory };
