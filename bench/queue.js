'use strict';
// Benchmarks of the durable queue (QueueStore over SQLite). Every figure is a ratio against a baseline measured in
// the same run, on the same disk, so that a slow or noisy machine moves both sides. Nothing here fails on a number.
//
// Noise: on a shared 2-core machine, one slow second can halve a figure. Where a figure compares two timings, the two
// sides run in alternating short rounds (ABAB, order rotated) and the figure is the ratio of the medians; "spread" is
// the range of the per-round ratios.
const fs = require('fs');
const path = require('path');
const h = require('./helpers');
const { JsonFileQueue } = require('./json-file-queue');
const { nodeRedMemory } = require('./node-red-memory');

/** @type {(sync?: 'FULL' | 'NORMAL') => import('../dist/lib/queue/store.js').OpenOptions} */
const OPEN = (sync = 'FULL') => ({ synchronous: sync, createFolder: true, recoverLeases: true, owner: 'bench' });

const ITEMS = Array.from({ length: 1000 }, (_, i) => h.makeItem(i));
let nextItem = 0;
const item = () => ITEMS[nextItem++ % ITEMS.length];

const BARE_TABLE = `CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY AUTOINCREMENT, state TEXT NOT NULL, priority INTEGER NOT NULL, created_at INTEGER NOT NULL,
  due_at INTEGER NOT NULL, not_before INTEGER NOT NULL DEFAULT 0, lease_until INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
  kind TEXT NOT NULL, file TEXT, bytes INTEGER NOT NULL, msg TEXT NOT NULL, last_error TEXT, last_error_at INTEGER,
  done_at INTEGER)`;
const INSERT =
  'INSERT INTO items (state, priority, created_at, due_at, kind, file, bytes, msg) VALUES (?, ?, ?, ?, ?, ?, ?, ?)';

function bareInsert(db) {
  return () => {
    const it = item();
    const t = Date.now();
    return db.run(INSERT, ['pending', 5, t, t, it.kind, null, it.bytes, it.msg]);
  };
}

/** Alternating rounds of named variants; returns per-variant lists of results (one per round). */
async function rounds(variants, { rounds: n, seconds, maxOps, deadline }) {
  const out = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  const names = Object.keys(variants);
  for (let r = 0; r < n; r++) {
    if (r > 0 && Date.now() > deadline) break;
    const order = names.map((_, i) => names[(i + r) % names.length]);
    for (const name of order) out[name].push(await variants[name]({ seconds, maxOps }));
  }
  return out;
}

const rates = (list) => list.map((x) => x.rate);
function ratioStats(a, b) {
  const per = a.map((x, i) => x.rate / b[i].rate).filter(Number.isFinite);
  return {
    ratio: h.median(rates(a)) / h.median(rates(b)),
    spread: per.length > 1 ? [Math.min(...per), Math.max(...per)] : null,
  };
}

// ---- 1. durable enqueue ----------------------------------------------------------------------------------------

async function enqueueThroughput(ctx) {
  const dir = h.tempDir('enqueue');
  const bare = await (await h.Bare.open(path.join(dir, 'bare.db'))).durable('FULL');
  await bare.exec(BARE_TABLE);
  // The same bare loop into QueueStore's own schema (its indexes and triggers): splits our cost into what the
  // schema costs SQLite and what the transaction framing around it costs.
  await h.bulkFill(path.join(dir, 'schema.db'), 0);
  const bareSchema = await (await h.Bare.open(path.join(dir, 'schema.db'))).durable('FULL');
  const one = await h.QueueStore.open(path.join(dir, 'one.db'), {}, OPEN());
  const many = await h.QueueStore.open(path.join(dir, 'many.db'), {}, OPEN());
  try {
    const enqueue = (store) => () => store.enqueue(item());
    const variants = {
      bare: (o) => h.measure(bareInsert(bare), o),
      bareSchema: (o) => h.measure(bareInsert(bareSchema), o),
      ours: (o) => h.measure(enqueue(one), o),
      ours16: (o) => h.measure(enqueue(many), { ...o, parallel: 16 }),
    };
    for (const v of Object.values(variants)) await v({ seconds: 0.2, maxOps: 200 }); // warm up files and caches
    const r = await rounds(variants, { rounds: ctx.quick ? 2 : 5, seconds: ctx.quick ? 0.5 : 0.8, maxOps: 50_000, deadline: ctx.deadline });
    const base = h.median(rates(r.bare));
    const row = (id, label, list, target, note) => {
      const s = ratioStats(list, r.bare);
      return { id, figure: label, value: h.median(rates(list)), unit: 'items/s', baseline: 'bare sqlite3 INSERT loop', baseValue: base, ratio: s.ratio, spread: s.spread, target, note, rounds: rates(list) };
    };
    ctx.rows.push(
      row('1a', 'enqueue, awaited one by one (FULL)', r.ours, '>= 0.8', 'one INSERT per item, committing itself, its statement kept prepared'),
      row('1b', 'enqueue, 16 concurrent producers', r.ours16, '', 'group commit: many items per COMMIT'),
      row('1c', 'bare INSERT loop into our schema', r.bareSchema, '', 'info: cost of the indexes + triggers alone'),
    );
    ctx.rows.at(-3).baseRounds = rates(r.bare);
  } finally {
    await Promise.all([bare.close(), bareSchema.close(), one.close(), many.close()]);
  }

  // Pages each commit appends to the WAL (and later copies into the database): fresh files, no timing involved.
  const wal = await walPages(dir);
  ctx.rows.push({
    id: '1d', figure: 'WAL pages written per enqueue', value: wal.enqueue, unit: 'pages', baseline: 'bare INSERT (items + sqlite_sequence)',
    baseValue: wal.bare, ratio: wal.enqueue / wal.bare, spread: null, target: '', note: 'info: 4 KB each; lower is better',
  });
  ctx.walCyclePages = wal.cycle;
  ctx.walBarePages = wal.bare;
}

