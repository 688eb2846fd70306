'use strict';
// Entry point of `npm run bench` (which builds first: the benchmarks use dist/).
//
//   node bench/run.js [--only 1,3] [--quick] [--json FILE]
//
// Prints one table of figures, each a ratio against a baseline measured in this same run, and writes them as JSON
// (default: <tmpdir>/uplink-bench-results/queue.json, or $BENCH_RESULTS). It never fails on a number: the exit
// code is non-zero only when a benchmark could not run at all.
const fs = require('fs');
const os = require('os');
const path = require('path');

// Queue figures take about 1.5-2.5 min, the connectivity figure about 3 min (it stops early past the budget), the
// video figures (9-11) about 45 s, 60 s and 4.5 min, the monitor 4.5 min, the live view (14) about 5 min: about
// 21 min in all.
const BUDGET_S = Number(process.env.BENCH_BUDGET_S) || 1800;

function parseArgs(argv) {
  const o = { only: null, quick: false, json: process.env.BENCH_RESULTS || path.join(os.tmpdir(), 'uplink-bench-results', 'queue.json') };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--only') o.only = new Set(String(argv[++i]).split(','));
    else if (a.startsWith('--only=')) o.only = new Set(a.slice(7).split(','));
    else if (a === '--json') o.json = argv[++i];
    else if (a.startsWith('--json=')) o.json = a.slice(7);
    else throw new Error(`unknown argument ${a} (use --only 1,3  --quick  --json FILE)`);
  }
  return o;
}

// Child processes (Node-RED) are killed on every way out, by their own pid.
const children = new Set();
function registerChild(child) {
  children.add(child);
  return () => children.delete(child);
}
function killChildren() {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        process.kill(c.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  }
  children.clear();
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const h = require('./helpers');
  const FIGURES = [...require('./queue').FIGURES, ...require('./connectivity').FIGURES, ...require('./uploader').FIGURES, ...require('./capture').FIGURES, ...require('./video').FIGURES, ...require('./monitor').FIGURES, ...require('./live').FIGURES];
  const cleanup = () => {
    killChildren();
    h.removeTempDirs();
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => {
      cleanup();
      process.exit(130);
    });
  }
  process.once('exit', cleanup);

  const t0 = Date.now();
  const log = (s) => process.stderr.write(`${s}\n`);
  const ctx = { rows: [], quick: opts.quick, deadline: t0 + BUDGET_S * 1000, log, registerChild };
  const skipped = [];
  const failed = [];
  for (const [id, name, fn] of FIGURES) {
    if (opts.only && !opts.only.has(id)) continue;
    if (Date.now() > ctx.deadline) {
      skipped.push(`${id} (${name}): out of time budget (${BUDGET_S} s)`);
      continue;
    }
    const ts = Date.now();
    log(`[bench] ${id}. ${name}…`);
    try {
      await fn(ctx);
    } catch (e) {
      failed.push(`${id} (${name}): ${e && e.stack ? e.stack : e}`);
    }
    log(`[bench] ${id}. ${name} done in ${((Date.now() - ts) / 1000).toFixed(1)} s`);
    h.removeTempDirs();
  }
  const totalS = (Date.now() - t0) / 1000;
  ctx.rows.sort((a, b) => a.id.localeCompare(b.id, 'en', { numeric: true }));

  const fmtVal = (v, unit) => `${h.fmtNum(v, v < 10 ? 2 : v < 100 ? 1 : 0)} ${unit}`;
  const rows = ctx.rows.map((r) => [
    r.id,
    r.figure,
    r.display || fmtVal(r.value, r.unit),
    fmtVal(r.baseValue, r.unit),
    h.fmtRatio(r.ratio),
    r.spread ? `${r.spread[0].toFixed(2)}-${r.spread[1].toFixed(2)}` : '',
    r.target || '',
  ]);
  console.log('');
  console.log(`uplink queue benchmark · node ${process.version} · ${os.cpus().length} cpus · ${opts.quick ? 'quick · ' : ''}${totalS.toFixed(0)} s`);
  console.log(h.table(['#', 'figure', 'ours', 'baseline', 'ratio', 'spread', 'target'], rows));
  console.log('');
  for (const r of ctx.rows) console.log(`${r.id.padEnd(4)} baseline: ${r.baseline}${r.note ? ` · ${r.note}` : ''}`);
  for (const s of skipped) console.log(`skipped ${s}`);
  for (const f of failed) console.log(`FAILED to run ${f}`);

  const out = {
    when: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    quick: opts.quick,
    durationS: totalS,
    figures: ctx.rows,
    skipped,
    failed,
  };
  fs.mkdirSync(path.dirname(opts.json), { recursive: true });
  fs.writeFileSync(opts.json, JSON.stringify(out, null, 2));
  console.log(`\nresults: ${opts.json}`);
  return failed.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    killChildren();
    process.exitCode = 2;
  },
);
