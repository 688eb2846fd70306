'use strict';
// Benchmark of the upload pipeline: queued files drained through the real OfflineQueue (a temp SQLite file,
// synchronous FULL) and the real Uploader (S3 backend, key template '{id}_{name}') into a real S3-protocol server
// (s3rver, in a process of its own so that it has its own core), the uploader's outputs handed straight back to the
// queue's handle() as acks and nacks: the pipeline a flow runs, minus Node-RED's message passing.
//
// Baselines, measured in the same run:
//   - bare: an @aws-sdk/client-s3 PutObject loop over the same files read from disk, with the client settings the S3
//     backend uses (requestChecksumCalculation WHEN_REQUIRED, forcePathStyle, keep-alive agent), N workers at once.
//   - bare + HeadObject (info): the same loop verifying each object as the S3 backend does, which splits the gap into
//     what the verification costs and what the queue and uploader cost.
//   - sequential: the hand-written uploader this replaces: one file at a time, 2 s sleep after each. Not run (it
//     would take 2 s per file): its rate is computed as 1 / (2 s + one file's read + PutObject time at concurrency 1,
//     the median of the bare rounds).
// Each round uses a fresh bucket, checked afterwards to hold exactly the round's objects, and its own slice of the
// files (so the keys of one round never meet another's). The variants alternate (order rotated per round), each
// concurrency in every round, so a slow patch of the machine hits every variant. Ours is timed from the first
// delivery to the last ack; bare from its first read to its last answer. CPU per object is recorded for both
// processes (client: this one, all threads; server: s3rver's).
//
// After the measured rounds, untimed, instrumented rounds at concurrency 1 and 16 say where a drained item's time
// goes (PutObject, HeadObject, read+MD5, the queue's commits). Nothing here fails on a number.
if (process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED === undefined) process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { fork } = require('child_process');
const { S3Client, PutObjectCommand, HeadObjectCommand, CreateBucketCommand, ListObjectsV2Command } = require('@aws-sdk/client-s3');
const { NodeHttpHandler } = require('@smithy/node-http-handler');
const h = require('./helpers');

const { OfflineQueue } = require('../dist/lib/queue/engine.js');
const { parseQueueConfig } = require('../dist/lib/queue/config.js');
const { Uploader } = require('../dist/lib/upload/uploader.js');
const { S3Backend, parseS3Settings } = require('../dist/lib/upload/backends/s3.js');
const { UploadTarget } = require('../dist/lib/upload/target.js');

const FILE_BYTES = 100 * 1024;
const TOTAL_FILES = 2000;
const KEY_TEMPLATE = '{id}_{name}';
const SLEEP_S = 2;
const CREDS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const TIMEOUT_S = 60;
/** This figure's own share of the time (the brief: about 2 minutes); rounds past it are dropped, never the first. */
const FIGURE_BUDGET_S = Number(process.env.BENCH_UPLOADER_BUDGET_S) || 100;

/**
 * Files per round and rounds, per concurrency. s3rver takes 3-15 ms per 100 KB PutObject on this machine, depending
 * on its load (65-500 puts/s), and ours also sends a HeadObject per object: the full 2,000 files for each of the 3
 * variants at 3 concurrencies, several times over, would not fit in 2 minutes, so each round drains the next slice of
 * the 2,000 files (the output says how many: "150 files × 5 rounds").
 */
function plan(quick) {
  if (quick) return { concurrencies: [1, 4, 16], rounds: 2, files: { 1: 80, 4: 100, 16: 100 } };
  return { concurrencies: [1, 4, 16], rounds: 5, files: { 1: 150, 4: 300, 16: 400 } };
}

// ---- the S3 server ---------------------------------------------------------------------------------------------------

/**
 * Where s3rver keeps its objects: in memory (/dev/shm) when there is one, as a remote store would be, not on the disk
 * the queue fsyncs. On ext4 an fsync also writes out the other files' dirty data waiting in the same journal commit,
 * so a local server writing 100 KB objects to the queue's disk would make every queue commit pay for them.
 * BENCH_S3RVER_DIR=disk keeps it on the temp disk instead.
 */
