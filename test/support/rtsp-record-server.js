'use strict';
/**
 * A real RTSP relay target for tests: GStreamer's RTSP server (test/fixtures/rtsp_record_server.py, run with
 * /usr/bin/python3) that accepts a publisher's ANNOUNCE/RECORD of H.264 at /ingest and serves what is being published,
 * unchanged (no re-encoding), to PLAY clients at /live, on 127.0.0.1. One publisher at a time.
 *
 *   const { available, unavailableReason, startRecordServer } = require('./support/rtsp-record-server');
 *
 *   available() -> boolean, unavailableReason() -> string | null   as in ./rtsp-server.js (skip with the reason)
 *
 *   async startRecordServer({ user, password, port } = {}) -> server
 *       user + password: Digest auth required to publish and to play (a wrong login: 401); neither: no auth.
 *       port: 0 or omitted picks a free port.
 *       Rejects with a clear error after 15 s, or at once when python3/gi/GStreamer is missing.
 *     server.url       'rtsp://127.0.0.1:PORT/ingest' (no credentials in it): publish here, e.g.
 *                      ffmpeg -re -i IN -c copy -f rtsp -rtsp_transport tcp rtsp://USER:PASS@127.0.0.1:PORT/ingest
 *     server.playUrl   'rtsp://127.0.0.1:PORT/live' (no credentials): what is being published. A PLAY client's
 *                      DESCRIBE waits for the published stream's packets (without a time limit on the server side), so
 *                      start the publisher first. A client that leaves while its DESCRIBE waits stays counted until the
 *                      next publisher's packets arrive.
 *     server.port      PORT
 *     server.pid       pid of the current server process (changes after restart())
 *     server.publishers() -> Promise<number>   RECORD sessions active now (asked of the server); 0 while it is down
 *     server.clients()    -> Promise<number>   RTSP connections open now (publishers and players)
 *     server.publisherCount, server.clientCount   the same, as last reported by the server
 *     server.kill(signal = 'SIGKILL') -> Promise<void>   resolves once the process has exited
 *     server.restart() -> Promise<void>                   comes back on the same port (after kill())
 *     server.close()   -> Promise<void>                   stops it for good (idempotent; use in afterEach)
 *
 * The server process exits when its stdin closes, so it never outlives the test process, even one killed with SIGKILL.
 */
const path = require('path');
const { gstAvailability, startGstServer } = require('./gst-process');

const SCRIPT = path.join(__dirname, '..', 'fixtures', 'rtsp_record_server.py');
const ELEMENTS = ['rtph264depay', 'h264parse', 'rtph264pay', 'udpsink', 'udpsrc'];
const QUERY_TIMEOUT_MS = 5000;

function available() {
  return gstAvailability(ELEMENTS).ok;
}

function unavailableReason() {
  return gstAvailability(ELEMENTS).reason;
}

/** @param {{ user?: string, password?: string, port?: number }} [opts] */
async function startRecordServer({ user, password, port } = {}) {
  if (!available()) throw new Error(`RTSP record test server cannot run: ${unavailableReason()}`);
  const counts = { clients: 0, publishers: 0 };
  /** @type {Set<() => void>} */
  const waiting = new Set();
  const handle = await startGstServer({
    script: SCRIPT,
    name: 'RTSP record test server',
    port,
    args: (p) => [String(p), ...(user ? [String(user), String(password ?? '')] : [])],
    onStart: () => {
      counts.clients = 0;
      counts.publishers = 0;
    },
    onLine: (line) => {
      const m = /^(clients|publishers) (\d+)$/.exec(line);
      if (!m) return;
      counts[m[1]] = Number(m[2]);
      // The server writes both lines each time; answer waiters once the second one has arrived.
      if (m[1] === 'publishers') for (const w of [...waiting]) w();
    },
  });

  /** @param {'clients' | 'publishers'} what @returns {Promise<number>} */
  const ask = (what) => {
    if (!handle.running) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      let cancelExit = () => {};
      const done = () => {
        clearTimeout(timer);
        cancelExit();
        waiting.delete(done);
        resolve(handle.running ? counts[what] : 0);
      };
      const timer = setTimeout(() => {
        waiting.delete(done);
        cancelExit();
        if (!handle.running) resolve(0);
        else reject(new Error(`RTSP record test server did not answer within ${QUERY_TIMEOUT_MS / 1000} s`));
      }, QUERY_TIMEOUT_MS);
      waiting.add(done);
      cancelExit = handle.onceExit(done);
      handle.send('status');
    });
  };

  return {
    url: `rtsp://127.0.0.1:${handle.port}/ingest`,
    playUrl: `rtsp://127.0.0.1:${handle.port}/live`,
    port: handle.port,
    get pid() {
      return handle.pid;
    },
    get clientCount() {
      return handle.running ? counts.clients : 0;
    },
    get publisherCount() {
      return handle.running ? counts.publishers : 0;
    },
    publishers: () => ask('publishers'),
    clients: () => ask('clients'),
    kill: (signal = 'SIGKILL') => handle.kill(signal),
    restart: () => handle.restart(),
    close: () => handle.close(),
  };
}

module.exports = { available, unavailableReason, startRecordServer };
