import path from 'path';
import { DEFAULT_POLICY, QueuePolicy } from './store';
import { SettingsReader, text } from '../util/settings';

export interface QueueConfig {
  dbFile: string;
  /** The default location may be created; a path the user typed must already exist (a missing mount is an error). */
  createFolder: boolean;
  synchronous: 'FULL' | 'NORMAL';
  concurrency: number;
  maxInlineBytes: number;
  statsIntervalMs: number;
  startOnline: boolean;
  /** Files may be deleted by the retention policy only inside this folder. */
  deleteFolder?: string;
  policy: QueuePolicy;
  /** Names the queue in the messages it delivers (msg.uplink.item.queue); the database file when not set. */
  token?: string;
}

export const DEFAULT_DB = 'uplink/queue.db';

type Raw = Record<string, unknown>;

/**
 * Reads the editor's settings into a typed configuration, once, at deploy. Every problem is collected so the user
 * sees them all at once. Sizes are in the units the editor shows (MB, seconds, days).
 */
export function parseQueueConfig(raw: Raw, userDir: string): QueueConfig {
  const r = new SettingsReader(raw);
  const num = (key: string, label: string, def: number, min: number, max: number, integer = true) => r.num(key, label, def, min, max, { integer });
  const choice = r.choice.bind(r);

  const dbRaw = text(raw.db);
  const dbFile = path.resolve(userDir, dbRaw === '' ? DEFAULT_DB : dbRaw);
  if (dbRaw.endsWith('/') || dbRaw.endsWith(path.sep)) r.error(`Database must be a file path, not a folder ("${dbRaw}")`);

  const concurrency = num('concurrency', 'Concurrency', 2, 1, 64);
  const defaultPriority = num('defaultPriority', 'Default priority', DEFAULT_POLICY.defaultPriority, 0, 1000);
  const maxAttempts = num('maxAttempts', 'Max attempts', DEFAULT_POLICY.maxAttempts, 0, 1_000_000);
  const baseS = num('backoffBase', 'Backoff base', DEFAULT_POLICY.backoff.baseMs / 1000, 0.1, 3600, false);
  const capS = num('backoffCap', 'Backoff cap', DEFAULT_POLICY.backoff.capMs / 1000, 0.1, 86400, false);
  if (capS < baseS) r.error(`Backoff cap (${capS} s) must not be below the backoff base (${baseS} s)`);
  const leaseS = num('lease', 'Lease', DEFAULT_POLICY.leaseMs / 1000, 1, 86400, false);
  const ttlH = num('ttl', 'Expire after', 0, 0, 24 * 3650, false);
  const maxItems = num('maxItems', 'Max items', 0, 0, 100_000_000);
  const maxMB = num('maxMB', 'Max size', 0, 0, 16 * 1024 * 1024, false);
  const whenFull = choice('whenFull', 'When full', ['reject', 'drop-oldest'] as const, 'reject');
  const maxInlineKB = num('maxInlineKB', 'Max inline payload', 1024, 1, 256 * 1024, false);
  const fileRetention = choice('fileRetention', 'Files after upload', ['keep', 'delete-on-ack', 'delete-after-days'] as const, 'keep');
  const keepDays = num('keepDays', 'Keep uploaded files', 7, 0, 3650, false);
  const keepDoneH = num('keepDoneHours', 'Keep history', 24, 0, 24 * 365, false);
  const synchronous = choice('synchronous', 'Durability', ['FULL', 'NORMAL'] as const, 'FULL');
  const largeMB = num('largeMB', 'Large items above', 16, 0, 1024 * 1024, false);
  const largeConcurrency = num('largeConcurrency', 'Large items at once', 1, 1, 16);
  const statsS = num('statsInterval', 'Stats interval', 1, 0.1, 3600, false);
  const deleteRaw = text(raw.deleteFolder);
  if (fileRetention !== 'keep' && deleteRaw === '') {
    r.error('Deleting uploaded files needs "Only files in": the folder the files are written to (the queue deletes nothing outside it)');
  }

  r.check();
  return {
    dbFile,
    // Inside the Node-RED user folder a missing folder is ours to make; an absolute path elsewhere (a USB disk) must
    // already exist, or a missing mount would silently fill the SD card instead.
    createFolder: dbRaw === '' || !path.isAbsolute(dbRaw),
    synchronous,
    concurrency,
    maxInlineBytes: Math.round(maxInlineKB * 1024),
    statsIntervalMs: Math.round(statsS * 1000),
    startOnline: raw.startOffline !== true,
    deleteFolder: deleteRaw === '' ? undefined : path.resolve(userDir, deleteRaw),
    policy: {
      defaultPriority,
      maxAttempts,
      backoff: { baseMs: Math.round(baseS * 1000), capMs: Math.round(capS * 1000) },
      leaseMs: Math.round(leaseS * 1000),
      ttlMs: Math.round(ttlH * 3600_000),
      maxItems,
      maxBytes: Math.round(maxMB * 1024 * 1024),
      whenFull,
      keepDoneMs: Math.round(keepDoneH * 3600_000),
      fileRetention,
      keepFilesMs: Math.round(keepDays * 86400_000),
      largeItemBytes: Math.round(largeMB * 1024 * 1024),
      largeConcurrency,
    },
  };
}
