'use strict';
// Benchmark of the capture pipeline: trigger-to-file-on-disk latency of the real Capturer over the real
// HttpCameraSource, against a local camera (a tiny HTTP server in this process serving one fixed ~100 KB JPEG).
//
// Ours: `await capturer.capture(signal)`, timed from the call to its answer: GET into memory (bounded by maxBytes),
// inspectImage, SHA-256, then on disk durably (temp file, fsync, its capture journal entry appended and fsynced, link
// into place, fsync of the folder), as the capture node does. The queue's confirmation of the entry, which the node
// gets after the capture, is written untimed.
// Baseline, measured in the same run: a bare `http.get` of the same URL streamed to a temp file, fsync, rename, fsync of
// the folder: the same durability, with none of the checks. Both keep connections alive (ours its own agent, the
// baseline Node's global agent, keep-alive by default since Node 19); the server is shared.
//
// The two sides alternate in short rounds (order rotated per round), so a slow patch of the machine hits both. After
// each capture the file is checked (size, and for ours the SHA-256 and image size) and deleted, untimed: the name
// template has one-second resolution, and a folder filling with name_1.jpg, name_2.jpg… in the same second would
// measure the name-collision path instead of a capture. Figures: p50 and p99 of each side, and their ratios (lower
// is better; 1.00x = as fast as the bare GET). Nothing here fails on a number.
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { execFileSync } = require('child_process');
const h = require('./helpers');
const { portOf } = require('../test/support/net');

const DIST = path.join(__dirname, '..', 'dist', 'lib', 'capture');
const CAPTURE_JS = path.join(DIST, 'still.js');
const JOURNAL_JS = path.join(DIST, 'journal.js');
const HTTP_SOURCE_JS = path.join(DIST, 'sources', 'http', 'index.js');
const NAME_TEMPLATE = '{camera}/{date}_{time}_{width}_{height}.{ext}';
const MAX_BYTES = 10 * 1024 * 1024;
/** This figure's own share of the time; rounds past it are dropped, never the first two. */
const FIGURE_BUDGET_S = Number(process.env.BENCH_CAPTURE_BUDGET_S) || 40;

function plan(quick) {
  return quick ? { warmup: 5, rounds: 4, perRound: 15 } : { warmup: 10, rounds: 12, perRound: 50 };
}

// ---- the camera ------------------------------------------------------------------------------------------------------

function findFfmpeg() {
  for (const p of ['/usr/bin/ffmpeg', '/usr/local/bin/ffmpeg']) if (fs.existsSync(p)) return p;
  for (const d of (process.env.PATH || '').split(path.delimiter)) {
    const p = path.join(d, 'ffmpeg');
    if (d && fs.existsSync(p)) return p;
  }
  return null;
}

/** A 1280x720 JPEG of about 93 KB: ffmpeg's test card with a little fixed noise (without it, it compresses to 40 KB). */
function makeJpeg(ffmpeg, dir) {
  const file = path.join(dir, 'camera.jpg');
  execFileSync(
    ffmpeg,
    ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc=size=1280x720', '-vf', 'noise=alls=7:all_seed=1', '-frames:v', '1', '-q:v', '4', file],
    { timeout: 20_000, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return fs.readFileSync(file);
}

function startCamera(jpeg) {
  const server = http.createServer((req, res) => {
    if (req.url !== '/snapshot.jpg') {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': jpeg.length, 'Cache-Control': 'no-store' });
    res.end(jpeg);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = portOf(server);
      resolve({
        url: `http://127.0.0.1:${port}/snapshot.jpg`,
        stop: () =>
          new Promise((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      });
    });
  });
}

// ---- the baseline ----------------------------------------------------------------------------------------------------

async function syncFolder(dir) {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** GET streamed to a temp file chunk by chunk, fsync, rename, fsync of the folder. Resolves with the final path. */
function bareGet(url, dir, n) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`camera answered ${res.statusCode}`));
        return;
      }
      const temp = path.join(dir, `.bare-${n}.jpg.part`);
      const final = path.join(dir, `bare-${n}.jpg`);
      fs.promises
        .open(temp, 'wx')
        .then(async (fh) => {
          try {
            for await (const chunk of res) await fh.write(chunk);
            await fh.sync();
          } finally {
            await fh.close();
          }
          await fs.promises.rename(temp, final);
          await syncFolder(dir);
          resolve(final);
        })
        .catch((e) => {
          res.destroy();
          reject(e);
        });
    });
    req.on('error', reject);
  });
}

