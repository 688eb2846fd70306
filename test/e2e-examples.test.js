'use strict';
// Every shipped flow, the way a new user meets it: the packed package installed into a fresh Node-RED user folder, a
// stock Node-RED (no Uplink variables, no Dashboard 2.0, no GPIO package unless the flow's tab info asks for it), the
// flow fetched from Import > Examples (GET /library/examples/flows/<module>/<name>, as the editor does) and deployed
// with the admin API (POST /flows, API v2, as the editor's Deploy does). Then every inject button is pressed, twice:
// - no error reaches the log;
// - a flow with a target that needs no account (a folder in the user folder) delivers: files arrive there;
// - a flow whose target or camera is not set yet waits: one "not configured: set the ..." line per node that waits,
//   however often it is triggered, and nothing queued (so nothing captured now is uploaded once the target is set).
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { pack, userDirWithPackage } = require('./support/packed-install');
const { call, until } = require('./support/http-client');

const MODULE = require('../package.json').name;
const DASHBOARD = '@flowfuse/node-red-dashboard';
const GPIO = 'node-red-node-pi-gpio';

/**
 * What each flow does when imported as it is. `delivers`: the button whose press reaches its folder target. `waits`:
 * the "not configured" lines it logs, once each, however often its buttons are pressed. `refuses`: its presses reach a
 * queue, which takes none of them in (elsewhere the capture or the gate before the queue waits).
 */
const EXPECT = {
  'capture-to-queue': { delivers: 'cap-now' },
  'offline-queue-demo': { delivers: 'demo-event' },
  'capture-on-button': { delivers: 'btn-now', needs: [GPIO] },
  'capture-to-cloud': { refuses: true, waits: ['not configured: set the bucket'] },
  'capture-to-cloud-dashboard': { refuses: true, waits: ['not configured: set the bucket'], needs: [DASHBOARD] },
  'capture-to-http': { refuses: true, waits: ['not configured: set the URL and token'] },
  'capture-to-supabase': { refuses: true, waits: ['not configured: set the project URL and API key'] },
  'clip-to-supabase': { waits: ['not configured: set the camera input', 'not configured: set the project URL and API key'] },
  'recorder-to-s3': { waits: ['not configured: set the camera input', 'not configured: set the bucket'] },
  'device-data': { refuses: true, waits: ['not configured: set the URL and token'] },
  'connectivity-queue': { waits: ['not configured: set the URL'] },
  'uploader-s3': { refuses: true, waits: ['not configured: set the bucket'] },
  'uploader-http': { refuses: true, waits: ['not configured: set the URL and token'] },
  'uploader-supabase': { refuses: true, waits: ['not configured: set the project URL and API key'] },
  'device-monitoring': { waits: [] },
};

