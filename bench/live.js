'use strict';
// Figure 14: what the live view and the RTSP relay cost, and how far behind the camera the live view plays.
//
//  14a. CPU of one recorder with live view and relay (Node-RED and every ffmpeg it runs, the whole process tree) vs
//       the same recorder recording alone: two real `node-red` processes recording the same RTSP camera (GStreamer's
//       stand-in, 640x360 10 fps H.264, a keyframe a second) at the same time, 10 s segments, read over the same
//       window once running. The relay pushes to GStreamer's RTSP server in RECORD mode.
//  14d. Then the same with three viewers fetching the playlist and each new fragment as a player does: what a viewer
//       costs the device (it costs the camera nothing: the live view is served from memory).
//  14b. Their memory: the proportional set size (PSS, shared libraries split between the processes that map them)
//       of each process tree, at the end of the window.
//  14c. Latency of the live view in Chromium (hls.js with the dashboard widget's settings): the camera draws its wall
//       clock into every frame (test/support/timecode.js); the page decodes it from the video it shows, and the
//       latency is the page's clock minus the frame's. Baseline: the same, for frames ffmpeg reads straight from the
//       camera over RTSP (what the camera and the network cost before Uplink sees a frame).
const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const h = require('./helpers');
const { call, until } = require('../test/support/http-client');
const { chromiumMissing, launchChromium } = require('../test/support/chromium');

const ROOT = path.join(__dirname, '..');
const TICK_MS = 1000 / 100; // USER_HZ
const WINDOW_S = 120;
const WARMUP_S = 30;
const VIEWER_WINDOW_S = 60;
const VIEWERS = 3;
/** The live widget's hls.js settings (ui/components/UIUplinkLive.vue), as a player on the dashboard plays. */
const HLS_CONFIG = { liveSyncDurationCount: 2, liveMaxLatencyDurationCount: 5, maxBufferLength: 6, maxMaxBufferLength: 10, backBufferLength: 4, enableWorker: false, lowLatencyMode: false };

function procTable() {
  const all = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const f = fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ');
      all.set(Number(d), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) });
    } catch {
      /* gone */
    }
  }
  return all;
}

/** The pids of `root` and its live descendants. */
function treeOf(root, all = procTable()) {
  const pids = [];
  const walk = (pid, depth) => {
    if (!all.has(pid) || depth > 20) return;
    pids.push(pid);
    for (const [p, c] of all) if (c.ppid === pid) walk(p, depth + 1);
  };
  walk(root, 0);
  return pids;
}

/** CPU ms of a process tree (reaped children included through cutime), and per command name. */
function treeCpu(root) {
  const all = procTable();
  const by = {};
  let ms = 0;
  for (const pid of treeOf(root, all)) {
    const t = all.get(pid).ticks * TICK_MS;
    ms += t;
    const name = comm(pid);
    by[name] = (by[name] || 0) + t;
  }
  return { ms, by };
}

function comm(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?';
  }
}

/** PSS in KB of a process tree, and per command name. */
function treePss(root) {
  let kb = 0;
  const by = {};
  for (const pid of treeOf(root)) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      const v = m ? Number(m[1]) : 0;
      kb += v;
      by[comm(pid)] = (by[comm(pid)] || 0) + v;
    } catch {
      /* gone */
    }
  }
  return { kb, by };
}

function recorderFlow(cameraUrl, folder, live) {
  return [
    { id: 'tab', type: 'tab', label: 'bench' },
    {
      id: 'rec', type: 'uplink-recorder', z: 'tab', name: 'bench camera', camera: 'bench', input: cameraUrl, kind: 'rtsp', rtspTransport: 'tcp',
      timeout: 10, segmentSeconds: 10, folder, video: 'copy', audio: 'none', keepFreeMB: 0, autoStart: true,
      ...(live ? { liveView: true, livePlaylistSize: 4, relayUrl: live.relayUrl, relayTransport: 'tcp' } : {}),
      wires: [[], []],
    },
  ];
}

