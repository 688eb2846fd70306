'use strict';
// The offline queue inside a real `node-red` process (Node-RED 4.1 from devDependencies), reached over HTTP on
// 127.0.0.1 only: the node loads from the built package, delivers and takes acks through real wires, guards its admin
// endpoints with Node-RED's permissions, and keeps its items across a kill -9.
//
// Needs `npm run build` first (the package is loaded from dist/). UPLINK_E2E_ECHO=1 shows node-red's output.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const vm = require('vm');
const { startNodeRed, PACKAGE_DIR } = require('./support/node-red-process');

const TYPE = 'uplink-offline-queue';
const MODULE = 'node-red-contrib-uplink';
const QUEUE_ID = 'e2e-queue';

// ---- helpers ------------------------------------------------------------------------------------------------------

/**
 * @param {string} url
 * @param {{ method?: string, token?: string, json?: unknown, headers?: Record<string, string>, timeoutMs?: number }} [opts]
 * @returns {Promise<{ status: number, body: any, text: string, headers: Headers }>} body: the answer parsed as JSON when it is JSON
 */
async function http(url, { method = 'GET', token, json, headers = {}, timeoutMs = 5000 } = {}) {
  const res = await fetch(url, {
    method,
    headers: {
      ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: json !== undefined ? JSON.stringify(json) : undefined,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body, text, headers: res.headers };
}

/** Polls `probe` until it returns something truthy; fails after `timeoutMs` showing the last value seen. */
async function until(what, probe, timeoutMs = 15_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await probe();
    if (last && last.ok) return last.value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last seen: ${JSON.stringify(last && last.value)}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

async function stats(red, token) {
  const r = await http(`${red.url}/uplink/queue/${QUEUE_ID}/stats`, { token });
  assert.strictEqual(r.status, 200, `GET stats: ${r.status} ${r.text}`);
  return r.body;
}

/**
 * @param {{ url: string }} red
 * @param {string} what
 * @param {(stats: any) => boolean} test
 * @param {{ token?: string, timeoutMs?: number }} [opts]
 */
function statsUntil(red, what, test, { token, timeoutMs } = {}) {
  return until(
    what,
    async () => {
      const s = await stats(red, token);
      return { ok: test(s), value: s };
    },
    timeoutMs,
  );
}

async function command(red, name, token) {
  const r = await http(`${red.url}/uplink/queue/${QUEUE_ID}/${name}`, { method: 'POST', token, json: {} });
  assert.strictEqual(r.status, 200, `POST ${name}: ${r.status} ${r.text}`);
  return r.body;
}

async function enqueue(red, from, count) {
  const replies = await Promise.all(
    Array.from({ length: count }, (_, i) => http(`${red.url}/enqueue`, { method: 'POST', json: { n: from + i } })),
  );
  for (const r of replies) assert.strictEqual(r.status, 200, `POST /enqueue: ${r.status} ${r.text}`);
}

async function deliveries(red) {
  const r = await http(`${red.url}/deliveries`);
  assert.strictEqual(r.status, 200, `GET /deliveries: ${r.status} ${r.text}`);
  return r.body;
}

function bcryptHash(password) {
  // bcryptjs comes with node-red (its adminAuth uses it); cost 8 keeps the test quick.
  const bcrypt = require(require.resolve('bcryptjs', { paths: [path.join(PACKAGE_DIR, 'node_modules', 'node-red')] }));
  return bcrypt.hashSync(password, 8);
}

async function login(red, username, password, scope) {
  const r = await http(`${red.url}/auth/token`, {
    method: 'POST',
    json: { client_id: 'node-red-admin', grant_type: 'password', scope, username, password },
  });
  assert.strictEqual(r.status, 200, `login as ${username}: ${r.status} ${r.text}`);
  assert.ok(r.body.access_token, `login as ${username} gave no token: ${r.text}`);
  return r.body.access_token;
}

/**
 * The flow every test deploys: POST /enqueue (http in) queues the JSON body; output 1 goes to a function that records
 * the delivery and acks it 25 ms later (unless UPLINK_E2E_HOLD=1: then it never answers); output 3 keeps the last stats
 * message; GET /deliveries reports what the function saw.
 */
function queueFlow(queueConfig = {}) {
  const ackFunc = `
const seen = flow.get('deliveries') || [];
seen.push({ id: msg.uplink.item.id, attempt: msg.uplink.item.attempt, n: msg.payload && msg.payload.n });
flow.set('deliveries', seen);
if (env.get('UPLINK_E2E_HOLD') === '1') return null;
const inFlight = (flow.get('inFlight') || 0) + 1;
flow.set('inFlight', inFlight);
flow.set('maxInFlight', Math.max(flow.get('maxInFlight') || 0, inFlight));
setTimeout(() => {
  flow.set('inFlight', flow.get('inFlight') - 1);
  msg.topic = 'ack';
  node.send(msg);
  node.done();
}, 25);
return null;`;
  const report = `
msg.payload = {
  deliveries: flow.get('deliveries') || [],
  maxInFlight: flow.get('maxInFlight') || 0,
  lastStats: flow.get('lastStats') || null,
  rejected: flow.get('rejected') || 0,
};
return msg;`;
  return [
    { id: 'e2e-tab', type: 'tab', label: 'uplink e2e' },
    {
      id: QUEUE_ID,
      type: TYPE,
      z: 'e2e-tab',
      name: 'e2e queue',
      db: '',
      concurrency: 2,
      ...queueConfig,
      wires: [['e2e-ack'], ['e2e-rejected'], ['e2e-stats']],
    },
    { id: 'e2e-ack', type: 'function', z: 'e2e-tab', name: 'record and ack', func: ackFunc, outputs: 1, wires: [[QUEUE_ID]] },
    {
      id: 'e2e-rejected',
      type: 'function',
      z: 'e2e-tab',
      name: 'count rejected',
      func: "flow.set('rejected', (flow.get('rejected') || 0) + 1);\nreturn null;",
      outputs: 1,
      wires: [[]],
    },
    { id: 'e2e-stats', type: 'function', z: 'e2e-tab', name: 'keep stats', func: "flow.set('lastStats', msg.payload);\nreturn null;", outputs: 1, wires: [[]] },
    { id: 'e2e-in', type: 'http in', z: 'e2e-tab', url: '/enqueue', method: 'post', upload: false, wires: [[QUEUE_ID, 'e2e-in-reply']] },
    { id: 'e2e-in-reply', type: 'http response', z: 'e2e-tab', statusCode: '', headers: {}, wires: [] },
    { id: 'e2e-report-in', type: 'http in', z: 'e2e-tab', url: '/deliveries', method: 'get', upload: false, wires: [['e2e-report']] },
    { id: 'e2e-report', type: 'function', z: 'e2e-tab', name: 'report', func: report, outputs: 1, wires: [['e2e-report-reply']] },
    { id: 'e2e-report-reply', type: 'http response', z: 'e2e-tab', statusCode: '', headers: {}, wires: [] },
  ];
}

/** Runs the scripts of a node's editor html against a stub RED and returns what it registers. */
function editorDefinitions(html) {
  const registered = {};
  const anything = () => new Proxy(function () {}, { get: (_t, k) => (k === Symbol.toPrimitive ? () => '' : anything()), apply: () => anything() });
  const RED = {
    nodes: { registerType: (type, def) => (registered[type] = def) },
    validators: { number: () => () => true, regex: () => () => true, typedInput: () => () => true },
    _: (key) => key,
  };
  const scripts = [...html.matchAll(/<script type="text\/javascript">([\s\S]*?)<\/script>/g)].map((m) => m[1]);
  for (const code of scripts) vm.runInNewContext(code, { RED: new Proxy(RED, { get: (t, k) => (k in t ? t[k] : anything()) }), $: anything(), window: {} });
  return registered;
}

// ---- tests --------------------------------------------------------------------------------------------------------

describe('offline queue in a real Node-RED process', function () {
  describe('a flow that enqueues over HTTP and acks every delivery', function () {
    let red;

    before(async function () {
      red = await startNodeRed({ flows: queueFlow() });
    });

    after(async function () {
      if (red) await red.stop();
    });

    it('registers the uplink-offline-queue type from the built package', async function () {
      const list = await http(`${red.url}/nodes`, { headers: { accept: 'application/json', 'Node-RED-API-Version': 'v2' } });
      assert.strictEqual(list.status, 200, list.text);
      const set = list.body.find((s) => s.module === MODULE && s.types.includes(TYPE));
      assert.ok(set, `no node set of ${MODULE} lists ${TYPE}: ${JSON.stringify(list.body.filter((s) => s.module === MODULE))}`);
      assert.strictEqual(set.err, undefined, `the node set failed to load: ${set.err}`);
      assert.strictEqual(set.enabled, true);
      assert.strictEqual(set.local, true, 'found somewhere else than <userDir>/node_modules');

      const mod = await http(`${red.url}/nodes/${MODULE}`, { headers: { accept: 'application/json' } });
      assert.strictEqual(mod.status, 200, mod.text);
      assert.ok(mod.body.nodes.some((n) => n.types.includes(TYPE)), JSON.stringify(mod.body.nodes));
    });

    it('serves an editor definition whose defaults are the runtime defaults', async function () {
      const set = await http(`${red.url}/nodes/${MODULE}/${TYPE}`, { headers: { accept: 'text/html' } });
      assert.strictEqual(set.status, 200, set.text);
      assert.match(set.text, /data-template-name="uplink-offline-queue"/);
      assert.match(set.text, /data-help-name="uplink-offline-queue"/);

      const def = editorDefinitions(set.text)[TYPE];
      assert.ok(def, 'the html does not call RED.nodes.registerType("uplink-offline-queue", ...)');
      assert.ok(typeof def.category === 'string' && def.category !== '', `category: ${def.category}`);
      assert.strictEqual(def.inputs, 1);
      assert.strictEqual(def.outputs, 3);

      // Every setting the runtime reads must be in the editor's defaults, or the editor never saves it.
      const configSource = fs.readFileSync(path.join(PACKAGE_DIR, 'dist', 'lib', 'queue', 'config.js'), 'utf8');
      const runtimeKeys = new Set([...configSource.matchAll(/\b(?:num|choice)\('(\w+)'/g), ...configSource.matchAll(/\braw\.(\w+)/g)].map((m) => m[1]));
      assert.ok(runtimeKeys.size > 10, `found only ${[...runtimeKeys]} in queue-config.js`);
      const missing = [...runtimeKeys].filter((k) => !(k in def.defaults));
      assert.deepStrictEqual(missing, [], 'settings the runtime reads but the editor does not save');

      // A node dropped from the palette, untouched, behaves as the runtime's own defaults say.
      const { parseQueueConfig } = require('../dist/lib/queue/config.js');
      const editorDefaults = Object.fromEntries(Object.entries(def.defaults).map(([k, v]) => [k, v.value]));
      assert.deepStrictEqual(parseQueueConfig(editorDefaults, '/u'), parseQueueConfig({}, '/u'));
    });

    it('delivers 20 items enqueued over HTTP, at most 2 at a time, and counts them uploaded once acked', async function () {
      const before = await stats(red);
      assert.strictEqual(before.concurrency, 2);
      assert.strictEqual(before.db, path.join(red.userDir, 'uplink', 'queue.db'));

      await enqueue(red, 0, 20);
      const s = await statsUntil(red, '20 uploaded', (s) => s.uploaded === 20 && s.pending === 0 && s.inFlight === 0);
      assert.strictEqual(s.failed, 0);
      assert.strictEqual(s.totals.enqueued, 20);

      const d = await deliveries(red);
      assert.strictEqual(d.deliveries.length, 20, JSON.stringify(d.deliveries));
      assert.deepStrictEqual(d.deliveries.map((x) => x.n).sort((a, b) => a - b), Array.from({ length: 20 }, (_, i) => i));
      assert.strictEqual(new Set(d.deliveries.map((x) => x.id)).size, 20, 'an item was delivered twice');
      assert.ok(d.deliveries.every((x) => x.attempt === 1), JSON.stringify(d.deliveries));
      assert.strictEqual(d.maxInFlight, 2, 'concurrency 2 with 20 items waiting: 2 in flight at once, never more');
      assert.strictEqual(d.rejected, 0);

      // Output 3 carries the same numbers (at most one stats interval, 1 s, later).
      const last = await until('a stats message with 20 uploaded', async () => {
        const r = await deliveries(red);
        return { ok: r.lastStats && r.lastStats.uploaded === 20, value: r.lastStats };
      });
      assert.strictEqual(last.pending, 0);
    });

    it('answers 404 for a node id that is not a deployed queue', async function () {
      const r = await http(`${red.url}/uplink/queue/e2e-ack/stats`);
      assert.strictEqual(r.status, 404, r.text);
    });
  });

  describe('admin endpoints behind adminAuth', function () {
    let red;
    let adminToken;
    let viewerToken;

    before(async function () {
      red = await startNodeRed({
        flows: queueFlow(),
        settings: {
          adminAuth: {
            type: 'credentials',
            users: [
              { username: 'admin', password: bcryptHash('admin-pass'), permissions: '*' },
              { username: 'viewer', password: bcryptHash('viewer-pass'), permissions: 'read' },
            ],
          },
        },
      });
      adminToken = await login(red, 'admin', 'admin-pass', '*');
      viewerToken = await login(red, 'viewer', 'viewer-pass', 'read');
    });

    after(async function () {
      if (red) await red.stop();
    });

    it('refuses stats without a token or with a wrong one (401)', async function () {
      for (const url of [`/uplink/queue/${QUEUE_ID}/stats`, `/uplink/queue/${QUEUE_ID}/failed`]) {
        assert.strictEqual((await http(red.url + url)).status, 401, url);
        assert.strictEqual((await http(red.url + url, { token: 'not-a-token' })).status, 401, url);
      }
      const r = await http(`${red.url}/uplink/queue/${QUEUE_ID}/pause`, { method: 'POST', json: {} });
      assert.strictEqual(r.status, 401);
      assert.strictEqual((await stats(red, adminToken)).paused, false, 'an unauthenticated pause changed the queue');
    });

    it('gives an admin the stats and the failed list as JSON', async function () {
      const r = await http(`${red.url}/uplink/queue/${QUEUE_ID}/stats`, { token: adminToken });
      assert.strictEqual(r.status, 200, r.text);
      assert.match(r.headers.get('content-type'), /application\/json/);
      for (const key of ['pending', 'inFlight', 'uploaded', 'failed', 'paused', 'online']) assert.ok(key in r.body, `stats lack ${key}: ${r.text}`);
      const failed = await http(`${red.url}/uplink/queue/${QUEUE_ID}/failed`, { token: adminToken });
      assert.strictEqual(failed.status, 200, failed.text);
      assert.deepStrictEqual(failed.body, []);
    });

    // Node-RED 4.1's RED.auth.needsPermission answers 401 (not 403) to a valid token without the permission.
    it('lets a read-only user look but not pause (401 from Node-RED for a missing permission)', async function () {
      assert.strictEqual((await http(`${red.url}/uplink/queue/${QUEUE_ID}/stats`, { token: viewerToken })).status, 200);
      assert.strictEqual((await http(`${red.url}/uplink/queue/${QUEUE_ID}/failed`, { token: viewerToken })).status, 200);
      for (const cmd of ['pause', 'resume', 'retry-failed', 'purge-failed']) {
        const r = await http(`${red.url}/uplink/queue/${QUEUE_ID}/${cmd}`, { method: 'POST', token: viewerToken, json: {} });
        assert.strictEqual(r.status, 401, `${cmd}: ${r.status} ${r.text}`);
      }
      assert.strictEqual((await stats(red, adminToken)).paused, false);
    });

    it('lets an admin pause and resume, and rejects unknown commands (400)', async function () {
      assert.deepStrictEqual(await command(red, 'pause', adminToken), { result: 'paused' });
      assert.strictEqual((await stats(red, adminToken)).paused, true);
      assert.deepStrictEqual(await command(red, 'resume', adminToken), { result: 'resumed' });
      assert.strictEqual((await stats(red, adminToken)).paused, false);
      const r = await http(`${red.url}/uplink/queue/${QUEUE_ID}/explode`, { method: 'POST', token: adminToken, json: {} });
      assert.strictEqual(r.status, 400, r.text);
    });
  });

  describe('a kill -9 and a restart on the same user folder', function () {
    let userDir;
    const instances = [];

    before(function () {
      userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-e2e-restart-'));
    });

    after(async function () {
      for (const red of instances) await red.stop();
      fs.rmSync(userDir, { recursive: true, force: true });
    });

    it('keeps queued and in-flight items, and the pause, and delivers them all after resume', async function () {
      this.timeout(60_000);
      // First life: nothing is ever acked (the function holds every delivery).
      const first = await startNodeRed({ userDir, flows: queueFlow(), env: { UPLINK_E2E_HOLD: '1' } });
      instances.push(first);
      await command(first, 'pause');
      await enqueue(first, 0, 10);
      await statsUntil(first, '10 pending while paused', (s) => s.pending === 10 && s.paused);
      assert.strictEqual((await deliveries(first)).deliveries.length, 0, 'a paused queue delivered');

      // Two go out (concurrency 2) and stay unanswered; then the queue is paused again and the process killed.
      await command(first, 'resume');
      await statsUntil(first, '2 in flight', (s) => s.inFlight === 2 && s.pending === 8);
      await command(first, 'pause');
      const held = (await deliveries(first)).deliveries;
      assert.strictEqual(held.length, 2);
      const killed = await first.kill('SIGKILL');
      assert.deepStrictEqual(killed, { code: null, signal: 'SIGKILL' });

      // Second life on the same folder and flows file: the items are all there, still paused, leases released.
      const second = await startNodeRed({ userDir });
      instances.push(second);
      const after = await stats(second);
      assert.strictEqual(after.paused, true, 'the pause did not survive the restart');
      assert.strictEqual(after.pending, 10, JSON.stringify(after));
      assert.strictEqual(after.inFlight, 0);
      assert.strictEqual(after.uploaded, 0);
      assert.strictEqual((await deliveries(second)).deliveries.length, 0);

      await command(second, 'resume');
      const done = await statsUntil(second, '10 uploaded after resume', (s) => s.uploaded === 10 && s.pending === 0 && s.inFlight === 0);
      assert.strictEqual(done.failed, 0);

      const d = (await deliveries(second)).deliveries;
      assert.strictEqual(d.length, 10, JSON.stringify(d));
      assert.deepStrictEqual(d.map((x) => x.n).sort((a, b) => a - b), Array.from({ length: 10 }, (_, i) => i));
      assert.strictEqual(new Set(d.map((x) => x.id)).size, 10, 'an item was delivered twice after the restart');
      // The two that were in flight at the kill come again, as their second attempt (an item that crashed the
      // process must eventually reach the failed items); the others as their first.
      const heldIds = new Set(held.map((x) => x.id));
      assert.ok(held.every((x) => d.some((y) => y.id === x.id)), 'an item in flight at the kill was not delivered again');
      for (const x of d) assert.strictEqual(x.attempt, heldIds.has(x.id) ? 2 : 1, JSON.stringify(x));
      assert.strictEqual(heldIds.size, 2);
      // The dead process's lock was taken over by the new one.
      const lock = fs.readFileSync(path.join(userDir, 'uplink', 'queue.db.lock'), 'utf8');
      assert.strictEqual(lock.trim().split(/\s+/)[0], String(second.pid), `lock file: ${lock}`);
    });
  });
});
