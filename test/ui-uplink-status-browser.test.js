'use strict';
// The Uplink status widget (ui-uplink-status) in Debian's Chromium (playwright-core), against real node-red processes
// with Node-RED Dashboard 2.0 on 127.0.0.1: the shipped capture-to-cloud-dashboard flow on an S3-protocol store that
// the test can make refuse uploads, and a small flow under adminAuth for the permission rules. Every figure the page
// shows is compared with the queue's own stats endpoint; every wait is a bounded poll.
// Screenshots: test-artifacts/widget-desktop.png and widget-phone.png; with UPLINK_UPDATE_SCREENSHOTS=1 also
// docs/widget-*.png, the ones the README shows.
// Without /usr/bin/chromium (`apt-get install chromium`; .ci/run does it) or playwright-core, the tests say why and skip.
const assert = require('assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startNodeRed } = require('./support/node-red-process');
const { S3Server } = require('./support/s3-server');
const { startRefusingProxy } = require('./support/refusing-proxy');
const { call, until } = require('./support/http-client');

const CHROMIUM = process.env.UPLINK_CHROMIUM || '/usr/bin/chromium';
const ROOT = path.join(__dirname, '..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const DOCS = path.join(ROOT, 'docs');
const FLOW = path.join(ROOT, 'examples', 'capture-to-cloud-dashboard.json');
const WIDGET = 'c2cd-ui-status';
const QUEUE = 'c2cd-queue';
const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

function browserMissing() {
  if (!fs.existsSync(CHROMIUM)) return `${CHROMIUM} is not installed (apt-get install -y chromium)`;
  try {
    require.resolve('playwright-core');
  } catch {
    return 'playwright-core is not installed (npm install)';
  }
  return null;
}

async function launch() {
  const { chromium } = require('playwright-core');
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: DESKTOP,
  });
  context.setDefaultTimeout(15000);
  context.setDefaultNavigationTimeout(30000);
  return { context, userDataDir };
}

/** The widget on a page, and what it shows. */
function widgetOn(page, id = WIDGET) {
  const root = page.locator(`#nrdb-ui-widget-${id} .uplink-status`);
  const count = async (key) => {
    const text = await root.locator(`[data-count="${key}"] .uplink-count-value`).innerText();
    return text === '–' ? null : Number(text);
  };
  const counts = async () => ({ pending: await count('pending'), inFlight: await count('inFlight'), uploaded: await count('uploaded'), failed: await count('failed') });
  return { root, counts, item: (itemId) => root.locator(`.uplink-failed-item[data-item="${itemId}"]`) };
}

/** How far the page scrolls sideways (0: it fits). */
const sidewaysScroll = (page) => page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);

