'use strict';
/**
 * A real Prometheus (Debian's `prometheus` package) on 127.0.0.1 for end-to-end tests, scraping what a test names and
 * evaluating the rule files it gives, plus promtool's checks of rule and config files.
 *
 *   const { startPrometheus, promtool, available, unavailableReason } = require('./support/prometheus');
 *
 *   available() -> boolean; unavailableReason() -> string | null     (print the reason before this.skip())
 *
 *   const prom = await startPrometheus({ targets: ['127.0.0.1:1880'], metricsPath: '/uplink/metrics', ruleFiles });
 *     options: targets (host:port, required), metricsPath ('/metrics'), scrapeInterval ('1s'), evaluationInterval
 *     ('1s'), ruleFiles (paths, copied beside the generated config), basicAuth ({ username, password }) for the scrape,
 *     job ('uplink'), startTimeoutMs (30 s).
 *     prom.url                      'http://127.0.0.1:PORT'
 *     prom.query(promql)            -> the result of an instant query: [{ metric, value: number }]
 *     prom.value(promql)            -> the one sample's value, or null when the query answers none (throws on several)
 *     prom.alerts()                 -> [{ labels, annotations, state: 'pending'|'firing', activeAt, value }]
 *     prom.firing(name)             -> the firing alerts named `name`
 *     prom.targets()                -> the active scrape targets ({ health, lastError, scrapeUrl, ... })
 *     prom.scraped(timeoutMs)       -> resolves once every target has been scraped successfully (the first scrape
 *                                      comes about 5 s after the start: Prometheus sends discovered targets to its
 *                                      scrape manager at most every 5 s)
 *     prom.until(what, fn, opts)    -> polls fn (answers { ok, value }) as http-client's until does
 *     prom.logs()                   -> what Prometheus printed
 *     prom.stop()                   -> SIGTERM, SIGKILL after 10 s; removes its data and config folder
 *
 *   promtool('check', 'rules', file) -> { ok, status, output }   (any promtool arguments)
 *
 * Every wait is bounded. The process never outlives the test process: it is started through `setpriv --pdeathsig KILL`
 * (the kernel kills it when this process dies, even by SIGKILL), and what is left is killed when this process exits.
 */
