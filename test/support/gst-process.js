'use strict';
/**
 * What the GStreamer-based test servers (rtsp-server.js, rtsp-record-server.js) share: checking that /usr/bin/python3
 * has gi + GstRtspServer and the GStreamer elements a script needs, and running such a script as a child process that
 * prints one JSON line {"port": N} once listening, then status lines, and exits when its stdin closes.
 *
 *   gstAvailability(elements: string[]) -> { ok: boolean, reason: string | null }   (cached per element list)
 *   async startGstServer({ script, args(port) -> string[], name, onLine(line), onStart() }) -> handle
 *     handle.port, handle.pid (current process), handle.send(line) (to its stdin, if running),
 *     handle.kill(signal = 'SIGKILL'), handle.restart() (same port, retried for a bounded time), handle.close().
 *     onLine gets every stdout line after the port line; onStart runs before each (re)start's lines.
 *   async exitsWhenStdinCloses(script) -> boolean
 *     Runs a script on its own (port 0) and answers whether it exits within 10 s of its stdin closing.
 */
const childProcess = require('child_process');

const PYTHON = '/usr/bin/python3';
const START_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 5000;
const INSTALL =
  'apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly';

/** @type {Map<string, { ok: boolean, reason: string | null }>} */
const availability = new Map();

/**
 * @param {string[]} elements GStreamer element names the script's pipelines use
 * @returns {{ ok: boolean, reason: string | null }}
 */
function gstAvailability(elements) {
  const key = elements.join(',');
  const known = availability.get(key);
  if (known) return known;
  const check = [
    'import gi',
    'gi.require_version("Gst", "1.0")',
    'gi.require_version("GstRtspServer", "1.0")',
    'from gi.repository import Gst, GstRtspServer',
    'Gst.init(None)',
    `missing = [e for e in ${JSON.stringify(elements)} if not Gst.ElementFactory.find(e)]`,
    'print("missing GStreamer elements: " + ", ".join(missing) if missing else "ok")',
  ].join('\n');
  const r = childProcess.spawnSync(PYTHON, ['-c', check], { encoding: 'utf8', timeout: 20000 });
  const out = `${r.stdout || ''}`.trim();
  let result;
  if (r.error && /** @type {NodeJS.ErrnoException} */ (r.error).code === 'ENOENT') {
    result = { ok: false, reason: `${PYTHON} is not installed` };
  } else if (r.status !== 0) {
    const err = `${r.stderr || ''}`.trim().split('\n').pop() || (r.error ? r.error.message : `exit ${r.status}`);
    result = { ok: false, reason: `python3-gi with GStreamer's RTSP server is not importable (${err}); install: ${INSTALL}` };
  } else if (out !== 'ok') {
    result = { ok: false, reason: `${out} (install gstreamer1.0-plugins-base/-good/-bad/-ugly)` };
  } else {
    result = { ok: true, reason: null };
  }
  availability.set(key, result);
  return result;
}

/**
 * Starts one server process; resolves { child, port } once it prints its port line.
 * @param {{ script: string, args: string[], name: string, onLine: (line: string) => void }} opts
 * @returns {Promise<{ child: import('child_process').ChildProcessWithoutNullStreams, port: number }>}
 */
function spawnServer({ script, args, name, onLine }) {
  return new Promise((resolve, reject) => {
    const child = childProcess.spawn(PYTHON, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let settled = false;
    const fail = (why) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      try {
        child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
      const detail = err.trim().split('\n').slice(-3).join(' | ');
      reject(new Error(`${name} did not start: ${why}${detail ? `: ${detail}` : ''}`));
    };
    const timer = setTimeout(() => fail(`no port announced within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    child.stdin.on('error', () => {});
    child.stderr.on('data', (d) => {
      if (err.length < 8000) err += d;
    });
    child.on('error', (/** @type {NodeJS.ErrnoException} */ e) => fail(e.code === 'ENOENT' ? `${PYTHON} not found` : e.message));
    child.on('exit', (code, signal) => fail(`exited with ${signal || `code ${code}`}`));
    const onData = (d) => {
      out += d;
      for (let nl = out.indexOf('\n'); nl >= 0; nl = out.indexOf('\n')) {
        const line = out.slice(0, nl);
        out = out.slice(nl + 1);
        if (settled) {
          onLine(line);
          continue;
        }
        let announced;
        try {
          announced = JSON.parse(line).port;
        } catch {
          fail(`unexpected output ${JSON.stringify(line)}`);
          return;
        }
        settled = true;
        clearTimeout(timer);
        // Keep draining stderr so the child never blocks on a full pipe; stdout keeps flowing through onData.
        child.stderr.removeAllListeners('data');
        child.stderr.resume();
        resolve({ child, port: announced });
      }
    };
    child.stdout.on('data', onData);
  });
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, timeout) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeout);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * @param {{ script: string, args: (port: number) => string[], name: string, onLine?: (line: string) => void, onStart?: () => void, port?: number }} opts
 */
async function startGstServer({ script, args, name, onLine = () => {}, onStart = () => {}, port = 0 }) {
  onStart();
  let { child, port: bound } = await spawnServer({ script, args: args(port || 0), name, onLine });
  let closed = false;

  const stop = async (signal) => {
    const c = child;
    if (exited(c)) return;
    try {
      c.kill(signal);
    } catch {
      /* gone */
    }
    if (!(await waitExit(c, STOP_TIMEOUT_MS))) {
      c.kill('SIGKILL');
      await waitExit(c, STOP_TIMEOUT_MS);
    }
  };

  return {
    port: bound,
    get pid() {
      return child.pid;
    },
    get running() {
      return !exited(child);
    },
    /** @param {string} line */
    send(line) {
      if (!exited(child) && child.stdin.writable) child.stdin.write(`${line}\n`);
    },
    /**
     * Calls fn once the current process has exited (at once if it has); answers a function that cancels that.
     * @param {() => void} fn
     * @returns {() => void}
     */
    onceExit(fn) {
      const c = child;
      if (exited(c)) {
        fn();
        return () => {};
      }
      const listener = () => fn();
      c.once('exit', listener);
      return () => c.off('exit', listener);
    },
    async kill(signal = 'SIGKILL') {
      await stop(signal);
    },
    async restart() {
      if (closed) throw new Error(`${name} was closed`);
      await stop('SIGKILL');
      // The port may linger briefly after the old process died: retry for a bounded time.
      const end = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        try {
          onStart();
          ({ child } = await spawnServer({ script, args: args(bound), name, onLine }));
          return;
        } catch (e) {
          if (Date.now() > end) throw e;
          await new Promise((r) => setTimeout(r, 200));
        }
      }
    },
    async close() {
      closed = true;
      child.stdin.end();
      await stop('SIGTERM');
    },
  };
}

/**
 * @param {string} script
 * @returns {Promise<boolean>}
 */
async function exitsWhenStdinCloses(script) {
  const child = childProcess.spawn(PYTHON, [script, '0'], { stdio: ['pipe', 'pipe', 'ignore'] });
  try {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for the port line')), START_TIMEOUT_MS);
      child.stdout.once('data', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
    child.stdin.end();
    return await waitExit(child, 10000);
  } finally {
    child.kill('SIGKILL');
  }
}

module.exports = { PYTHON, gstAvailability, startGstServer, exitsWhenStdinCloses };