function serverDir(tempDir) {
  const shm = '/dev/shm';
  if (process.env.BENCH_S3RVER_DIR !== 'disk') {
    try {
      if (fs.statSync(shm).isDirectory()) {
        const d = fs.mkdtempSync(path.join(shm, 'uplink-bench-s3rver-'));
        fs.writeFileSync(path.join(d, '.probe'), 'x');
        fs.rmSync(path.join(d, '.probe'));
        return d;
      }
    } catch {
      /* no usable /dev/shm: the disk it is */
    }
  }
  const d = path.join(tempDir, 's3rver');
  fs.mkdirSync(d);
  return d;
}

async function startServer(ctx, directory) {
  const child = fork(path.join(__dirname, 's3rver-child.js'), [directory], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const unregister = ctx.registerChild(child);
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 20 s')), 20_000);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve(/** @type {{ port: number }} */ (m).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited (code ${code}) before listening`));
    });
  });
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      const timer = setTimeout(() => {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        unregister();
        resolve();
      });
      child.send('stop');
    });
  return { endpoint: `http://127.0.0.1:${port}`, directory, stop, pid: child.pid };
}

/** A client with the settings the S3 backend gives its own (lib/upload/s3.ts), for the bare loop and for checks. */
function bareClient(endpoint, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: Math.max(concurrency, 4) });
  const client = new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: CREDS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 2,
    requestHandler: new NodeHttpHandler({ httpAgent: agent, connectionTimeout: 10_000, requestTimeout: TIMEOUT_S * 1000 }),
  });
  return {
    client,
    close() {
      client.destroy();
      agent.destroy();
    },
  };
}

async function countObjects(client, bucket) {
  let n = 0;
  let bytes = 0;
  let token;
  for (let i = 0; i < 1000; i++) {
    const r = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
    for (const o of r.Contents || []) {
      n++;
      bytes += o.Size;
    }
    if (!r.IsTruncated) break;
    token = r.NextContinuationToken;
  }
  return { n, bytes };
}

/** CPU time (ms) of this process (all its threads: SQLite's work runs in libuv's pool) and of the server process. */
function cpuMeter(serverPid) {
  const server = () => {
    try {
      const f = fs.readFileSync(`/proc/${serverPid}/stat`, 'utf8').split(') ')[1].split(' ');
      return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 10 ms ticks
    } catch {
      return NaN;
    }
  };
  const self = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  return () => {
    const c0 = self();
    const s0 = server();
    return () => ({ client: self() - c0, server: server() - s0 });
  };
}

// ---- the files -------------------------------------------------------------------------------------------------------

/** TOTAL_FILES files of FILE_BYTES each, every one different (an MD5 per file, as camera frames would have). */
function writeFiles(dir, count) {
  const folder = path.join(dir, 'captures');
  fs.mkdirSync(folder, { recursive: true });
  const base = crypto.randomBytes(FILE_BYTES);
  const files = [];
  for (let i = 0; i < count; i++) {
    const buf = Buffer.from(base);
    buf.writeUInt32BE(i, 0);
    buf.writeUInt32BE(i * 2654435761 >>> 0, FILE_BYTES - 4);
    const file = path.join(folder, `gate-${String(i + 1).padStart(5, '0')}.jpg`);
    fs.writeFileSync(file, buf);
    files.push(file);
  }
  return files;
}

// ---- ours: queue + uploader ------------------------------------------------------------------------------------------

/**
 * Enqueues `files` into a fresh queue (held offline), then lets it deliver and times the drain from the first delivery
 * to the last ack. With `profile`, wraps the store's and the backend's calls to time them (the round is then not
 * a measurement).
 */
/**
 * @param {{ endpoint: string, bucket: string, files: string[], concurrency: number, dir: string, profile?: boolean,
 *   cpu?: () => () => { client: number, server: number } }} round
 */
