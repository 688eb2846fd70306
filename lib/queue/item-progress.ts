/**
 * What an offline queue offers whoever delivers its items: progress kept with an item in its own row (the parts a
 * store confirmed, an upload URL), so that an attempt after a crash, a restart or a lost link continues instead of
 * starting again; a lease kept alive while the bytes move; progress for the stats; and the half uploads of items
 * that left the queue (purged, dropped), for the deliverer to clean up.
 *
 * The queue knows nothing of who delivers or how: `target` names a store in the deliverer's own terms, and the state
 * is plain JSON the queue keeps without reading.
 */
export type ProgressState = Record<string, unknown>;

export interface ItemProgress {
  load(itemId: number, target: string): Promise<ProgressState | undefined>;
  /** Keeps the state durably, with the bytes the store holds so far. */
  save(itemId: number, target: string, state: ProgressState, confirmedBytes: number): Promise<void>;
  clear(itemId: number, target: string): Promise<void>;
  /** Bytes sent in an attempt; keeps its lease alive. */
  progress(itemId: number, attempt: number, sentBytes: number, totalBytes: number): void;
  /** The attempt ended (either way): its progress is no longer shown. */
  finished(itemId: number): void;
  /** States left behind on `target` by items that are no longer in the queue. */
  abandoned(target: string, limit: number): Promise<{ id: number; state: ProgressState }[]>;
  forgetAbandoned(ids: number[]): Promise<void>;
}

/** Finds the queue that delivered an item, by the name it put into `msg.uplink.item.queue`. */
export type QueueFinder = (token: string) => ItemProgress | undefined;
