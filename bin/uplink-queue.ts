#!/usr/bin/env node
/**
 * uplink-queue: look at and repair an Uplink queue database from a shell, while Node-RED keeps running.
 * Every change is one SQLite transaction; the running queue node notices it within a second.
 */
import fs from 'fs';
import path from 'path';
import { ITEM_STATES, ItemState, QueueStore } from '../lib/queue/store';
import { fmtBytes } from '../lib/util/format';
import { OutageLog, OutageSummary } from '../lib/connectivity/outage-log';

const USAGE = `usage: uplink-queue <command> <database> [options]

commands:
  stats                     counts by state, bytes, oldest pending item, totals
  list                      items, oldest first   [--state dead,expired] [--limit 50] [--after ID]
  retry-failed              queue failed and expired items again   [--id N ...]
  purge-failed              delete failed and expired items   [--id N ...] [--delete-files]
  pause | resume            stop or restart delivery (the running node follows)
  outages                   of an outage log (a connectivity node's): the longest outages and offline time per day
                            [--days 30] [--limit 10]

options:
  --json                    machine-readable output
  -h, --help                this text

examples: uplink-queue stats ~/.node-red/uplink/queue.db
          uplink-queue outages ~/.node-red/uplink/outages.db --days 7`;

interface Args {
  command?: string;
  db?: string;
  json: boolean;
  ids: number[];
  states?: ItemState[];
  limit: number;
  after: number;
  deleteFiles: boolean;
  days: number;
  limitGiven: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { json: false, ids: [], limit: 50, after: 0, deleteFiles: false, days: 30, limitGiven: false };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    const next = (): string => {
      const n = argv[++i];
      if (n === undefined) throw new Error(`${v} needs a value`);
      return n;
    };
    if (v === '--json') a.json = true;
    else if (v === '--delete-files') a.deleteFiles = true;
    else if (v === '--id') {
      const n = Number(next());
      if (!Number.isInteger(n) || n <= 0) throw new Error('--id needs a whole number above 0');
      a.ids.push(n);
    } else if (v === '--state') {
      const states = next().split(',').map((s) => s.trim()) as ItemState[];
      const bad = states.filter((s) => !ITEM_STATES.includes(s));
      if (bad.length) throw new Error(`unknown state ${bad.join(', ')} (states: ${ITEM_STATES.join(', ')})`);
      a.states = states;
    } else if (v === '--limit') {
      a.limit = Math.max(1, Number(next()) || 50);
      a.limitGiven = true;
    } else if (v === '--days') {
      const n = Number(next());
      if (!Number.isFinite(n) || n <= 0 || n > 3650) throw new Error('--days needs a number of days from 1 to 3650');
      a.days = n;
    }
    else if (v === '--after') a.after = Math.max(0, Number(next()) || 0);
    else if (v === '-h' || v === '--help') a.command = 'help';
    else if (v.startsWith('-')) throw new Error(`unknown option ${v}`);
    else rest.push(v);
  }
  if (!a.command) a.command = rest[0];
  a.db = rest[a.command === rest[0] ? 1 : 0];
  return a;
}

