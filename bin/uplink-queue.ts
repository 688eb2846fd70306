#!/usr/bin/env node
/**
 * uplink-queue: look at and repair an Uplink queue database from a shell, while Node-RED keeps running.
 * Every change is one SQLite transaction; the running queue node notices it within a second.
 */
import fs from 'fs';
import path from 'path';
import { ITEM_STATES, ItemState, QueueStore } from '../lib/queue/store';
import { fmtBytes } from '../lib/util/format';

const USAGE = `usage: uplink-queue <command> <database> [options]

commands:
  stats                     counts by state, bytes, oldest pending item, totals
  list                      items, oldest first   [--state dead,expired] [--limit 50] [--after ID]
  retry-failed              queue failed and expired items again   [--id N ...]
  purge-failed              delete failed and expired items   [--id N ...] [--delete-files]
  pause | resume            stop or restart delivery (the running node follows)

options:
  --json                    machine-readable output
  -h, --help                this text

example: uplink-queue stats ~/.node-red/uplink/queue.db`;

interface Args {
  command?: string;
  db?: string;
  json: boolean;
  ids: number[];
  states?: ItemState[];
  limit: number;
  after: number;
  deleteFiles: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { json: false, ids: [], limit: 50, after: 0, deleteFiles: false };
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
    } else if (v === '--limit') a.limit = Math.max(1, Number(next()) || 50);
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
  if (!['stats', 'list', 'retry-failed', 'purge-failed', 'pause', 'resume'].includes(args.command)) {
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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`uplink-queue: ${e.message}\n`);
    process.exit(1);
  },
);
