'use strict';
// Benchmarks of large files end to end: a real `node-red` process (test/support/node-red-process.js) running this
// package's nodes, uploading to a real S3-protocol server (test/support/s3-server.js, s3rver in this process, which
// counts every body byte it receives), and recording from a real RTSP server (test/support/rtsp-server.js).
//
//   9. bytes re-sent after a SIGKILL at 50% of a 200 MB upload: resumed from the parts kept in the queue's SQLite row
//      vs the same flow with the queue's database deleted before the restart (nothing known: what a script without
//      resume does, it sends the whole file again). A bandwidth limit on the S3 config node makes the kill land near
//      50%; where it landed is printed.
//  10. Node-RED's resident memory while uploading a 1 GB file (8 MB parts): peak RSS minus the same flow's idle RSS,
//      against the file's size (what holding the file in memory would cost). Also the throughput.
//  11. CPU of one recorder node recording an RTSP stream in copy mode (Node-RED plus its ffmpeg and ffprobe children,
//      the whole process tree) vs a bare ffmpeg with the same arguments for the same time: 11a at 10 s segments,
//      11b at 60 s (the default), 11c at 2 s (where the per-segment cost shows). The three Node-REDs and their three
//      bare ffmpegs record the same stream at once; each pair is read over the same 3 minutes, once running.
//
// Each figure runs once (they are slow: hundreds of MB, or minutes of video), every wait is bounded, every process is
// registered with run.js and stopped, temp folders are the helpers'. Nothing here fails on a number.
if (process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED === undefined) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { spawn } = require('child_process');
const h = require('./helpers');
const { call, until } = require('../test/support/http-client');

const MB = 1024 * 1024;
const ROOT = path.join(__dirname, '..');
// Required when a figure runs, not at load: they resolve node-red's binary and install exit handlers.
const support = () => ({ ...require('../test/support/node-red-process'), ...require('../test/support/s3-server') });

// ---- shared ----------------------------------------------------------------------------------------------------------

/** A node-red process in `userDir`, registered with run.js until it is stopped. */
async function startRed(ctx, userDir, flows) {
  const { startNodeRed } = support();
  const red = await startNodeRed({ userDir, ...(flows ? { flows } : {}), startTimeoutMs: 30_000 });
  const unregister = ctx.registerChild(red.process);
  return {
    red,
    async kill() {
      await red.kill('SIGKILL');
      unregister();
    },
    async stop() {
      await red.stop();
      unregister();
    },
  };
}