const { spawn, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { freePort } = require('./node-red-process');
const { until } = require('./http-client');
const { guardedCommand } = require('../../dist/lib/util/child-guard');

const PROMETHEUS = process.env.UPLINK_PROMETHEUS || '/usr/bin/prometheus';
const PROMTOOL = process.env.UPLINK_PROMTOOL || '/usr/bin/promtool';
const STOP_GRACE_MS = 10_000;

/** Prometheus processes still running and their folders: killed and removed at exit, whatever happened to the test. */
const live = new Set();
const ownedDirs = new Set();

function unavailableReason() {
  for (const bin of [PROMETHEUS, PROMTOOL]) {
    if (!fs.existsSync(bin)) return `${bin} is not installed (apt-get install prometheus)`;
  }
  return null;
}

function available() {
  return unavailableReason() === null;
}

/**
 * Runs promtool with `args`; never throws for a failed check (the caller asserts on `ok` and `output`).
 * @param {...string} args
 * @returns {{ ok: boolean, status: number | null, output: string }}
 */
function promtool(...args) {
  const r = spawnSync(PROMTOOL, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error) throw r.error;
  return { ok: r.status === 0, status: r.status, output: `${r.stdout || ''}${r.stderr || ''}` };
}

/** YAML for a string: JSON's double-quoted strings are valid YAML scalars. */
const y = (s) => JSON.stringify(String(s));

/**
 * The scrape configuration, as YAML.
 * @param {{ job: string, targets: string[], metricsPath: string, scrapeInterval: string, evaluationInterval: string,
 *   ruleFiles: string[], basicAuth?: { username: string, password: string } }} c
 */
function configYaml(c) {
  const lines = [
    'global:',
    `  scrape_interval: ${c.scrapeInterval}`,
    `  scrape_timeout: ${c.scrapeInterval}`,
    `  evaluation_interval: ${c.evaluationInterval}`,
    'rule_files:',
    ...(c.ruleFiles.length ? c.ruleFiles.map((f) => `  - ${y(f)}`) : ['  []']),
    'scrape_configs:',
    `  - job_name: ${y(c.job)}`,
    `    metrics_path: ${y(c.metricsPath)}`,
    '    static_configs:',
    `      - targets: [${c.targets.map(y).join(', ')}]`,
  ];
  if (c.basicAuth) lines.push('    basic_auth:', `      username: ${y(c.basicAuth.username)}`, `      password: ${y(c.basicAuth.password)}`);
  return lines.join('\n') + '\n';
}

function removeDir(dir) {
  fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  ownedDirs.delete(dir);
}

function exited(child) {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child, timeoutMs) {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * @param {object} options
 * @param {string[]} options.targets host:port of each target to scrape
 * @param {string} [options.metricsPath]
 * @param {string} [options.scrapeInterval]
 * @param {string} [options.evaluationInterval]
 * @param {string[]} [options.ruleFiles]
 * @param {{ username: string, password: string }} [options.basicAuth]
 * @param {string} [options.job]
 * @param {number} [options.startTimeoutMs]
 */
async function startPrometheus(options) {
  const reason = unavailableReason();
  if (reason) throw new Error(`Prometheus cannot run: ${reason}`);
  if (!options || !Array.isArray(options.targets) || options.targets.length === 0) throw new Error('startPrometheus needs targets');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'uplink-prometheus-'));
  ownedDirs.add(dir);
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  // Rule files are copied beside the config, so a test may hand over a modified copy and clean up nothing else.
  const ruleFiles = (options.ruleFiles || []).map((f, i) => {
    const to = path.join(dir, `rules-${i}-${path.basename(f)}`);
    fs.copyFileSync(f, to);
    return to;
  });
  const configFile = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(
    configFile,
    configYaml({
      job: options.job || 'uplink',
      targets: options.targets,
      metricsPath: options.metricsPath || '/metrics',
      scrapeInterval: options.scrapeInterval || '1s',
      evaluationInterval: options.evaluationInterval || '1s',
      ruleFiles,
      basicAuth: options.basicAuth,
    }),
  );

  let output = '';
  /** @type {import('child_process').ChildProcess | null} */
  let child = null;
  let port = 0;
  const startTimeoutMs = options.startTimeoutMs || 30_000;
  // The port is free when picked but may be taken before Prometheus binds it: a few attempts, each on a new one.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    const args = [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${dataDir}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--storage.tsdb.retention.time=1h',
      '--log.level=warn',
    ];
    const cmd = guardedCommand(PROMETHEUS, args, 'KILL');
    const proc = spawn(cmd.file, cmd.args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    proc.once('exit', () => live.delete(proc));
    const onData = (d) => {
      if (output.length < 200_000) output += d;
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    /** @type {Error | null} */
    let spawnError = null;
    proc.once('error', (e) => {
      spawnError = e;
    });
    try {
      await until(
        `Prometheus on 127.0.0.1:${port} to be ready`,
        async () => {
          if (spawnError || exited(proc)) {
            const e = /** @type {Error & { fatal?: boolean }} */ (new Error(`prometheus exited (${spawnError ? spawnError.message : `code ${proc.exitCode}, signal ${proc.signalCode}`}): ${output.trim().slice(-1500)}`));
            e.fatal = true;
            throw e;
          }
          const r = await fetch(`http://127.0.0.1:${port}/-/ready`, { signal: AbortSignal.timeout(2000) });
          return { ok: r.status === 200, value: r.status };
        },
        { timeoutMs: startTimeoutMs, everyMs: 100 },
      );
      child = proc;
      break;
    } catch (e) {
      proc.kill('SIGKILL');
      await waitExit(proc, 5000);
      const portTaken = /address already in use/.test(output);
      if (!portTaken || attempt >= 3) {
        removeDir(dir);
        throw e;
      }
      output = '';
    }
  }

  const url = `http://127.0.0.1:${port}`;
  const proc = child;

  async function api(pathAndQuery) {
    const r = await fetch(`${url}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000) });
    const body = await r.json();
    if (body.status !== 'success') throw new Error(`Prometheus ${pathAndQuery} answered ${r.status}: ${JSON.stringify(body).slice(0, 500)}`);
    return body.data;
  }

  /** @param {string} promql @returns {Promise<{ metric: Record<string, string>, value: number }[]>} */
  async function query(promql) {
    const data = await api(`/api/v1/query?query=${encodeURIComponent(promql)}`);
    if (data.resultType === 'scalar') return [{ metric: {}, value: Number(data.result[1]) }];
    if (data.resultType !== 'vector') throw new Error(`${promql}: a ${data.resultType}, not an instant vector`);
    return data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
  }

  /** @param {string} promql @returns {Promise<number | null>} */
  async function value(promql) {
    const result = await query(promql);
    if (result.length > 1) throw new Error(`${promql} answers ${result.length} series: ${JSON.stringify(result)}`);
    return result.length ? result[0].value : null;
  }

  /** @returns {Promise<{ labels: Record<string, string>, annotations: Record<string, string>, state: string, activeAt: string, value: string }[]>} */
  async function alerts() {
    return (await api('/api/v1/alerts')).alerts;
  }

  async function firing(name) {
    return (await alerts()).filter((a) => a.labels.alertname === name && a.state === 'firing');
  }

  async function targets() {
    return (await api('/api/v1/targets?state=active')).activeTargets;
  }

  /** @param {number} [timeoutMs] */
  function scraped(timeoutMs = 30_000) {
    return until(
      'every target scraped by Prometheus',
      async () => {
        const t = await targets();
        return { ok: t.length === options.targets.length && t.every((x) => x.health === 'up'), value: t.map((x) => `${x.scrapeUrl}: ${x.health} ${x.lastError}`) };
      },
      { timeoutMs, everyMs: 250 },
    );
  }

  let stopping;
  function stop() {
    stopping ??= (async () => {
      if (!exited(proc)) {
        proc.kill('SIGTERM');
        if (!(await waitExit(proc, STOP_GRACE_MS))) {
          proc.kill('SIGKILL');
          await waitExit(proc, 5000);
        }
      }
      removeDir(dir);
    })();
    return stopping;
  }

  return {
    url,
    port,
    pid: proc.pid,
    configFile,
    ruleFiles,
    query,
    value,
    alerts,
    firing,
    targets,
    scraped,
    until,
    logs: () => output,
    stop,
  };
}

process.on('exit', () => {
  for (const proc of live) {
    try {
      proc.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const dir of ownedDirs) {
    try {
      removeDir(dir);
    } catch {
      /* best effort */
    }
  }
});

module.exports = { startPrometheus, promtool, available, unavailableReason, configYaml };
