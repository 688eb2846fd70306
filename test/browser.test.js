'use strict';
// The editor with the shipped flows, in a real browser: Debian's Chromium driven by playwright-core, against a real
// node-red process running capture-to-cloud-dashboard on its defaults (the test pattern, as `npm start` shows it) and
// an S3-protocol store, all on 127.0.0.1. The editor imports capture-to-cloud through its Import > Examples dialog, as a
// user does; and the editor as `npm start` (scripts/start.js) serves it on a fresh data folder. (The dashboard itself,
// the Uplink status widget, is tested in ui-uplink-status-browser.test.js.) Screenshots go to test-artifacts/
// (docs/editor-flow.png is a copy of editor-flow.png). Without /usr/bin/chromium (`apt-get install chromium`; .ci/run does it) or playwright-core, the
// tests say why and skip.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startNodeRed, freePort } = require('./support/node-red-process');
const { startScript } = require('./support/start-script');
const { decrypt } = require('../scripts/start/credentials');
const { S3Server } = require('./support/s3-server');
const { until } = require('./support/http-client');

const CHROMIUM = process.env.UPLINK_CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.join(__dirname, '..', 'test-artifacts');
const FLOW = path.join(__dirname, '..', 'examples', 'capture-to-cloud-dashboard.json');
const MAIN = path.join(__dirname, '..', 'examples', 'capture-to-cloud.json');
const { bodyOf } = require('./support/flow-geometry');
const ROOT = path.join(__dirname, '..');