/** A player's requests: the playlist every second, each fragment once, as long as `running()`. */
async function viewer(base, id, running) {
  const seen = new Set();
  while (running()) {
    try {
      const r = await call(`${base}/index.m3u8?viewer=${id}`, { timeoutMs: 5000 });
      if (r.status === 200) {
        for (const m of r.text.matchAll(/^(seg-\d+\.m4s|init-\d+\.mp4)$/gm)) {
          if (seen.has(m[1])) continue;
          seen.add(m[1]);
          const res = await fetch(`${base}/${m[1]}`, { signal: AbortSignal.timeout(5000) });
          await res.arrayBuffer();
        }
      }
    } catch {
      /* the next round tries again */
    }
    await h.sleep(1000);
  }
}

function run(file, args, opts = {}) {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 20_000, maxBuffer: 32 * 1024 * 1024, encoding: 'buffer', ...opts }, (err, stdout, stderr) => resolve({ err, stdout, stderr: String(stderr) }));
  });
}

/** Latency of frames read straight from the camera: grab one frame as gray pixels, decode its time. */
async function rtspLatencies(cameraUrl, n) {
  const { decodeTimecode } = require('../test/support/timecode');
  const out = [];
  for (let i = 0; i < n; i++) {
    // Reading on: the first frames of a connection are the oldest the server had; take the 20th.
    const r = await run('ffmpeg', ['-nostdin', '-v', 'error', '-rtsp_transport', 'tcp', '-i', cameraUrl, '-vf', 'select=gte(n\\,20)', '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'gray', '-']);
    const done = Date.now();
    const t = r.stdout.length >= 640 * 360 ? decodeTimecode(r.stdout.subarray(r.stdout.length - 640 * 360), 640, 360) : null;
    // The frame left ffmpeg at `done` at the latest; the decode of 20 frames at 10 fps took place as they came.
    if (t !== null) out.push((done - t) / 1000);
  }
  return out;
}

/** CPU of both trees over the same `seconds`. */
async function cpuWindow(alonePid, livePid, seconds) {
  const a0 = treeCpu(alonePid);
  const b0 = treeCpu(livePid);
  const t0 = h.now();
  await h.sleep(seconds * 1000);
  const a1 = treeCpu(alonePid);
  const b1 = treeCpu(livePid);
  const diff = (x0, x1) => ({ s: (x1.ms - x0.ms) / 1000, by: Object.fromEntries(Object.keys(x1.by).map((k) => [k, x1.by[k] - (x0.by[k] || 0)])) });
  return { sec: (h.now() - t0) / 1000, alone: diff(a0, a1), live: diff(b0, b1) };
}

async function liveCost(ctx) {
  const rows = {
    cpu: { id: '14a', figure: 'record + live view + relay: CPU, one RTSP camera, 10 s segments', unit: 'CPU s', baseline: 'the same recorder recording alone, same camera, same time', spread: null, target: '<= 1.15' },
    mem: { id: '14b', figure: 'record + live view + relay: memory (PSS of the process tree)', unit: 'MB', baseline: 'the same recorder recording alone', spread: null, target: '' },
    viewers: { id: '14d', figure: `the same with ${VIEWERS} live viewers: CPU per second`, unit: 'CPU ms/s', baseline: 'the same Node-RED without viewers (14a)', spread: null, target: '' },
    lat: { id: '14c', figure: 'live view latency in Chromium, 1 s keyframes (median)', unit: 's', baseline: 'frames read straight from the camera over RTSP (ffmpeg)', spread: null, target: '< 4 s' },
  };
  const skip = (why) => {
    ctx.log(`  skipped: ${why}`);
    for (const r of Object.values(rows)) ctx.rows.push({ ...r, value: NaN, baseValue: NaN, ratio: NaN, display: 'skipped', note: `skipped: ${why}` });
  };
  const rtsp = require('../test/support/rtsp-server');
  const recordServer = require('../test/support/rtsp-record-server');
  if (!rtsp.available()) return skip(rtsp.unavailableReason());
  if (!recordServer.available()) return skip(recordServer.unavailableReason());
  const { startNodeRed } = require('../test/support/node-red-process');
  const seconds = ctx.quick ? 40 : WINDOW_S;
  const viewerSeconds = ctx.quick ? 20 : VIEWER_WINDOW_S;
  const warmupS = ctx.quick ? 15 : WARMUP_S;
  const dir = h.tempDir('live');
  const camera = await rtsp.startRtspServer({ timecode: true });
  const relay = await recordServer.startRecordServer();
  // The player page and hls.js, served by the live Node-RED itself (same origin as the playlist).
  const staticDir = path.join(dir, 'static');
  fs.mkdirSync(staticDir, { recursive: true });
  fs.copyFileSync(require.resolve('hls.js/dist/hls.light.min.js'), path.join(staticDir, 'hls.js'));
  fs.writeFileSync(
    path.join(staticDir, 'player.html'),
    `<!doctype html><video id="v" muted autoplay playsinline width="640" height="360"></video><canvas id="c" width="640" height="360"></canvas>
<script src="hls.js"></script><script>
const hls = new Hls(${JSON.stringify(HLS_CONFIG)});
hls.loadSource('uplink/live/bench/index.m3u8?viewer=bench-page');
hls.attachMedia(document.getElementById('v'));
hls.on(Hls.Events.ERROR, (e, d) => { if (d.fatal) setTimeout(() => hls.loadSource('uplink/live/bench/index.m3u8?viewer=bench-page'), 1000); });
</script>`,
  );
  const reds = [];
  let viewing = false;
  let browser;
  try {
    const startRed = async (name, flows, settings = {}) => {
      const red = await startNodeRed({ userDir: path.join(dir, name), flows, settings, startTimeoutMs: 30_000 });
      const unregister = ctx.registerChild(red.process);
      reds.push({ red, unregister });
      return red;
    };
    const alone = await startRed('alone', recorderFlow(camera.url, path.join(dir, 'alone-rec'), null));
    const live = await startRed('live', recorderFlow(camera.url, path.join(dir, 'live-rec'), { relayUrl: relay.url }), { httpStatic: staticDir });
    const base = `${live.url}/uplink/live/bench`;
    await until('the live view', async () => ({ ok: (await call(`${base}/status`)).body.state === 'live' }), { timeoutMs: 30_000 });
    await h.sleep(warmupS * 1000);
    // 14a: recording, live view and relay, nobody watching, against recording alone.
    const w1 = await cpuWindow(alone.pid, live.pid, seconds);
    const st = (await call(`${base}/status`)).body;
    // 14d: the same with viewers fetching the playlist and every fragment as players do.
    viewing = true;
    const viewers = Array.from({ length: VIEWERS }, (_, i) => viewer(base, `bench-${i}`, () => viewing));
    await h.sleep(5000);
    const w2 = await cpuWindow(alone.pid, live.pid, viewerSeconds);
    const watched = (await call(`${base}/status`)).body;
    viewing = false;
    await Promise.all(viewers);
    const memA = treePss(alone.pid);
    const memB = treePss(live.pid);
    const split = (w, side) => Object.keys(w[side].by).map((k) => `${k} ${(w[side].by[k] / 1000).toFixed(2)}`).join(' + ');
    const pssSplit = (m) => Object.entries(m.by).map(([k, v]) => `${k} ${(v / 1024).toFixed(1)}`).join(' + ');
    const msPerS = (cpuS, sec) => ((cpuS * 1000) / sec).toFixed(1);
    ctx.log(`  alone ${w1.alone.s.toFixed(2)} CPU s (${split(w1, 'alone')}); live+relay ${w1.live.s.toFixed(2)} CPU s (${split(w1, 'live')}) over ${w1.sec.toFixed(0)} s; relay ${st.relay && st.relay.state}`);
    ctx.log(`  with ${VIEWERS} viewers: live ${w2.live.s.toFixed(2)} CPU s (${split(w2, 'live')}), alone ${w2.alone.s.toFixed(2)} over ${w2.sec.toFixed(0)} s; ${watched.viewers} viewers counted`);
    ctx.rows.push({
      ...rows.cpu,
      value: w1.live.s,
      baseValue: w1.alone.s,
      ratio: w1.live.s / w1.alone.s,
      note:
        `${w1.sec.toFixed(0)} s from ${warmupS} s after start, both Node-REDs recording the same camera at once, nobody watching; ours: ${split(w1, 'live')} CPU s ` +
        `(${msPerS(w1.live.s, w1.sec)} ms/s); alone: ${split(w1, 'alone')} (${msPerS(w1.alone.s, w1.sec)} ms/s); the live view and relay add ` +
        `${msPerS(w1.live.s - w1.alone.s, w1.sec)} CPU ms/s; relay ${st.relay ? st.relay.state : '-'}, stream ${Math.round(st.bitrate / 1000)} kbit/s`,
      extra: { w1 },
    });
    ctx.rows.push({
      ...rows.viewers,
      value: (w2.live.s * 1000) / w2.sec,
      baseValue: (w1.live.s * 1000) / w1.sec,
      ratio: w2.live.s / w2.sec / (w1.live.s / w1.sec),
      note:
        `CPU s per s of the live Node-RED tree over ${w2.sec.toFixed(0)} s with ${VIEWERS} viewers (${watched.viewers} counted) vs the window before without; ` +
        `each viewer adds ${msPerS((w2.live.s / w2.sec - w1.live.s / w1.sec) / VIEWERS, 1)} CPU ms/s (about 2 requests a second each); recording alone meanwhile ${msPerS(w2.alone.s, w2.sec)} ms/s`,
      extra: { w2 },
    });
    ctx.rows.push({
      ...rows.mem,
      value: memB.kb / 1024,
      baseValue: memA.kb / 1024,
      ratio: memB.kb / memA.kb,
      note: `PSS at the end; ours: ${pssSplit(memB)} MB; alone: ${pssSplit(memA)} MB`,
    });

    // 14c: the player.
    const noBrowser = chromiumMissing();
    if (noBrowser) {
      ctx.rows.push({ ...rows.lat, value: NaN, baseValue: NaN, ratio: NaN, display: 'skipped', note: `skipped: ${noBrowser}` });
    } else {
      const { timecodeDecoderSource } = require('../test/support/timecode');
      browser = await launchChromium();
      const page = await browser.context.newPage();
      await page.goto(`${live.url}/player.html`);
      await page.waitForFunction('document.getElementById("v").currentTime > 2', null, { timeout: 30_000 });
      const samples = [];
      const deadline = h.now() + (ctx.quick ? 15_000 : 30_000);
      while (h.now() < deadline && samples.length < 60) {
        const ms = await page.evaluate(`(() => {
          const v = document.getElementById('v');
          const ctx = document.getElementById('c').getContext('2d');
          ctx.drawImage(v, 0, 0, 640, 360);
          const t = (${timecodeDecoderSource})(ctx.getImageData(0, 0, 640, 360).data, 640, 360);
          return t === null ? null : Date.now() - t;
        })()`);
        if (ms !== null) samples.push(ms / 1000);
        await h.sleep(400);
      }
      const direct = await rtspLatencies(camera.url, 5);
      const med = h.median(samples);
      const medDirect = h.median(direct);
      ctx.rows.push({
        ...rows.lat,
        value: med,
        baseValue: medDirect,
        ratio: med / medDirect,
        spread: samples.length ? [Math.min(...samples), Math.max(...samples)] : null,
        note: `${samples.length} frames read from the page's video over ${ctx.quick ? 15 : 30} s (spread: min-max in s); direct: ${direct.map((x) => x.toFixed(2)).join(', ')} s; hls.js ${require('hls.js/package.json').version} with the widget's settings ${JSON.stringify({ liveSyncDurationCount: HLS_CONFIG.liveSyncDurationCount })}`,
      });
    }
  } finally {
    viewing = false;
    if (browser) await browser.close();
    for (const { red, unregister } of reds) {
      await red.stop().catch(() => undefined);
      unregister();
    }
    await relay.close().catch(() => undefined);
    await camera.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** @type {import('./helpers').Figure[]} */
const FIGURES = [['14', 'live: view + relay cost, and latency', liveCost]];

module.exports = { FIGURES };
