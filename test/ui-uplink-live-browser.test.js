'use strict';
// The live camera widget (ui-uplink-live) in Debian's Chromium (playwright-core), against a real node-red process
// running the shipped live-camera-dashboard flow with Dashboard 2.0, its camera moved to a real RTSP camera stand-in
// (GStreamer's RTSP server, digest login) on 127.0.0.1. The video must play (its time advancing), the camera's death
// must bring the last picture the camera sent (the live view's still.jpg: the flow has no capture node) with its
// caption, its return the video again; ten HLS clients at once must leave the camera with one RTSP client (the
// recorder's ffmpeg). The recorder also relays (to a port where nobody listens), for the
// overlay's relay state. Every wait is a bounded poll.
// Screenshot: test-artifacts/live-phone.png; with UPLINK_UPDATE_SCREENSHOTS=1 also docs/live-phone.png, which the
// README shows.
// Without /usr/bin/chromium, playwright-core or the RTSP stand-in (python3-gi, GStreamer), the tests say why and skip.
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { startNodeRed, freePort } = require('./support/node-red-process');
const rtsp = require('./support/rtsp-server');
const { call, until, deploy } = require('./support/http-client');
const { bodyOf } = require('./support/flow-geometry');

const { chromiumMissing, launchChromium } = require('./support/chromium');
const ROOT = path.join(__dirname, '..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const DOCS = path.join(ROOT, 'docs');
const FLOW = path.join(ROOT, 'examples', 'live-camera-dashboard.json');
const WIDGET = 'live-ui-live';
const PHONE = { width: 390, height: 844 };
const USER = 'viewer';
const PASSWORD = 'live-pass-17';

function missing() {
  const browser = chromiumMissing();
  if (browser) return browser;
  if (!rtsp.available()) return `the RTSP camera stand-in cannot run: ${rtsp.unavailableReason()}`;
  return null;
}

/**
 * Who reads the camera: the RTSP clients the camera stand-in counts itself, where it can (server.clients()), and the
 * processes on this machine whose command line names the camera's address (ffmpeg takes the URL as an argument),
 * from /proc. `count` is the stand-in's figure where it has one, else the processes'.
 */
async function cameraReaders(server) {
  const pids = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let argv;
    try {
      argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    } catch {
      continue; // gone meanwhile
    }
    if (/ffmpeg$/.test(argv[0] ?? '') && argv.some((a) => a.includes(`127.0.0.1:${server.port}/`))) pids.push(Number(pid));
  }
  const clients = typeof server.clients === 'function' ? await server.clients() : null;
  return { how: clients === null ? 'ffmpeg processes naming the camera (/proc)' : 'the camera\'s own count of RTSP clients', count: clients ?? pids.length, clients, ffmpeg: pids };
}

