'use strict';
// Figure 12: what the device monitor costs a device that has nothing to do. Two real `node-red` processes run the
// same pipeline (test-pattern capture -> offline queue -> S3 uploader, a connectivity node probing the store, which is
// s3rver in a process of its own); one of them also runs a device monitor node with its health and metrics paths on.
// After one capture each has uploaded, both idle. In rotating windows, one process is measured at a time: its CPU
// time (utime + stime from /proc/<pid>/stat), its resident memory (VmRSS) and what it wrote to disk (write_bytes from
// /proc/<pid>/io: bytes sent to the block layer, so SQLite's WAL and fsyncs count, sockets do not). While the monitored
// process is measured it is scraped the way Prometheus and an uptime checker would: GET /uplink/metrics and GET
// /uplink/health every 1.5 s, ten times as often as the 15 s a Prometheus would normally scrape, so that the cost shows
// in a window of seconds. The monitored process is also measured in windows without scrapes (the monitor by itself).
// The baseline has no monitor node: nothing to scrape.
const fs = require('fs');
const path = require('path');
const { fork } = require('child_process');
const h = require('./helpers');

const FIGURE = 'monitor: idle device, health + metrics scraped every 1.5 s';
const SCRAPE_EVERY_MS = 1500;
const CLK_TCK = 100; // Linux's USER_HZ: /proc/<pid>/stat counts CPU time in 1/100 s on every architecture Node runs on
const PROMETHEUS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** The device monitor as a user would deploy it: both paths on, the default thresholds. */
const MONITOR = {
  id: 'bench-monitor',
  type: 'uplink-monitor',
  z: 'bench-tab',
  name: 'device monitor',
  health: true,
  metrics: true,
  x: 200,
  y: 200,
  wires: [[]],
};

function pipeline(s3Port, withMonitor) {
  const flow = [
    { id: 'bench-tab', type: 'tab', label: 'pipeline' },
    {
      id: 'bench-s3', type: 'uplink-s3-config', name: 'bucket', endpoint: `http://127.0.0.1:${s3Port}`, region: 'us-east-1', bucket: 'uplink-bench',
      forcePathStyle: true, concurrency: 2, timeout: 10,
    },
    { id: 'bench-once', type: 'inject', z: 'bench-tab', name: 'capture once', props: [{ p: 'payload' }], once: true, onceDelay: 0.5, repeat: '', payload: '', payloadType: 'date', x: 100, y: 100, wires: [['bench-capture']] },
    { id: 'bench-capture', type: 'uplink-capture', z: 'bench-tab', name: 'capture', camera: 'bench', source: 'test-pattern', patternWidth: 640, patternHeight: 360, minFreeMB: 0, x: 250, y: 100, wires: [['bench-queue']] },
    { id: 'bench-queue', type: 'uplink-offline-queue', z: 'bench-tab', name: 'queue', db: '', concurrency: 2, startOffline: true, x: 400, y: 100, wires: [['bench-upload'], [], []] },
    { id: 'bench-upload', type: 'uplink-uploader', z: 'bench-tab', name: 'upload', backend: 's3', s3: 'bench-s3', keyTemplate: '{camera}/{id}.{ext}', x: 550, y: 100, wires: [['bench-queue', 'bench-conn'], ['bench-queue', 'bench-conn']] },
    // The shipped flows' probe schedule: every 30 s while online.
    { id: 'bench-conn', type: 'uplink-connectivity', z: 'bench-tab', name: 'store reachable?', probeType: 'target', targetType: 's3', s3: 'bench-s3', timeout: 3, interval: 30, offlineMin: 1, offlineMax: 15, failures: 2, gate: false, outputs: 1, x: 400, y: 200, wires: [['bench-queue']] },
  ];
  return withMonitor ? [...flow, MONITOR] : flow;
}

/** CPU time (ms), resident memory (KB) and bytes written to disk so far by process `pid`. */
function sample(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK; // utime, stime (fields 14, 15)
  const rss = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  const wb = /^write_bytes:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'));
  return { at: h.now(), cpuMs, rssKB: rss ? Number(rss[1]) : NaN, writeBytes: wb ? Number(wb[1]) : NaN };
}

