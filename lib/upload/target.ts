import { Bandwidth, Slots } from './body';
import { StorageBackend } from './types';
import { text } from '../util/settings';
import type { TargetBudget } from './budget';

export interface TargetLimits {
  /** Uploads at once to this target, across every uploader node using it. */
  concurrency: number;
  /** 0 = unlimited. */
  bytesPerSecond: number;
  timeoutMs: number;
}

/**
 * One storage target as a config node owns it: the backend (with its client and kept-alive connections), the
 * concurrency slots and the bandwidth budget that every uploader node using it shares.
 */
export class UploadTarget {
  readonly slots: Slots;
  /** Large items (videos) take these instead: half the slots, at least one, so stills always have the rest. */
  readonly largeSlots: Slots;
  readonly bandwidth: Bandwidth;
  readonly backend: StorageBackend;
  /** The byte budget of a metered link, when the config node sets one. */
  budget?: TargetBudget;

  constructor(make: (bandwidth: Bandwidth) => StorageBackend, readonly limits: TargetLimits) {
    this.slots = new Slots(limits.concurrency);
    this.largeSlots = new Slots(Math.max(1, Math.floor(limits.concurrency / 2)));
    this.bandwidth = new Bandwidth(limits.bytesPerSecond);
    this.backend = make(this.bandwidth);
  }

  /** Counts every byte this target's bodies send into the budget. */
  setBudget(budget: TargetBudget): void {
    this.budget = budget;
    this.bandwidth.meter = (n) => budget.count(n);
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

/** Reads the bandwidth limit field of a config node: "0" or blank = none, else KB/s. */
export function parseBandwidth(raw: unknown): number {
  const v = typeof raw === 'string' ? text(raw) : raw;
  if (v === undefined || v === null || v === '') return 0;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`Bandwidth limit must be a number of KB/s, 0 for none (got "${String(raw)}")`);
  return Math.round(n * 1024);
}
