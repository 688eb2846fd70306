'use strict';
/**
 * A real RTSP camera stand-in for tests: GStreamer's RTSP server (test/fixtures/rtsp_server.py, run with
 * /usr/bin/python3) serving a live 640x360 10 fps H.264 test pattern, a keyframe every second, on 127.0.0.1.
 *
 *   const { available, unavailableReason, startRtspServer, startSilentServer } = require('./support/rtsp-server');
 *
 *   available() -> boolean
 *       Whether /usr/bin/python3 can import gi + GstRtspServer and GStreamer has the elements the stream needs.
 *       Checked once (a ~0.3 s subprocess), then cached.
 *   unavailableReason() -> string | null
 *       Why not, in words to print before skipping:
 *         if (!available()) { console.log(`      skipped: ${unavailableReason()}`); this.skip(); }
 *
 *   async startRtspServer({ user, password, port } = {}) -> server
 *       user + password: Digest auth required (as Reolink cameras do); neither: no auth.
 *       port: 0 or omitted picks a free port.
 *       Rejects with a clear error after 15 s, or at once when python3/gi/GStreamer is missing.
 *     server.url       'rtsp://127.0.0.1:PORT/cam' (no credentials in it)
 *     server.port      PORT
 *     server.pid       pid of the current server process (changes after restart())
 *     server.kill(signal = 'SIGKILL') -> Promise<void>   the camera dies: resolves once the process has exited
 *     server.restart() -> Promise<void>                   the camera comes back on the same port (after kill())
 *     server.close()   -> Promise<void>                   stops it for good (idempotent; use in afterEach)
 *
 *   async startSilentServer() -> { url, port, close() -> Promise<void> }
 *       A TCP server on 127.0.0.1 that accepts connections and never answers (a hung camera).
 *       url is 'rtsp://127.0.0.1:PORT/cam'.
 *
 * The server process exits when its stdin closes, so it never outlives the test process, even one killed with SIGKILL.
 */
const childProcess = require('child_process');
const net = require('net');
const path = require('path');
const { listenLocal } = require('./net');

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(__dirname, '..', 'fixtures', 'rtsp_server.py');
const START_TIMEOUT_MS = 15000;
const STOP_TIMEOUT_MS = 5000;

const CHECK = [
  'import gi',
  'gi.require_version("Gst", "1.0")',
  'gi.require_version("GstRtspServer", "1.0")',
  'from gi.repository import Gst, GstRtspServer',
  'Gst.init(None)',
  'missing = [e for e in ("videotestsrc", "videoconvert", "x264enc", "rtph264pay") if not Gst.ElementFactory.find(e)]',
  'print("missing GStreamer elements: " + ", ".join(missing) if missing else "ok")',
].join('\n');

let availability; // { ok, reason }

function check() {
  if (availability) return availability;
  const r = childProcess.spawnSync(PYTHON, ['-c', CHECK], { encoding: 'utf8', timeout: 20000 });
  const out = `${r.stdout || ''}`.trim();
  if (r.error && /** @type {NodeJS.ErrnoException} */ (r.error).code === 'ENOENT') {
    availability = { ok: false, reason: `${PYTHON} is not installed` };
  } else if (r.status !== 0) {
    const err = `${r.stderr || ''}`.trim().split('\n').pop() || (r.error ? r.error.message : `exit ${r.status}`);
    availability = {
      ok: false,
      reason: `python3-gi with GStreamer's RTSP server is not importable (${err}); install: apt-get install python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly`,
    };
  } else if (out !== 'ok') {
    availability = { ok: false, reason: `${out} (install gstreamer1.0-plugins-base/-good/-ugly)` };
  } else {
    availability = { ok: true, reason: null };
  }
  return availability;
}

function available() {
  return check().ok;
}

function unavailableReason() {
  return check().reason;
}

/** Starts one server process; resolves { child, port } once it prints its port. */
function spawnServer({ port, user, password }) {
  return new Promise((resolve, reject) => {
    const args = [SCRIPT, String(port || 0)];
    if (user) args.push(String(user), String(password ?? ''));
    const child = childProcess.spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
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
      reject(new Error(`RTSP test server did not start: ${why}${detail ? `: ${detail}` : ''}${available() ? '' : ` (${unavailableReason()})`}`));
    };
    const timer = setTimeout(() => fail(`no port announced within ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    child.stdin.on('error', () => {});
    child.stderr.on('data', (d) => {
      if (err.length < 8000) err += d;
    });
    child.on('error', (/** @type {NodeJS.ErrnoException} */ e) => fail(e.code === 'ENOENT' ? `${PYTHON} not found` : e.message));
    child.on('exit', (code, signal) => fail(`exited with ${signal || `code ${code}`}`));
    child.stdout.on('data', (d) => {
      if (settled) return;
      out += d;
      const nl = out.indexOf('\n');
      if (nl < 0) return;
      let announced;
      try {
        announced = JSON.parse(out.slice(0, nl)).port;
      } catch {
        return fail(`unexpected output ${JSON.stringify(out.slice(0, nl))}`);
      }
      settled = true;
      clearTimeout(timer);
      // Keep draining stdout/stderr so the child never blocks on a full pipe.
      child.stdout.resume();
      child.stderr.removeAllListeners('data');
      child.stderr.resume();
      resolve({ child, port: announced });
    });
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

/** @param {{ user?: string, password?: string, port?: number }} [opts] */
async function startRtspServer({ user, password, port } = {}) {
  if (!available()) throw new Error(`RTSP test server cannot run: ${unavailableReason()}`);
  let { child, port: bound } = await spawnServer({ port, user, password });
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
    url: `rtsp://127.0.0.1:${bound}/cam`,
    port: bound,
    get pid() {
      return child.pid;
    },
    async kill(signal = 'SIGKILL') {
      await stop(signal);
    },
    async restart() {
      if (closed) throw new Error('RTSP test server was closed');
      await stop('SIGKILL');
      // The port may linger briefly after the old process died: retry for a bounded time.
      const end = Date.now() + START_TIMEOUT_MS;
      for (;;) {
        try {
          ({ child } = await spawnServer({ port: bound, user, password }));
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

async function startSilentServer() {
  const sockets = new Set();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
    // Read and ignore whatever the client sends; never answer.
    s.resume();
  });
  const port = await listenLocal(server);
  return {
    url: `rtsp://127.0.0.1:${port}/cam`,
    port,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

module.exports = { available, unavailableReason, startRtspServer, startSilentServer };