function browserMissing() {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (apt-get install -y chromium)`;
  try {
    require.resolve('playwright-core');
  } catch {
    return 'playwright-core is not installed (npm install)';
  }
  return null;
}

/** The first sentence of a node's help text, as the help sidebar shows it. */
function helpSentence(type) {
  const dir = type.replace(/^uplink-/, '');
  const html = fs.readFileSync(path.join(ROOT, 'nodes', dir, 'locales', 'en-US', `${dir}.html`), 'utf8');
  const p = /<p>([\s\S]*?)<\/p>/.exec(html)[1];
  return p.replace(/<[^>]+>/g, '').replace(/\s+/g, ' ').trim().split(/(?<=\.) /)[0];
}

describe('the shipped capture-to-cloud flows in a browser (Chromium)', function () {
  this.timeout(120000);
  let s3;
  let red;
  let context;
  let userDataDir;

  before(async function () {
    const missing = browserMissing();
    if (missing) {
      console.log(`    skipping the browser tests: ${missing}`);
      this.skip();
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    s3 = await new S3Server({ buckets: ['browser'] }).start();

    const flows = JSON.parse(fs.readFileSync(FLOW, 'utf8'));
    red = await startNodeRed({
      flows,
      startTimeoutMs: 30000,
      env: {
        // One capture at start.
        UPLINK_CAPTURE_INTERVAL_S: '3600',
        UPLINK_S3_ENDPOINT: `http://127.0.0.1:${s3.port}`,
        UPLINK_S3_BUCKET: 'browser',
        UPLINK_S3_REGION: 'us-east-1',
        UPLINK_S3_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
      },
    });

    const { chromium } = require('playwright-core');
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1920, height: 1000 },
    });
    context.setDefaultTimeout(15000);
    context.setDefaultNavigationTimeout(30000);
  });

  after(async function () {
    if (context) await context.close().catch(() => undefined);
    if (red) await red.stop().catch(() => undefined);
    if (s3) await s3.destroy().catch(() => undefined);
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
  });

  /** The boxes of the nodes the editor has drawn on the tab it shows, from their SVG rectangles. */
  const renderedBoxes = (page) =>
    page.evaluate(() =>
      [...document.querySelectorAll('#red-ui-workspace-chart g.red-ui-flow-node-group')]
        .filter((g) => g.getBoundingClientRect().width > 0)
        .map((g) => {
          const r = g.querySelector('rect.red-ui-flow-node').getBoundingClientRect();
          return { id: g.id, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, w: r.width };
        }),
    );

  /** Every pair of drawn node boxes that overlap, and every node drawn wider than the flows test assumes. */
  async function layoutOf(page, flow) {
    const boxes = await renderedBoxes(page);
    const overlaps = [];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const [a, b] = [boxes[i], boxes[j]];
        if (a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1) overlaps.push(`${a.id} / ${b.id}`);
      }
    }
    const byId = new Map(flow.map((n) => [n.id, n]));
    const wider = boxes.filter((b) => byId.has(b.id) && b.w > bodyOf(byId.get(b.id)).w + 0.5).map((b) => `${b.id}: ${b.w} > ${bodyOf(byId.get(b.id)).w}`);
    return { boxes, overlaps, wider };
  }

  it('the editor imports capture-to-cloud from Import > Examples and draws it with no node on another', async function () {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    try {
      await page.goto(red.url, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction(() => window.RED && RED.nodes && RED.nodes.node && RED.nodes.node('c2cd-capture'), null, { timeout: 30000 });
      // The deployed dashboard flow, as drawn.
      const deployed = await layoutOf(page, JSON.parse(fs.readFileSync(FLOW, 'utf8')));
      const dashboardFlow = JSON.parse(fs.readFileSync(FLOW, 'utf8'));
      const drawn = dashboardFlow.filter((n) => typeof n.x === 'number' && n.type !== 'group').length;
      assert.strictEqual(deployed.boxes.length, drawn, `every node of the dashboard flow is drawn (${deployed.boxes.length} of ${drawn})`);
      assert.deepStrictEqual(deployed.overlaps, [], 'no two nodes of capture-to-cloud-dashboard overlap');
      assert.deepStrictEqual(deployed.wider, [], 'no node is drawn wider than the flows test assumes');

      // Menu > Import > Examples > node-red-contrib-uplink > capture-to-cloud > Import.
      await page.evaluate(() => RED.actions.invoke('core:show-examples-import-dialog'));
      const dialog = page.locator('#red-ui-clipboard-dialog-import-tab-examples');
      await dialog.locator('.red-ui-treeList-label-text', { hasText: /^node-red-contrib-uplink$/ }).click();
      await dialog.locator('.red-ui-treeList-label-text', { hasText: /^capture-to-cloud$/ }).click();
      await page.locator('#red-ui-clipboard-dialog-ok').click();
      // The import adds the flow's tab; the user opens it.
      await page.locator('#red-ui-tab-c2c-tab .red-ui-tab-label').click();
      await page.waitForFunction(() => RED.nodes.node('c2c-capture') && /** @type {any} */ (RED.workspaces).active() === 'c2c-tab', null, { timeout: 15000 });
      await page.locator('#red-ui-workspace-chart #c2c-capture').waitFor();
      const main = JSON.parse(fs.readFileSync(MAIN, 'utf8'));
      const imported = await layoutOf(page, main);
      assert.strictEqual(imported.boxes.length, main.filter((n) => typeof n.x === 'number' && n.type !== 'group').length, 'every node of the flow is drawn');
      assert.deepStrictEqual(imported.overlaps, [], 'no two nodes of capture-to-cloud overlap');
      assert.deepStrictEqual(imported.wider, [], 'no node is drawn wider than the flows test assumes');

      // Deploy, as the user would next: no "not properly configured" question, and the pipeline runs beside the
      // dashboard flow (both read the same UPLINK_* variables).
      await page.locator('#red-ui-header-button-deploy').click();
      await page.waitForFunction(() => !RED.nodes.dirty(), null, { timeout: 20000 });
      await page.locator('#red-ui-workspace-chart #c2c-queue .red-ui-flow-node-status-label', { hasText: /^online/ }).waitFor({ timeout: 30000 });
      await page.locator('#red-ui-workspace-chart #c2c-upload .red-ui-flow-node-status-label', { hasText: /\.png/ }).waitFor({ timeout: 30000 });
      await page.locator('.red-ui-notification').first().waitFor({ state: 'detached', timeout: 15000 }).catch(() => undefined);
      await page.evaluate(() => RED.view.select({ nodes: [] }));
      // The flow's groups and the tab bar, without the empty canvas around them.
      const clip = await page.evaluate(() => {
        const rects = [...document.querySelectorAll('#red-ui-workspace-chart g.red-ui-flow-group')].map((g) => g.getBoundingClientRect()).filter((r) => r.width > 0);
        const ws = document.querySelector('#red-ui-workspace').getBoundingClientRect();
        return { x: ws.left, y: ws.top, width: Math.max(...rects.map((r) => r.right)) + 20 - ws.left, height: Math.max(...rects.map((r) => r.bottom)) + 20 - ws.top };
      });
      await page.screenshot({ path: path.join(ARTIFACTS, 'editor-flow.png'), clip });

      const category = page.locator('#red-ui-palette-container-uplink');
      await category.waitFor();
      assert.strictEqual((await category.locator('.red-ui-palette-header').innerText()).trim(), 'uplink');
      for (const type of ['uplink-capture', 'uplink-recorder', 'uplink-offline-queue', 'uplink-connectivity', 'uplink-uploader']) {
        assert.strictEqual(await category.locator(`.red-ui-palette-node[data-palette-type="${type}"]`).count(), 1, `${type} in the uplink palette category`);
      }
      // With Dashboard 2.0 installed, the widget is in the palette beside the dashboard's own.
      const widget = page.locator('.red-ui-palette-node[data-palette-type="ui-uplink-status"]');
      assert.strictEqual(await widget.count(), 1, 'the Uplink status widget is in the palette');
      assert.strictEqual(await widget.evaluate((el) => el.closest('.red-ui-palette-category').querySelector('.red-ui-palette-header').textContent.trim()), 'dashboard 2');
      // The pipeline has no recorder: one is imported into the editor (not deployed) to open its dialog.
      await page.evaluate(() => {
        // With every default filled in, as a node dragged from the palette gets them.
        const defaults = RED.nodes.getType('uplink-recorder').defaults;
        const node = Object.fromEntries(Object.entries(defaults).map(([k, d]) => [k, JSON.parse(JSON.stringify(d.value))]));
        Object.assign(node, { id: 'e2e-rec', type: 'uplink-recorder', name: 'gate camera', camera: 'gate', input: 'rtsp://127.0.0.1:9/cam', x: 200, y: 400, wires: [[], []] });
        RED.view.importNodes([node], { generateIds: false });
      });

      const dialogs = [
        { id: 'e2e-rec', type: 'uplink-recorder', fields: ['name', 'camera', 'input', 'segmentSeconds', 'budget', 'budgetPolicy'], name: 'gate camera' },
        { id: 'c2c-capture', type: 'uplink-capture', fields: ['name', 'camera', 'source', 'url'], name: 'capture' },
        { id: 'c2c-queue', type: 'uplink-offline-queue', fields: ['name', 'db', 'concurrency', 'maxAttempts'], name: 'offline queue' },
        { id: 'c2c-conn', type: 'uplink-connectivity', fields: ['name', 'probeType', 'targetType'], name: 'bucket reachable?' },
        { id: 'c2c-upload', type: 'uplink-uploader', fields: ['name', 'backend', 'keyTemplate'], name: 'upload' },
        // The dashboard flow's widget: the nodes it shows are picked from those deployed.
        { id: 'c2cd-ui-status', type: 'ui-uplink-status', fields: ['name', 'group', 'queue', 'connectivity', 'capture', 'actions'], name: 'uplink status', picked: { queue: 'c2cd-queue', connectivity: 'c2cd-conn', capture: 'c2cd-capture' } },
      ];
      for (const d of dialogs) {
        await page.evaluate((id) => RED.editor.edit(RED.nodes.node(id)), d.id);
        const tray = page.locator('.red-ui-tray').last();
        await tray.locator('#node-input-name').waitFor({ state: 'visible' });
        assert.strictEqual(await tray.locator('#node-input-name').inputValue(), d.name, `${d.type}: the dialog shows the node's name`);
        for (const f of d.fields) assert.strictEqual(await tray.locator(`#node-input-${f}`).count(), 1, `${d.type}: the dialog has the ${f} field`);
        for (const [f, id] of Object.entries(d.picked ?? {})) assert.strictEqual(await tray.locator(`#node-input-${f}`).inputValue(), id, `${d.type}: ${f} shows the node picked`);
        await page.screenshot({ path: path.join(ARTIFACTS, `editor-${d.type}.png`) });
        await tray.locator('#node-dialog-cancel').click();
        await page.locator('.red-ui-tray').waitFor({ state: 'detached' });

        await page.evaluate((type) => RED.sidebar.help.show(type), d.type);
        const sentence = helpSentence(d.type);
        await page.locator('#red-ui-sidebar .red-ui-help', { hasText: sentence }).first().waitFor({ state: 'visible' });
      }
      await page.screenshot({ path: path.join(ARTIFACTS, 'editor-help.png') });

      // Clip mode: the clip settings show only for the ffmpeg source in clip mode.
      await page.evaluate(() => RED.editor.edit(RED.nodes.node('c2c-capture')));
      const tray = page.locator('.red-ui-tray').last();
      await tray.locator('#node-input-source').waitFor({ state: 'visible' });
      assert.strictEqual(await tray.locator('#node-input-clipLength').isVisible(), false, 'no clip length for a test pattern');
      await tray.locator('#node-input-source').selectOption('ffmpeg');
      await tray.locator('#node-input-mode').selectOption('clip');
      await tray.locator('#node-input-clipLength').waitFor({ state: 'visible' });
      // The shipped flow's capture node predates clip settings: the dialog shows their defaults, not blanks.
      assert.strictEqual(await tray.locator('#node-input-clipLength').inputValue(), '10');
      assert.strictEqual(await tray.locator('#node-input-kind').inputValue(), 'rtsp');
      await page.screenshot({ path: path.join(ARTIFACTS, 'editor-capture-clip.png') });
      await tray.locator('#node-dialog-cancel').click();
      await page.locator('.red-ui-tray').waitFor({ state: 'detached' });

      // Every storage target's dialog. The three imported here were saved before their limits existed: they show the defaults.
      await page.evaluate(() => {
        RED.nodes.import([
          { id: 'e2e-supabase', type: 'uplink-supabase-config', url: 'https://example.supabase.co', bucket: 'captures' },
          { id: 'e2e-http', type: 'uplink-http-config', url: 'https://api.example.com/uploads' },
          { id: 'e2e-folder', type: 'uplink-folder-config', folder: '/mnt/nas' },
        ]);
      });
      const targets = [
        { id: 'c2c-s3', type: 'uplink-s3-config', limits: { concurrency: '4', timeout: '30', bandwidthKBps: '0' } },
        { id: 'e2e-supabase', type: 'uplink-supabase-config', limits: { concurrency: '4', timeout: '60', bandwidthKBps: '0' } },
        { id: 'e2e-http', type: 'uplink-http-config', limits: { concurrency: '4', timeout: '60', bandwidthKBps: '0' } },
        { id: 'e2e-folder', type: 'uplink-folder-config', limits: { timeout: '60', bandwidthKBps: '0' } },
      ];
      for (const t of targets) {
        await page.evaluate(({ id, type }) => RED.editor.editConfig('', type, id), t);
        const dialog = page.locator('.red-ui-tray').last();
        await dialog.locator('#node-config-input-name').waitFor({ state: 'visible' });
        for (const [field, value] of Object.entries(t.limits)) {
          assert.strictEqual(await dialog.locator(`#node-config-input-${field}`).inputValue(), value, `${t.type}: ${field}`);
        }
        await page.screenshot({ path: path.join(ARTIFACTS, `editor-${t.type}.png`) });
        await dialog.locator('#node-config-dialog-cancel').click();
        await page.locator('.red-ui-tray').waitFor({ state: 'detached' });
      }
      assert.deepStrictEqual(await page.evaluate(() => Object.keys(window).filter((k) => /^uplink/i.test(k))), ['uplinkEditor'], 'one page global');
      assert.deepStrictEqual(errors, [], 'no script errors in the editor');
    } finally {
      await page.close();
    }
  });
});

