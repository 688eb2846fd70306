'use strict';
// Runs `npm start`'s script (scripts/start.js) as a user does, on a temporary data folder, for end-to-end tests.
//
//   const run = await startScript(dataDir, port, { UPLINK_FLOW: 'capture-to-supabase' });
//   run.logs();  await run.stop();
//
// The script and the Node-RED it starts run in a process group of their own, so stop() ends both (SIGTERM, then
// SIGKILL); a preload ends them too if the test process dies without saying so.
const path = require('path');
const { spawn } = require('child_process');
const { PACKAGE_DIR } = require('./node-red-process');
const { until } = require('./http-client');

const START = path.join(PACKAGE_DIR, 'scripts', 'start.js');
const EXIT_WITH_PARENT = path.join(__dirname, 'exit-with-parent.js');

/**
 * Runs `node scripts/start.js` on `dataDir`; resolves once Node-RED runs its flows. The variables npm start reads
 * are cleared from the environment unless `env` gives them, so a developer's own settings cannot leak in.
 * @param {string} dataDir
 * @param {number} port
 * @param {Record<string, string>} [env]
 */
async function startScript(dataDir, port, env = {}) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(UPLINK_|AWS_)/.test(k)));
  const child = spawn(process.execPath, [START], {
    cwd: PACKAGE_DIR,
    // The group lets the test kill Node-RED with the script; the preload ends both if this test process dies.
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {
      ...clean,
      UPLINK_DATA_DIR: dataDir,
      UPLINK_PORT: String(port),
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
    url: `http://127.0.0.1:${port}`,
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

module.exports = { startScript, START };