/** Deploys as the editor does (POST /flows), so a config node's keys land in Node-RED's encrypted credentials. */
async function deploy(red, flows) {
  const r = await fetch(`${red.url}/flows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'Node-RED-Deployment-Type': 'full' },
    body: JSON.stringify(flows),
    signal: AbortSignal.timeout(10_000),
  });
  if (r.status !== 204) throw new Error(`deploy answered ${r.status}: ${(await r.text()).slice(0, 300)}`);
}

const stats = async (red) => {
  const r = await call(`${red.url}/uplink/queue/q/stats`);
  if (r.status !== 200) throw new Error(`stats answered ${r.status}`);
  return r.body;
};

/** A file of `bytes` different bytes (each 8 MB block its own), written in blocks. */
function writeFile(file, bytes) {
  const block = crypto.randomBytes(8 * MB);
  const fd = fs.openSync(file, 'w');
  try {
    for (let off = 0, i = 0; off < bytes; off += block.length, i++) {
      block.writeUInt32BE(i, 0);
      fs.writeSync(fd, block, 0, Math.min(block.length, bytes - off), off);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The upload flow of test/e2e-resume.test.js: POST /enqueue -> msg.uplink.file -> queue -> uploader -> S3. */
function uploadFlow(s3, bucket, file, s3extra) {
  return [
    { id: 'tab', type: 'tab', label: 'bench' },
    { id: 'cfg', type: 'uplink-s3-config', name: 'bucket', ...s3.config({ bucket }), concurrency: 2, ...s3extra, credentials: s3.credentials },
    { id: 'in', type: 'http in', z: 'tab', url: '/enqueue', method: 'post', wires: [['set', 'reply']] },
    { id: 'reply', type: 'http response', z: 'tab', statusCode: '200', wires: [] },
    { id: 'set', type: 'change', z: 'tab', rules: [{ t: 'set', p: 'uplink.file', pt: 'msg', to: file, tot: 'str' }, { t: 'delete', p: 'payload', pt: 'msg' }], wires: [['q']] },
    { id: 'q', type: 'uplink-offline-queue', z: 'tab', db: 'uplink/bench.db', concurrency: 2, backoffBase: 0.2, backoffCap: 1, statsInterval: 0.2, wires: [['up'], [], []] },
    { id: 'up', type: 'uplink-uploader', z: 'tab', backend: 's3', s3: 'cfg', keyTemplate: 'videos/{name}', wires: [['q'], ['q']] },
  ];
}

async function enqueue(red) {
  await until('the flow to answer', async () => ({ ok: (await call(`${red.url}/uplink/queue/q/stats`)).status === 200 }), { timeoutMs: 20_000 });
  const r = await call(`${red.url}/enqueue`, { method: 'POST', json: {} });
  if (r.status !== 200) throw new Error(`POST /enqueue answered ${r.status}`);
}

/** Waits for the queue to say the item is uploaded; throws at a failure or after `timeoutMs`. */
function uploaded(red, timeoutMs, everyMs = 200) {
  return until(
    'the upload to complete',
    async () => {
      const st = await stats(red);
      if (st.failed > 0) throw Object.assign(new Error(`the item failed: ${JSON.stringify(st.lastError)}`), { fatal: true });
      return { ok: st.uploaded === 1, value: st };
    },
    { timeoutMs, everyMs },
  );
}

/** Waits until the server has taken every byte still in flight (no change for 300 ms, at most 5 s). */
async function settled(s3) {
  let last = -1;
  let still = 0;
  for (let i = 0; i < 50 && still < 3; i++) {
    still = s3.bytesReceived === last ? still + 1 : 0;
    last = s3.bytesReceived;
    await h.sleep(100);
  }
  return s3.bytesReceived;
}

const fmtMB = (b) => `${(b / MB).toFixed(1)} MB`;
const pct = (x) => `${(100 * x).toFixed(1)}%`;

// ---- 9. resume after a crash -----------------------------------------------------------------------------------------

const RESUME_FILE_BYTES = 200 * MB;
const RESUME_BANDWIDTH_KBPS = 25_600; // 25 MB/s: 8 s per 200 MB, the kill within ~1% of 50%
const RESUME_PART_MB = 8;

/**
 * One crash: upload until the queue's stats say half the file was sent, SIGKILL Node-RED, restart it on the same
 * userDir and count what the store receives until the queue says uploaded. `forget`: delete the queue's database
 * before the restart and enqueue the file again (the baseline).
 */
async function crashRun(ctx, { s3, dir, file, bucket, forget }) {
  const userDir = path.join(dir, `user-${bucket}`);
  fs.mkdirSync(userDir);
  const flows = uploadFlow(s3, bucket, file, { multipartMB: 16, partMB: RESUME_PART_MB, bandwidthKBps: RESUME_BANDWIDTH_KBPS, timeout: 30 });
  const first = await startRed(ctx, userDir, []);
  let seen;
  let before;
  try {
    await deploy(first.red, flows);
    before = s3.bytesReceived;
    await enqueue(first.red);
    // Killed when the queue's stats say half was sent, or the store received half, whichever comes first: the stats
    // come over HTTP from a busy process and can lag by a few hundred ms, the store's count is in this process.
    let statsSay = null;
    let polling = true;
    const poller = (async () => {
      for (let i = 0; polling && i < 3000; i++) {
        try {
          const u = (await stats(first.red)).uploading?.[0];
          if (u) statsSay = u;
        } catch {
          /* not yet */
        }
        await h.sleep(50);
      }
    })();
    try {
      await until(
        'the upload to pass 50%',
        async () => ({
          ok: s3.bytesReceived - before >= RESUME_FILE_BYTES / 2 || (!!statsSay && statsSay.sent >= RESUME_FILE_BYTES / 2),
          value: { received: s3.bytesReceived - before, stats: statsSay },
        }),
        { timeoutMs: 60_000, everyMs: 5 },
      );
    } finally {
      polling = false;
    }
    await first.kill();
    await poller;
    seen = statsSay || { sent: NaN, bytes: RESUME_FILE_BYTES };
  } finally {
    await first.kill();
  }
  const firstRun = (await settled(s3)) - before;
  const partsHeld = s3.openUploads(bucket).reduce((a, u) => a + u.parts, 0);
  if (forget) {
    const q = path.join(userDir, 'uplink');
    for (const f of fs.readdirSync(q)) if (/^bench\.db/.test(f)) fs.rmSync(path.join(q, f), { force: true });
  }

  const second = await startRed(ctx, userDir);
  try {
    const mark = s3.bytesReceived;
    const t = h.now();
    if (forget) await enqueue(second.red);
    await uploaded(second.red, 120_000);
    const resent = (await settled(s3)) - mark;
    const stored = (await s3.list(bucket)).find((o) => o.key === `videos/${path.basename(file)}`);
    return {
      resent,
      seconds: (h.now() - t) / 1000,
      landedStats: seen.sent / seen.bytes,
      landedStore: firstRun / RESUME_FILE_BYTES,
      partsHeld,
      sizeOk: !!stored && stored.size === RESUME_FILE_BYTES,
    };
  } finally {
    await second.stop();
  }
}

async function resumeAfterCrash(ctx) {
  const { S3Server } = support();
  const dir = h.tempDir('video-resume');
  const file = path.join(dir, 'clip.mp4');
  let t = h.now();
  writeFile(file, RESUME_FILE_BYTES);
  ctx.log(`  wrote ${fmtMB(RESUME_FILE_BYTES)} in ${((h.now() - t) / 1000).toFixed(1)} s`);
  const s3dir = path.join(dir, 's3');
  fs.mkdirSync(s3dir);
  const s3 = await new S3Server({ buckets: ['resumed', 'restarted'], directory: s3dir }).start();
  try {
    t = h.now();
    const ours = await crashRun(ctx, { s3, dir, file, bucket: 'resumed', forget: false });
    ctx.log(`  resumed: killed with ${pct(ours.landedStore)} at the store (last stats ${pct(ours.landedStats)}), ${ours.partsHeld} parts held; re-sent ${fmtMB(ours.resent)} in ${ours.seconds.toFixed(1)} s`);
    const base = await crashRun(ctx, { s3, dir, file, bucket: 'restarted', forget: true });
    ctx.log(`  restarted: killed with ${pct(base.landedStore)} at the store (last stats ${pct(base.landedStats)}); re-sent ${fmtMB(base.resent)} in ${base.seconds.toFixed(1)} s`);
    const left = s3.openUploads('resumed').length + s3.openUploads('restarted').length;
    const checks = [ours.sizeOk && base.sizeOk ? 'both objects stored whole' : `PROBLEM: stored size wrong (resumed ${ours.sizeOk}, restarted ${base.sizeOk})`];
    checks.push(`${left} multipart upload(s) left open (the restarted run's first one is abandoned, as a script's would be)`);
    ctx.rows.push({
      id: '9',
      figure: 'bytes re-sent after SIGKILL at ~50% of a 200 MB upload',
      value: ours.resent / MB,
      unit: 'MB',
      baseline: 'the same flow restarted with the queue DB deleted (no resume: the whole file again)',
      baseValue: base.resent / MB,
      ratio: ours.resent / base.resent,
      spread: null,
      target: '<= 0.6 (0.5 + up to two 8 MB parts in flight)',
      note:
        `kill landed at ${pct(ours.landedStore)} received by the store (the queue's last stats before it: ${pct(ours.landedStats)} sent; ` +
        `baseline run: ${pct(base.landedStore)}, ${pct(base.landedStats)}); ${ours.partsHeld} whole ${RESUME_PART_MB} MB parts held by the store at the kill; ` +
        `all but those is ${fmtMB(RESUME_FILE_BYTES - ours.partsHeld * RESUME_PART_MB * MB)} (the rest, 2 parts at once, was in flight); bandwidth limit ${RESUME_BANDWIDTH_KBPS / 1024} MB/s; ${checks.join('; ')}; ` +
        `figure took ${((h.now() - t) / 1000).toFixed(0)} s`,
      extra: { ours, base },
    });
  } finally {
    await s3.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- 10. memory while uploading 1 GB ---------------------------------------------------------------------------------

const BIG_FILE_BYTES = 1024 * MB;
const BIG_NEEDS_FREE = 3 * 1024 * MB; // the file, the store's parts, the store's object
const BIG_PART_MB = 8;

function rssKB(pid) {
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

async function memoryWhileUploading(ctx) {
  const { S3Server } = support();
  const dir = h.tempDir('video-rss');
  const st = fs.statfsSync(dir);
  const free = st.bavail * st.bsize;
  const row = {
    id: '10',
    figure: 'Node-RED RSS growth while uploading a 1 GB file',
    unit: 'MB',
    baseline: 'the file size (the file held in memory)',
    baseValue: BIG_FILE_BYTES / MB,
    spread: null,
    target: '< 0.1',
  };
  if (free < BIG_NEEDS_FREE) {
    const why = `skipped: ${fmtMB(free)} free in ${path.dirname(dir)}, needs ${fmtMB(BIG_NEEDS_FREE)}`;
    ctx.log(`  ${why}`);
    ctx.rows.push({ ...row, value: NaN, ratio: NaN, display: 'skipped', note: why });
    return;
  }
  const file = path.join(dir, 'big.mp4');
  let t = h.now();
  writeFile(file, BIG_FILE_BYTES);
  ctx.log(`  wrote ${fmtMB(BIG_FILE_BYTES)} in ${((h.now() - t) / 1000).toFixed(1)} s`);
  const s3dir = path.join(dir, 's3');
  fs.mkdirSync(s3dir);
  const s3 = await new S3Server({ buckets: ['big'], directory: s3dir }).start();
  let nr;
  let sampler;
  try {
    nr = await startRed(ctx, path.join(dir, 'user'), []);
    const pid = nr.red.pid;
    await deploy(nr.red, uploadFlow(s3, 'big', file, { multipartMB: 16, partMB: BIG_PART_MB, bandwidthKBps: 0, timeout: 300 }));
    await until('the flow to answer', async () => ({ ok: (await call(`${nr.red.url}/uplink/queue/q/stats`)).status === 200 }), { timeoutMs: 20_000 });
    // Idle: the same flow, deployed and settled, nothing to upload.
    await h.sleep(2000);
    const idle = [];
    for (let i = 0; i < 10; i++) {
      idle.push(rssKB(pid));
      await h.sleep(200);
    }
    const idleKB = h.median(idle);

    const samples = [];
    const before = s3.bytesReceived;
    /** @type {number | null} */
    let allSentAt = null;
    sampler = setInterval(() => {
      if (allSentAt === null && s3.bytesReceived - before >= BIG_FILE_BYTES) allSentAt = h.now();
      try {
        samples.push(rssKB(pid));
      } catch {
        /* exited: the wait below says why */
      }
    }, 200);
    t = h.now();
    await enqueue(nr.red);
    await uploaded(nr.red, 300_000, 200);
    const sec = (h.now() - t) / 1000;
    clearInterval(sampler);
    sampler = undefined;
    const received = (await settled(s3)) - before;
    const stored = (await s3.list('big')).find((o) => o.key === 'videos/big.mp4');
    const peakKB = Math.max(...samples);
    const growth = ((peakKB - idleKB) * 1024) / MB;
    const mbps = BIG_FILE_BYTES / MB / sec;
    const sendSec = allSentAt === null ? NaN : (allSentAt - t) / 1000;
    ctx.log(`  idle RSS ${(idleKB / 1024).toFixed(1)} MB, peak ${(peakKB / 1024).toFixed(1)} MB over ${samples.length} samples; ${mbps.toFixed(0)} MB/s (${sec.toFixed(1)} s, parts all received after ${sendSec.toFixed(1)} s)`);
    ctx.rows.push({
      ...row,
      value: growth,
      ratio: growth / (BIG_FILE_BYTES / MB),
      note:
        `idle ${(idleKB / 1024).toFixed(1)} MB (median of 10), peak ${(peakKB / 1024).toFixed(1)} MB (${samples.length} samples every 200 ms); ` +
        `${BIG_PART_MB} MB parts, 2 at once, no bandwidth limit; throughput ${mbps.toFixed(0)} MB/s (${sec.toFixed(1)} s from enqueue to uploaded, of which ` +
        `${sendSec.toFixed(1)} s until the store had every part, the rest completing and checking; s3rver runs in the bench process and writes ` +
        `to the same disk); store received ${fmtMB(received)}, ` +
        `${stored && stored.size === BIG_FILE_BYTES ? 'object stored whole' : `PROBLEM: stored object ${stored ? stored.size : 'missing'}`}`,
      extra: { idleKB, peakKB, samplesKB: samples, seconds: sec },
    });
  } finally {
    if (sampler) clearInterval(sampler);
    if (nr) await nr.stop();
    await s3.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- 11. recorder CPU ------------------------------------------------------------------------------------------------

/** Segment lengths measured, each against its own bare ffmpeg: the default-ish ones first, 2 s to show the per-segment cost. */
const RECORD_CASES = [
  { id: '11a', segmentS: 10 },
  { id: '11b', segmentS: 60 },
  { id: '11c', segmentS: 2 },
];
/**
 * The window: long enough for three 60 s segments to close in it. It opens WARMUP_S after "start", on both sides: a
 * recorder runs for days, and what the figure weighs is what it costs per minute while it runs. The first minute
 * holds what happens once per run or once per Node-RED: ffmpeg connecting (on both sides), and the full garbage
 * collections Node-RED's heap owes since it started (20-600 ms of CPU, due at the first allocations after an idle
 * start, recording or not). That minute is printed in the note, not hidden.
 */
const WINDOW_S = 180;
const WARMUP_S = 50;
/** Node-RED's idle CPU is read over IDLE_S after SETTLE_S, before the recorders start. */
const SETTLE_S = 15;
const IDLE_S = 10;
const TICK_MS = 1000 / 100; // USER_HZ

function statOf(pid) {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // after "pid (comm) ": state=0 ppid=1 … utime=11 stime=12 cutime=13 cstime=14
    return { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
  } catch {
    return null;
  }
}

/**
 * CPU ms of `root` and every live descendant, plus what reaped children (a finished ffprobe) left in cutime/cstime.
 * A descendant that exited between two readings is counted through its parent's cutime once reaped.
 */
function treeCpuMs(root) {
  const all = new Map();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    const s = statOf(d);
    if (s) all.set(Number(d), s);
  }
  let ticks = 0;
  const pids = [];
  const walk = (pid, depth) => {
    const s = all.get(pid);
    if (!s || depth > 20) return;
    pids.push(pid);
    ticks += s.own + s.children;
    for (const [p, c] of all) if (c.ppid === pid) walk(p, depth + 1);
  };
  walk(root, 0);
  const r = all.get(root);
  // Where it went: the root's own threads, its reaped children (cutime), the live descendants.
  const parts = r ? { own: r.own * TICK_MS, reaped: r.children * TICK_MS, live: (ticks - r.own - r.children) * TICK_MS } : { own: 0, reaped: 0, live: 0 };
  return { ms: ticks * TICK_MS, pids, parts };
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  } catch {
    return null;
  }
}

/** The recorder's ffmpeg among Node-RED's descendants: its argv, or null while there is none. */
function recordingArgv(pid) {
  for (const c of treeCpuMs(pid).pids) {
    if (c === pid) continue;
    const a = cmdline(c);
    if (a && /ffmpeg/.test(path.basename(a[0] || '')) && a.includes('segment')) return a;
  }
  return null;
}

/** Segments the recorder handed on: the files in its folder, outside its state folder. */
const handedOn = (folder) => {
  try {
    return fs.readdirSync(folder, { encoding: 'utf8', recursive: true }).filter((f) => /\.mp4$/.test(f) && !f.split(path.sep).includes('.uplink-recorder')).length;
  } catch {
    return 0;
  }
};

/** Segments ffmpeg closed: the lines of every CSV segment list below `dir`. */
const listed = (dir) => {
  let n = 0;
  try {
    for (const f of fs.readdirSync(dir, { encoding: 'utf8', recursive: true })) {
      if (/\.csv$/.test(f)) n += fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter((l) => l.trim() !== '').length;
    }
  } catch {
    /* none yet */
  }
  return n;
};

/** Bytes of the MP4 files below `dir`. */
const mp4Bytes = (dir) => {
  let n = 0;
  try {
    for (const f of fs.readdirSync(dir, { encoding: 'utf8', recursive: true })) if (/\.mp4$/.test(f)) n += fs.statSync(path.join(dir, f)).size;
  } catch {
    /* none yet */
  }
  return n;
};

function recorderHtml() {
  for (const f of [path.join(ROOT, 'dist', 'nodes', 'recorder', 'recorder.html'), path.join(ROOT, 'nodes', 'recorder', 'recorder.html')]) if (fs.existsSync(f)) return f;
  return null;
}

function recorderFlow(url, segmentS, folder) {
  return [
    { id: 'tab', type: 'tab', label: 'bench' },
    { id: 'in', type: 'http in', z: 'tab', url: '/rec', method: 'post', wires: [['rec', 'reply']] },
    { id: 'reply', type: 'http response', z: 'tab', statusCode: '200', wires: [] },
    {
      id: 'rec',
      type: 'uplink-recorder',
      z: 'tab',
      name: 'bench camera',
      camera: 'bench',
      input: url,
      kind: 'rtsp',
      rtspTransport: 'tcp',
      timeout: 10,
      ffmpegPath: 'ffmpeg',
      segmentSeconds: segmentS,
      folder,
      video: 'copy',
      audio: 'none',
      autoStart: false,
      wires: [[], []],
    },
  ];
}

async function command(red, text) {
  const r = await call(`${red.url}/rec`, { method: 'POST', text });
  if (r.status !== 200) throw new Error(`POST /rec ${text} answered ${r.status}`);
}

/**
 * One Node-RED per segment length, all recording the same RTSP stream at the same time, each beside a bare ffmpeg
 * with its recorder's argv: every pair sees the same stream and the same load from the rest of the machine.
 */
async function recorderCpu(ctx) {
  const rowOf = (c) => ({
    id: c.id,
    figure: `recorder CPU, one RTSP camera, copy mode, ${c.segmentS} s segments`,
    unit: 'CPU s',
    baseline: 'bare ffmpeg with the same argv, same stream, same time',
    spread: null,
    target: c.segmentS === 10 ? '<= 1.2' : '',
  });
  const skip = (why) => {
    ctx.log(`  skipped: ${why}`);
    for (const c of RECORD_CASES) ctx.rows.push({ ...rowOf(c), value: NaN, baseValue: NaN, ratio: NaN, display: 'skipped', note: `skipped: ${why}` });
  };
  if (!recorderHtml()) return skip('recorder node not found');
  const rtsp = require('../test/support/rtsp-server');
  if (!rtsp.available()) return skip(rtsp.unavailableReason());
  const seconds = ctx.quick ? 60 : WINDOW_S;
  const warmupS = ctx.quick ? 20 : WARMUP_S;
  const dir = h.tempDir('video-rec');
  const server = await rtsp.startRtspServer();
  /**
   * A segment length's pair, filled in as the run goes: its Node-RED and recorder argv, its bare ffmpeg, the readings.
   * @type {Array<{ id: string, segmentS: number, folder: string, bareDir: string } & Record<string, any>>}
   */
  const cases = RECORD_CASES.map((c) => ({ ...c, folder: path.join(dir, `ours-${c.segmentS}`), bareDir: path.join(dir, `bare-${c.segmentS}`) }));
  /** CPU and segments of both sides of a case, read at one moment. */
  const reading = (c) => ({
    ours: treeCpuMs(c.nr.red.pid),
    bare: treeCpuMs(c.bare.pid).ms,
    sent: handedOn(c.folder),
    closedOurs: listed(path.join(c.folder, '.uplink-recorder')),
    closedBare: listed(c.bareDir),
    bareBytes: mp4Bytes(c.bareDir),
    at: h.now(),
  });
  try {
    await Promise.all(
      cases.map(async (c) => {
        c.nr = await startRed(ctx, path.join(dir, `user-${c.segmentS}`), recorderFlow(server.url, c.segmentS, c.folder));
        // The HTTP path's first use loads modules (body parsers, iconv tables): done before, as in a running system.
        await until('the recorder to answer', async () => ({ ok: (await call(`${c.nr.red.url}/rec`, { method: 'POST', text: 'status' })).status === 200 }), { timeoutMs: 20_000 });
      }),
    );
    await h.sleep(SETTLE_S * 1000);
    const idle0 = cases.map((c) => treeCpuMs(c.nr.red.pid).ms);
    await h.sleep(IDLE_S * 1000);
    cases.forEach((c, i) => (c.idleMsPerS = (treeCpuMs(c.nr.red.pid).ms - idle0[i]) / IDLE_S));

    for (const c of cases) {
      const pid = c.nr.red.pid;
      c.start = { ours: treeCpuMs(pid), at: h.now() };
      await command(c.nr.red, 'start');
      await until('the recorder to start ffmpeg', async () => ({ ok: !!(c.argv = recordingArgv(pid)) }), { timeoutMs: 10_000, everyMs: 20 });
      // Bare: the recorder's own ffmpeg argv, its output paths moved to another folder.
      const args = c.argv.slice(1).map((a) => a.split(c.folder).join(c.bareDir));
      for (const a of args) if (a.includes(c.bareDir)) fs.mkdirSync(path.dirname(a), { recursive: true });
      c.bare = spawn(c.argv[0], args, { stdio: ['ignore', 'ignore', 'pipe'] });
      c.unregisterBare = ctx.registerChild(c.bare);
      c.stderr = '';
      c.bare.stderr.setEncoding('utf8').on('data', (d) => (c.stderr = (c.stderr + d).slice(-2000)));
      c.bareExited = new Promise((resolve) => c.bare.once('exit', resolve));
    }
    // Both sides of a case are read together, WARMUP_S after its "start" and `seconds` later.
    const due = cases.flatMap((c) => [
      { c, at: c.start.at + warmupS * 1000, key: 'open' },
      { c, at: c.start.at + (warmupS + seconds) * 1000, key: 'close' },
    ]);
    for (const d of due.sort((x, y) => x.at - y.at)) {
      await h.sleep(Math.max(0, d.at - h.now()));
      d.c[d.key] = reading(d.c);
    }
    for (const c of cases) {
      c.bare.kill('SIGINT');
      if (!(await Promise.race([c.bareExited.then(() => true), h.sleep(5000).then(() => false)]))) c.bare.kill('SIGKILL');
      await c.bareExited;
      c.unregisterBare();
      await call(`${c.nr.red.url}/rec`, { method: 'POST', text: 'stop' }).catch(() => undefined);
      await c.nr.stop();
      c.nr = undefined;
    }

    for (const c of cases) {
      const { open, close } = c;
      const oursMs = close.ours.ms - open.ours.ms;
      const bareMs = close.bare - open.bare;
      const split = { own: close.ours.parts.own - open.ours.parts.own, reaped: close.ours.parts.reaped - open.ours.parts.reaped, live: close.ours.parts.live - open.ours.parts.live };
      const sent = close.sent - open.sent;
      const sec = (close.at - open.at) / 1000;
      const warmOurs = open.ours.ms - c.start.ours.ms;
      const mbps = (((close.bareBytes - open.bareBytes) * 8) / 1e6 / sec).toFixed(1);
      // What the recorder costs beyond ffmpeg, spread over the segments it handed on in the window.
      const perSegmentMs = sent > 0 ? (oursMs - bareMs) / sent : NaN;
      ctx.log(
        `  ${c.segmentS} s: ours ${(oursMs / 1000).toFixed(2)} CPU s (node-red ${(split.own / 1000).toFixed(2)} + exited children ${(split.reaped / 1000).toFixed(2)} + ffmpeg ${(split.live / 1000).toFixed(2)}), ` +
          `${sent} segments sent (${close.closedOurs - open.closedOurs} closed); bare ${(bareMs / 1000).toFixed(2)} CPU s, ${close.closedBare - open.closedBare} closed; over ${sec.toFixed(1)} s; ` +
          `first ${warmupS} s: ours ${(warmOurs / 1000).toFixed(2)}, bare ${(open.bare / 1000).toFixed(2)} CPU s`,
      );
      ctx.rows.push({
        ...rowOf(c),
        value: oursMs / 1000,
        baseValue: bareMs / 1000,
        ratio: oursMs / bareMs,
        note:
          `${sec.toFixed(0)} s of 640x360 10 fps H.264 (${mbps} Mbit/s) from the GStreamer RTSP server, the ${RECORD_CASES.length} lengths and their bare ffmpegs ` +
          `recording at once; both sides started together and read over the same window, from ${warmupS} s after "start" on; ` +
          `ours: the whole node-red process tree (node-red itself ${(split.own / 1000).toFixed(2)} CPU s, children that exited (ffprobe) ${(split.reaped / 1000).toFixed(2)}, ` +
          `running children (ffmpeg) ${(split.live / 1000).toFixed(2)}), ${sent} segments sent, ${close.closedOurs - open.closedOurs} closed by ffmpeg; ` +
          `bare: ${close.closedBare - open.closedBare} closed${c.stderr.trim() ? ` (stderr: ${c.stderr.trim().split('\n').pop().slice(0, 120)})` : ''}; ` +
          `the recorder adds ${Number.isFinite(perSegmentMs) ? perSegmentMs.toFixed(1) : '-'} CPU ms per segment (all it costs beyond ffmpeg, spread over the segments); ` +
          `the first ${warmupS} s, left out: ours ${(warmOurs / 1000).toFixed(2)} CPU s, bare ${(open.bare / 1000).toFixed(2)}; node-red idle before: ${(c.idleMsPerS / 1000).toFixed(3)} CPU s/s; ` +
          `argv: ${c.argv.slice(1).join(' ').replace(/\s+/g, ' ').slice(0, 400)}`,
        extra: { oursMs, bareMs, sec, split, sent, warmOursMs: warmOurs, warmBareMs: open.bare, idleMsPerS: c.idleMsPerS, perSegmentMs, argv: c.argv },
      });
    }
  } finally {
    for (const c of cases) {
      if (c.bare && c.bare.exitCode === null && c.bare.signalCode === null) c.bare.kill('SIGKILL');
      if (c.nr) await c.nr.stop();
    }
    await server.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** @type {import('./helpers').Figure[]} */
const FIGURES = [
  ['9', 'video: bytes re-sent after a crash mid-upload', resumeAfterCrash],
  ['10', 'video: Node-RED memory while uploading 1 GB', memoryWhileUploading],
  ['11', 'video: recorder CPU vs bare ffmpeg', recorderCpu],
];

module.exports = { FIGURES };