describe('the Uplink status widget in a browser (Chromium, Dashboard 2.0)', function () {
  this.timeout(120000);
  let s3;
  let proxy;
  let red;
  let browser;
  let page;

  before(async function () {
    const missing = browserMissing();
    if (missing) {
      console.log(`    skipping the widget's browser tests: ${missing}`);
      this.skip();
    }
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    s3 = await new S3Server({ buckets: ['widget'] }).start();
    proxy = startRefusingProxy(s3.port);
    const proxyPort = await proxy.start();

    // The shipped flow, plus a second page with two more widgets on the same queue: retry and purge hidden, and off.
    const flows = JSON.parse(fs.readFileSync(FLOW, 'utf8'));
    const mainPage = flows.find((n) => n.type === 'ui-page');
    flows.push(
      { ...mainPage, id: 't-page', name: 'Locked', path: '/locked', order: 2 },
      { ...flows.find((n) => n.type === 'ui-group'), id: 't-group', name: 'Locked', page: 't-page' },
      ...['hidden', 'disabled'].map((actions, i) => ({
        id: `t-${actions}`,
        type: 'ui-uplink-status',
        z: 'c2cd-tab',
        name: `actions ${actions}`,
        group: 't-group',
        order: i + 1,
        width: 0,
        height: 0,
        queue: QUEUE,
        actions,
        x: 1200,
        y: 700 + 60 * i,
        wires: [],
      })),
    );
    red = await startNodeRed({
      flows,
      startTimeoutMs: 30000,
      env: {
        // One capture at start; the test takes the others.
        UPLINK_CAPTURE_INTERVAL_S: '3600',
        UPLINK_S3_ENDPOINT: `http://127.0.0.1:${proxyPort}`,
        UPLINK_S3_BUCKET: 'widget',
        UPLINK_S3_REGION: 'us-east-1',
        UPLINK_S3_PATH_STYLE: 'true',
        AWS_ACCESS_KEY_ID: 'S3RVER',
        AWS_SECRET_ACCESS_KEY: 'S3RVER',
      },
    });
    browser = await launch();
    page = await browser.context.newPage();
  });

  after(async function () {
    if (browser) await browser.context.close().catch(() => undefined);
    if (browser) fs.rmSync(browser.userDataDir, { recursive: true, force: true });
    if (red) await red.stop().catch(() => undefined);
    if (proxy) await proxy.stop().catch(() => undefined);
    if (s3) await s3.destroy().catch(() => undefined);
  });

  const stats = async () => {
    const r = await call(`${red.url}/uplink/queue/${QUEUE}/stats`);
    return { ok: r.status === 200, value: r.body };
  };
  const statsUntil = (what, test, timeoutMs) =>
    until(what, async () => {
      const s = await stats();
      return { ok: s.ok && test(s.value), value: s.value };
    }, timeoutMs);
  const failedIds = async () => (await call(`${red.url}/uplink/queue/${QUEUE}/failed`)).body.map((r) => r.id);
  const captureNow = async () => assert.strictEqual((await call(`${red.url}/inject/c2cd-now`, { method: 'POST' })).status, 200);
  /** The queue with nothing under way, as its stats say, and the widget showing exactly those counts. */
  const settled = async (widget, what) => {
    const s = await statsUntil(what, (v) => v.pending === 0 && v.inFlight === 0);
    const want = { pending: s.pending, inFlight: s.inFlight, uploaded: s.uploaded, failed: s.failed + s.expired };
    await until(`the widget showing ${JSON.stringify(want)}`, async () => {
      const shown = await widget.counts();
      return { ok: JSON.stringify(shown) === JSON.stringify(want), value: shown };
    }, 5000);
    return s;
  };
  /** A capture that the store refuses, so that it becomes a failed item; resolves to its id. */
  const failedCapture = async () => {
    const before = new Set(await failedIds());
    proxy.refusePuts = true;
    await captureNow();
    const id = await until('a new failed item', async () => {
      const ids = (await failedIds()).filter((i) => !before.has(i));
      return { ok: ids.length === 1, value: ids[0] };
    });
    proxy.refusePuts = false;
    return id;
  };

  it('shows what the queue\'s stats say: the link, the counts and the latest capture', async function () {
    const first = await statsUntil('the first capture uploaded', (s) => s.online && s.uploaded >= 1 && s.pending === 0 && s.inFlight === 0);
    await page.goto(`${red.url}/dashboard`, { waitUntil: 'domcontentloaded' });
    const widget = widgetOn(page);
    await widget.root.getByText(/online for \d+/).waitFor({ state: 'visible' });
    const s = await settled(widget, 'the queue idle');
    assert.strictEqual(s.uploaded, first.uploaded);
    assert.match(await widget.root.locator('.uplink-link-detail').innerText(), /\d+ ms/, 'the probe latency');
    const img = widget.root.locator('img.uplink-latest-img');
    await img.waitFor({ state: 'visible' });
    await until('the latest capture decoded', async () => {
      const ok = await img.evaluate((el) => el.complete && el.naturalWidth === 640);
      return { ok, value: await img.getAttribute('src') };
    }, 10000);
    assert.match(await img.getAttribute('src'), new RegExp(`^/uplink-status/${WIDGET}/capture\\?v=`));
    assert.match(await widget.root.locator('[data-part="capture"] .uplink-caption').innerText(), /\.png · .* · 640×360 · \d+ KB/);
    // A capture the test takes shows up as the latest, and its upload in the counts.
    const shownBefore = await img.getAttribute('src');
    await captureNow();
    await until('the new capture as the latest', async () => ({ ok: (await img.getAttribute('src')) !== shownBefore, value: await img.getAttribute('src') }), 10000);
    const after = await settled(widget, 'the new capture uploaded');
    assert.strictEqual(after.uploaded, first.uploaded + 1);
  });

  it('follows a change of the queue within a second', async function () {
    const widget = widgetOn(page);
    await settled(widget, 'the queue idle');
    // A second without changes: the queue's next stats go out at once (it sends them at most once a second).
    await new Promise((r) => setTimeout(r, 1100));
    const paused = widget.root.locator('.uplink-badge', { hasText: 'paused' });
    assert.strictEqual(await paused.count(), 0);
    assert.strictEqual((await call(`${red.url}/uplink/queue/${QUEUE}/pause`, { method: 'POST' })).status, 200);
    await until('the widget showing the pause', async () => ({ ok: (await paused.count()) === 1, value: await paused.count() }), { timeoutMs: 1000, everyMs: 25 });
    await new Promise((r) => setTimeout(r, 1100));
    assert.strictEqual((await call(`${red.url}/uplink/queue/${QUEUE}/resume`, { method: 'POST' })).status, 200);
    await until('the widget showing the resume', async () => ({ ok: (await paused.count()) === 0, value: await paused.count() }), { timeoutMs: 1000, everyMs: 25 });
  });

  it('lists a failed item with its attempts and last error, once, and fits a phone', async function () {
    const widget = widgetOn(page);
    const id = await failedCapture();
    const s = await settled(widget, 'the failed item settled');
    assert.strictEqual(s.failed, 1);
    const row = widget.item(id);
    await row.waitFor({ state: 'visible' });
    const [failed] = (await call(`${red.url}/uplink/queue/${QUEUE}/failed`)).body;
    const text = await row.innerText();
    assert.match(text, new RegExp(`#${id} .*\\.png`), 'the item and its file name');
    assert.ok(text.includes(`${failed.attempts} attempt`), `its attempts (${failed.attempts}): ${text}`);
    assert.ok(text.includes(failed.lastError), `its last error (${failed.lastError}): ${text}`);
    // The uploader's failure output and the Catch node both report it: listed once.
    await widget.root.locator('.uplink-error', { hasText: /access denied/i }).first().waitFor({ state: 'visible' });
    await page.waitForTimeout(500); // the Catch node's copy would have arrived by now
    assert.strictEqual(await widget.root.locator('.uplink-error').count(), 1, 'one failure, listed once');
    await page.screenshot({ path: path.join(ARTIFACTS, 'widget-desktop.png'), fullPage: true });

    await page.setViewportSize(PHONE);
    await row.waitFor({ state: 'visible' });
    assert.strictEqual(await sidewaysScroll(page), 0, 'no sideways scrolling at 390 x 844');
    const box = await widget.root.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `the widget fits the screen: ${JSON.stringify(box)}`);
    await page.screenshot({ path: path.join(ARTIFACTS, 'widget-phone.png'), fullPage: true });
    // The README's copies change only when asked for (UPLINK_UPDATE_SCREENSHOTS=1): a test run leaves the tree clean.
    if (process.env.UPLINK_UPDATE_SCREENSHOTS === '1') {
      fs.mkdirSync(DOCS, { recursive: true });
      for (const f of ['widget-desktop.png', 'widget-phone.png']) fs.copyFileSync(path.join(ARTIFACTS, f), path.join(DOCS, f));
    }
  });

  it('retries an item only once the retry is confirmed', async function () {
    const widget = widgetOn(page);
    const [id] = await failedIds();
    assert.ok(id, 'a failed item from the test before');
    const before = (await stats()).value;
    const dialog = page.locator('.uplink-confirm');
    await widget.item(id).locator('.uplink-retry').click();
    await dialog.waitFor({ state: 'visible' });
    assert.match(await dialog.innerText(), new RegExp(`Retry item #${id}`));
    await page.waitForTimeout(500);
    assert.deepStrictEqual(await failedIds(), [id], 'asking is not acting');
    await dialog.locator('.uplink-confirm-cancel').click();
    await dialog.waitFor({ state: 'hidden' });
    await page.waitForTimeout(500);
    assert.deepStrictEqual(await failedIds(), [id], 'cancelled: nothing happened');

    await widget.item(id).locator('.uplink-retry').click();
    await dialog.locator('.uplink-confirm-ok').click();
    const after = await statsUntil('the item retried and uploaded', (s) => s.failed === 0 && s.uploaded === before.uploaded + 1 && s.pending === 0 && s.inFlight === 0);
    await widget.root.locator('.uplink-outcome', { hasText: '1 failed items queued again' }).waitFor({ state: 'visible' });
    await settled(widget, 'the widget after the retry');
    assert.strictEqual(await widget.item(id).count(), 0, 'the item left the list');
    assert.strictEqual(after.totals.enqueued, before.totals.enqueued, 'the same item went again, nothing new was queued');
  });

  it('purges all failed items only once the purge is confirmed, without uploading them', async function () {
    const widget = widgetOn(page);
    const a = await failedCapture();
    await new Promise((r) => setTimeout(r, 600)); // past the capture node's minimum interval
    const b = await failedCapture();
    const before = await settled(widget, 'two failed items');
    assert.strictEqual(before.failed, 2);
    await widget.item(b).waitFor({ state: 'visible' });
    const dialog = page.locator('.uplink-confirm');
    await widget.root.locator('.uplink-purge-all').click();
    await dialog.waitFor({ state: 'visible' });
    assert.match(await dialog.innerText(), /Purge all 2 failed items/);
    await page.waitForTimeout(500);
    assert.deepStrictEqual(await failedIds(), [a, b], 'asking is not acting');
    await dialog.locator('.uplink-confirm-ok').click();
    const after = await statsUntil('the failed items purged', (s) => s.failed === 0);
    assert.strictEqual(after.uploaded, before.uploaded, 'a purged item is not uploaded');
    assert.strictEqual(after.pending, 0);
    await settled(widget, 'the widget after the purge');
    assert.strictEqual(await widget.root.locator('.uplink-failed-item').count(), 0);
  });

  it('hides retry and purge, or shows them turned off, where the widget says so; the server refuses them there', async function () {
    const id = await failedCapture();
    await page.setViewportSize(DESKTOP);
    await page.goto(`${red.url}/dashboard/locked`, { waitUntil: 'domcontentloaded' });
    const hidden = widgetOn(page, 't-hidden');
    const off = widgetOn(page, 't-disabled');
    await hidden.item(id).waitFor({ state: 'visible' });
    await off.item(id).waitFor({ state: 'visible' });
    assert.strictEqual(await hidden.root.locator('button').count(), 0, 'no buttons where they are hidden');
    const buttons = off.root.locator('.uplink-retry, .uplink-purge, .uplink-retry-all, .uplink-purge-all');
    assert.strictEqual(await buttons.count(), 4);
    for (let i = 0; i < 4; i++) assert.strictEqual(await buttons.nth(i).isDisabled(), true, 'turned off');
    await off.root.getByText('Retry and purge are turned off on this dashboard.').waitFor();
    for (const widget of ['t-hidden', 't-disabled']) {
      const r = await call(`${red.url}/uplink/ui-uplink-status/${widget}/purge`, { method: 'POST', json: { ids: [id] } });
      assert.strictEqual(r.status, 403, `${widget}: ${r.text}`);
    }
    assert.deepStrictEqual(await failedIds(), [id], 'still failed');
  });

  it('acts only on failed items of its own queue, named by id', async function () {
    const [id] = await failedIds();
    const post = (widget, action, json) => call(`${red.url}/uplink/ui-uplink-status/${widget}/${action}`, { method: 'POST', json });
    assert.strictEqual((await post(WIDGET, 'retry', { ids: [id + 1000] })).status, 404, 'an id that is not a failed item');
    assert.strictEqual((await post(WIDGET, 'retry', { ids: ['1 OR 1=1'] })).status, 400, 'an id that is not a number');
    assert.strictEqual((await post(WIDGET, 'retry', { ids: [] })).status, 400, 'an empty list is not "all"');
    assert.strictEqual((await post(WIDGET, 'delete', { ids: [id] })).status, 400, 'an action that is not retry or purge');
    assert.strictEqual((await post(QUEUE, 'retry', {})).status, 404, 'a node that is not a widget');
    assert.deepStrictEqual(await failedIds(), [id], 'nothing happened');
    const r = await post(WIDGET, 'purge', { ids: [id] });
    assert.deepStrictEqual([r.status, r.body], [200, { result: '1 failed items purged' }]);
    assert.deepStrictEqual(await failedIds(), []);
  });

  // Last: the outage's upload failures join the last errors, which the tests above count.
  it('lists an outage of the link from the connectivity node\'s outage log', async function () {
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${red.url}/dashboard`, { waitUntil: 'domcontentloaded' });
    const widget = widgetOn(page);
    const outages = widget.root.locator('[data-part="outages"]');
    await outages.waitFor({ state: 'visible' });
    assert.match(await outages.innerText(), /Outages, last 7 days\s+none/);
    // The store answers 503: the capture's upload fails, which makes the connectivity node probe at once.
    proxy.down = true;
    await captureNow();
    await widget.root.getByText(/offline for \d+/).first().waitFor({ state: 'visible', timeout: 30000 });
    proxy.down = false;
    await widget.root.getByText(/online for \d+/).waitFor({ state: 'visible', timeout: 30000 });
    await until('the outage listed', async () => {
      const text = await outages.innerText();
      return { ok: /1 outage, \d+ (s|min) offline in all/.test(text) && (await outages.locator('.uplink-outage').count()) === 1, value: text };
    }, 10000);
    await settled(widget, 'the capture uploaded after the outage');
  });
});

describe('the Uplink status widget under Node-RED\'s adminAuth (Chromium)', function () {
  this.timeout(120000);
  let red;
  let browser;
  const bcrypt = require('bcryptjs');
  const hash = bcrypt.hashSync('widget-test-password', 8);

  // A queue whose every delivery is refused for good, so that whatever is queued becomes a failed item.
  const flows = [
    { id: 'a-tab', type: 'tab', label: 'auth' },
    { id: 'a-add', type: 'inject', z: 'a-tab', name: 'add', props: [{ p: 'payload' }], payload: 'reading', payloadType: 'str', repeat: '', once: false, x: 100, y: 100, wires: [['a-queue']] },
    { id: 'a-queue', type: 'uplink-offline-queue', z: 'a-tab', name: 'queue', db: 'uplink/auth-queue.db', statsInterval: 1, x: 300, y: 100, wires: [['a-refuse'], [], []] },
    {
      id: 'a-refuse',
      type: 'change',
      z: 'a-tab',
      name: 'refuse',
      rules: [
        { t: 'set', p: 'uplink.ack', pt: 'msg', to: 'false', tot: 'bool' },
        { t: 'set', p: 'uplink.error', pt: 'msg', to: '{"class":"permanent","message":"refused by the test"}', tot: 'json' },
      ],
      x: 500,
      y: 100,
      wires: [['a-queue']],
    },
    { id: 'a-base', type: 'ui-base', name: 'auth', path: '/dashboard', includeClientData: false, acceptsClientConfig: ['ui-notification', 'ui-control'], headerContent: 'page', navigationStyle: 'default', titleBarStyle: 'default' },
    { id: 'a-theme', type: 'ui-theme', name: 'auth', colors: { surface: '#ffffff', primary: '#0d74ce', bgPage: '#eeeeee', groupBg: '#ffffff', groupOutline: '#cccccc' }, sizes: { pagePadding: '12px', groupGap: '12px', groupBorderRadius: '4px', widgetGap: '12px' } },
    { id: 'a-page', type: 'ui-page', name: 'auth', ui: 'a-base', path: '/auth', layout: 'grid', theme: 'a-theme', order: 1, visible: 'true', disabled: 'false' },
    { id: 'a-group', type: 'ui-group', name: 'auth', page: 'a-page', width: 6, height: 1, order: 1, showTitle: true, visible: 'true', disabled: 'false' },
    { id: 'a-widget', type: 'ui-uplink-status', z: 'a-tab', name: 'status', group: 'a-group', order: 1, width: 0, height: 0, queue: 'a-queue', actions: 'permission', x: 300, y: 200, wires: [] },
  ];

  before(async function () {
    const missing = browserMissing();
    if (missing) {
      console.log(`    skipping the widget's browser tests: ${missing}`);
      this.skip();
    }
    red = await startNodeRed({
      flows,
      startTimeoutMs: 30000,
      settings: {
        adminAuth: {
          type: 'credentials',
          users: [
            { username: 'admin', password: hash, permissions: '*' },
            { username: 'viewer', password: hash, permissions: 'read' },
          ],
        },
      },
    });
    browser = await launch();
  });

  after(async function () {
    if (browser) await browser.context.close().catch(() => undefined);
    if (browser) fs.rmSync(browser.userDataDir, { recursive: true, force: true });
    if (red) await red.stop().catch(() => undefined);
  });

  const tokenOf = async (username, scope = '*') => {
    const r = await call(`${red.url}/auth/token`, { method: 'POST', json: { client_id: 'node-red-editor', grant_type: 'password', scope, username, password: 'widget-test-password' } });
    assert.strictEqual(r.status, 200, r.text);
    return r.body;
  };
  const asAdmin = async () => ({ Authorization: `Bearer ${(await tokenOf('admin')).access_token}` });
  const failedIds = async () => (await call(`${red.url}/uplink/queue/a-queue/failed`, { headers: await asAdmin() })).body.map((r) => r.id);
  const addFailed = async () => {
    const before = (await failedIds()).length;
    assert.strictEqual((await call(`${red.url}/inject/a-add`, { method: 'POST', headers: await asAdmin() })).status, 200);
    return until('a new failed item', async () => {
      const ids = await failedIds();
      return { ok: ids.length === before + 1, value: ids[ids.length - 1] };
    }, 10000);
  };

  it('needs the queue\'s write permission, as the queue\'s admin endpoints do', async function () {
    const id = await addFailed();
    const purge = (headers) => call(`${red.url}/uplink/ui-uplink-status/a-widget/purge`, { method: 'POST', json: { ids: [id] }, headers });
    assert.strictEqual((await purge({})).status, 401, 'no login');
    const viewer = await tokenOf('viewer', 'read');
    assert.strictEqual((await purge({ Authorization: `Bearer ${viewer.access_token}` })).status, 401, 'a user who may only read');
    assert.strictEqual((await call(`${red.url}/uplink/queue/a-queue/purge-failed`, { method: 'POST', json: { ids: [id] }, headers: { Authorization: `Bearer ${viewer.access_token}` } })).status, 401, 'the same user at the queue\'s own endpoint');
    assert.deepStrictEqual(await failedIds(), [id]);
    const r = await purge(await asAdmin());
    assert.strictEqual(r.status, 200, r.text);
    assert.deepStrictEqual(await failedIds(), []);
  });

  it('acts from the page once the browser is logged in to the editor, and says why not before', async function () {
    const id = await addFailed();
    const page = await browser.context.newPage();
    try {
      await page.goto(`${red.url}/dashboard/auth`, { waitUntil: 'domcontentloaded' });
      const widget = widgetOn(page, 'a-widget');
      const dialog = page.locator('.uplink-confirm');
      await widget.item(id).locator('.uplink-purge').click();
      await dialog.locator('.uplink-confirm-ok').click();
      await widget.root.locator('.uplink-outcome-error', { hasText: 'Not allowed: log in to the Node-RED editor' }).waitFor({ state: 'visible' });
      assert.deepStrictEqual(await failedIds(), [id], 'refused: still failed');

      // Logged in to the editor in this browser: Node-RED keeps the login in localStorage, where the widget reads it.
      const login = await tokenOf('admin');
      await page.evaluate((tokens) => localStorage.setItem('auth-tokens', JSON.stringify(tokens)), login);
      await widget.item(id).locator('.uplink-purge').click();
      await dialog.locator('.uplink-confirm-ok').click();
      await widget.root.locator('.uplink-outcome', { hasText: '1 failed items purged' }).waitFor({ state: 'visible' });
      assert.deepStrictEqual(await failedIds(), []);
      await until('the item gone from the page', async () => ({ ok: (await widget.item(id).count()) === 0, value: null }), 5000);
    } finally {
      await page.close();
    }
  });
});
