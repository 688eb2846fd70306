export type BudgetPolicy = 'keep-unsent' | 'drop-oldest-unsent';

/** A recording the budget may delete: oldest first in the list it is given. */
export interface BudgetItem {
  id: string;
  bytes: number;
  /** Uploaded (the uploader said so): deleting it loses nothing. */
  uploaded: boolean;
}

export interface BudgetInput {
  /** The recordings on disk, oldest first. */
  items: BudgetItem[];
  /** Bytes the recorder holds besides them (the segment being written, unreadable leftovers set aside). */
  otherBytes: number;
  /** Most the recordings may take, in bytes (Infinity: no limit besides free space). */
  limitBytes: number;
  /** Free space on the disk now. */
  freeBytes: number;
  /** Free space that must always remain. */
  keepFreeBytes: number;
  /** Room kept for what is coming: the segment being written and the next one. */
  headroomBytes: number;
  policy: BudgetPolicy;
}

export interface BudgetPlan {
  /** Uploaded recordings to delete, oldest first. */
  deleteUploaded: string[];
  /** Recordings not yet uploaded to delete (only under drop-oldest-unsent), oldest first. */
  dropUnsent: string[];
  /** Deleting everything allowed is still not enough: recording must wait. */
  pause: boolean;
  /** Bytes over the budget before any deletion (0 when within it). */
  overBytes: number;
  /** Recordings on disk that are not uploaded yet (after the planned deletions). */
  unsent: number;
}

/**
 * Chooses what to delete so the recordings stay within their budget and the disk keeps its free space, with room for
 * the segment being written: uploaded recordings first, oldest first; recordings not yet uploaded only when the
 * policy says to drop them; otherwise recording pauses until uploads (or a person) make room.
 */
export function planBudget(input: BudgetInput): BudgetPlan {
  const used = input.items.reduce((a, i) => a + i.bytes, 0) + input.otherBytes;
  const overLimit = used + input.headroomBytes - input.limitBytes;
  const overFree = input.keepFreeBytes + input.headroomBytes - input.freeBytes;
  const over = Math.max(0, overLimit, overFree);
  const plan: BudgetPlan = { deleteUploaded: [], dropUnsent: [], pause: false, overBytes: over, unsent: input.items.filter((i) => !i.uploaded).length };
  if (over <= 0) return plan;
  let freed = 0;
  for (const item of input.items) {
    if (freed >= over) break;
    if (!item.uploaded) continue;
    plan.deleteUploaded.push(item.id);
    freed += item.bytes;
  }
  if (freed < over && input.policy === 'drop-oldest-unsent') {
    for (const item of input.items) {
      if (freed >= over) break;
      if (item.uploaded) continue;
      plan.dropUnsent.push(item.id);
      freed += item.bytes;
    }
    plan.unsent -= plan.dropUnsent.length;
  }
  plan.pause = freed < over;
  return plan;
}