// ---- the figure ------------------------------------------------------------------------------------------------------

function percentile(xs, p) {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))];
}

/** Why the figure cannot run here, or null. */
function missing(ffmpeg) {
  if (!fs.existsSync(CAPTURE_JS)) return `${path.relative(process.cwd(), CAPTURE_JS)} is not built`;
  if (!fs.existsSync(HTTP_SOURCE_JS)) return `${path.relative(process.cwd(), HTTP_SOURCE_JS)} is not built`;
  if (!fs.existsSync(JOURNAL_JS)) return `${path.relative(process.cwd(), JOURNAL_JS)} is not built`;
  if (!ffmpeg) return 'no ffmpeg to make the camera JPEG (/usr/bin/ffmpeg or on PATH)';
  return null;
}

const FIGURE = 'capture trigger to file on disk, HTTP camera';

function skipRow(reason) {
  return {
    id: '8a', figure: FIGURE, value: NaN, display: 'skipped', unit: 'ms', baseline: 'bare http.get streamed to temp file + fsync + rename + folder fsync',
    baseValue: NaN, ratio: NaN, spread: null, target: '', note: `skipped: ${reason}`,
  };
}

async function captureLatency(ctx) {
  const t0 = Date.now();
  const deadline = Math.min(ctx.deadline, t0 + FIGURE_BUDGET_S * 1000);
  const ffmpeg = findFfmpeg();
  const why = missing(ffmpeg);
  if (why) {
    ctx.log(`  skipped: ${why}`);
    ctx.rows.push(skipRow(why));
    return;
  }
  const { Capturer } = require('../dist/lib/capture/still.js');
  const { CaptureJournal } = require('../dist/lib/capture/journal.js');
  const { HttpCameraSource } = require('../dist/lib/capture/sources/http/index.js');
  const p = plan(ctx.quick);
  const dir = h.tempDir('capture');
  const jpeg = makeJpeg(ffmpeg, dir);
  const sha = crypto.createHash('sha256').update(jpeg).digest('hex');
  const camera = await startCamera(jpeg);
  const source = new HttpCameraSource({ url: camera.url, auth: 'none', allowSelfSigned: false, timeoutMs: 5000 });
  const imagesFolder = path.join(dir, 'images');
  const bareFolder = path.join(dir, 'bare');
  fs.mkdirSync(bareFolder, { recursive: true });
  const capturer = new Capturer(source, { imagesFolder, nameTemplate: NAME_TEMPLATE, camera: 'bench', minFreeBytes: 0, maxBytes: MAX_BYTES });
  const journal = await CaptureJournal.open(imagesFolder, 'bench', { warn: (t) => ctx.log(`  journal: ${t}`), log: () => undefined });
  capturer.journal = journal;
  const problems = [];
  let seq = 0;

  const variants = {
    async ours() {
      const ts = h.now();
      const r = await capturer.capture(new AbortController().signal);
      const ms = h.now() - ts;
      if (r.bytes !== jpeg.length || r.sha256 !== sha || r.width !== 1280 || r.height !== 720 || fs.statSync(r.file).size !== jpeg.length) {
        problems.push(`ours: ${r.file} holds ${r.bytes} bytes, ${r.width}x${r.height}, sha ${String(r.sha256).slice(0, 8)}`);
      }
      fs.unlinkSync(r.file);
      await journal.queued(r.journal.entry);
      return ms;
    },
    async bare() {
      const ts = h.now();
      const file = await bareGet(camera.url, bareFolder, ++seq);
      const ms = h.now() - ts;
      const size = fs.statSync(file).size;
      if (size !== jpeg.length) problems.push(`bare: ${file} holds ${size} bytes`);
      fs.unlinkSync(file);
      return ms;
    },
  };
  const names = Object.keys(variants);
  const samples = { ours: [], bare: [] };
  const perRound = { ours: [], bare: [] };
  try {
    ctx.log(`  camera: ${(jpeg.length / 1024).toFixed(0)} KB JPEG 1280x720 at ${camera.url}; files in ${dir}`);
    for (let i = 0; i < p.warmup; i++) for (const n of names) await variants[n]();
    let roundsDone = 0;
    for (let r = 0; r < p.rounds; r++) {
      if (r >= 2 && Date.now() > deadline) break;
      for (let k = 0; k < names.length; k++) {
        const name = names[(k + r) % names.length];
        const list = [];
        for (let i = 0; i < p.perRound; i++) list.push(await variants[name]());
        samples[name].push(...list);
        perRound[name].push(list);
      }
      roundsDone++;
      const [o, b] = [perRound.ours.at(-1), perRound.bare.at(-1)];
      ctx.log(`  round ${r + 1}: ours p50 ${h.median(o).toFixed(2)} ms, bare p50 ${h.median(b).toFixed(2)} ms (ratio ${(h.median(o) / h.median(b)).toFixed(2)})`);
    }

    const per = perRound.ours.map((o, i) => h.median(o) / h.median(perRound.bare[i])).filter(Number.isFinite);
    const spread = per.length > 1 ? [Math.min(...per), Math.max(...per)] : null;
    const n = samples.ours.length;
    const checkNote = problems.length ? `PROBLEMS: ${problems.slice(0, 3).join('; ')}` : `every file checked (size, ours also SHA-256 and 1280x720)`;
    const note = `${(jpeg.length / 1024).toFixed(0)} KB JPEG from a local server; ${roundsDone} rounds × ${p.perRound} per side (${n} each), alternating; lower is better; ${checkNote}`;
    for (const [id, q, label] of [
      ['8a', 0.5, 'p50'],
      ['8b', 0.99, 'p99'],
    ]) {
      const ours = percentile(samples.ours, q);
      const bare = percentile(samples.bare, q);
      ctx.rows.push({
        id,
        figure: id === '8a' ? `${FIGURE}, ${label}` : `  same, ${label}`,
        value: ours,
        unit: 'ms',
        baseline: 'bare http.get streamed to temp file + fsync + rename + folder fsync',
        baseValue: bare,
        ratio: ours / bare,
        spread: id === '8a' ? spread : null,
        target: '',
        note: id === '8a' ? note : `${label} of the same samples`,
        rounds: id === '8a' ? perRound.ours.map(h.median) : undefined,
        baseRounds: id === '8a' ? perRound.bare.map(h.median) : undefined,
      });
    }
    ctx.log(`  ${checkNote}; figure took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    await journal.close();
    await source.close();
    await camera.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}


// ---- figure 12: bytes and CPU per capture, by transform setting ---------------------------------------------------
//
// What each "Size for the link" setting costs and saves: the real Capturer (with its journal, as the node runs it)
// over the test pattern and over the fake camera of the tests (test/support/camera-server.js) serving its own 16x16
// frame, a 1280x720 JPEG and a 12 MP (4000x3000) photo-like JPEG. Per capture: the bytes the queue will upload
// (r.bytes, checked against the file) and the CPU time of this process (process.cpuUsage over the capture: fetch,
// checks, transform on libvips' threads, checksum, write and fsync). Baseline: the same source with no transform.
// Captures alternate between settings in rounds, so a slow patch of the machine hits all of them.

/** @type {Array<[string, import('../lib/capture/transform').TransformSettings | undefined]>} */
const TRANSFORMS = [
  ['as sent', undefined],
  ['JPEG q80', { maxWidth: 0, maxHeight: 0, format: 'jpeg', quality: 80, keepOriginal: false }],
  ['<=1280 JPEG q80', { maxWidth: 1280, maxHeight: 1280, format: 'jpeg', quality: 80, keepOriginal: false }],
  ['<=1280 WebP q75', { maxWidth: 1280, maxHeight: 1280, format: 'webp', quality: 75, keepOriginal: false }],
  ['<=640 JPEG q70', { maxWidth: 640, maxHeight: 640, format: 'jpeg', quality: 70, keepOriginal: false }],
];

/** A photo-like JPEG made by ffmpeg: its test card with noise (noise is what makes real photos large). */
function makePhoto(ffmpeg, dir, width, height, name) {
  const file = path.join(dir, name);
  execFileSync(
    ffmpeg,
    ['-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc2=size=${width}x${height}`, '-vf', 'noise=alls=12:all_seed=3', '-frames:v', '1', '-q:v', '3', file],
    { timeout: 60_000, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return fs.readFileSync(file);
}

async function transformCost(ctx) {
  const t0 = Date.now();
  const deadline = Math.min(ctx.deadline, t0 + (Number(process.env.BENCH_TRANSFORM_BUDGET_S) || 120) * 1000);
  const ffmpeg = findFfmpeg();
  const row = (id, figure, extra) => ({ id, figure, unit: 'KB', baseline: 'the same source, no transform', target: '', spread: null, ...extra });
  let sharpOk = true;
  try {
    require('sharp');
  } catch (e) {
    sharpOk = false;
    ctx.rows.push(row('13', 'capture: bytes and CPU per capture by transform', { value: NaN, display: 'skipped', baseValue: NaN, ratio: NaN, note: `skipped: sharp cannot be loaded (${e.message})` }));
  }
  const why = missing(ffmpeg);
  if (why || !sharpOk) {
    if (why) ctx.rows.push(row('13', 'capture: bytes and CPU per capture by transform', { value: NaN, display: 'skipped', baseValue: NaN, ratio: NaN, note: `skipped: ${why}` }));
    return;
  }
  const { Capturer } = require('../dist/lib/capture/still.js');
  const { CaptureJournal } = require('../dist/lib/capture/journal.js');
  const { HttpCameraSource } = require('../dist/lib/capture/sources/http/index.js');
  const { TestPatternSource } = require('../dist/lib/capture/sources/test-pattern.js');
  const { startCamera: startFakeCamera } = require('../test/support/camera-server');
  const dir = h.tempDir('transform');
  const perRound = ctx.quick ? 2 : 4;
  const rounds = ctx.quick ? 2 : 3;
  const cams = [];
  /** @type {Array<[string, () => import('../lib/capture/types').CaptureSource]>} */
  const sources = [
    ['test pattern 640x360 PNG', () => new TestPatternSource({ camera: 'bench', width: 640, height: 360 })],
    ['test pattern 1920x1080 PNG', () => new TestPatternSource({ camera: 'bench', width: 1920, height: 1080 })],
  ];
  /** @type {Array<[string, Buffer | undefined]>} */
  const cameras = [
    ['fake camera 16x16 JPEG', undefined],
    ['fake camera 1280x720 JPEG', makePhoto(ffmpeg, dir, 1280, 720, 'hd.jpg')],
    ['fake camera 4000x3000 JPEG', makePhoto(ffmpeg, dir, 4000, 3000, '12mp.jpg')],
  ];
  for (const [label, image] of cameras) {
    const cam = await startFakeCamera({ image });
    cams.push(cam);
    sources.push([`${label}${image ? ` (${(image.length / 1024).toFixed(0)} KB)` : ''}`, () => new HttpCameraSource({ url: cam.url('/snap.jpg'), auth: 'none', allowSelfSigned: false, timeoutMs: 15000 })]);
  }
  const table = [];
  const problems = [];
  let sourceIndex = 0;
  try {
    for (const [label, makeSource] of sources) {
      sourceIndex++;
      if (sourceIndex > 2 && Date.now() > deadline) {
        ctx.log(`  ${label}: out of time, not measured`);
        continue;
      }
      const imagesFolder = path.join(dir, `images-${sourceIndex}`);
      const journal = await CaptureJournal.open(imagesFolder, 'bench', { warn: (t) => ctx.log(`  journal: ${t}`), log: () => undefined });
      const source = makeSource();
      const capturers = TRANSFORMS.map(([, transform]) => {
        const c = new Capturer(source, { imagesFolder, nameTemplate: NAME_TEMPLATE, camera: 'bench', minFreeBytes: 0, maxBytes: 50 * 1024 * 1024, ...(transform ? { transform } : {}) });
        c.journal = journal;
        return c;
      });
      const samples = TRANSFORMS.map(() => ({ bytes: [], cpu: [], size: '' }));
      const one = async (i) => {
        const c0 = process.cpuUsage();
        const r = await capturers[i].capture(new AbortController().signal);
        const c = process.cpuUsage(c0);
        if (fs.statSync(r.file).size !== r.bytes) problems.push(`${label} ${TRANSFORMS[i][0]}: file size differs from msg.uplink.bytes`);
        samples[i].bytes.push(r.bytes);
        samples[i].cpu.push((c.user + c.system) / 1000);
        samples[i].size = `${r.width}x${r.height} ${r.contentType.split('/')[1]}`;
        fs.unlinkSync(r.file);
        await journal.queued(r.journal.entry);
      };
      for (let i = 0; i < TRANSFORMS.length; i++) await one(i); // warm-up: loads sharp, fills the connection pool
      for (const s of samples) {
        s.bytes.length = 0;
        s.cpu.length = 0;
      }
      for (let r = 0; r < rounds; r++) {
        for (let k = 0; k < TRANSFORMS.length; k++) {
          const i = (k + r) % TRANSFORMS.length;
          for (let n = 0; n < perRound; n++) await one(i);
        }
      }
      await journal.close();
      await source.close();
      const base = h.median(samples[0].bytes);
      for (let i = 0; i < TRANSFORMS.length; i++) {
        const s = samples[i];
        const kb = h.median(s.bytes) / 1024;
        const cpu = h.median(s.cpu);
        table.push([label, TRANSFORMS[i][0], s.size, `${kb.toFixed(1)} KB`, `${(h.median(s.bytes) / base).toFixed(3)}x`, `${cpu.toFixed(1)} ms`, `${Math.min(...s.cpu).toFixed(1)}-${Math.max(...s.cpu).toFixed(1)}`]);
        ctx.rows.push(row(`13.${sourceIndex}.${i}`, i === 0 ? `capture bytes/CPU per capture: ${label}` : `  ${TRANSFORMS[i][0]}`, {
          value: kb,
          display: `${kb.toFixed(1)} KB · ${cpu.toFixed(1)} ms CPU`,
          baseValue: base / 1024,
          ratio: h.median(s.bytes) / base,
          note: `${s.size}; ${s.bytes.length} captures; CPU per capture median ${cpu.toFixed(1)} ms (range ${Math.min(...s.cpu).toFixed(1)}-${Math.max(...s.cpu).toFixed(1)})`,
        }));
      }
      ctx.log(`  ${label}: done`);
    }
  } finally {
    for (const c of cams) await c.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const rss = process.resourceUsage().maxRSS / 1024;
  ctx.log('');
  ctx.log(h.table(['source', 'setting', 'uploaded image', 'bytes/capture', 'vs as sent', 'CPU/capture', 'CPU range'], table));
  ctx.log(`  peak RSS of the bench process so far: ${rss.toFixed(0)} MB${problems.length ? `; PROBLEMS: ${problems.slice(0, 3).join('; ')}` : '; every file checked against its size'}`);
}

/** @type {import('./helpers').Figure[]} */
const FIGURES = [
  ['8', 'capture: trigger to file on disk (HTTP camera)', captureLatency],
  ['13', 'capture: bytes and CPU per capture by transform setting', transformCost],
];

module.exports = { FIGURES };

// Run alone: node bench/capture.js [--quick] [--transform]
if (require.main === module) {
  const quick = process.argv.includes('--quick');
  const ctx = { rows: [], quick, deadline: Date.now() + 300_000, log: (s) => process.stderr.write(`${s}\n`), registerChild: () => () => {} };
  (process.argv.includes('--transform') ? transformCost : captureLatency)(ctx)
    .then(() => {
      for (const r of ctx.rows) {
        console.log(
          `${r.id} ${r.figure}: ${r.display || `${h.fmtNum(r.value, 2)} ${r.unit}`} vs ${h.fmtNum(r.baseValue, 2)} ${r.unit} = ${h.fmtRatio(r.ratio)}` +
            `${r.spread ? ` (spread ${r.spread[0].toFixed(2)}-${r.spread[1].toFixed(2)})` : ''}; ${r.note}`,
        );
      }
    })
    .catch((e) => {
      console.error(e && e.stack ? e.stack : e);
      process.exitCode = 1;
    })
    .finally(() => h.removeTempDirs());
}