function startS3(directory, registerChild) {
  fs.mkdirSync(directory, { recursive: true });
  const child = fork(path.join(__dirname, 's3rver-child.js'), [directory], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  const unregister = registerChild(child);
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve(undefined);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        unregister();
        resolve(undefined);
      });
      child.send('stop');
    });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('s3rver did not start within 20 s'));
    }, 20_000);
    child.once('message', (m) => {
      clearTimeout(timer);
      resolve({ port: /** @type {{ port: number }} */ (m).port, stop });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver child exited with code ${code}`));
    });
  });
}

async function getStats(red) {
  const r = await fetch(`${red.url}/uplink/queue/bench-queue/stats`, { signal: AbortSignal.timeout(5000) });
  return r.status === 200 ? r.json() : null;
}

async function monitorIdle(ctx) {
  const { startNodeRed } = require('../test/support/node-red-process');
  const quick = ctx.quick;
  const windowS = quick ? 15 : 40;
  const rounds = quick ? 2 : 3;
  const dir = h.tempDir('monitor');
  const s3 = await startS3(path.join(dir, 's3'), ctx.registerChild);
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
  const reds = {};
  const problems = [];
  try {
    for (const [name, withMonitor] of /** @type {[string, boolean][]} */ ([['ours', true], ['bare', false]])) {
      const userDir = path.join(dir, name);
      fs.mkdirSync(userDir);
      const red = await startNodeRed({ userDir, flows: pipeline(s3.port, withMonitor), env, startTimeoutMs: 60_000 });
      ctx.registerChild(red.process);
      reds[name] = red;
    }
    // Each uploads its one capture, then has nothing to do.
    for (const [name, red] of Object.entries(reds)) {
      const end = Date.now() + 60_000;
      let s = null;
      while (Date.now() < end) {
        s = await getStats(red).catch(() => null);
        if (s && s.uploaded >= 1 && s.pending === 0 && s.inFlight === 0) break;
        await h.sleep(250);
      }
      if (!s || s.uploaded < 1) throw new Error(`${name}: the capture was not uploaded: ${JSON.stringify(s)}\n${red.logs().slice(-2000)}`);
    }
    const health = await fetch(`${reds.ours.url}/uplink/health`, { signal: AbortSignal.timeout(5000) });
    const metrics = await fetch(`${reds.ours.url}/uplink/metrics`, { headers: { accept: PROMETHEUS_ACCEPT }, signal: AbortSignal.timeout(5000) });
    const metricsText = await metrics.text();
    if (health.status !== 200 || metrics.status !== 200 || !/uplink_queue_uploaded_total/.test(metricsText)) {
      throw new Error(`the monitor does not answer: health ${health.status}, metrics ${metrics.status}`);
    }
    const bareMetrics = await fetch(`${reds.bare.url}/uplink/metrics`, { signal: AbortSignal.timeout(5000) });
    if (bareMetrics.status !== 404) problems.push(`the baseline answers /uplink/metrics with ${bareMetrics.status}`);
    ctx.log(`  metrics answer: ${metricsText.length} bytes, ${metricsText.split('\n').filter((l) => l && !l.startsWith('#')).length} samples`);
    // Past start-up work (first stats, first probe, the garbage collector catching up with loading Node-RED).
    await h.sleep(quick ? 10_000 : 20_000);

    // The counter counts: what each wrote while starting, storing and uploading its one capture.
    const startWrites = Object.fromEntries(Object.entries(reds).map(([name, red]) => [name, sample(red.pid).writeBytes]));
    // Three kinds of window, in rotating order: the monitored process scraped, the same process left alone (what the
    // monitor costs by itself: its own look every 15 s), and the baseline.
    const VARIANTS = { scraped: 'ours', quiet: 'ours', bare: 'bare' };
    const kinds = Object.keys(VARIANTS);
    /** @type {Record<string, { cpuMsPerMin: number, rssMB: number, writeKBPerMin: number, writeBytes: number }[]>} */
    const per = { scraped: [], quiet: [], bare: [] };
    let scrapes = 0;
    for (let r = 0; r < rounds; r++) {
      if (r >= 2 && Date.now() > ctx.deadline) break;
      for (let k = 0; k < kinds.length; k++) {
        const kind = kinds[(k + r) % kinds.length];
        const red = reds[VARIANTS[kind]];
        const a = sample(red.pid);
        const end = a.at + windowS * 1000;
        const rss = [];
        while (h.now() < end) {
          if (kind === 'scraped') {
            const [m, hh] = await Promise.all([
              fetch(`${red.url}/uplink/metrics`, { headers: { accept: PROMETHEUS_ACCEPT, 'accept-encoding': 'gzip' }, signal: AbortSignal.timeout(5000) }),
              fetch(`${red.url}/uplink/health`, { signal: AbortSignal.timeout(5000) }),
            ]);
            await Promise.all([m.arrayBuffer(), hh.arrayBuffer()]);
            if (m.status !== 200 || hh.status !== 200) problems.push(`scrape answered ${m.status}/${hh.status}`);
            scrapes++;
          }
          rss.push(sample(red.pid).rssKB);
          await h.sleep(Math.min(SCRAPE_EVERY_MS, Math.max(0, end - h.now())));
        }
        const b = sample(red.pid);
        const minutes = (b.at - a.at) / 60_000;
        const w = { cpuMsPerMin: (b.cpuMs - a.cpuMs) / minutes, rssMB: h.median(rss) / 1024, writeKBPerMin: (b.writeBytes - a.writeBytes) / 1024 / minutes, writeBytes: b.writeBytes - a.writeBytes };
        per[kind].push(w);
        ctx.log(`  round ${r + 1} ${kind}: CPU ${w.cpuMsPerMin.toFixed(1)} ms/min, RSS ${w.rssMB.toFixed(1)} MB, disk writes ${w.writeBytes} bytes in ${windowS} s`);
      }
    }

    const med = (kind, key) => h.median(per[kind].map((w) => w[key]));
    const spread = (kind, key) => {
      const xs = per[kind].map((w, i) => w[key] / per.bare[i][key]).filter(Number.isFinite);
      return xs.length > 1 ? [Math.min(...xs), Math.max(...xs)] : null;
    };
    const ratio = (kind, key) => (med('bare', key) > 0 ? med(kind, key) / med('bare', key) : NaN);
    const baseline = 'the same pipeline in another node-red, no monitor node, in rotating windows';
    const n = per.scraped.length;
    const scrapesPerMin = 60_000 / SCRAPE_EVERY_MS;
    const perScrapeMs = (med('scraped', 'cpuMsPerMin') - med('quiet', 'cpuMsPerMin')) / scrapesPerMin;
    const core = (msPerMin) => `${h.fmtNum(msPerMin, msPerMin < 10 ? 1 : 0)} ms/min (${((msPerMin / 60_000) * 100).toFixed(2)} % of a core)`;
    const note =
      `${n} rounds of ${windowS} s windows, rotating; ${scrapes} scrapes (GET /uplink/metrics + /uplink/health) every 1.5 s, 15 s compressed 10x: ` +
      `about ${h.fmtNum(perScrapeMs, 1)} ms of CPU per scrape, ${h.fmtNum(perScrapeMs * 4 + med('quiet', 'cpuMsPerMin'), 0)} ms/min at a 15 s scrape; CPU time has 10 ms ticks` +
      `${problems.length ? `; PROBLEMS: ${problems.slice(0, 3).join('; ')}` : ''}`;
    const bytesNote = (kind) => per[kind].map((w) => w.writeBytes).join(', ');
    ctx.rows.push(
      { id: '12a', figure: `${FIGURE}: CPU`, value: med('scraped', 'cpuMsPerMin'), unit: 'ms/min', display: core(med('scraped', 'cpuMsPerMin')), baseline, baseValue: med('bare', 'cpuMsPerMin'), ratio: ratio('scraped', 'cpuMsPerMin'), spread: spread('scraped', 'cpuMsPerMin'), target: '', note },
      { id: '12b', figure: '  same, not scraped: CPU', value: med('quiet', 'cpuMsPerMin'), unit: 'ms/min', display: core(med('quiet', 'cpuMsPerMin')), baseline, baseValue: med('bare', 'cpuMsPerMin'), ratio: ratio('quiet', 'cpuMsPerMin'), spread: spread('quiet', 'cpuMsPerMin'), target: '', note: 'the monitored process in windows without scrapes: the monitor by itself' },
      { id: '12c', figure: '  scraped: resident memory', value: med('scraped', 'rssMB'), unit: 'MB', baseline, baseValue: med('bare', 'rssMB'), ratio: ratio('scraped', 'rssMB'), spread: spread('scraped', 'rssMB'), target: '', note: 'median VmRSS over each window (prom-client, its default metrics, the board)' },
      {
        id: '12d', figure: '  scraped: disk writes', value: med('scraped', 'writeKBPerMin'), unit: 'KB/min', baseline, baseValue: med('bare', 'writeKBPerMin'),
        ratio: ratio('scraped', 'writeKBPerMin'), spread: null, target: '0 extra',
        display: `${h.fmtNum(med('scraped', 'writeKBPerMin'), 1)} KB/min`,
        note: `write_bytes per window: scraped ${bytesNote('scraped')}; not scraped ${bytesNote('quiet')}; baseline ${bytesNote('bare')} (while starting and uploading one capture: ${startWrites.ours} and ${startWrites.bare} bytes)`,
      },
    );
  } finally {
    for (const red of Object.values(reds)) await red.stop().catch(() => undefined);
    await s3.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** @type {import('./helpers').Figure[]} */
const FIGURES = [['12', FIGURE, monitorIdle]];

module.exports = { FIGURES };

// Run alone: node bench/monitor.js [--quick]
if (require.main === module) {
  const quick = process.argv.includes('--quick');
  const ctx = { rows: [], quick, deadline: Date.now() + 900_000, log: (s) => process.stderr.write(`${s}\n`), registerChild: () => () => {} };
  monitorIdle(ctx)
    .then(() => {
      for (const r of ctx.rows) {
        console.log(`${r.id} ${r.figure}: ${r.display || `${h.fmtNum(r.value, 2)} ${r.unit}`} vs ${h.fmtNum(r.baseValue, 2)} ${r.unit} = ${h.fmtRatio(r.ratio)}${r.spread ? ` (spread ${r.spread[0].toFixed(2)}-${r.spread[1].toFixed(2)})` : ''}; ${r.note}`);
      }
    })
    .catch((e) => {
      console.error(e && e.stack ? e.stack : e);
      process.exitCode = 1;
    })
    .finally(() => h.removeTempDirs());
}
