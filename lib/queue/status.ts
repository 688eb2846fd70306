import { fmtBytes } from '../util/format';
import { StoreStats } from './store';

// What the queue shows: its stats (output 3, the admin endpoint, the dashboard), its node status, and database
// errors in words a person can act on.

export interface QueueStatus {
  fill: 'green' | 'yellow' | 'red';
  shape: 'dot' | 'ring';
  text: string;
}

export interface QueueStats {
  online: boolean;
  paused: boolean;
  /** Why new items are not queued ("not configured: set the bucket", from the connectivity node), or null. */
  notConfigured: string | null;
  /** Items not queued since start because the target was not configured. */
  notQueued: number;
  /** Waiting to go out: ready plus backing off. */
  pending: number;
  ready: number;
  retrying: number;
  inFlight: number;
  failed: number;
  expired: number;
  dropped: number;
  uploaded: number;
  queuedBytes: number;
  oldestPendingAgeS: number | null;
  totals: StoreStats['totals'];
  throughput: { itemsPerMin: number; bytesPerSec: number };
  concurrency: number;
  db: string;
  lastError: string | null;
  /** Why items wait untried (a metered link's byte budget: "budget: 1.8 GB of 2 GB today, …"), or null. */
  held: string | null;
  /** Uploads under way that report progress: bytes sent so far of each (a resumed one counts what was confirmed). */
  uploading: { id: number; bytes: number; sent: number; percent: number }[];
}

export function statusOf(s: QueueStats): QueueStatus {
  if (s.notConfigured) {
    const counts = [s.pending > 0 ? `${s.pending} pending` : '', s.notQueued > 0 ? `${s.notQueued} not queued` : ''].filter((w) => w !== '');
    return { fill: 'yellow', shape: 'ring', text: [s.notConfigured, ...counts].join(' · ').slice(0, 160) };
  }
  const held = [s.online ? '' : 'offline', s.paused ? 'paused' : ''].filter((w) => w !== '');
  let text = `${held.length ? held.join(' · ') : 'online'} · ${s.pending} pending`;
  if (s.inFlight > 0) text += ` · ${s.inFlight} in flight`;
  if (s.failed + s.expired > 0) text += ` · ${s.failed + s.expired} failed`;
  if (s.uploading?.length) text += ` · ${s.uploading.map((u) => `${Math.floor(u.percent)}% of ${fmtBytes(u.bytes)}`).join(', ')}`;
  if (s.held) text += ` · ${s.held}`;
  if (s.lastError) return { fill: 'red', shape: 'ring', text: `${text} · ${s.lastError}`.slice(0, 160) };
  return held.length || s.held ? { fill: 'yellow', shape: 'ring', text } : { fill: 'green', shape: 'dot', text };
}

export function describeDbError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'SQLITE_FULL':
      return 'the disk is full';
    case 'SQLITE_READONLY':
      return 'the database file is read-only';
    case 'SQLITE_IOERR':
      return `disk I/O error (${err.message})`;
    case 'SQLITE_BUSY':
      return 'the database is locked by another process';
    case 'SQLITE_CORRUPT':
    case 'SQLITE_NOTADB':
      return `the database is damaged (${err.message}); restart the flow to move it aside`;
    default:
      return err?.message ?? String(e);
  }
}
