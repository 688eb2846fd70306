'use strict';
// The Node-RED-free connectivity pieces: probes (real servers on 127.0.0.1, port 0), the monitor's hysteresis and
// cadence, and the editor-settings parser. Nothing here reaches any address but 127.0.0.1: every DNS probe names the
// local responder in test/support/dns-server.js as its server. No assertion is about how long something took.
const assert = require('assert');
const http = require('http');
const net = require('net');
const path = require('path');
const { runProbe, describeNetworkError } = require('../dist/lib/connectivity/probes');
const { ConnectivityMonitor, DEFAULT_TIMING } = require('../dist/lib/connectivity/monitor');
const connectivityConfig = require('../dist/lib/connectivity/config');
const { parseConnectivityConfig, describeProbe } = connectivityConfig;
const { parseStatusList } = require('../dist/lib/util/settings');
const { startDnsServer, TYPE_A, TYPE_AAAA } = require('./support/dns-server');
const fs = require('fs');
const { listenLocal } = require('./support/net');
const { tmpDir, rmrf, waitFor } = require('./support/tmp');

/** @typedef {import('../dist/lib/connectivity/probes').ProbeSpec} ProbeSpec */
/** @typedef {Extract<ProbeSpec, { kind: 'tcp' }>} TcpProbe */
/** @typedef {Extract<ProbeSpec, { kind: 'dns' }>} DnsProbe */