async function oursRound({ endpoint, bucket, files, concurrency, dir, profile, cpu }) {
  const qdir = fs.mkdtempSync(path.join(dir, 'queue-'));
  const config = parseQueueConfig({ db: 'queue.db', concurrency, synchronous: 'FULL', startOffline: true }, qdir);
  const settings = parseS3Settings({ endpoint, region: 'us-east-1', bucket, forcePathStyle: true, concurrency, timeout: TIMEOUT_S }, CREDS);
  const target = new UploadTarget((bw) => new S3Backend(settings, bw), { concurrency: settings.concurrency, bytesPerSecond: 0, timeoutMs: settings.timeoutMs });
  const uploader = new Uploader(target, KEY_TEMPLATE);
  const closing = new AbortController();
  const n = files.length;
  const warnings = [];
  const nacks = [];
  /** @type {number | null} */
  let first = null;
  /** @type {number | null} */
  let last = null;
  let acked = 0;
  let lastProgress = Date.now();
  let finish;
  let fail;
  const drained = new Promise((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const prof = profile ? makeProfile() : null;
  let queue;
  const events = {
    deliver(msg) {
      if (first === null) first = h.now();
      const up = prof ? prof.time('upload', () => uploader.upload(msg, closing.signal)) : uploader.upload(msg, closing.signal);
      up.then((out) => (prof ? prof.time('handle(ack)', () => queue.handle(out.msg)) : queue.handle(out.msg)).then((r) => ({ out, r })))
        .then(({ out, r }) => {
          lastProgress = Date.now();
          if (r.kind === 'acked') {
            if (++acked === n) {
              last = h.now();
              finish();
            }
          } else {
            nacks.push(out.error ? `${out.error.code}: ${out.error.message}` : `${r.kind} ${r.detail || ''}`);
          }
        })
        .catch(fail);
    },
    stats() {},
    status() {},
    warn: (t) => warnings.push(t),
    log() {},
  };
  queue = await OfflineQueue.start(config, events, 'bench');
  try {
    if (prof) {
      prof.wrap(queue.store, 'lease', 'store.lease');
      prof.wrap(queue.store, 'ackMany', 'store.ackMany');
      prof.wrap(uploader, 'toItem', 'uploader.toItem (stat, key)');
      prof.wrap(target.backend, 'upload', 'backend.upload');
      const client = /** @type {InstanceType<typeof S3Backend>} */ (target.backend)['client'];
      const send = client.send.bind(client);
      client.send = (cmd, ...rest) => prof.time(cmd.constructor.name, () => send(cmd, ...rest));
    }
    const queued = await Promise.all(files.map((f) => queue.handle({ topic: 'gate/capture', filename: f })));
    if (queued.some((r) => r.kind !== 'queued')) throw new Error('an item was not queued');
    const before = await queue.stats();
    if (before.pending !== n) throw new Error(`queue holds ${before.pending} pending items, expected ${n}`);

    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress > 30_000) fail(new Error(`no ack for 30 s (${acked}/${n} acked, ${nacks.length} nacks: ${nacks.slice(-3).join('; ')})`));
    }, 1000);
    lastProgress = Date.now();
    if (prof) {
      // The store's one connection (lib/queue/db.ts), from here on (not the enqueues): each write batch is one
      // BEGIN IMMEDIATE … COMMIT, each read runs alone.
      const db = queue.store['db'];
      const runBatch = db.runBatch.bind(db);
      db.runBatch = (batch) => {
        prof.units += batch.length;
        return prof.time('db.commit', () => runBatch(batch));
      };
      const runOne = db.runOne.bind(db);
      db.runOne = (w) => prof.time('db.read', () => runOne(w));
      prof.start = h.now();
    }
    const cpuEnd = cpu ? cpu() : null;
    const db0 = queue.store.dbCounters;
    await queue.setOnline(true, 'bench');
    try {
      await drained;
    } finally {
      clearInterval(watchdog);
    }
    const sec = (last - first) / 1000;
    const used = cpuEnd ? cpuEnd() : null;
    const db1 = queue.store.dbCounters;
    const after = await queue.stats();
    return {
      ops: n,
      sec,
      rate: n / sec,
      uploaded: after.uploaded,
      pendingAfter: after.pending + after.inFlight + after.failed,
      nacks,
      warnings,
      profile: prof ? prof.report(last - prof.start, n) : null,
      cpuMs: used && { client: used.client / n, server: used.server / n },
      // Round trips to SQLite per drained item, from going online to the last ack (the stats read at the end excluded).
      db: { statements: (db1.statements - db0.statements) / n, commits: (db1.commits - db0.commits) / n },
    };
  } finally {
    closing.abort();
    await queue.close();
    await target.close();
  }
}