describe('npm start\'s editor in a browser (Chromium)', function () {
  this.timeout(120000);
  let run;
  let dataDir;
  let context;
  let userDataDir;

  before(async function () {
    const missing = browserMissing();
    if (missing) {
      console.log(`    skipping the browser tests: ${missing}`);
      this.skip();
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-start-editor-'));
    run = await startScript(dataDir, await freePort());
    const { chromium } = require('playwright-core');
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 900 },
    });
    context.setDefaultTimeout(15000);
  });

  after(async function () {
    if (context) await context.close().catch(() => undefined);
    if (run) await run.stop();
    for (const dir of [dataDir, userDataDir]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('opens on the flow: the update-notification question is already answered (no), not asked over it', async function () {
    const page = await context.newPage();
    try {
      await page.goto(run.url, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction(() => window.RED && RED.nodes && RED.nodes.filterNodes && RED.nodes.filterNodes({ type: 'uplink-capture' }).length > 0, null, { timeout: 30000 });
      // The editor asks its first-open questions in the same step that hides its loading bar: once the bar is
      // hidden (after the flow has loaded), a question it asked is on the page.
      await page.waitForFunction(() => {
        const bar = document.getElementById('red-ui-loading-progress');
        return bar !== null && getComputedStyle(bar).display === 'none';
      });
      await page.screenshot({ path: path.join(ARTIFACTS, 'editor-npm-start.png') });
      assert.strictEqual(await page.locator('.red-ui-dialog', { hasText: /update notifications/i }).count(), 0, 'no update-notification dialog');
      assert.strictEqual(await page.locator('.red-ui-shade:visible').count(), 0, 'nothing covers the flow');
      assert.strictEqual(await page.evaluate(() => /** @type {any} */ (RED.settings).telemetryEnabled), false);
    } finally {
      await page.close();
    }
  });

  it('moves a login pasted into a camera URL into User and Password, so it is deployed into credentials only', async function () {
    const page = await context.newPage();
    try {
      await page.goto(run.url, { waitUntil: 'domcontentloaded' });
      await page.waitForFunction(() => window.RED && RED.nodes && RED.nodes.filterNodes && RED.nodes.filterNodes({ type: 'uplink-capture' }).length > 0, null, { timeout: 30000 });
      const id = await page.evaluate(() => /** @type {{ id: string }} */ (RED.nodes.filterNodes({ type: 'uplink-capture' })[0]).id);
      await page.evaluate((nodeId) => RED.editor.edit(RED.nodes.node(nodeId)), id);
      const tray = page.locator('.red-ui-tray').last();
      await tray.locator('#node-input-source').waitFor({ state: 'visible' });

      // Pasted into the snapshot URL: moved as soon as the field changes.
      await tray.locator('#node-input-source').selectOption('http');
      await tray.locator('#node-input-url').fill(`http://${encodeURIComponent('cam admin')}:${encodeURIComponent('p@ss/w0rd#1')}@127.0.0.1:9/snapshot.jpg`);
      await tray.locator('#node-input-url').press('Tab');
      assert.strictEqual(await tray.locator('#node-input-url').inputValue(), 'http://127.0.0.1:9/snapshot.jpg');
      assert.strictEqual(await tray.locator('#node-input-username').inputValue(), 'cam admin');
      assert.strictEqual(await tray.locator('#node-input-password').inputValue(), 'p@ss/w0rd#1');

      // Put into the ffmpeg input without a change event (as a script or an autofill would): moved when saved.
      await tray.locator('#node-input-source').selectOption('ffmpeg');
      await page.evaluate(() => $('#node-input-input').val('rtsp://viewer:s3cr%3At@127.0.0.1:9/stream1'));
      await tray.locator('#node-dialog-ok').click();
      await page.locator('.red-ui-tray').waitFor({ state: 'detached' });
      const saved = await page.evaluate((nodeId) => {
        const n = /** @type {any} */ (RED.nodes.node(nodeId));
        return { input: n.input, url: n.url, username: n.credentials.username, password: n.credentials.password };
      }, id);
      assert.deepStrictEqual(saved, { input: 'rtsp://127.0.0.1:9/stream1', url: 'http://127.0.0.1:9/snapshot.jpg', username: 'viewer', password: 's3cr:t' });

      await page.locator('#red-ui-header-button-deploy').click();
      // The editor may ask before deploying a flow with a node it flags (the question is not this test's).
      const confirm = page.getByRole('button', { name: 'Confirm deploy' });
      const userDir = path.join(dataDir, 'node-red');
      const stored = await until('the deployed flow on disk', async () => {
        if (await confirm.isVisible()) await confirm.click();
        const text = fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8');
        return { ok: JSON.parse(text).find((n) => n.id === id).source === 'ffmpeg', value: text.length };
      }).then(() => fs.readFileSync(path.join(userDir, 'flows.json'), 'utf8'));
      for (const secret of ['s3cr', 'viewer:', 'p@ss', 'p%40ss']) assert.ok(!stored.includes(secret), `${secret} is not in flows.json`);
      const key = fs.readFileSync(path.join(dataDir, 'credential-secret'), 'utf8').trim();
      const creds = decrypt(key, fs.readFileSync(path.join(userDir, 'flows_cred.json'), 'utf8'));
      assert.deepStrictEqual([creds[id].username, creds[id].password], ['viewer', 's3cr:t']);
    } finally {
      await page.close();
    }
  });
});