function walk(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe('every shipped flow, imported from Import > Examples into a stock Node-RED with the packed package', function () {
  this.timeout(120000);
  let tarball;

  before(function () {
    this.timeout(180000);
    tarball = pack();
  });
  after(function () {
    if (tarball) fs.rmSync(path.dirname(tarball), { recursive: true, force: true });
  });

  it('lists every shipped flow under Import > Examples', async function () {
    const shipped = fs.readdirSync(path.join(__dirname, '..', 'examples')).filter((f) => f.endsWith('.json')).map((f) => f.replace(/\.json$/, ''));
    assert.deepStrictEqual(Object.keys(EXPECT).sort(), shipped.sort(), 'every shipped flow has its expectation here');
  });

  const setups = [
    { name: 'stock', also: [], flows: Object.keys(EXPECT).filter((f) => !EXPECT[f].needs) },
    { name: `with ${DASHBOARD}`, also: [DASHBOARD], flows: ['capture-to-cloud-dashboard'] },
    { name: `with ${GPIO}`, also: [GPIO], flows: ['capture-on-button'] },
  ];

  for (const setup of setups) {
    describe(setup.name, function () {
      let red;
      let userDir;

      before(async function () {
        this.timeout(60000);
        userDir = userDirWithPackage(tarball, setup.also);
        red = await startNodeRed({ userDir, flows: [], linkPackages: false, stock: true, startTimeoutMs: 40000 });
      });
      after(async function () {
        if (red) await red.stop();
        if (userDir) fs.rmSync(userDir, { recursive: true, force: true });
      });

      /** The example as the editor's Import > Examples gets it. */
      async function example(name) {
        const r = await call(`${red.url}/library/examples/flows/${MODULE}/${name}`);
        assert.strictEqual(r.status, 200, `GET the example ${name}: ${r.text.slice(0, 200)}`);
        return r.body;
      }

      /** Deploys as the editor's Deploy does after an import into an empty workspace; resolves once flows started. */
      async function importAndDeploy(flow) {
        const current = await call(`${red.url}/flows`, { headers: { 'Node-RED-API-Version': 'v2' } });
        const from = red.logs().length;
        const r = await call(`${red.url}/flows`, {
          method: 'POST',
          json: { flows: flow, rev: current.body.rev },
          headers: { 'Node-RED-API-Version': 'v2', 'Node-RED-Deployment-Type': 'full' },
        });
        assert.strictEqual(r.status, 200, `deploy: ${r.text}`);
        await red.waitFor(/Started flows|Waiting for missing types/, 20000, { from });
        return from;
      }

      const stats = (id) => call(`${red.url}/uplink/queue/${id}/stats`).then((r) => ({ ok: r.status === 200, value: r.body }));
      const press = async (id) => assert.strictEqual((await call(`${red.url}/inject/${id}`, { method: 'POST' })).status, 200, `press ${id}`);

      for (const name of setup.flows) {
        it(`${name}: deploys clean and ${EXPECT[name].delivers ? 'delivers to its folder target' : 'waits, queuing nothing'}`, async function () {
          const expect = EXPECT[name];
          const flow = await example(name);
          assert.ok(Array.isArray(flow) && flow.some((n) => n.type === 'tab'), 'a flow with its tab');
          const outbox = path.join(userDir, 'uplink', 'outbox');
          const before = walk(outbox).length;
          const from = await importAndDeploy(flow);
          assert.doesNotMatch(red.logs().slice(from), /Waiting for missing types/);

          const queues = flow.filter((n) => n.type === 'uplink-offline-queue').map((n) => n.id);
          for (const q of queues) await until(`queue ${q} open`, () => stats(q), 10000);

          if (expect.delivers) {
            const [q] = queues;
            const was = (await stats(q)).value;
            await press(expect.delivers);
            const done = await until('the press to reach the folder target', async () => {
              const s = await stats(q);
              const files = walk(outbox).filter((f) => !path.basename(f).startsWith('.')).length - before;
              const ok = s.ok && s.value.totals.enqueued > was.totals.enqueued && s.value.uploaded >= was.uploaded + 1 && s.value.pending === 0 && files >= 1;
              return { ok, value: { files, stats: s.value } };
            }, 30000);
            assert.strictEqual(done.stats.failed, 0, 'nothing failed');
            assert.ok(done.stats.online, 'the connectivity node found the target');
          } else {
            const was = new Map();
            for (const q of queues) was.set(q, (await stats(q)).value.totals.enqueued);
            const buttons = flow.filter((n) => n.type === 'inject').map((n) => n.id);
            const refused = async () => (await Promise.all(queues.map(stats))).reduce((sum, r) => sum + (r.ok ? r.value.notQueued : 0), 0);
            for (let round = 0; round < 2; round++) {
              const refusedBefore = await refused();
              for (const b of buttons) await press(b);
              if (expect.refuses) {
                // Each round goes through before the next (a capture node ignores a trigger that comes too soon), so that
                // a line per trigger would be in the log by the time it is read.
                await until(`round ${round + 1} refused by the queue`, async () => {
                  const n = await refused();
                  return { ok: n > refusedBefore, value: n };
                }, 15000);
                await new Promise((r) => setTimeout(r, 600)); // past the capture node's minimum interval (0.5 s)
              }
            }
            // The connectivity node has told each queue by now; the captures (if any) ran.
            for (const q of queues) {
              const s = await until(`queue ${q} told its target is not configured`, async () => {
                const r = await stats(q);
                return { ok: r.ok && (r.value.notConfigured !== null || r.value.notQueued > 0), value: r.value };
              }, 15000);
              assert.match(s.notConfigured, /^not configured: set the /);
            }
            const log = red.logs().slice(from);
            for (const line of expect.waits) {
              const count = log.split('\n').filter((l) => /\[warn\]/.test(l) && l.includes(line)).length;
              assert.strictEqual(count, 1, `"${line}" logged once, not once per trigger:\n${log}`);
            }
            for (const q of queues) {
              const s = (await stats(q)).value;
              assert.strictEqual(s.totals.enqueued, was.get(q), `queue ${q} stored nothing for a target that is not configured`);
              assert.strictEqual(s.pending, 0);
            }
          }

          if (name === 'offline-queue-demo') {
            // The connectivity node probes the flow's own stand-in target on this Node-RED: an outage is noticed, and its end.
            await press('demo-outage');
            await until('the queue offline during the outage', async () => {
              const s = await stats('demo-queue');
              return { ok: s.ok && s.value.online === false, value: s.value };
            }, 30000);
            await press('demo-restore');
            await until('the queue online again', async () => {
              const s = await stats('demo-queue');
              return { ok: s.ok && s.value.online === true, value: s.value };
            }, 30000);
          }
          if (name === 'capture-to-cloud-dashboard') {
            const page = await call(`${red.url}/dashboard`);
            assert.strictEqual(page.status, 200, 'the dashboard page is served');
            // The Uplink status widget's component, from the packed package, where the dashboard loads it.
            const umd = await call(`${red.url}/resources/${MODULE}/ui-uplink-status.umd.js`);
            assert.strictEqual(umd.status, 200, 'the widget\'s build is served');
            assert.match(umd.text, /UIUplinkStatus/);
          }
          if (/^capture-to-cloud/.test(name)) {
            // The capture itself works on the test pattern: images are on disk, just not queued.
            await until('test-pattern captures on disk', async () => {
              const n = walk(path.join(userDir, 'uplink', 'images', 'camera1')).length;
              return { ok: n >= 1, value: n };
            }, 15000);
          }

          const errors = red.logs().slice(from).split('\n').filter((l) => /\[error\]/.test(l));
          assert.deepStrictEqual(errors, [], 'no error in the log');
        });
      }

      if (setup.name === 'stock') {
        it('loads the Uplink status widget\'s node without Dashboard 2.0', async function () {
          const r = await call(`${red.url}/nodes/${MODULE}/ui-uplink-status`, { headers: { Accept: 'application/json' } });
          assert.strictEqual(r.status, 200, r.text);
          assert.deepStrictEqual([r.body.enabled, r.body.err ?? null, r.body.types], [true, null, ['ui-uplink-status']], 'enabled, without a load error');
        });

        it('a flow that needs Dashboard 2.0 stops every flow where it is missing: why the dashboard is an example of its own', async function () {
          const main = await example('capture-to-cloud');
          const dashboard = await example('capture-to-cloud-dashboard');
          const from = await importAndDeploy([...main, ...dashboard]);
          await red.waitFor(/Waiting for missing types/, 10000, { from });
          assert.match(red.logs().slice(from), / - ui-base/);
          // Not even the pipeline on its own tab runs.
          assert.strictEqual((await call(`${red.url}/uplink/queue/c2c-queue/stats`)).status, 404);
          await importAndDeploy(main);
          await until('the pipeline running again without the dashboard', () => stats('c2c-queue'), 10000);
        });
      }
    });
  }
});
