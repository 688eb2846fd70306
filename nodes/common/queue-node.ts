import type { Node } from 'node-red';
import type { OfflineQueue } from '../../lib/queue/engine';

/** An offline-queue node at runtime: its queue once the database is open (other nodes find it by node id). */
export interface QueueNode extends Node {
  queue?: OfflineQueue;
  ready?: Promise<OfflineQueue | undefined>;
}