/** Wall time and call counts per step (overlapping calls each count their own time). */
function makeProfile() {
  const acc = new Map();
  const add = (name, ms) => {
    const a = acc.get(name) || { ms: 0, calls: 0 };
    a.ms += ms;
    a.calls++;
    acc.set(name, a);
  };
  return {
    start: 0,
    units: 0,
    async time(name, fn) {
      const t = h.now();
      try {
        return await fn();
      } finally {
        add(name, h.now() - t);
      }
    },
    wrap(obj, method, name) {
      const orig = obj[method].bind(obj);
      obj[method] = (...args) => this.time(name, () => orig(...args));
    },
    report(totalMs, items) {
      return { totalMs, items, units: this.units, steps: Object.fromEntries([...acc].map(([k, v]) => [k, { ms: v.ms, msPerItem: v.ms / items, calls: v.calls }])) };
    },
  };
}

// ---- bare: a PutObject loop ------------------------------------------------------------------------------------------

/** `concurrency` workers, each: read the next file, PutObject it. With `head`, also HeadObject it (as ours verifies). */
async function bareRound({ endpoint, bucket, files, concurrency, head = false, cpu }) {
  const { client, close } = bareClient(endpoint, concurrency);
  const latencies = [];
  let next = 0;
  try {
    const cpuEnd = cpu ? cpu() : null;
    const t0 = h.now();
    const worker = async () => {
      while (next < files.length) {
        const i = next++;
        const ts = h.now();
        const body = await fs.promises.readFile(files[i]);
        const Key = `${i + 1}_${path.basename(files[i])}`;
        await client.send(new PutObjectCommand({ Bucket: bucket, Key, Body: body, ContentLength: body.length, ContentType: 'image/jpeg' }));
        if (head) await client.send(new HeadObjectCommand({ Bucket: bucket, Key }));
        latencies.push(h.now() - ts);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const sec = (h.now() - t0) / 1000;
    const used = cpuEnd ? cpuEnd() : null;
    const n = files.length;
    return { ops: n, sec, rate: n / sec, latencies, cpuMs: used && { client: used.client / n, server: used.server / n } };
  } finally {
    close();
  }
}

// ---- the figure ------------------------------------------------------------------------------------------------------

async function uploadPipeline(ctx) {
  const t0 = Date.now();
  const deadline = Math.min(ctx.deadline, t0 + FIGURE_BUDGET_S * 1000);
  const p = plan(ctx.quick);
  const dir = h.tempDir('uploader');
  const s3dir = serverDir(dir);
  const removeS3dir = () => fs.rmSync(s3dir, { recursive: true, force: true });
  process.once('exit', removeS3dir); // /dev/shm is not among the helpers' temp folders
  let t = h.now();
  const files = writeFiles(dir, TOTAL_FILES);
  ctx.log(`  wrote ${TOTAL_FILES.toLocaleString('en-US')} files of ${FILE_BYTES / 1024} KB in ${((h.now() - t) / 1000).toFixed(1)} s`);
  const server = await startServer(ctx, s3dir);
  const cpu = cpuMeter(server.pid);
  const admin = bareClient(server.endpoint, 4);
  let bucketSeq = 0;
  let cursor = 0;
  const checks = [];
  const problems = [];

  /** A fresh bucket and the next slice of the files for one round; afterwards, the count check and cleanup. */
  const withBucket = async (label, count, fn) => {
    const bucket = `bench-${++bucketSeq}-${label}`;
    await admin.client.send(new CreateBucketCommand({ Bucket: bucket }));
    if (cursor + count > files.length) cursor = 0;
    const slice = files.slice(cursor, cursor + count);
    cursor += count;
    const res = await fn(bucket, slice);
    const c = await countObjects(admin.client, bucket);
    const ok = c.n === count && c.bytes === count * FILE_BYTES;
    checks.push({ bucket, expected: count, objects: c.n, bytes: c.bytes, ok });
    if (!ok) problems.push(`bucket ${bucket} holds ${c.n} objects (${c.bytes} bytes), expected ${count} (${count * FILE_BYTES} bytes)`);
    fs.rmSync(path.join(s3dir, bucket), { recursive: true, force: true }); // s3rver keeps nothing of a bucket in memory
    return res;
  };
  const ours = (label, count, c, extra = {}) =>
    withBucket(label, count, async (bucket, slice) => {
      const r = await oursRound({ endpoint: server.endpoint, bucket, files: slice, concurrency: c, dir, cpu, ...extra });
      if (r.uploaded !== slice.length || r.pendingAfter !== 0) problems.push(`${label}: queue says ${r.uploaded} uploaded, ${r.pendingAfter} left`);
      if (r.nacks.length) problems.push(`${label}: ${r.nacks.length} nacks (${[...new Set(r.nacks)].slice(0, 2).join('; ')})`);
      for (const w of r.warnings) problems.push(`${label}: ${w}`);
      return r;
    });
  const bare = (label, count, c, head = false) =>
    withBucket(label, count, (bucket, slice) => bareRound({ endpoint: server.endpoint, bucket, files: slice, concurrency: c, head, cpu }));

  try {
    // Warm-up, untimed: JIT, the SDK's lazy loads, s3rver's first requests, the files into the page cache.
    t = h.now();
    await bare('warm-bare', 60, 4, true);
    await ours('warm-ours', 60, 4);
    for (const f of files) fs.readFileSync(f);
    ctx.log(`  warm-up ${((h.now() - t) / 1000).toFixed(1)} s`);

    // Each round: every concurrency, each with ours, bare, and bare + HeadObject (order rotated).
    const names = ['ours', 'bare', 'bareHead'];
    const run = { ours: (c) => ours(`ours-c${c}`, p.files[c], c), bare: (c) => bare(`bare-c${c}`, p.files[c], c), bareHead: (c) => bare(`bare-head-c${c}`, p.files[c], c, true) };
    const res = Object.fromEntries(p.concurrencies.map((c) => [c, { ours: [], bare: [], bareHead: [] }]));
    let roundsDone = 0;
    for (let r = 0; r < p.rounds; r++) {
      if (r > 0 && Date.now() > deadline) break;
      for (const [ci, c] of p.concurrencies.entries()) {
        for (let k = 0; k < names.length; k++) {
          const name = names[(k + r + ci) % names.length];
          res[c][name].push(await run[name](c));
        }
        const [o, b, bh] = names.map((n) => res[c][n].at(-1));
        ctx.log(
          `  round ${r + 1} c${c}: ours ${o.rate.toFixed(1)}/s, bare ${b.rate.toFixed(1)}/s (ratio ${(o.rate / b.rate).toFixed(2)}), ` +
            `bare+Head ${bh.rate.toFixed(1)}/s; CPU ms/object client+server: ours ${fmtCpu(o.cpuMs)}, bare ${fmtCpu(b.cpuMs)}, bare+Head ${fmtCpu(bh.cpuMs)}; ` +
            `SQLite per item: ${fmtDbCount(o.db)}`,
        );
      }
      roundsDone++;
    }

    // Untimed, instrumented: where one item's time goes at concurrency 1; how full the 16 slots stay at 16, and how
    // busy the queue's SQLite connection is.
    const profiles = {};
    for (const c of [1, 16]) {
      if (Date.now() > deadline + 10_000) break;
      const n = ctx.quick ? 60 : 120;
      const pr = await ours(`prof-ours-c${c}`, n, c, { profile: true });
      profiles[c] = { ...pr.profile, rate: pr.rate };
    }
    if (profiles[1]) {
      // Read and MD5 of the same files alone (the S3 backend reads each file whole and hashes it before the PutObject).
      const slice = files.slice(0, 120);
      let tr = h.now();
      const bufs = [];
      for (const f of slice) bufs.push(await fs.promises.readFile(f));
      profiles[1].readMs = (h.now() - tr) / slice.length;
      tr = h.now();
      for (const b of bufs) crypto.createHash('md5').update(b).digest();
      profiles[1].md5Ms = (h.now() - tr) / slice.length;
      ctx.log(`  profile c1 (${profiles[1].items} items, instrumented): ${fmtProfile(profiles[1])}`);
    }
    if (profiles[16]) ctx.log(`  profile c16 (${profiles[16].items} items, instrumented): ${fmtProfile16(profiles[16])}`);

    // ---- rows
    const rates = (list) => list.map((x) => x.rate);
    const med = (list) => h.median(rates(list));
    const okChecks = checks.filter((c) => c.ok).length;
    const checkNote = `bucket check: ${okChecks}/${checks.length} fresh buckets hold exactly their round's objects`;
    ctx.log(`  ${checkNote}${problems.length ? `; PROBLEMS: ${problems.slice(0, 5).join('; ')}` : ''}`);
    const cpuMed = (list) => ({ client: h.median(list.map((x) => x.cpuMs.client)), server: h.median(list.map((x) => x.cpuMs.server)) });
    const dbMed = (list) => ({ statements: h.median(list.map((x) => x.db.statements)), commits: h.median(list.map((x) => x.db.commits)) });
    const spread = (a, b) => {
      const per = a.map((x, i) => x.rate / b[i].rate).filter(Number.isFinite);
      return per.length > 1 ? [Math.min(...per), Math.max(...per)] : null;
    };
    const ids = { 1: '7a', 4: '7b', 16: '7c' };
    for (const c of p.concurrencies) {
      const { ours: o, bare: b, bareHead: bh } = res[c];
      const filesNote = `${p.files[c]} files × ${o.length} rounds (${(p.files[c] * o.length).toLocaleString('en-US')})`;
      ctx.rows.push({
        id: ids[c],
        figure: `drain queued 100 KB files into s3rver, concurrency ${c}`,
        value: med(o),
        unit: 'objects/s',
        baseline: `bare @aws-sdk/client-s3 PutObject loop, ${c} worker${c > 1 ? 's' : ''}`,
        baseValue: med(b),
        ratio: med(o) / med(b),
        spread: spread(o, b),
        target: '>= 0.9',
        note:
          `${filesNote} per side (of ${TOTAL_FILES.toLocaleString('en-US')} on disk), queue FULL; CPU ms/object client+server: ` +
          `ours ${fmtCpu(cpuMed(o))}, bare ${fmtCpu(cpuMed(b))}; SQLite per item: ${fmtDbCount(dbMed(o))}; ${checkNote}${problems.length ? `; PROBLEMS: ${problems.slice(0, 3).join('; ')}` : ''}`,
        rounds: rates(o),
        baseRounds: rates(b),
        extra: { cpuMs: { ours: cpuMed(o), bare: cpuMed(b), bareHead: cpuMed(bh) }, db: dbMed(o), bareHeadRounds: rates(bh), files: p.files[c] },
      });
      ctx.rows.push({
        id: `${ids[c]}*`,
        figure: `  same, vs bare PutObject + HeadObject`,
        value: med(o),
        unit: 'objects/s',
        baseline: 'bare loop that also verifies (HeadObject) as ours does',
        baseValue: med(bh),
        ratio: med(o) / med(bh),
        spread: spread(o, bh),
        target: '',
        note: `info: queue + uploader cost alone; the HeadObject alone takes bare to ${h.fmtRatio(med(bh) / med(b))} (CPU ${fmtCpu(cpuMed(bh))} ms/object)`,
      });
    }
    const putMs = h.median(res[1].bare.flatMap((b) => b.latencies));
    const seqRate = 1 / (SLEEP_S + putMs / 1000);
    ctx.rows.push({
      id: '7d',
      figure: 'same at concurrency 1 vs the sequential 2 s-sleep uploader',
      value: med(res[1].ours),
      unit: 'objects/s',
      baseline: `computed: 1 / (${SLEEP_S} s + one read+PutObject, ${putMs.toFixed(1)} ms median)`,
      baseValue: seqRate,
      ratio: med(res[1].ours) / seqRate,
      spread: null,
      target: '',
      note: `concurrency 4: ${h.fmtRatio(med(res[4].ours) / seqRate)}, 16: ${h.fmtRatio(med(res[16].ours) / seqRate)} the sequential rate`,
    });
    if (profiles[1]) {
      const pr = profiles[1];
      ctx.rows.push({
        id: '7e',
        figure: 'time per item at concurrency 1 (instrumented round)',
        value: pr.totalMs / pr.items,
        unit: 'ms/item',
        baseline: 'bare read+PutObject (median, this run)',
        baseValue: putMs,
        ratio: pr.totalMs / pr.items / putMs,
        spread: null,
        target: '',
        note: `info: ${fmtProfile(pr)}`,
        extra: { profile: pr },
      });
    }
    if (profiles[16]) {
      const pr = profiles[16];
      const inFlight = (pr.steps.upload ? pr.steps.upload.msPerItem * pr.items : 0) / pr.totalMs;
      ctx.rows.push({
        id: '7f',
        figure: 'uploads in flight on average, concurrency 16',
        value: inFlight,
        unit: 'uploads',
        baseline: 'the 16 allowed',
        baseValue: 16,
        ratio: inFlight / 16,
        spread: null,
        target: '',
        note: `info: instrumented round; ${fmtProfile16(pr)}`,
        extra: { profile: pr },
      });
    }
    ctx.log(`  ${roundsDone} rounds; figure took ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  } finally {
    admin.close();
    await server.stop();
    removeS3dir();
    process.removeListener('exit', removeS3dir);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function fmtDbCount(d) {
  return `${d.statements.toFixed(2)} statements, ${d.commits.toFixed(2)} commits`;
}

function fmtCpu(c) {
  return c ? `${c.client.toFixed(1)}+${c.server.toFixed(1)}` : '-';
}

const stepMs = (p, k) => (p.steps[k] ? p.steps[k].msPerItem : 0);

function fmtProfile(p) {
  const get = (k) => stepMs(p, k);
  const upload = get('upload');
  const backend = get('backend.upload');
  const put = get('PutObjectCommand');
  const head = get('HeadObjectCommand');
  const toItem = get('uploader.toItem (stat, key)');
  const lease = p.steps['store.lease'];
  return [
    `per item ${(p.totalMs / p.items).toFixed(1)} ms`,
    `PutObject ${put.toFixed(1)}`,
    `HeadObject ${head.toFixed(1)}`,
    `read+MD5 in backend ${(backend - put - head).toFixed(1)} (alone: read ${p.readMs.toFixed(2)}, MD5 ${p.md5Ms.toFixed(2)})`,
    `toItem ${toItem.toFixed(2)}`,
    `rest of upload() ${(upload - backend - toItem).toFixed(2)}`,
    `ack via handle() ${get('handle(ack)').toFixed(1)} (store.ackMany ${get('store.ackMany').toFixed(1)}, which also leases the next item)`,
    `store.lease ${get('store.lease').toFixed(1)} (${lease ? (lease.calls / p.items).toFixed(1) : 0} calls/item)`,
    `between ${(p.totalMs / p.items - upload - get('handle(ack)') - get('store.lease')).toFixed(1)}`,
    fmtDb(p),
  ].join(', ');
}

/** How busy the queue's one SQLite connection was: commits and reads per item, their times, the share of the drain. */
function fmtDb(p) {
  const c = p.steps['db.commit'];
  const r = p.steps['db.read'];
  if (!c) return 'db: -';
  const busy = (c.ms + (r ? r.ms : 0)) / p.totalMs;
  return (
    `SQLite connection busy ${(100 * busy).toFixed(0)}% of the drain: ${(c.calls / p.items).toFixed(2)} commits/item ` +
    `(${(p.units / c.calls).toFixed(1)} writes each, ${(c.ms / c.calls).toFixed(1)} ms BEGIN→COMMIT), ` +
    `${r ? (r.calls / p.items).toFixed(2) : 0} reads/item (${r ? (r.ms / r.calls).toFixed(1) : '-'} ms)`
  );
}

function fmtProfile16(p) {
  const lease = p.steps['store.lease'];
  return [
    `${p.rate.toFixed(1)} items/s`,
    `latency per item: upload ${stepMs(p, 'upload').toFixed(1)} ms (PutObject ${stepMs(p, 'PutObjectCommand').toFixed(1)}, HeadObject ${stepMs(p, 'HeadObjectCommand').toFixed(1)})`,
    `ack via handle() ${stepMs(p, 'handle(ack)').toFixed(1)} ms (store.ackMany ${stepMs(p, 'store.ackMany').toFixed(1)})`,
    `store.lease ${lease ? (lease.ms / lease.calls).toFixed(1) : '-'} ms × ${lease ? (lease.calls / p.items).toFixed(2) : 0} calls/item`,
    fmtDb(p),
  ].join(', ');
}

/** @type {import('./helpers').Figure[]} */
const FIGURES = [['7', 'uploader: drain queued files into S3', uploadPipeline]];

// The pieces as well as the figure, to run or profile one side of it alone.
module.exports = { FIGURES, oursRound, bareRound, startServer, writeFiles, bareClient };
