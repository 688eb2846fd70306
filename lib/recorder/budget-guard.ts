import fs from 'fs';
import { BudgetPlan, planBudget } from './budget';
import { RecorderBudget } from './config';
import { SegmentStore } from './store';

/** Where the guard tells what it did. */
export interface BudgetReport {
  log(text: string): void;
  warn(text: string): void;
  /** A change worth telling a dashboard: dropped, paused, resumed. */
  event(event: 'dropped' | 'paused' | 'resumed', reason?: string): void;
}

/** What the guard decided: recording may go on (perhaps again, after a pause), or must pause, and why. */
export type BudgetVerdict = { pause: false; resumed: boolean } | { pause: true; text: string };

/**
 * Keeps the recordings within their budget and the disk's free space, by the plan planBudget makes: deletes uploaded
 * segments (oldest first), drops unsent ones only under "drop oldest unsent", else says recording must pause until
 * uploads make room. What stops and starts ffmpeg is the supervisor's.
 */
export class BudgetGuard {
  /** Paused for want of room; recording starts again once a check finds some. */
  paused = false;
  budgetBytes: number | undefined;
  freeBytes: number | undefined;
  /** Segments deleted before upload under "drop oldest unsent", and uploaded ones deleted, since deploy. */
  dropped = 0;
  deleted = 0;
  /** The bytes of the files in the state folder (the segment being written, leftovers), and when they were counted. */
  private working: { bytes: number; atMs: number } | undefined;

  /**
   * @param recountMs how long a count of the state folder's files serves checks that do not ask for a new one
   */
  constructor(
    private readonly folder: string,
    private readonly budget: RecorderBudget,
    private readonly store: SegmentStore,
    private readonly report: BudgetReport,
    private readonly recountMs = 15_000,
  ) {}

  /**
   * `recount`: false for the check after each segment, which may take the state folder's files as counted within
   * recountMs (a readdir and a stat each time, for the segment ffmpeg has just begun, which the headroom covers
   * anyway). Files left behind appear when a run ends, whose check counts anew, as does any check that finds the
   * budget exceeded before it deletes anything.
   */
  async check(recount = true): Promise<BudgetVerdict> {
    let p = await this.plan(recount);
    if (p.overBytes > 0) {
      // Before deleting anything, forget files someone else removed (the queue deletes uploaded files), and count
      // the state folder's anew.
      await this.store.refresh();
      p = await this.plan(true);
    }
    if (p.deleteUploaded.length > 0) {
      const gone = await this.store.remove(p.deleteUploaded, 'budget');
      this.deleted += gone.length;
      if (gone.length > 0) this.report.log(`disk budget: deleted ${gone.length} uploaded segment${gone.length > 1 ? 's' : ''} (oldest first)`);
    }
    if (p.dropUnsent.length > 0) {
      const gone = await this.store.remove(p.dropUnsent, 'dropped');
      this.dropped += gone.length;
      this.report.warn(`disk budget reached: deleted ${gone.length} segment${gone.length > 1 ? 's' : ''} not uploaded yet (oldest first: ${gone.map((s) => s.file).join(', ')})`);
      this.report.event('dropped', `${gone.length} segments not uploaded were deleted`);
    }
    if (p.pause) {
      const text = `disk budget reached: ${p.unsent} segment${p.unsent === 1 ? '' : 's'} not uploaded`;
      if (!this.paused) {
        this.paused = true;
        this.report.warn(`${text}; recording paused until uploads make room (uploaded segments are deleted first)`);
        this.report.event('paused', text);
      }
      return { pause: true, text };
    }
    if (this.paused) {
      this.paused = false;
      this.report.log('disk budget: room again, recording resumes');
      this.report.event('resumed');
      return { pause: false, resumed: true };
    }
    return { pause: false, resumed: false };
  }

  private async plan(recount: boolean): Promise<BudgetPlan> {
    const b = this.budget;
    const now = performance.now();
    const counted = !recount && this.working !== undefined && now - this.working.atMs < this.recountMs ? this.working.bytes : undefined;
    // Both at once: one wake of the event loop instead of two.
    const [fsStat, workingBytes] = await Promise.all([fs.promises.statfs(this.folder), counted ?? this.store.workingBytes()]);
    if (counted === undefined) this.working = { bytes: workingBytes, atMs: now };
    this.freeBytes = fsStat.bavail * fsStat.bsize;
    this.budgetBytes = b.bytes ?? (b.percent !== undefined ? Math.floor((fsStat.blocks * fsStat.bsize * b.percent) / 100) : Infinity);
    const { items, pendingBytes } = this.store.budgetItems();
    const recent = this.store.recentBytes(10);
    // Room for the segment being written and the next one, sized like the recent ones.
    const headroom = 2 * Math.max(0, ...recent) * (this.paused ? 2 : 1);
    return planBudget({
      items,
      otherBytes: pendingBytes + workingBytes,
      limitBytes: this.budgetBytes,
      freeBytes: this.freeBytes,
      keepFreeBytes: b.keepFreeBytes,
      headroomBytes: headroom,
      policy: b.policy,
    });
  }
}
