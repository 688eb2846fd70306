'use strict';
/**
 * Running the ffmpeg command line in tests, bounded, as the RTSP server self-tests and the time-code tests do.
 *
 *   hasFfmpeg() -> boolean   whether `ffmpeg` runs (checked once)
 *   runFfmpeg(args, timeout = 30000) -> { done, stop, output }
 *     done     resolves { code, stdout, stderr } when ffmpeg exits (killed after `timeout` ms)
 *     stop()   kills it now
 *     output() its stdout so far, as text
 */
const childProcess = require('child_process');

/** @type {boolean | undefined} */
let installed;

function hasFfmpeg() {
  if (installed === undefined) installed = childProcess.spawnSync('ffmpeg', ['-version'], { stdio: 'ignore' }).status === 0;
  return installed;
}

/**
 * @param {string[]} args after `-nostdin -v error`
 * @param {number} [timeout] ms
 * @returns {{ done: Promise<{ code: number | null, stdout: Buffer, stderr: string }>, stop: () => void, output: () => string }}
 */
function runFfmpeg(args, timeout = 30000) {
  const p = childProcess.spawn('ffmpeg', ['-nostdin', '-v', 'error', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  /** @type {Buffer[]} */
  const out = [];
  let stderr = '';
  p.stdout.on('data', (d) => out.push(d));
  p.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => p.kill('SIGKILL'), timeout);
  const done = new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr });
    });
  });
  return { done, stop: () => p.kill('SIGKILL'), output: () => Buffer.concat(out).toString() };
}

module.exports = { hasFfmpeg, runFfmpeg };