/** One HLS client, as a player fetches: the playlist (with its viewer id), the init segment and the media segments. */
async function hlsClient(base, viewer, rounds) {
  let bytes = 0;
  for (let i = 0; i < rounds; i++) {
    const r = await fetch(`${base}/index.m3u8?viewer=${viewer}`, { signal: AbortSignal.timeout(5000) });
    assert.strictEqual(r.status, 200, `viewer ${viewer}: the playlist`);
    const lines = (await r.text()).split('\n');
    const map = lines.find((l) => l.startsWith('#EXT-X-MAP:'));
    const uris = [...(map ? [/URI="([^"]+)"/.exec(map)[1]] : []), ...lines.filter((l) => l && !l.startsWith('#'))];
    assert.ok(uris.some((u) => /^seg-\d+\.m4s$/.test(u)), `viewer ${viewer}: segments named in the playlist`);
    for (const u of uris) {
      const s = await fetch(`${base}/${u}`, { signal: AbortSignal.timeout(5000) });
      // A fragment may leave the window between the playlist and its fetch, as for any player.
      if (s.status === 200) bytes += (await s.arrayBuffer()).byteLength;
      else await s.arrayBuffer();
    }
    await new Promise((res) => setTimeout(res, 500));
  }
  return bytes;
}

describe('the live camera widget in a browser (Chromium, Dashboard 2.0, a real RTSP camera)', function () {
  this.timeout(240000);
  let camera;
  let red;
  let browser;
  let context;
  let page;

  before(async function () {
    const why = missing();
    if (why) {
      console.log(`    skipping the live widget's browser tests: ${why}`);
      this.skip();
    }
    this.timeout(120000);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    camera = await rtsp.startRtspServer({ user: USER, password: PASSWORD });
    // The shipped flow with its camera set, as a user would set it: the URL in the recorder, the login in its
    // credentials. Nothing else is changed: the recorder is the camera's only reader.
    // The recorder also relays, to a port where no RTSP server listens: the overlay shows the relay's state, and a
    // relay that cannot connect costs the live view nothing.
    const relayPort = await freePort();
    const flows = JSON.parse(fs.readFileSync(FLOW, 'utf8')).map((n) => {
      if (n.id === 'live-rec') return { ...n, input: camera.url, relayUrl: `rtsp://127.0.0.1:${relayPort}/gate`, credentials: { username: USER, password: PASSWORD } };
      return n;
    });
    assert.ok(flows.some((n) => n.id === WIDGET && n.type === 'ui-uplink-live' && !n.capture), 'the shipped flow has the widget, with no capture node picked');
    assert.deepStrictEqual(flows.filter((n) => n.type === 'uplink-capture').map((n) => n.id), [], 'no capture node in the shipped flow');
    // Deployed as the editor deploys: the credentials travel inside their nodes.
    red = await startNodeRed({ flows: [], startTimeoutMs: 40000 });
    await deploy(red, flows);
    browser = await launchChromium({ viewport: PHONE });
    context = browser.context;
    page = await context.newPage();
  });

  after(async function () {
    if (browser) await browser.close();
    if (red) await red.stop().catch(() => undefined);
    if (camera) await camera.close().catch(() => undefined);
  });

  const liveBase = () => `${red.url}/uplink/live/gate`;
  const liveStatus = async () => {
    const r = await call(`${liveBase()}/status`);
    return { ok: r.status === 200, value: r.body };
  };
  const widget = () => page.locator(`#nrdb-ui-widget-${WIDGET} .uplink-live`);
  const video = () => widget().locator('video');
  const currentTime = () => video().evaluate((v) => v.currentTime);
  /** The video playing: the widget in video mode, and its time advancing by `seconds` while watched. */
  async function playsFor(seconds, timeoutMs) {
    await until('the widget playing video', async () => {
      const mode = await widget().getAttribute('data-mode');
      return { ok: mode === 'video', value: { mode, caption: await widget().locator('[data-part="caption"]').allInnerTexts() } };
    }, { timeoutMs, everyMs: 250 });
    const from = await currentTime();
    return until(`the video's time to advance ${seconds} s past ${from}`, async () => {
      const t = await currentTime();
      return { ok: t > from + seconds, value: t };
    }, { timeoutMs: 30000, everyMs: 250 });
  }

  it('plays the camera live, with the LIVE badge, filling the width of a phone', async function () {
    await until('the live view streaming', async () => {
      const s = await liveStatus();
      return { ok: s.ok && s.value.state === 'live', value: s.value };
    }, 60000);
    await page.goto(`${red.url}/dashboard/live`, { waitUntil: 'domcontentloaded' });
    await widget().waitFor({ state: 'visible', timeout: 30000 });
    const t = await playsFor(2, 60000);
    assert.ok(t > 2, `the video played past 2 s (${t})`);
    await widget().locator('.uplink-live-badge', { hasText: 'LIVE' }).waitFor({ state: 'visible' });
    assert.strictEqual(await widget().locator('[data-part="caption"]').count(), 0, 'no offline caption while live');
    // The player named itself: the live view counts it.
    await widget().locator('.uplink-live-viewers', { hasText: /^[1-9]\d* watching$/ }).waitFor({ state: 'visible', timeout: 10000 });
    // The relay's state, as the live view's status gives it.
    const relay = widget().locator('.uplink-live-relay');
    await relay.waitFor({ state: 'visible', timeout: 10000 });
    assert.match(await relay.innerText(), /^relay (waiting|connecting|reconnecting)$/);
    assert.match((await liveStatus()).value.relay.state, /^(waiting|connecting|reconnecting)$/);

    assert.strictEqual(await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth), 0, 'no sideways scrolling at 390 x 844');
    const box = await video().boundingBox();
    const frame = await widget().boundingBox();
    assert.ok(box && frame && box.x >= 0 && box.x + box.width <= PHONE.width, `the video fits the screen: ${JSON.stringify(box)}`);
    assert.ok(Math.abs(box.width - frame.width) <= 1, `the video fills the widget's width (${box.width} of ${frame.width})`);
    const size = await video().evaluate((v) => ({ w: v.videoWidth, h: v.videoHeight }));
    assert.deepStrictEqual(size, { w: 640, h: 360 }, 'the camera\'s picture');
    assert.ok(Math.abs(box.width / box.height - 640 / 360) < 0.02, `the camera's aspect kept: ${box.width} x ${box.height}`);

    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(ARTIFACTS, 'live-phone.png') });
    // The README's copy changes only when asked for (UPLINK_UPDATE_SCREENSHOTS=1): a test run leaves the tree clean.
    if (process.env.UPLINK_UPDATE_SCREENSHOTS === '1') {
      fs.mkdirSync(DOCS, { recursive: true });
      fs.copyFileSync(path.join(ARTIFACTS, 'live-phone.png'), path.join(DOCS, 'live-phone.png'));
    }
  });

  it('serves ten HLS clients at once from one reading of the camera', async function () {
    const before = await cameraReaders(camera);
    assert.strictEqual(before.count, 1, `one reader of the camera before (${before.how}): ${JSON.stringify(before)}`);
    const clients = Array.from({ length: 10 }, (_, i) => hlsClient(liveBase(), `load-${i}`, 4));
    // Counted while they fetch.
    await new Promise((r) => setTimeout(r, 1000));
    const during = await cameraReaders(camera);
    const bytes = await Promise.all(clients);
    assert.ok(bytes.every((b) => b > 0), `every client got video: ${bytes.join(', ')} bytes`);
    assert.strictEqual(during.count, 1, `one reader of the camera with ten HLS clients (${during.how}): ${JSON.stringify(during)}`);
    assert.strictEqual(during.ffmpeg.length, 1, `one ffmpeg reading the camera: ${JSON.stringify(during)}`);
    const s = (await liveStatus()).value;
    assert.ok(s.viewers >= 11, `the ten clients and the page are counted as viewers: ${s.viewers}`);
    console.log(`      readers of the camera counted as: ${during.how}`);
  });

  it('shows the last picture the camera sent with its caption while the camera is down, and the video again once it is back', async function () {
    await playsFor(1, 30000);
    await camera.kill();
    const caption = widget().locator('[data-part="caption"]');
    await caption.waitFor({ state: 'visible', timeout: 60000 });
    const text = await until('the offline caption', async () => {
      const c = await caption.innerText();
      return { ok: /^camera offline · last frame \d\d:\d\d:\d\d$/.test(c), value: c };
    }, 30000);
    assert.strictEqual(await widget().getAttribute('data-mode'), 'still');
    const img = widget().locator('[data-part="still"] img');
    await img.waitFor({ state: 'visible' });
    await until('the last frame decoded', async () => {
      const ok = await img.evaluate((el) => el.complete && el.naturalWidth === 640);
      return { ok, value: await img.getAttribute('src') };
    }, 10000);
    const src = await img.getAttribute('src');
    assert.match(src, /^\/uplink\/live\/gate\/still\.jpg\?v=\d+$/, 'the live view\'s last frame');
    assert.strictEqual(await img.getAttribute('data-kind'), 'frame');
    // The picture is the one the status names, taken when it says: the caption's time is lastFrameAt's.
    const status = (await liveStatus()).value;
    assert.strictEqual(src, `/${status.still}`);
    const shown = await page.evaluate((iso) => new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' }), status.lastFrameAt);
    // Within the page's correction for its clock (a few ms here), midnight aside.
    const diff = Math.abs(Date.parse(`1970-01-01T${text.slice(-8)}Z`) - Date.parse(`1970-01-01T${shown}Z`));
    const apart = Math.min(diff, 86_400_000 - diff);
    assert.ok(apart <= 2000, `the caption (${text}) gives the last frame's time (${shown})`);
    assert.strictEqual(await widget().locator('.uplink-live-badge').count(), 0, 'no LIVE badge on the still');
    assert.strictEqual((await call(`${liveBase()}/index.m3u8`)).status, 503, 'the playlist says the camera is not streaming');
    // While it is down the page tries again, on a backoff: 2 s, 4 s, 8 s… (one playlist request each), not in a loop.
    const tries = [];
    const onRequest = (req) => {
      if (/\/uplink\/live\/gate\/index\.m3u8\?viewer=/.test(req.url())) tries.push(Date.now());
    };
    page.on('request', onRequest);
    await page.waitForTimeout(12000);
    page.off('request', onRequest);
    assert.ok(tries.length >= 1 && tries.length <= 4, `tries of the stream in 12 s while the camera was down: ${tries.length}`);
    const gaps = tries.slice(1).map((t, i) => t - tries[i]);
    assert.ok(gaps.every((g, i) => i === 0 || g >= gaps[i - 1]), `each wait as long as the one before, or longer: ${gaps.join(', ')} ms`);
    assert.strictEqual(await widget().getAttribute('data-mode'), 'still', 'still the still');
    await page.screenshot({ path: path.join(ARTIFACTS, 'live-phone-offline.png') });
    console.log(`      caption: ${text}`);

    await camera.restart();
    const t = await playsFor(2, 120000);
    assert.ok(t > 0);
    await widget().locator('.uplink-live-badge', { hasText: 'LIVE' }).waitFor({ state: 'visible' });
    assert.strictEqual(await widget().locator('[data-part="caption"]').count(), 0);
    const after = await cameraReaders(camera);
    assert.strictEqual(after.count, 1, `one reader of the camera after its return: ${JSON.stringify(after)}`);
  });

  it('the editor draws the shipped flow with no node on another, each as wide as the flows test assumes', async function () {
    const flow = JSON.parse(fs.readFileSync(FLOW, 'utf8'));
    const editor = await context.newPage();
    const errors = [];
    editor.on('pageerror', (e) => errors.push(e.message));
    try {
      await editor.setViewportSize({ width: 1920, height: 1000 });
      await editor.goto(red.url, { waitUntil: 'domcontentloaded' });
      await editor.waitForFunction(() => window.RED && RED.nodes && RED.nodes.node && RED.nodes.node('live-ui-live'), null, { timeout: 30000 });
      await editor.waitForTimeout(500);
      const boxes = await editor.evaluate(() =>
        [...document.querySelectorAll('#red-ui-workspace-chart g.red-ui-flow-node-group')]
          .filter((g) => g.getBoundingClientRect().width > 0)
          .map((g) => {
            const r = g.querySelector('rect.red-ui-flow-node').getBoundingClientRect();
            return { id: g.id, x0: r.left, y0: r.top, x1: r.right, y1: r.bottom, w: r.width };
          }),
      );
      const drawn = flow.filter((n) => typeof n.x === 'number' && n.type !== 'group').length;
      assert.strictEqual(boxes.length, drawn, `every node is drawn (${boxes.length} of ${drawn})`);
      const overlaps = [];
      for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
          const [a, b] = [boxes[i], boxes[j]];
          if (a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1) overlaps.push(`${a.id} / ${b.id}`);
        }
      }
      assert.deepStrictEqual(overlaps, [], 'no node on another');
      const byId = new Map(flow.map((n) => [n.id, n]));
      const wider = boxes.filter((b) => byId.has(b.id) && b.w > bodyOf(byId.get(b.id)).w + 0.5).map((b) => `${b.id}: ${b.w} > ${bodyOf(byId.get(b.id)).w}`);
      assert.deepStrictEqual(wider, [], 'no node drawn wider than the flows test assumes');
      assert.deepStrictEqual(errors, [], 'no error on the editor\'s page');
    } finally {
      await editor.close();
    }
  });
});
