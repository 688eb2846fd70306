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
 *   async startRtspServer({ user, password, port, timecode } = {}) -> server
 *       user + password: Digest auth required (as Reolink cameras do); neither: no auth.
 *       port: 0 or omitted picks a free port.
 *       timecode: true draws into each frame the wall-clock time it was made, as black/white blocks in a top band
 *         above scrolling squares (instead of videotestsrc's pattern); read it with ./timecode.js.
 *       Rejects with a clear error after 15 s, or at once when python3/gi/GStreamer is missing.
 *     server.url       'rtsp://127.0.0.1:PORT/cam' (no credentials in it)
 *     server.port      PORT
 *     server.pid       pid of the current server process (changes after restart())
 *     server.clients() -> Promise<number>   RTSP clients connected now (asked of the server: counts every connection
 *                                            it has seen open or close before answering); 0 while the camera is down
 *     server.clientCount   the same, as last reported by the server (updated as clients come and go)
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
const net = require('net');
const path = require('path');
const { listenLocal } = require('./net');
const { gstAvailability, startGstServer } = require('./gst-process');

const SCRIPT = path.join(__dirname, '..', 'fixtures', 'rtsp_server.py');
const ELEMENTS = ['videotestsrc', 'appsrc', 'videoconvert', 'x264enc', 'rtph264pay'];
const QUERY_TIMEOUT_MS = 5000;

function available() {
  return gstAvailability(ELEMENTS).ok;
}

function unavailableReason() {
  return gstAvailability(ELEMENTS).reason;
}

/** @param {{ user?: string, password?: string, port?: number, timecode?: boolean }} [opts] */
async function startRtspServer({ user, password, port, timecode = false } = {}) {
  if (!available()) throw new Error(`RTSP test server cannot run: ${unavailableReason()}`);
  let count = 0;
  /** @type {Set<(n: number) => void>} */
  const waiting = new Set();
  const handle = await startGstServer({
    script: SCRIPT,
    name: 'RTSP test server',
    port,
    args: (p) => [...(timecode ? ['--timecode'] : []), String(p), ...(user ? [String(user), String(password ?? '')] : [])],
    onStart: () => {
      count = 0;
    },
    onLine: (line) => {
      const m = /^clients (\d+)$/.exec(line);
      if (!m) return;
      count = Number(m[1]);
      for (const w of [...waiting]) w(count);
    },
  });

  return {
    url: `rtsp://127.0.0.1:${handle.port}/cam`,
    port: handle.port,
    get pid() {
      return handle.pid;
    },
    get clientCount() {
      return handle.running ? count : 0;
    },
    /** @returns {Promise<number>} */
    clients() {
      if (!handle.running) return Promise.resolve(0);
      return new Promise((resolve, reject) => {
        let cancelExit = () => {};
        const done = (n) => {
          clearTimeout(timer);
          cancelExit();
          waiting.delete(done);
          resolve(n);
        };
        const timer = setTimeout(() => {
          waiting.delete(done);
          cancelExit();
          if (!handle.running) resolve(0);
          else reject(new Error(`RTSP test server did not answer a client count within ${QUERY_TIMEOUT_MS / 1000} s`));
        }, QUERY_TIMEOUT_MS);
        waiting.add(done);
        cancelExit = handle.onceExit(() => done(0));
        handle.send('clients');
      });
    },
    kill: (signal = 'SIGKILL') => handle.kill(signal),
    restart: () => handle.restart(),
    close: () => handle.close(),
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