async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`uplink-queue: ${(e as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.command === 'help' || !args.command) {
    process.stdout.write(USAGE + '\n');
    return args.command ? 0 : 2;
  }
  if (!['stats', 'list', 'retry-failed', 'purge-failed', 'pause', 'resume', 'outages'].includes(args.command)) {
    process.stderr.write(`uplink-queue: unknown command "${args.command}"\n\n${USAGE}\n`);
    return 2;
  }
  if (!args.db) {
    process.stderr.write(`uplink-queue: which database? (for example ~/.node-red/uplink/queue.db)\n`);
    return 2;
  }
  const file = path.resolve(args.db);
  if (!fs.existsSync(file)) {
    process.stderr.write(`uplink-queue: ${file} does not exist\n`);
    return 1;
  }
  if (args.command === 'outages') return outages(file, args);
  // Not the delivering process: leases stay as they are, and the node's lock is not taken.
  const store = await QueueStore.open(file, {}, { recoverLeases: false, owner: 'uplink-queue' });
  const out = (human: string, data: unknown): void => {
    process.stdout.write((args.json ? JSON.stringify(data, null, 2) : human) + '\n');
  };
  try {
    const ids = args.ids.length ? args.ids : undefined;
    switch (args.command) {
      case 'stats': {
        const s = await store.stats();
        const paused = (await store.getMeta('paused')) === 'true';
        const c = s.counts;
        const age = s.oldestQueuedAt === null ? '-' : `${Math.round((Date.now() - s.oldestQueuedAt) / 1000)} s`;
        out(
          [
            `database     ${file}`,
            `delivery     ${paused ? 'paused' : 'running'}`,
            `pending      ${c.pending.n + c.waiting.n} (${c.waiting.n} backing off), ${fmtBytes(c.pending.bytes + c.waiting.bytes)}`,
            `in flight    ${c.leased.n}`,
            `failed       ${c.dead.n} (+${c.expired.n} expired)`,
            `oldest       ${age}`,
            `uploaded     ${s.totals.done} since the database was created (${s.totals.dropped} dropped when full)`,
          ].join('\n'),
          { file, paused, ...s },
        );
        break;
      }
      case 'list': {
        const rows = await store.list({ states: args.states, limit: args.limit, afterId: args.after });
        const lines = rows.map(
          (r) =>
            `${String(r.id).padStart(7)}  ${r.state.padEnd(8)} p${r.priority}  try ${r.attempts}  ${fmtBytes(r.bytes).padStart(8)}  ` +
            `${new Date(r.createdAt).toISOString()}  ${r.file ?? '(inline)'}${r.lastError ? `\n         last error: ${r.lastError}` : ''}`,
        );
        out(lines.length ? lines.join('\n') : '(no items)', rows);
        break;
      }
      case 'retry-failed': {
        const n = await store.retryFailed(ids);
        out(`${n} items queued again`, { retried: n });
        break;
      }
      case 'purge-failed': {
        const r = await store.purgeFailed(ids);
        let deleted = 0;
        if (args.deleteFiles) {
          for (const f of r.files) {
            try {
              fs.unlinkSync(f);
              deleted++;
            } catch {
              /* already gone */
            }
          }
        }
        out(`${r.count} items purged${args.deleteFiles ? `, ${deleted} files deleted` : ' (their files are kept)'}`, { purged: r.count, filesDeleted: deleted });
        break;
      }
      case 'pause':
      case 'resume':
        await store.setMeta('paused', String(args.command === 'pause'));
        out(`delivery ${args.command === 'pause' ? 'paused' : 'resumed'}`, { paused: args.command === 'pause' });
        break;
    }
    return 0;
  } finally {
    await store.close();
  }
}

const duration = (ms: number): string => {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
};

/** The outage log, read only: the longest outages and the offline time per day. */
async function outages(file: string, args: Args): Promise<number> {
  const log = await OutageLog.open(file, { readOnly: true });
  let s: OutageSummary;
  try {
    s = await log.summary({ days: args.days, top: args.limitGiven ? args.limit : 10 });
  } finally {
    await log.close();
  }
  if (args.json) {
    process.stdout.write(JSON.stringify({ file, days: args.days, ...s }, null, 2) + '\n');
    return 0;
  }
  const when = (t: number) => new Date(t).toLocaleString('sv-SE').slice(0, 19);
  const lines = [`outage log   ${file}`, `last ${args.days} days: ${s.outages.length} outage${s.outages.length === 1 ? '' : 's'}, ${duration(s.totalOfflineS * 1000)} offline in all`, ''];
  if (s.longest.length) {
    lines.push('longest outages:');
    for (const o of s.longest) {
      lines.push(`  ${when(o.start)}  ${duration(o.durationMs).padStart(14)}${o.end === null ? ' (still offline)' : ''}  ${o.monitor}: ${o.reason}`);
    }
    lines.push('', 'offline per day:');
    for (const d of s.perDay) lines.push(`  ${d.day}  ${duration(d.offlineS * 1000).padStart(14)}  ${d.outages} outage${d.outages === 1 ? '' : 's'}`);
  } else {
    lines.push('no outage in that time');
  }
  process.stdout.write(lines.join('\n') + '\n');
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`uplink-queue: ${e.message}\n`);
    process.exit(1);
  },
);