/** For probes meant to time out. */
const TIMEOUT_MS = 300;
/** For probes meant to get an answer: generous, so a loaded machine cannot turn a slow answer into a timeout. */
const ANSWER_MS = 2000;
const FAST = { timeoutMs: TIMEOUT_MS, onlineIntervalMs: 300, offlineMinMs: 30, offlineMaxMs: 120, growth: 1.3, failuresToOffline: 2 };
/** Long enough that no timer-driven probe can happen during a test that drives probes itself. */
const NEVER = 60_000;
const MONITOR_JS = path.join(__dirname, '..', 'dist', 'lib', 'connectivity', 'monitor.js');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** Lets every pending promise continuation run. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('connectivity', function () {
  // Everything a test opens registers its own cleanup; run newest first, even when the test failed.
  let cleanups = [];
  afterEach(async function () {
    const list = cleanups.reverse();
    cleanups = [];
    for (const fn of list) {
      try {
        await fn();
      } catch {
        // keep cleaning
      }
    }
  });

  // ---------------------------------------------------------------------------------------------------------------
  // Local servers

  /** An HTTP server on 127.0.0.1; `handler(req, res)` answers (or doesn't). Records every request. */
  async function httpServer(handler) {
    const requests = [];
    const sockets = new Set(); // every TCP connection a request came on
    const server = http.createServer((req, res) => {
      requests.push({ method: req.method, url: req.url, userAgent: req.headers['user-agent'] });
      sockets.add(req.socket);
      handler(req, res);
    });
    const port = await listenLocal(server);
    let closed = false;
    const close = () =>
      new Promise((resolve) => {
        if (closed) return resolve();
        closed = true;
        server.close(() => resolve());
        server.closeAllConnections();
      });
    cleanups.push(close);
    return { port, url: `http://127.0.0.1:${port}/health`, requests, sockets, close };
  }

  /** An HTTP server answering with `ctl.status`, which the test may change at any time. */
  async function statusServer(status) {
    const ctl = { status };
    const s = await httpServer((req, res) => {
      res.writeHead(ctl.status);
      res.end();
    });
    return Object.assign(ctl, s);
  }

  /**
   * A TCP server on 127.0.0.1 that accepts and, unless told otherwise, holds connections open and silent.
   * @param {(socket: net.Socket) => void} [onConnection]
   */
  async function tcpServer(onConnection = () => {}) {
    const sockets = new Set();
    const stats = { connections: 0, closed: 0 };
    const server = net.createServer((socket) => {
      stats.connections++;
      sockets.add(socket);
      socket.on('error', () => {});
      socket.resume(); // read and discard, so the peer's close is seen
      socket.on('close', () => {
        stats.closed++;
        sockets.delete(socket);
      });
      onConnection(socket);
    });
    const port = await listenLocal(server);
    let closed = false;
    const close = () =>
      new Promise((resolve) => {
        if (closed) return resolve();
        closed = true;
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    cleanups.push(close);
    return { port, stats, close };
  }

  /** A port on 127.0.0.1 that was just listening and now is not. */
  async function closedPort() {
    const s = await tcpServer();
    await s.close();
    return s.port;
  }

  async function dnsServer(opts) {
    const s = await startDnsServer(opts);
    cleanups.push(() => s.close());
    return s;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Monitor helpers

  /**
   * A monitor whose events are recorded in order; stopped after the test.
   * @param {ProbeSpec} spec
   * @param {Partial<typeof FAST>} [timing]
   * @param {{ now?: () => number, probeFn?: (spec: ProbeSpec, timeoutMs: number) => Promise<import('../dist/lib/connectivity/probes').ProbeResult> }} [opts]
   */
  function monitor(spec, timing, { now, probeFn } = {}) {
    const log = [];
    const changes = [];
    const probed = [];
    const waiters = [];
    const events = {
      change(state) {
        log.push(`change:${state.online}`);
        changes.push(state);
      },
      probed(result, state) {
        log.push(`probed:${result.ok}`);
        probed.push({ result, state });
        for (const w of waiters.splice(0)) w();
      },
    };
    const m = new ConnectivityMonitor(spec, { ...FAST, ...timing }, events, now, probeFn);
    cleanups.push(() => m.stop());
    /** Resolves at the next probed event (bounded). */
    const nextProbe = (what = 'a probe') =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 5000);
        waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    return { m, log, changes, probed, nextProbe };
  }

  /** A probe function the test answers one call at a time. Tracks calls and how many ran at once. */
  function manualProbe() {
    const waiting = [];
    const p = {
      calls: [],
      active: 0,
      maxActive: 0,
      fn: (spec, timeoutMs) =>
        new Promise((resolve) => {
          p.calls.push({ spec, timeoutMs });
          p.active++;
          p.maxActive = Math.max(p.maxActive, p.active);
          waiting.push((r) => {
            p.active--;
            resolve(r);
          });
        }),
      pending: () => waiting.length,
      /** Answers the oldest (or next) probe call, then lets the monitor act on it. */
      async answer(ok, reason) {
        await waitFor(() => waiting.length > 0, { timeout: 5000, interval: 5, what: 'a probe call' });
        waiting.shift()({ ok, latencyMs: 7, reason: reason ?? (ok ? 'HTTP 204' : 'connection refused') });
        await settle();
      },
    };
    cleanups.push(() => {
      // Release anything still waiting so no promise is left hanging.
      for (const w of waiting.splice(0)) w({ ok: false, latencyMs: 0, reason: 'test over' });
    });
    return p;
  }

  /** A probe function answering at once from `script(i)` (i = 0-based call number). */
  function scriptedProbe(script) {
    const p = {
      calls: 0,
      fn: async () => {
        const i = p.calls++;
        const ok = script(i);
        return { ok, latencyMs: 3, reason: ok ? 'HTTP 204' : 'connection refused' };
      },
    };
    return p;
  }

  /** Records the delays the monitor asks setTimeout for (only calls made from the monitor's own code). */
  function recordMonitorTimers() {
    const delays = [];
    const original = global.setTimeout;
    global.setTimeout = /** @type {typeof setTimeout} */ (
      function (fn, ms, ...args) {
        if (new Error().stack.includes(MONITOR_JS)) delays.push(ms);
        return original.call(this, fn, ms, ...args);
      }
    );
    cleanups.push(() => {
      global.setTimeout = original;
    });
    return delays;
  }

  /** @type {(url: string, method?: 'HEAD' | 'GET') => ProbeSpec} */
  const HTTP_SPEC = (url, method = 'HEAD') => ({ kind: 'http', url, method });

  // ---------------------------------------------------------------------------------------------------------------
  describe('HTTP probe', function () {
    it('a 204 to HEAD is reachable, with the status as the reason; the server sees HEAD', async function () {
      const s = await statusServer(204);
      const r = await runProbe(HTTP_SPEC(s.url, 'HEAD'), ANSWER_MS);
      assert.strictEqual(r.ok, true);
      assert.strictEqual(r.reason, 'HTTP 204');
      assert.ok(Number.isFinite(r.latencyMs) && r.latencyMs >= 0, `latency ${r.latencyMs}`);
      assert.deepStrictEqual(s.requests, [{ method: 'HEAD', url: '/health', userAgent: 'uplink-connectivity' }]);
    });

    it('a 200 to GET is reachable; the server sees GET, path and query', async function () {
      const s = await httpServer((req, res) => res.end('hello'));
      const r = await runProbe(HTTP_SPEC(`${s.url}?probe=1`, 'GET'), ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [true, 'HTTP 200']);
      assert.deepStrictEqual(
        s.requests.map((q) => `${q.method} ${q.url}`),
        ['GET /health?probe=1'],
      );
    });

    it('5xx is a failure, with the status text in the reason', async function () {
      const s = await statusServer(503);
      const r = await runProbe(HTTP_SPEC(s.url), ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'HTTP 503 Service Unavailable']);
      s.status = 500;
      assert.strictEqual((await runProbe(HTTP_SPEC(s.url), ANSWER_MS)).reason, 'HTTP 500 Internal Server Error');
      const custom = await httpServer((req, res) => {
        res.writeHead(502, 'Upstream Went Away');
        res.end();
      });
      assert.deepStrictEqual(await runProbe(HTTP_SPEC(custom.url), ANSWER_MS).then((x) => [x.ok, x.reason]), [false, 'HTTP 502 Upstream Went Away']);
      assert.strictEqual(s.requests.length, 2);
    });

    it('by default any answer below 500 means reachable (a 403 from a storage endpoint is reachable)', async function () {
      const s = await statusServer(200);
      for (const status of [200, 204, 301, 304, 400, 401, 403, 404, 499]) {
        s.status = status;
        const r = await runProbe(HTTP_SPEC(s.url, 'GET'), ANSWER_MS);
        assert.deepStrictEqual([r.ok, r.reason], [true, `HTTP ${status}`], `status ${status}`);
      }
      s.status = 307; // a redirect is an answer: not followed
      const r = await runProbe(HTTP_SPEC(s.url), ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [true, 'HTTP 307']);
      assert.strictEqual(s.requests.length, 10, 'one request per probe, redirect not followed');
    });

    it('an expect list overrides the default, both ways; an empty list is the default', async function () {
      const s = await statusServer(403);
      const twoxx = parseStatusList('200-299');
      let r = await runProbe({ kind: 'http', url: s.url, method: 'HEAD', expect: twoxx }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'HTTP 403 Forbidden']);
      s.status = 204;
      r = await runProbe({ kind: 'http', url: s.url, method: 'HEAD', expect: twoxx }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [true, 'HTTP 204']);
      s.status = 200;
      r = await runProbe({ kind: 'http', url: s.url, method: 'HEAD', expect: [204] }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'HTTP 200 OK']);
      s.status = 503;
      r = await runProbe({ kind: 'http', url: s.url, method: 'HEAD', expect: parseStatusList('503') }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [true, 'HTTP 503']);
      s.status = 404;
      r = await runProbe({ kind: 'http', url: s.url, method: 'HEAD', expect: [] }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [true, 'HTTP 404']);
    });

    it('a server that accepts the request and never answers times out, and the probe lets go of the connection', async function () {
      let socketClosed = 0;
      const s = await httpServer((req) => req.socket.once('close', () => socketClosed++)); // never answers
      const r = await runProbe(HTTP_SPEC(s.url, 'GET'), TIMEOUT_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'timed out after 0.3 s']);
      assert.strictEqual(s.requests.length, 1, 'the request did reach the server');
      await waitFor(() => socketClosed === 1, { timeout: 5000, what: 'the client to drop the connection' });
    });

    it('a server that accepts the connection and never speaks HTTP times out too', async function () {
      const s = await tcpServer(); // accepts, never reads or writes
      const r = await runProbe(HTTP_SPEC(`http://127.0.0.1:${s.port}/`), TIMEOUT_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'timed out after 0.3 s']);
      assert.strictEqual(s.stats.connections, 1);
      await waitFor(() => s.stats.closed === 1, { timeout: 5000, what: 'the probe to close its socket' });
    });

    it('a stopped server is "connection refused"; a reset connection is "connection reset"', async function () {
      const port = await closedPort();
      const r = await runProbe(HTTP_SPEC(`http://127.0.0.1:${port}/health`), ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'connection refused']);

      const s = await statusServer(204);
      assert.strictEqual((await runProbe(HTTP_SPEC(s.url), ANSWER_MS)).ok, true);
      await s.close();
      assert.deepStrictEqual(await runProbe(HTTP_SPEC(s.url), ANSWER_MS).then((x) => [x.ok, x.reason]), [false, 'connection refused']);

      const rst = await tcpServer((socket) => socket.resetAndDestroy());
      assert.deepStrictEqual(
        await runProbe(HTTP_SPEC(`http://127.0.0.1:${rst.port}/`), ANSWER_MS).then((x) => [x.ok, x.reason]),
        [false, 'connection reset'],
      );
    });

    it('opens a fresh connection for every probe, even when the server offers keep-alive', async function () {
      const s = await httpServer((req, res) => {
        res.writeHead(204, { connection: 'keep-alive', 'keep-alive': 'timeout=30' });
        res.end();
      });
      for (let i = 0; i < 3; i++) assert.strictEqual((await runProbe(HTTP_SPEC(s.url), ANSWER_MS)).ok, true);
      assert.strictEqual(s.requests.length, 3);
      assert.strictEqual(s.sockets.size, 3, 'three requests on three connections');
    });
  });

  // ---------------------------------------------------------------------------------------------------------------
  describe('TCP probe', function () {
    it('a listening port is ok, and the probe closes its connection', async function () {
      const s = await tcpServer();
      const r = await runProbe({ kind: 'tcp', host: '127.0.0.1', port: s.port }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [true, `TCP ${s.port} open`]);
      assert.strictEqual(s.stats.connections, 1);
      await waitFor(() => s.stats.closed === 1, { timeout: 5000, what: 'the probe to close its socket' });
    });

    it('a closed port is "connection refused"', async function () {
      const port = await closedPort();
      const r = await runProbe({ kind: 'tcp', host: '127.0.0.1', port }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'connection refused']);
    });
  });

  // ---------------------------------------------------------------------------------------------------------------
  describe('DNS probe (against the local responder only)', function () {
    it('a name with an A record is ok, and the question reached the local server', async function () {
      const d = await dnsServer();
      const r = await runProbe({ kind: 'dns', hostname: 'gateway.uplink.test', server: d.address }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [true, 'DNS 127.0.0.1']);
      assert.deepStrictEqual(d.queries, [{ name: 'gateway.uplink.test', type: TYPE_A }]);
    });

    it('a name with only an AAAA record falls back to it', async function () {
      const d = await dnsServer();
      const r = await runProbe({ kind: 'dns', hostname: 'v6only.uplink.test', server: d.address }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [true, 'DNS ::1']);
      assert.deepStrictEqual(
        d.queries.map((q) => q.type),
        [TYPE_A, TYPE_AAAA],
      );
    });

    it('NXDOMAIN is "DNS: name not found"', async function () {
      const d = await dnsServer();
      const r = await runProbe({ kind: 'dns', hostname: 'x.invalid', server: d.address }, ANSWER_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'DNS: name not found']);
      assert.deepStrictEqual(d.queries, [{ name: 'x.invalid', type: TYPE_A }]);
    });

    it('a server that never answers times out', async function () {
      const d = await dnsServer({ mode: 'silent' });
      const r = await runProbe({ kind: 'dns', hostname: 'gateway.uplink.test', server: d.address }, TIMEOUT_MS);
      assert.deepStrictEqual([r.ok, r.reason], [false, 'timed out after 0.3 s']);
      assert.ok(d.queries.length >= 1, 'the question reached the silent server');
    });
  });

  describe('folder probe', function () {
    it('a folder that is there is ok; a missing one or a file is not', async function () {
      const dir = tmpDir('uplink-conn-');
      cleanups.push(() => rmrf(dir));
      assert.deepStrictEqual(await runProbe({ kind: 'path', path: dir }, ANSWER_MS).then((r) => [r.ok, r.reason]), [true, 'folder present']);
      assert.deepStrictEqual(
        await runProbe({ kind: 'path', path: path.join(dir, 'not-mounted') }, ANSWER_MS).then((r) => [r.ok, r.reason]),
        [false, 'folder not there (not mounted?)'],
      );
      fs.writeFileSync(path.join(dir, 'a-file'), 'x');
      assert.deepStrictEqual(await runProbe({ kind: 'path', path: path.join(dir, 'a-file') }, ANSWER_MS).then((r) => [r.ok, r.reason]), [false, 'not a folder']);
    });
  });

  describe('describeNetworkError', function () {
    it('turns error codes into words a person reads', function () {
      /** @type {[unknown, number, string][]} */
      const cases = [
        [{ code: 'ECONNREFUSED' }, 3000, 'connection refused'],
        [{ code: 'ECONNRESET' }, 3000, 'connection reset'],
        [{ code: 'EHOSTUNREACH' }, 3000, 'host unreachable'],
        [{ code: 'ENETUNREACH' }, 3000, 'network unreachable'],
        [{ code: 'ENOTFOUND' }, 3000, 'DNS: name not found'],
        [{ code: 'EAI_AGAIN' }, 3000, 'DNS: lookup failed (temporary)'],
        [{ code: 'ESERVFAIL' }, 3000, 'DNS: server failure'],
        [{ code: 'EREFUSED' }, 3000, 'DNS: query refused'],
        [{ code: 'ETIMEOUT' }, 3000, 'timed out after 3 s'],
        [{ code: 'ETIMEDOUT' }, 1500, 'timed out after 1.5 s'],
        [{ code: 'ABORT_ERR' }, 300, 'timed out after 0.3 s'],
        [{ code: 'CERT_HAS_EXPIRED' }, 3000, 'TLS: CERT_HAS_EXPIRED'],
        [{ code: 'ERR_SSL_WRONG_VERSION_NUMBER' }, 3000, 'TLS: ERR_SSL_WRONG_VERSION_NUMBER'],
        [Object.assign(new Error('something odd'), { code: 'EWHATEVER' }), 3000, 'something odd'],
        ['plain string', 3000, 'plain string'],
      ];
      for (const [err, ms, want] of cases) assert.strictEqual(describeNetworkError(err, ms), want, JSON.stringify(err));
    });
  });

  // ---------------------------------------------------------------------------------------------------------------
  describe('ConnectivityMonitor', function () {
    it('is unsure until the first probe, online after the first success (change before probed)', async function () {
      const s = await statusServer(204);
      const h = monitor(HTTP_SPEC(s.url), { timeoutMs: ANSWER_MS });
      assert.deepStrictEqual(
        [h.m.current().online, h.m.current().reason, h.m.current().latencyMs],
        [null, 'not probed yet', null],
      );
      assert.strictEqual(h.m.uptime().ratio, null);
      h.m.probeNow(); // not started: does nothing
      await sleep(50);
      assert.strictEqual(s.requests.length, 0, 'no probe before start()');

      h.m.start();
      h.m.start(); // a second start is a no-op, not a second probe loop
      await waitFor(() => h.changes.length === 1, { timeout: 5000, what: 'the first verdict' });
      const c = h.m.current();
      assert.deepStrictEqual([c.online, c.reason], [true, 'HTTP 204']);
      assert.ok(c.latencyMs !== null && c.latencyMs >= 0);
      assert.deepStrictEqual(h.log.slice(0, 2), ['change:true', 'probed:true']);
      assert.strictEqual(h.probed[0].state.online, true, 'the probed event sees the new state');
      assert.strictEqual(s.requests.length, 1, 'one probe, not two');
      assert.strictEqual(s.requests[0].method, 'HEAD');
    });

    it('flapping faster than the hysteresis never goes offline (scripted ok/fail/ok/fail...)', async function () {
      const p = scriptedProbe((i) => i % 2 === 0);
      const h = monitor({ kind: 'tcp', host: '127.0.0.1', port: 9 }, { onlineIntervalMs: 40 }, { probeFn: p.fn });
      h.m.start();
      await waitFor(() => h.probed.length >= 16, { timeout: 10000, what: '16 probes' });
      h.m.stop();
      assert.ok(
        h.probed.some((x) => !x.result.ok),
        'failures did happen',
      );
      assert.deepStrictEqual(
        h.changes.map((c) => c.online),
        [true],
      );
      assert.ok(h.probed.every((x) => x.state.online === true));
      assert.strictEqual(h.m.uptime().changes, 1);
    });

    it('flapping from a real server (503, 204, 503, ...) starting with a failure: unsure, then online, never offline', async function () {
      let n = 0;
      const s = await httpServer((req, res) => {
        res.writeHead(n++ % 2 === 0 ? 503 : 204);
        res.end();
      });
      const h = monitor(HTTP_SPEC(s.url), { onlineIntervalMs: 50, timeoutMs: ANSWER_MS });
      h.m.start();
      await waitFor(() => h.probed.length >= 10, { timeout: 10000, what: '10 probes' });
      h.m.stop();
      assert.deepStrictEqual(
        h.probed.slice(0, 2).map((x) => [x.result.ok, x.state.online]),
        [
          [false, null],
          [true, true],
        ],
      );
      assert.deepStrictEqual(
        h.changes.map((c) => c.online),
        [true],
      );
      assert.ok(h.probed.filter((x) => !x.result.ok).length >= 4);
    });

    it('goes offline after 2 failures in a row and back online on one success, one change event each', async function () {
      const s = await statusServer(204);
      const h = monitor(HTTP_SPEC(s.url), { timeoutMs: ANSWER_MS });
      h.m.start();
      await waitFor(() => h.changes.length === 1, { timeout: 5000, what: 'online' });

      s.status = 503;
      await waitFor(() => h.changes.length === 2, { timeout: 5000, what: 'offline' });
      const firstFail = h.probed.findIndex((x) => !x.result.ok);
      assert.deepStrictEqual(
        h.probed.slice(firstFail, firstFail + 2).map((x) => [x.result.ok, x.state.online]),
        [
          [false, true], // one failure: still online
          [false, false], // the second in a row: offline
        ],
      );
      const off = h.m.current();
      assert.deepStrictEqual([off.online, off.latencyMs, off.reason], [false, null, 'HTTP 503 Service Unavailable']);

      // More failures while offline: no more change events.
      const before = h.probed.length;
      await waitFor(() => h.probed.length >= before + 3, { timeout: 5000, what: 'more offline probes' });
      assert.strictEqual(h.changes.length, 2);

      s.status = 204;
      await waitFor(() => h.changes.length === 3, { timeout: 5000, what: 'back online' });
      const firstOkAfter = h.probed.findIndex((x, i) => i > firstFail && x.result.ok);
      assert.strictEqual(h.probed[firstOkAfter].state.online, true, 'one success is enough');
      const on = h.m.current();
      assert.deepStrictEqual([on.online, on.reason], [true, 'HTTP 204']);

      // Another probe while online changes nothing.
      const n = h.probed.length;
      await waitFor(() => h.probed.length > n, { timeout: 5000, what: 'one more online probe' });
      h.m.stop();
      assert.deepStrictEqual(
        h.changes.map((c) => c.online),
        [true, false, true],
      );
      assert.deepStrictEqual(
        h.log.filter((e) => e.startsWith('change')),
        ['change:true', 'change:false', 'change:true'],
      );
      const hist = h.m.history();
      assert.deepStrictEqual(
        hist.map((e) => [e.online, e.reason]),
        [
          [true, 'HTTP 204'],
          [false, 'HTTP 503 Service Unavailable'],
          [true, 'HTTP 204'],
        ],
      );
      assert.strictEqual(hist[0].previousMs, null);
      assert.ok(hist[1].previousMs >= 0 && hist[2].previousMs >= 0);
      assert.strictEqual(hist[1].latencyMs, null);
      const u = h.m.uptime();
      assert.strictEqual(u.changes, 3);
      assert.strictEqual(u.probes, h.probed.length);
      assert.strictEqual(s.requests.length, h.probed.length, 'every probe is one request');
    });

    it('failuresToOffline 1 goes offline on the first failure; 3 needs three in a row', async function () {
      for (const [needed, script, expectChanges] of /** @type {[number, boolean[], boolean[]][]} */ ([
        [1, [true, false], [true, false]],
        [3, [true, false, false, true, false, false, false], [true, false]],
      ])) {
        const p = manualProbe();
        const h = monitor({ kind: 'tcp', host: '127.0.0.1', port: 9 }, { failuresToOffline: needed, onlineIntervalMs: NEVER, offlineMinMs: NEVER, offlineMaxMs: NEVER }, { probeFn: p.fn });
        h.m.start();
        for (let i = 0; i < script.length; i++) {
          if (i > 0) h.m.probeNow();
          await p.answer(script[i]);
        }
        assert.deepStrictEqual(
          h.changes.map((c) => c.online),
          expectChanges,
          `failuresToOffline ${needed}`,
        );
        if (needed === 3) {
          // The offline change came on the 7th probe (three failures in a row), not on the 3rd.
          assert.deepStrictEqual(
            h.probed.map((x) => x.state.online),
            [true, true, true, true, true, true, false],
          );
        }
        h.m.stop();
      }
    });

    it('probes at onlineIntervalMs while online, and from offlineMinMs growing by growth up to offlineMaxMs otherwise', async function () {
      const delays = recordMonitorTimers();
      // 8 failures, a success, one failure (to confirm), then successes.
      const p = scriptedProbe((i) => i === 8 || i >= 10);
      const h = monitor({ kind: 'tcp', host: '127.0.0.1', port: 9 }, {}, { probeFn: p.fn });
      h.m.start();
      await waitFor(() => delays.length >= 11, { timeout: 10000, what: '11 scheduled probes' });
      h.m.stop();
      assert.deepStrictEqual(delays.slice(0, 11), [30, 39, 51, 66, 86, 112, 120, 120, 300, 30, 300]);
      assert.deepStrictEqual(
        h.changes.map((c) => c.online),
        [false, true],
        'offline after probe 2, online at probe 9, the single failure at probe 10 does not count',
      );
    });

    it('report(false) probes at once while online, but a burst of failed uploads is not a burst of probes', async function () {
      let t = 1_000_000;
      const p = manualProbe();
      // offlineMinMs is also the least time between a probe and one asked for by report(false).
      const h = monitor(
        { kind: 'tcp', host: '127.0.0.1', port: 9 },
        { onlineIntervalMs: NEVER, offlineMinMs: NEVER, offlineMaxMs: NEVER },
        { now: () => t, probeFn: p.fn },
      );
      h.m.start();
      await p.answer(true);
      assert.deepStrictEqual([p.calls.length, h.m.current().online], [1, true]);

      // Right after a probe: more evidence is not needed yet.
      for (let i = 0; i < 5; i++) h.m.report(false, 'upload failed');
      await settle();
      assert.strictEqual(p.calls.length, 1, 'no probe moments after the last one');

      t += NEVER;
      h.m.report(false, 'upload failed: ECONNRESET');
      assert.strictEqual(p.calls.length, 2, 'the probe starts at once');
      assert.strictEqual(h.m.current().online, true, 'the report itself is not a failure');
      // While that probe runs, more bad news adds nothing: the running probe will tell.
      h.m.report(false, 'x');
      h.m.report(false, 'y');
      await p.answer(false);
      await settle();
      assert.strictEqual(p.calls.length, 2);
      assert.strictEqual(h.m.current().online, true, 'one failure is not enough');

      t += NEVER;
      h.m.report(false, 'upload failed again');
      assert.strictEqual(p.calls.length, 3);
      await p.answer(false);
      assert.strictEqual(h.m.current().online, false);

      // Offline, the offline schedule probes; report(false) does not add to it.
      t += NEVER;
      h.m.report(false, 'still failing');
      await settle();
      assert.strictEqual(p.calls.length, 3);
      assert.strictEqual(p.maxActive, 1);
      assert.strictEqual(h.m.uptime().probes, 3);
      assert.deepStrictEqual(
        h.changes.map((c) => c.online),
        [true, false],
      );
    });

    it('probeNow() during a probe asks for exactly one more, never two at a time', async function () {
      const p = manualProbe();
      const h = monitor({ kind: 'tcp', host: '127.0.0.1', port: 9 }, { onlineIntervalMs: NEVER, offlineMinMs: NEVER, offlineMaxMs: NEVER }, { probeFn: p.fn });
      h.m.start();
      assert.strictEqual(p.calls.length, 1);
      h.m.probeNow();
      h.m.probeNow();
      h.m.probeNow();
      await settle();
      assert.strictEqual(p.calls.length, 1, 'not in parallel');
      await p.answer(true);
      await waitFor(() => p.calls.length === 2, { timeout: 5000, what: 'the follow-up probe' });
      await p.answer(true);
      await sleep(50);
      assert.strictEqual(p.calls.length, 2, 'one follow-up, not three');
      assert.strictEqual(p.maxActive, 1);
      assert.strictEqual(h.m.uptime().probes, 2);
      assert.strictEqual(h.probed.length, 2);
    });

    it('report(true) while offline brings it online at once; while online it changes nothing; stopped, reports are ignored', async function () {
      const delays = recordMonitorTimers();
      const ONLINE = NEVER - 1; // tells the online cadence from the offline one, and still never fires in the test
      const p = manualProbe();
      const h = monitor({ kind: 'tcp', host: '127.0.0.1', port: 9 }, { onlineIntervalMs: ONLINE, offlineMinMs: NEVER, offlineMaxMs: NEVER }, { probeFn: p.fn });
      h.m.start();
      await p.answer(false);
      assert.deepStrictEqual([h.m.current().online, h.m.current().reason], [null, 'connection refused'], 'one failure: still unsure');
      h.m.probeNow();
      await p.answer(false);
      assert.strictEqual(h.m.current().online, false);
      assert.deepStrictEqual(delays, [NEVER, NEVER]);

      h.m.report(true, 'uploaded 1 item');
      assert.deepStrictEqual(delays, [NEVER, NEVER, ONLINE], 'the next probe moves to the online cadence');
      assert.deepStrictEqual(
        h.changes.map((c) => [c.online, c.reason]),
        [
          [false, 'connection refused'],
          [true, 'uploaded 1 item'],
        ],
      );
      assert.strictEqual(h.m.current().online, true);
      h.m.report(true, 'uploaded another');
      assert.strictEqual(h.changes.length, 2, 'already online: no change event');
      assert.strictEqual(h.m.current().reason, 'uploaded another');
      assert.strictEqual(p.calls.length, 2, 'reports of success are not probes');
      assert.strictEqual(h.m.uptime().probes, 2);

      // The failure count was reset by the report: one failure now does not take it offline.
      h.m.probeNow();
      await p.answer(false);
      assert.strictEqual(h.m.current().online, true);

      h.m.stop();
      h.m.report(false, 'after stop');
      h.m.report(true, 'after stop');
      h.m.probeNow();
      await sleep(50);
      assert.strictEqual(p.calls.length, 3);
      assert.strictEqual(h.changes.length, 2);
    });

    it('history and uptime follow the (injected) clock', async function () {
      const T0 = Date.parse('2026-01-01T00:00:00Z');
      let t = T0;
      const p = manualProbe();
      const h = monitor(
        { kind: 'tcp', host: '127.0.0.1', port: 9 },
        { onlineIntervalMs: NEVER, offlineMinMs: NEVER, offlineMaxMs: NEVER },
        { now: () => t, probeFn: p.fn },
      );
      t += 5000;
      assert.deepStrictEqual(h.m.uptime(), { sinceStartS: 5, onlineS: 0, offlineS: 0, ratio: null, changes: 0, probes: 0 });
      assert.deepStrictEqual(h.m.history(), []);

      h.m.start();
      await p.answer(true); // online at T0+5s
      t += 60_000;
      h.m.probeNow();
      await p.answer(false); // still online
      t += 1000;
      h.m.probeNow();
      await p.answer(false); // offline at T0+66s
      t += 30_000;
      h.m.probeNow();
      await p.answer(true); // online at T0+96s
      t += 4000; // now T0+100s

      assert.deepStrictEqual(h.m.history(), [
        { at: '2026-01-01T00:00:05.000Z', online: true, latencyMs: 7, reason: 'HTTP 204', previousMs: null },
        { at: '2026-01-01T00:01:06.000Z', online: false, latencyMs: null, reason: 'connection refused', previousMs: 61_000 },
        { at: '2026-01-01T00:01:36.000Z', online: true, latencyMs: 7, reason: 'HTTP 204', previousMs: 30_000 },
      ]);
      assert.deepStrictEqual(h.m.current(), { online: true, since: T0 + 96_000, latencyMs: 7, reason: 'HTTP 204' });
      // Unknown time before the first verdict counts for neither side.
      assert.deepStrictEqual(h.m.uptime(), { sinceStartS: 100, onlineS: 65, offlineS: 30, ratio: 0.6842, changes: 3, probes: 4 });

      // history() is a copy.
      h.m.history().length = 0;
      assert.strictEqual(h.m.history().length, 3);

      // Offline time still running counts too.
      h.m.probeNow();
      await p.answer(false);
      h.m.probeNow();
      await p.answer(false); // offline at T0+100s
      t += 100_000;
      assert.deepStrictEqual(h.m.uptime(), { sinceStartS: 200, onlineS: 65, offlineS: 130, ratio: 0.3333, changes: 4, probes: 6 });
    });

    it('keeps at most 500 history entries, newest last', async function () {
      const p = scriptedProbe(() => false);
      const h = monitor({ kind: 'tcp', host: '127.0.0.1', port: 9 }, { failuresToOffline: 1, onlineIntervalMs: NEVER, offlineMinMs: NEVER, offlineMaxMs: NEVER }, { probeFn: p.fn });
      let next = h.nextProbe();
      h.m.start();
      await next; // offline
      for (let i = 0; i < 260; i++) {
        h.m.report(true, `up ${i}`);
        next = h.nextProbe(`probe ${i}`);
        h.m.probeNow();
        await next;
      }
      const hist = h.m.history();
      assert.strictEqual(h.m.uptime().changes, 521);
      assert.strictEqual(hist.length, 500);
      assert.deepStrictEqual([hist[499].online, hist[499].reason], [false, 'connection refused']);
      assert.deepStrictEqual([hist[498].online, hist[498].reason], [true, 'up 259']);
      // Changes: #1 offline, then "up i" is #(2i+2) and its offline #(2i+3). The oldest 21 are gone: #22 is "up 10".
      assert.deepStrictEqual([hist[0].online, hist[0].reason], [true, 'up 10'], 'the oldest 21 were dropped');
      assert.deepStrictEqual([hist[1].online, hist[1].reason], [false, 'connection refused']);
    });

    it('after stop() no probe reaches the server and no timer is left; start() resumes', async function () {
      const s = await statusServer(503); // offline: the fast cadence (30..120 ms)
      const counted = { calls: 0, active: 0 };
      const probeFn = (spec, ms) => {
        counted.calls++;
        counted.active++;
        return runProbe(spec, ms).finally(() => counted.active--);
      };
      const h = monitor(HTTP_SPEC(s.url), { timeoutMs: ANSWER_MS }, { probeFn });
      h.m.start();
      await waitFor(() => s.requests.length >= 6, { timeout: 5000, what: '6 requests' });
      h.m.stop();
      const callsAtStop = counted.calls;
      const probedAtStop = h.probed.length;
      // A probe already in flight may still land; wait for it to end, then nothing more may come.
      await waitFor(() => counted.active === 0, { timeout: 5000, what: 'the in-flight probe to end' });
      const settled = s.requests.length;
      assert.strictEqual(settled, callsAtStop, 'one request per probe call, the in-flight one included');
      await sleep(700); // more than 5 offline intervals and 2 online ones
      assert.strictEqual(counted.calls, callsAtStop, 'no probe started after stop');
      assert.strictEqual(s.requests.length, settled, 'no request after stop');
      assert.strictEqual(h.probed.length, probedAtStop, 'no probed event after stop');
      assert.strictEqual(h.m['timer'], undefined, 'no timer left');
      assert.strictEqual(h.m.current().online, false, 'the last state is kept');

      s.status = 204;
      h.m.start();
      await waitFor(() => h.m.current().online === true, { timeout: 5000, what: 'online after restart' });
      assert.ok(s.requests.length > settled);
      h.m.stop();
    });

    it('stop() during a probe: its late answer is ignored and nothing is scheduled', async function () {
      const held = [];
      const s = await httpServer((req, res) => held.push(res));
      const counted = { active: 0 };
      const probeFn = (spec, ms) => {
        counted.active++;
        return runProbe(spec, ms).finally(() => counted.active--);
      };
      // Long intervals: a timer wrongly scheduled after the late answer would still be pending when we look.
      const h = monitor(HTTP_SPEC(s.url), { timeoutMs: ANSWER_MS, onlineIntervalMs: NEVER, offlineMinMs: NEVER, offlineMaxMs: NEVER }, { probeFn });
      h.m.start();
      await waitFor(() => held.length === 1, { timeout: 5000, what: 'the first request' });
      h.m.stop();
      held[0].writeHead(204);
      held[0].end();
      await waitFor(() => counted.active === 0, { timeout: 5000, what: 'the probe to get its answer' });
      await settle();
      assert.strictEqual(h.m['timer'], undefined, 'nothing scheduled after the late answer');
      await sleep(200);
      assert.strictEqual(s.requests.length, 1);
      assert.deepStrictEqual([h.changes.length, h.probed.length], [0, 0]);
      assert.deepStrictEqual([h.m.current().online, h.m.uptime().probes], [null, 0]);
    });

    it('with a real DNS probe: online, offline on two timeouts from a silent server, online again', async function () {
      const d = await dnsServer();
      const h = monitor({ kind: 'dns', hostname: 'gateway.uplink.test', server: d.address }, {});
      h.m.start();
      await waitFor(() => h.m.current().online === true, { timeout: 5000, what: 'online' });
      assert.strictEqual(h.m.current().reason, 'DNS 127.0.0.1');
      d.mode = 'silent';
      await waitFor(() => h.m.current().online === false, { timeout: 8000, what: 'offline' });
      assert.strictEqual(h.m.current().reason, 'timed out after 0.3 s');
      d.mode = 'answer';
      await waitFor(() => h.m.current().online === true, { timeout: 8000, what: 'online again' });
      h.m.stop();
      assert.deepStrictEqual(
        h.changes.map((c) => c.online),
        [true, false, true],
      );
      assert.ok(d.queries.every((q) => q.name === 'gateway.uplink.test'));
    });

    it('with a real TCP probe: a server stopped and started again on the same port', async function () {
      // Bring the listener up and down on one port; if something else grabs the port meanwhile, skip the restart.
      let server = net.createServer((s) => s.destroy());
      const port = await listenLocal(server);
      cleanups.push(() => new Promise((resolve) => (server.listening ? server.close(() => resolve()) : resolve())));
      const h = monitor({ kind: 'tcp', host: '127.0.0.1', port }, { timeoutMs: ANSWER_MS });
      h.m.start();
      await waitFor(() => h.m.current().online === true, { timeout: 5000, what: 'online' });
      assert.strictEqual(h.m.current().reason, `TCP ${port} open`);
      await new Promise((resolve) => server.close(() => resolve()));
      await waitFor(() => h.m.current().online === false, { timeout: 5000, what: 'offline' });
      assert.strictEqual(h.m.current().reason, 'connection refused');
      server = net.createServer((s) => s.destroy());
      const relisten = await new Promise((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, '127.0.0.1', () => resolve(true));
      });
      if (!relisten) this.skip();
      await waitFor(() => h.m.current().online === true, { timeout: 5000, what: 'online again' });
      h.m.stop();
      assert.deepStrictEqual(
        h.changes.map((c) => c.online),
        [true, false, true],
      );
    });
  });

  // ---------------------------------------------------------------------------------------------------------------
  describe('editor settings', function () {
    const errorsOf = (raw) => {
      try {
        parseConnectivityConfig(raw);
      } catch (e) {
        return e.message.split('; ');
      }
      assert.fail(`expected ${JSON.stringify(raw)} to be rejected`);
    };
    /** The errors, in order, each matching a string exactly or a RegExp (the allowed ranges may be tuned). */
    const assertErrors = (errs, expected) => {
      assert.strictEqual(errs.length, expected.length, `errors: ${JSON.stringify(errs)}`);
      expected.forEach((want, i) => {
        if (want instanceof RegExp) assert.match(errs[i], want);
        else assert.strictEqual(errs[i], want);
      });
    };
    const range = (label, got) => new RegExp(`^${label} must be a number of seconds from [0-9.]+ to [0-9]+ \\(got "${got}"\\)$`);

    it('defaults: an HTTP HEAD probe with the default timing, not gating', function () {
      const c = parseConnectivityConfig({ url: 'https://storage.example.invalid/health' });
      assert.deepStrictEqual(c, {
        probe: { kind: 'http', url: 'https://storage.example.invalid/health', method: 'HEAD', expect: undefined },
        timing: DEFAULT_TIMING,
        gate: false,
      });
      assert.notStrictEqual(c.timing, DEFAULT_TIMING, 'a copy, not the shared defaults');
      assert.deepStrictEqual(DEFAULT_TIMING, {
        timeoutMs: 3000,
        onlineIntervalMs: 30_000,
        offlineMinMs: 1000,
        offlineMaxMs: 15_000,
        growth: 1.3,
        failuresToOffline: 2,
      });
      // Empty strings are the defaults too, as the editor sends them.
      const blank = parseConnectivityConfig({ probeType: '', url: ' http://127.0.0.1:8080/ ', method: '', expect: '', timeout: '', interval: '', offlineMin: '', offlineMax: '', failures: '' });
      assert.deepStrictEqual(blank.timing, DEFAULT_TIMING);
      assert.deepStrictEqual(blank.probe, { kind: 'http', url: 'http://127.0.0.1:8080/', method: 'HEAD', expect: undefined });
    });

    it('converts seconds to milliseconds and reads the rest', function () {
      const c = parseConnectivityConfig({
        probeType: 'http',
        url: 'http://127.0.0.1:8080/ping',
        method: 'get',
        expect: '200-204, 401',
        timeout: '1.5',
        interval: '60',
        offlineMin: '0.5',
        offlineMax: 20,
        failures: '3',
        gate: true,
      });
      assert.deepStrictEqual(c.timing, { timeoutMs: 1500, onlineIntervalMs: 60_000, offlineMinMs: 500, offlineMaxMs: 20_000, growth: 1.3, failuresToOffline: 3 });
      assert.deepStrictEqual(c.probe, { kind: 'http', url: 'http://127.0.0.1:8080/ping', method: 'GET', expect: [200, 201, 202, 203, 204, 401] });
      assert.strictEqual(c.gate, true);
      assert.strictEqual(parseConnectivityConfig({ url: 'http://127.0.0.1/', gate: 'true' }).gate, true);
      assert.strictEqual(parseConnectivityConfig({ url: 'http://127.0.0.1/', gate: 'false' }).gate, false);
      assert.strictEqual(parseConnectivityConfig({ url: 'http://127.0.0.1/', timeout: '0.25' }).timing.timeoutMs, 250);
      assert.strictEqual(parseConnectivityConfig({ url: 'http://127.0.0.1/', offlineMin: '5', offlineMax: '5' }).timing.offlineMaxMs, 5000, 'max equal to min is fine');
    });

    it('reads TCP and DNS probes', function () {
      assert.deepStrictEqual(parseConnectivityConfig({ probeType: 'tcp', host: ' mqtt.example.invalid ', port: '8883' }).probe, {
        kind: 'tcp',
        host: 'mqtt.example.invalid',
        port: 8883,
      });
      assert.deepStrictEqual(/** @type {TcpProbe} */ (parseConnectivityConfig({ probeType: 'tcp', host: '127.0.0.1', port: 1 }).probe).port, 1);
      assert.deepStrictEqual(/** @type {TcpProbe} */ (parseConnectivityConfig({ probeType: 'tcp', host: '127.0.0.1', port: '65535' }).probe).port, 65535);
      assert.deepStrictEqual(parseConnectivityConfig({ probeType: 'dns', hostname: 'storage.example.invalid' }).probe, {
        kind: 'dns',
        hostname: 'storage.example.invalid',
        server: undefined,
      });
      for (const server of ['127.0.0.1', '127.0.0.1:5353', '::1', '[::1]:53']) {
        assert.strictEqual(/** @type {DnsProbe} */ (parseConnectivityConfig({ probeType: 'dns', hostname: 'a.example.invalid', dnsServer: server }).probe).server, server);
      }
    });

    it('reads a folder probe, and derives the probe from an upload target', function () {
      assert.deepStrictEqual(parseConnectivityConfig({ probeType: 'path', path: '/mnt/nas' }).probe, { kind: 'path', path: '/mnt/nas' });
      assert.deepStrictEqual(errorsOf({ probeType: 'path', path: 'mnt/nas' }), ['Folder "mnt/nas" must be an absolute path']);
      assert.deepStrictEqual(errorsOf({ probeType: 'path' }), ['not configured: set the folder']);
      assert.strictEqual(describeProbe({ kind: 'path', path: '/mnt/nas' }), 'folder /mnt/nas');
      const { targetProbeSettings } = connectivityConfig;
      assert.deepStrictEqual(targetProbeSettings('file:///mnt/nas%20share/captures'), { probeType: 'path', path: '/mnt/nas share/captures' });
      const http = parseConnectivityConfig(targetProbeSettings('https://s3.example.invalid/bucket'));
      assert.deepStrictEqual(http.probe, { kind: 'http', url: 'https://s3.example.invalid/bucket', method: 'HEAD', expect: undefined });
    });

    it('lists every problem at once (HTTP)', function () {
      const errs = errorsOf({
        url: 'https://user:secret@storage.example.invalid/',
        method: 'POST',
        expect: '200, 2xx',
        timeout: 'soon',
        interval: '0',
        offlineMin: '10',
        offlineMax: '5',
        failures: '0',
      });
      assertErrors(errs, [
        'URL must not contain a user name or password: they would show in the flow',
        'Method must be HEAD or GET (got "POST")',
        'Expected status: "2xx" is not a status code or a range like 200-299',
        range('Timeout', 'soon'),
        range('Interval while online', '0'),
        'The slowest retry while offline must not be faster than the first',
        'Failures to go offline must be a whole number from 1 to 100 (got "0")',
      ]);
      assert.ok(!errs.join(' ').includes('secret'), 'the password is not echoed back');
      assert.ok(errorsOf({ url: 'http://:pw@storage.example.invalid/' }).some((e) => /user name or password/.test(e)));
    });

    it('rejects a bad URL, a missing URL and a non-HTTP URL', function () {
      assert.deepStrictEqual(errorsOf({ url: 'not a url' }), ['URL "not a url" is not a valid URL']);
      assert.deepStrictEqual(errorsOf({}), ['not configured: set the URL']);
      assert.deepStrictEqual(errorsOf({ url: '${UPLINK_DEMO_TARGET_URL}' }), ['not configured: set the URL']);
      assertErrors(errorsOf({ url: '', timeout: 'soon' }), [range('Timeout', 'soon'), 'URL is required for an HTTP probe']);
      assert.deepStrictEqual(errorsOf({ url: 'ftp://files.example.invalid/' }), ['URL must start with http:// or https:// (got "ftp://files.example.invalid/")']);
    });

    it('rejects bad TCP ports (0, 70000, "abc", "", 1.5) and a missing host, together with timing errors', function () {
      assert.deepStrictEqual(errorsOf({ probeType: 'tcp', host: '127.0.0.1', port: '' }), ['not configured: set the port']);
      for (const port of ['0', '70000', 'abc', '1.5', '-1']) {
        assert.deepStrictEqual(errorsOf({ probeType: 'tcp', host: '127.0.0.1', port }), [`Port must be a number from 1 to 65535 (got "${port}")`], `port ${port}`);
      }
      assert.deepStrictEqual(errorsOf({ probeType: 'tcp', host: '', port: 70000, offlineMin: '2', offlineMax: '1', failures: '2.5' }), [
        'Port must be a number from 1 to 65535 (got "70000")',
        'The slowest retry while offline must not be faster than the first',
        'Failures to go offline must be a whole number from 1 to 100 (got "2.5")',
        'Host is required for a TCP probe',
      ]);
    });

    it('rejects an unknown probe type, bad DNS settings and out-of-range times', function () {
      assertErrors(errorsOf({ probeType: 'icmp', timeout: '121' }), [/^Probe must be http, tcp, dns or path \(got "icmp"\)$/, range('Timeout', '121')]);
      assert.deepStrictEqual(errorsOf({ probeType: 'dns', hostname: 'bad name!', dnsServer: 'dns.example.invalid' }), [
        'Name "bad name!" is not a host name to look up',
        'DNS server "dns.example.invalid" must be an IP address, optionally with :port',
      ]);
      assert.deepStrictEqual(errorsOf({ probeType: 'dns', hostname: '' }), ['not configured: set the name to look up']);
      assert.deepStrictEqual(errorsOf({ probeType: 'dns', hostname: 'a.example.invalid', dnsServer: '127.0.0.1:99999' }), [
        'DNS server "127.0.0.1:99999" must be an IP address, optionally with :port',
      ]);
      assertErrors(errorsOf({ url: 'http://127.0.0.1/', offlineMin: '0.0001', offlineMax: 'Infinity', interval: '-5' }), [
        range('Interval while online', '-5'),
        range('First retry while offline', '0.0001'),
        range('Slowest retry while offline', 'Infinity'),
      ]);
    });

    it('parseStatusList reads codes and ranges, removes duplicates and rejects the rest', function () {
      const list = parseStatusList('200-299, 401');
      assert.strictEqual(list.length, 101);
      assert.ok(list.includes(200) && list.includes(299) && list.includes(401));
      assert.ok(!list.includes(300) && !list.includes(400));
      assert.deepStrictEqual(parseStatusList(''), []);
      assert.deepStrictEqual(parseStatusList(' 204 '), [204]);
      assert.deepStrictEqual(parseStatusList('200 - 202,201,,'), [200, 201, 202]);
      for (const bad of ['abc', '2xx', '20', '2000', '200-', '-200', '200-299-300', '200;201']) {
        assert.throws(() => parseStatusList(bad), /is not a status code or a range like 200-299/, bad);
      }
      for (const bad of ['099', '600', '300-200', '500-600']) {
        assert.throws(() => parseStatusList(bad), /is not a range of HTTP status codes \(100-599\)/, bad);
      }
    });

    it('describeProbe shows the target without secrets', function () {
      assert.strictEqual(
        describeProbe({ kind: 'http', method: 'GET', url: 'https://user:pw@bucket.example.invalid:8443/path/obj?X-Amz-Signature=secret#frag' }),
        'GET https://bucket.example.invalid:8443/path/obj',
      );
      assert.strictEqual(describeProbe({ kind: 'http', method: 'HEAD', url: 'http://127.0.0.1/' }), 'HEAD http://127.0.0.1/');
      assert.strictEqual(describeProbe({ kind: 'tcp', host: 'mqtt.example.invalid', port: 8883 }), 'TCP mqtt.example.invalid:8883');
      assert.strictEqual(describeProbe({ kind: 'dns', hostname: 'storage.example.invalid', server: '127.0.0.1:53' }), 'DNS storage.example.invalid');
      const parsed = parseConnectivityConfig({ url: 'http://127.0.0.1:9000/minio/health/live?token=abc' });
      assert.strictEqual(describeProbe(parsed.probe), 'HEAD http://127.0.0.1:9000/minio/health/live');
    });
  });
});