async function walPages(dir) {
  const ours = path.join(dir, 'wal-ours.db');
  const bareFile = path.join(dir, 'wal-bare.db');
  const store = await h.QueueStore.open(ours, {}, OPEN());
  const bare = await (await h.Bare.open(bareFile)).durable('FULL');
  try {
    await bare.exec(BARE_TABLE);
    const enqueue = await h.walPagesPer(ours, 50, () => store.enqueue(item()));
    const cycle = await h.walPagesPer(ours, 25, async () => {
      const [it] = await store.lease(1);
      await store.ack(it.id);
    });
    const bareInsertPages = await h.walPagesPer(bareFile, 50, bareInsert(bare));
    return { enqueue, cycle, bare: bareInsertPages };
  } finally {
    await store.close();
    await bare.close();
  }
}

// ---- 2. against pending_uploads.json -----------------------------------------------------------------------------

async function againstJsonFile(ctx) {
  const N = 200;
  for (const size of [1000, 10_000]) {
    const dir = h.tempDir(`json-${size}`);
    const json = new JsonFileQueue(path.join(dir, 'pending_uploads.json'));
    json.prefill(size, h.makeMessage);
    const jsonSync = new JsonFileQueue(path.join(dir, 'pending_uploads_fsync.json'), { fsync: true });
    jsonSync.prefill(size, h.makeMessage);
    const file = path.join(dir, 'queue.db');
    await h.bulkFill(file, size);
    const store = await h.QueueStore.open(file, {}, OPEN());
    let seq = size;
    try {
      // The json side leaves megabytes of dirty pages behind, which the next fsync (ours) would have to flush on
      // ext4: flush them untimed so each side pays only for its own writes.
      const settle = (q) => {
        const fd = fs.openSync(q.file, 'r');
        try {
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
      };
      const jsonRun = (q) => async (o) => {
        const res = await h.measure(async () => q.enqueue(h.makeMessage(seq++)), o);
        settle(q);
        return res;
      };
      const variants = {
        json: jsonRun(json),
        ours: (o) => h.measure(() => store.enqueue(h.makeItem(seq++)), o),
      };
      await variants.ours({ seconds: 0.2, maxOps: 20 });
      // Two rounds of 100 (ABAB) make the 200 enqueues, each round bounded in time too.
      const r = await rounds(variants, { rounds: 2, seconds: 8, maxOps: N / 2, deadline: ctx.deadline });
      // The durable json variant (fsync per change) is slow: fewer enqueues are enough for its rate.
      const rs = await rounds({ jsonFsync: jsonRun(jsonSync), ours: variants.ours }, { rounds: 2, seconds: 3, maxOps: 25, deadline: ctx.deadline });
      r.jsonFsync = rs.jsonFsync;
      r.oursFsync = rs.ours;
      const sum = (list) => ({ ops: list.reduce((a, x) => a + x.ops, 0), sec: list.reduce((a, x) => a + x.sec, 0) });
      const total = (list) => { const s = sum(list); return s.ops / s.sec; };
      const k = size >= 1000 ? `${size / 1000}k` : String(size);
      ctx.rows.push(
        {
          id: size === 1000 ? '2a' : '2b',
          figure: `${N} enqueues, queue holds ${k}: ours vs json file`,
          value: total(r.ours), unit: 'items/s', baseline: 'pending_uploads.json rewrite+rename', baseValue: total(r.json),
          ratio: total(r.ours) / total(r.json), spread: ratioStats(r.ours, r.json).spread, target: '',
          note: `json file ${(fs.statSync(json.file).size / 1e6).toFixed(1)} MB, not fsynced (not durable)`,
        },
        {
          id: size === 1000 ? '2a*' : '2b*',
          figure: `  same, json file with fsync (durable)`,
          value: total(r.oursFsync), unit: 'items/s', baseline: 'pending_uploads.json + fsync', baseValue: total(r.jsonFsync),
          ratio: total(r.oursFsync) / total(r.jsonFsync), spread: ratioStats(r.oursFsync, r.jsonFsync).spread, target: '',
          note: 'info: the fair durable comparison (50 enqueues each)',
        },
      );
    } finally {
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
}

// ---- 3. lease + ack --------------------------------------------------------------------------------------------

/**
 * Delivers like the offline-queue node: a pump leases up to `concurrency` items; each ack (arriving as soon as the
 * item was "uploaded", here at once) frees a slot and wakes the pump. Counts completed lease+ack cycles, and how many
 * of them were of each lane (0: small, 1: large).
 */
function leaseAckCycles(store, concurrency, { seconds, maxOps }) {
  const t0 = h.now();
  const end = t0 + seconds * 1000;
  let started = 0;
  let acked = 0;
  let inFlight = 0;
  let pumping = false;
  let again = false;
  const lanes = [0, 0];
  return new Promise((resolve, reject) => {
    const finish = () => resolve({ ops: acked, sec: (h.now() - t0) / 1000, rate: acked / ((h.now() - t0) / 1000), lanes });
    const stop = () => started >= maxOps || h.now() >= end;
    const pump = async () => {
      if (pumping) {
        again = true;
        return;
      }
      pumping = true;
      try {
        do {
          again = false;
          if (stop()) break;
          const leased = await store.lease(concurrency);
          for (const it of leased) {
            started++;
            inFlight++;
            lanes[it.bytes >= LARGE_FROM ? 1 : 0]++;
            store.ack(it.id).then(() => {
              acked++;
              inFlight--;
              void pump();
            }, reject);
          }
          if (leased.length === 0 && inFlight === 0) throw new Error('queue ran dry during the lease benchmark');
        } while (again);
      } catch (e) {
        reject(e);
      } finally {
        pumping = false;
      }
      if (stop() && inFlight === 0) finish();
    };
    void pump();
  });
}

/** The queue node's own cycle: each ack also leases the item that takes the freed slot, in one statement. */
async function ackAndLeaseCycles(store, { seconds, maxOps }) {
  const t0 = h.now();
  const end = t0 + seconds * 1000;
  let [it] = await store.lease(1);
  let ops = 0;
  while (it && ops < maxOps && h.now() < end) {
    const r = await store.ackMany([it.id], 1);
    ops++;
    it = r.leased[0];
  }
  if (it) await store.ackMany([it.id], 0);
  else throw new Error('queue ran dry during the lease benchmark');
  const sec = (h.now() - t0) / 1000;
  return { ops, sec, rate: ops / sec };
}

async function leaseAck(ctx) {
  const dir = h.tempDir('lease');
  const file = path.join(dir, 'queue.db');
  await h.bulkFill(file, 60_000);
  const store = await h.QueueStore.open(file, {}, OPEN());
  try {
    const bareDb = await (await h.Bare.open(path.join(dir, 'bare.db'))).durable('FULL');
    await bareDb.exec(BARE_TABLE);
    const variants = {
      c1: (o) => leaseAckCycles(store, 1, o),
      c4: (o) => leaseAckCycles(store, 4, o),
      node: (o) => ackAndLeaseCycles(store, o),
      bare: (o) => h.measure(bareInsert(bareDb), o),
    };
    await variants.c1({ seconds: 0.2, maxOps: 100 });
    const r = await rounds(variants, { rounds: ctx.quick ? 2 : 4, seconds: ctx.quick ? 0.5 : 0.8, maxOps: 6000, deadline: ctx.deadline });
    await bareDb.close();
    const base = h.median(rates(r.bare));
    for (const [id, label, list, note] of [
      ['3a', 'lease+ack cycles, concurrency 1', r.c1, 'lease(), then ack(): 2 commits a cycle, neither fsynced (delivery bookkeeping)'],
      ['3b', 'lease+ack cycles, concurrency 4', r.c4, 'leases and acks share commits'],
      ['3d', 'ack and next lease in one statement, concurrency 1', r.node, 'as the queue node drains: ackMany(ids, concurrency), 1 commit a cycle'],
    ]) {
      const s = ratioStats(list, r.bare);
      ctx.rows.push({
        id, figure: label, value: h.median(rates(list)), unit: 'cycles/s',
        baseline: 'bare sqlite3 INSERT loop (1 commit each, fsynced)', baseValue: base, ratio: s.ratio, spread: s.spread, target: '',
        note, rounds: rates(list),
      });
    }
    if (ctx.walCyclePages !== undefined) {
      ctx.rows.push({
        id: '3c', figure: 'WAL pages written per lease+ack cycle', value: ctx.walCyclePages, unit: 'pages', baseline: 'bare INSERT',
        baseValue: ctx.walBarePages, ratio: ctx.walCyclePages / ctx.walBarePages, spread: null, target: '', note: 'info: measured in figure 1 (2 commits)',
      });
    }
  } finally {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// ---- 4. lease at 1M items ----------------------------------------------------------------------------------------

/** Sizes from the default policy's large-item size on lease in the large lane (videos); LARGE is such a size. */
const LARGE_FROM = h.DEFAULT_POLICY.largeItemBytes;
const LARGE = 2 * LARGE_FROM;
const largeItem = () => ({ ...item(), bytes: LARGE });

/**
 * Puts back into a store, before each measured round (untimed), as many items of each lane as the rounds before took
 * out of it: the queue keeps its size and its mix of lanes throughout.
 */
function keeper(store) {
  const owed = [0, 0];
  return {
    cycles: async (o) => {
      const [small, large] = owed.splice(0, 2, 0, 0);
      await Promise.all([...Array.from({ length: small }, () => store.enqueue(item())), ...Array.from({ length: large }, () => store.enqueue(largeItem()))]);
      const r = await leaseAckCycles(store, 1, o);
      owed[0] += r.lanes[0];
      owed[1] += r.lanes[1];
      return r;
    },
  };
}

/** Fills a database with `mix.small` small and `mix.large` large pending items. */
async function fillMix(file, mix) {
  await h.bulkFill(file, mix.small);
  if (mix.large > 0) await h.bulkFill(file, mix.large, { bytes: LARGE });
}

const countLabel = (n) => (n >= 1e6 ? `${n / 1e6}M` : n >= 1000 ? `${n / 1000}k` : String(n));
const mixLabel = (mix) =>
  [mix.small ? `${countLabel(mix.small)} small` : '', mix.large ? `${countLabel(mix.large)} large` : ''].filter(Boolean).join(' + ');

/**
 * Lease+ack cycles (concurrency 1 in each lane) on a queue of `big` items against the same on a queue of `small`
 * ones, in alternating rounds. Returns the row's numbers, and both stores still open for more figures (`then`).
 */
/**
 * One lease-cost case: the same cycles against a big and a small database of the given mix.
 * @param {any} ctx
 * @param {{ id: (mode: 'FULL' | 'NORMAL') => string, big: { small: number, large: number }, small: { small: number, large: number },
 *   sync: ('FULL' | 'NORMAL')[], label: (mode: 'FULL' | 'NORMAL') => string, note: (mode: 'FULL' | 'NORMAL') => string,
 *   then?: (stores: any) => Promise<void> }} spec
 */
async function scaleCase(ctx, { id, big, small, sync, label, note, then }) {
  const dir = h.tempDir('scale');
  const bigFile = path.join(dir, 'big.db');
  const smallFile = path.join(dir, 'small.db');
  const t = h.now();
  await fillMix(bigFile, big);
  const buildS = (h.now() - t) / 1000;
  await fillMix(smallFile, small);
  ctx.log(`  built a ${mixLabel(big)}-item database (${(fs.statSync(bigFile).size / 1e6).toFixed(0)} MB) in ${buildS.toFixed(1)} s`);
  try {
    for (const mode of sync) {
      let t0 = h.now();
      const bigStore = await h.QueueStore.open(bigFile, {}, OPEN(mode));
      const openBigMs = h.now() - t0;
      t0 = h.now();
      const smallStore = await h.QueueStore.open(smallFile, {}, OPEN(mode));
      const openSmallMs = h.now() - t0;
      try {
        const variants = { small: keeper(smallStore).cycles, big: keeper(bigStore).cycles };
        await variants.big({ seconds: 0.2, maxOps: 50 });
        await variants.small({ seconds: 0.2, maxOps: 50 });
        const r = await rounds(variants, { rounds: ctx.quick ? 2 : 6, seconds: ctx.quick ? 0.4 : 0.8, maxOps: 400, deadline: ctx.deadline });
        const ms = (list) => list.map((x) => (1000 * x.sec) / x.ops);
        const per = ms(r.big).map((b, i) => b / ms(r.small)[i]);
        const lanes = (list) => list.reduce((a, x) => [a[0] + x.lanes[0], a[1] + x.lanes[1]], [0, 0]);
        const [s, l] = lanes(r.big);
        ctx.rows.push({
          id: id(mode), figure: `lease+ack cost at ${label(mode)}`,
          value: h.median(ms(r.big)), unit: 'ms/cycle', baseline: `same at ${mixLabel(small)} items`, baseValue: h.median(ms(r.small)),
          ratio: h.median(ms(r.big)) / h.median(ms(r.small)), spread: [Math.min(...per), Math.max(...per)], target: '<= 2',
          note: `${note(mode)}; cycles measured at ${mixLabel(big)}: ${s} small, ${l} large`,
        });
        if (then) await then({ mode, bigStore, smallStore, openBigMs, openSmallMs });
      } finally {
        await bigStore.close();
        await smallStore.close();
      }
      if (Date.now() > ctx.deadline) break;
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function leaseAtScale(ctx) {
  const BIG = ctx.quick ? 200_000 : 1_000_000;
  const SMALL = 1000;
  const FEW = 100;
  const big = countLabel(BIG);
  const time = async (fn, n) => { const t0 = h.now(); for (let i = 0; i < n; i++) await fn(); return (h.now() - t0) / n; };

  // Small items only: the large lane is empty, and finding that out must not read the whole queue.
  await scaleCase(ctx, {
    id: (mode) => (mode === 'FULL' ? '4a' : '4b'),
    big: { small: BIG, large: 0 },
    small: { small: SMALL, large: 0 },
    sync: ['FULL', 'NORMAL'],
    label: (mode) => `${big} vs ${countLabel(SMALL)} items (${mode})`,
    note: (mode) => (mode === 'FULL' ? 'ratio of times: lower is better' : 'NORMAL: no fsync per commit, so query cost shows'),
    then: async ({ mode, bigStore, smallStore, openBigMs, openSmallMs }) => {
      if (mode !== 'FULL') return;
      // What the node also does on every change (status + stats), and what a big queue costs to open.
      const statsBig = h.median([await time(() => bigStore.stats(), 20), await time(() => bigStore.stats(), 20)]);
      const statsSmall = h.median([await time(() => smallStore.stats(), 20), await time(() => smallStore.stats(), 20)]);
      ctx.rows.push({
        id: '4c', figure: `stats() at ${big} vs ${countLabel(SMALL)} items`, value: statsBig, unit: 'ms/call', baseline: `same at ${countLabel(SMALL)}`,
        baseValue: statsSmall, ratio: statsBig / statsSmall, spread: null, target: '', note: 'info: runs on every status refresh',
      });
      ctx.rows.push({
        id: '4d', figure: `QueueStore.open at ${big} vs ${countLabel(SMALL)} items`, value: openBigMs, unit: 'ms', baseline: `same at ${countLabel(SMALL)}`,
        baseValue: openSmallMs, ratio: openBigMs / openSmallMs, spread: null, target: '', note: 'info: cold-ish, page cache warm from the build',
      });
      // Housekeeping with the 'delete-after-days' file policy (runs at start and every 10 min).
      const prune = async (store) => {
        store.policy = { ...store.policy, fileRetention: 'delete-after-days' };
        return time(() => store.pruneFinished(), 3);
      };
      const pruneBig = await prune(bigStore);
      const pruneSmall = await prune(smallStore);
      ctx.rows.push({
        id: '4e', figure: `pruneFinished('delete-after-days') at ${big} vs ${countLabel(SMALL)}`, value: pruneBig, unit: 'ms/call',
        baseline: `same at ${countLabel(SMALL)}`, baseValue: pruneSmall, ratio: pruneBig / pruneSmall, spread: null, target: '',
        note: 'info: nothing to prune in either',
      });
    },
  });
  if (Date.now() > ctx.deadline) return;
  // Both lanes busy: a few videos among a million readings, and a backlog of videos with a few readings among them.
  /** @type {[string, { small: number, large: number }, { small: number, large: number }][]} */
  const mixes = [
    ['4f', { small: BIG, large: FEW }, { small: SMALL, large: FEW }],
    ['4g', { small: FEW, large: BIG }, { small: FEW, large: SMALL }],
  ];
  for (const [id, bigMix, smallMix] of mixes) {
    await scaleCase(ctx, {
      id: () => id,
      big: bigMix,
      small: smallMix,
      sync: ['FULL'],
      label: () => `${mixLabel(bigMix)} vs ${mixLabel(smallMix)}`,
      note: () => 'both lanes: each lease takes one small and one large item',
    });
    if (Date.now() > ctx.deadline) return;
  }
}

// ---- 5. Node-RED memory ------------------------------------------------------------------------------------------

async function memory(ctx) {
  const dir = h.tempDir('nodered');
  const N = 100_000;
  const full = path.join(dir, 'full', 'queue.db');
  const empty = path.join(dir, 'empty', 'queue.db');
  await h.bulkFill(full, N);
  await h.bulkFill(empty, 0);
  // Opening is part of every deploy and restart; small databases get a structural check first.
  const openMs = async (file) => {
    const list = [];
    for (let i = 0; i < 3; i++) {
      const t = h.now();
      const s = await h.QueueStore.open(file, {}, OPEN());
      list.push(h.now() - t);
      await s.close();
    }
    return h.median(list);
  };
  const openFull = await openMs(full);
  const openEmpty = await openMs(empty);
  const pages = Math.round(fs.statSync(full).size / 4096);
  const runs = { empty: [], full: [] };
  const order = ctx.quick ? ['empty', 'full'] : ['empty', 'full', 'full', 'empty'];
  for (const which of order) {
    if (runs[which].length > 0 && Date.now() > ctx.deadline) continue;
    const r = await nodeRedMemory({ dbFile: which === 'full' ? full : empty, expectPending: which === 'full' ? N : 0, log: ctx.log, registerChild: ctx.registerChild });
    ctx.log(`  node-red, ${which === 'full' ? `${N / 1000}k items` : 'empty queue'}: RSS ${(r.rssKB / 1024).toFixed(1)} MB (samples ${r.samplesKB.map((k) => (k / 1024).toFixed(1)).join(', ')}), started in ${(r.startMs / 1000).toFixed(1)} s, node says ${r.pending} pending`);
    runs[which].push(r);
  }
  const mb = (list) => h.median(list.map((r) => r.rssKB / 1024));
  const problems = [...runs.full, ...runs.empty].flatMap((r) => r.problems);
  ctx.rows.push({
    id: '5', figure: `Node-RED RSS, ${N / 1000}k pending vs empty queue`, value: mb(runs.full), unit: 'MB', baseline: 'same flow, empty queue',
    baseValue: mb(runs.empty), ratio: mb(runs.full) / mb(runs.empty), spread: null, target: '< +30 MB',
    note: `difference ${(mb(runs.full) - mb(runs.empty)).toFixed(1)} MB${problems.length ? `; ${[...new Set(problems)].join('; ')}` : ''}`,
    display: `${h.fmtNum(mb(runs.full), 1)} MB (${mb(runs.full) >= mb(runs.empty) ? '+' : ''}${(mb(runs.full) - mb(runs.empty)).toFixed(1)})`,
    extra: { deltaMB: mb(runs.full) - mb(runs.empty), startMs: { full: runs.full.map((r) => r.startMs), empty: runs.empty.map((r) => r.startMs) } },
  });
  ctx.rows.push({
    id: '5b', figure: `QueueStore.open at ${N / 1000}k items vs empty`, value: openFull, unit: 'ms', baseline: 'same, empty queue',
    baseValue: openEmpty, ratio: openFull / openEmpty, spread: null, target: '',
    note: `info: ${pages} pages, under the 50,000-page limit for quick_check at open (page cache warm)`,
  });
  fs.rmSync(dir, { recursive: true, force: true });
}

/** @type {import('./helpers').Figure[]} */
const FIGURES = [
  ['1', 'durable enqueue', enqueueThroughput],
  ['2', 'vs pending_uploads.json', againstJsonFile],
  ['3', 'lease+ack', leaseAck],
  ['4', 'lease at scale', leaseAtScale],
  ['5', 'Node-RED memory', memory],
];

module.exports = { FIGURES };
