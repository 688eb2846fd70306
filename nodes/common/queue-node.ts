import type { Node } from 'node-red';
import type { OfflineQueue } from '../../lib/queue/engine';
import type { QueueStats } from '../../lib/queue/status';
import type { Watchers } from './watch';

/** An offline-queue node at runtime: its queue once the database is open (other nodes find it by node id). */
export interface QueueNode extends Node {
  queue?: OfflineQueue;
  ready?: Promise<OfflineQueue | undefined>;
  /** The stats it sends on output 3, as it sends them (a dashboard widget watches these). */
  statsWatchers?: Watchers<QueueStats>;
}
