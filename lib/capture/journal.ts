import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { AppendLog } from '../util/append-log';
import type { Metadata } from '../message/metadata';
import { isRecord, JournalRef, Msg } from '../message/uplink';
import { linkIntoPlace, pathInside } from './file-steps';
import type { CaptureResult } from './still';

/** The capture's state folder inside the images folder (hidden, never uploaded): one journal per capture node. */
export const CAPTURE_STATE_DIR = '.uplink-capture';
/** Captures written and not yet confirmed by a queue, at most; past it the oldest are forgotten, with a warning. */
const MAX_OPEN = 1000;
/** A capture no queue confirmed is sent again at this many starts, then left on disk with a log line. */
const MAX_RESENDS = 3;
/** Lines beyond twice the open captures before the journal is compacted. */
const COMPACT_SLACK = 500;
/** The trigger message is kept for a re-send up to this size as JSON; past it only its topic. */
const MAX_CARRIED_CHARS = 16 * 1024;

/** What a capture's message carries beside the file's facts: the trigger (without its payload) and the metadata. */
export interface Carried {
  msg: Msg;
  metadata: Metadata;
}

/** A transformed capture's original, kept beside it: journalled with it, linked and recovered with it. */
export interface OriginalRecord {
  /** The synced temp file (absolute when handed in, below the images folder in the journal); absent once settled. */
  temp?: string;
  file: string;
  bytes: number;
  sha256: string;
  width: number;
  height: number;
  contentType: string;
}

interface WrittenRecord {
  t: 'written';
  id: string;
  /** The synced temp file below the images folder, not yet linked into place; absent once it is settled. */
  temp?: string;
  /** Where the file goes (or went) below the images folder, with "/": the object key. */
  file: string;
  /** The capture's facts as its message gives them, less file, key and journal. */
  facts: Msg;
  carry?: Carried;
  /** The camera's image, kept beside a transformed one. */
  original?: OriginalRecord;
  /** Starts at which it was sent again. */
  resent?: number;
}

type CaptureJournalRecord =
  | WrittenRecord
  | { t: 'placed'; id: string; file: string; original?: string }
  | { t: 'queued'; id: string }
  | { t: 'resent'; id: string }
  | { t: 'acked-by-queue' };

const RECORD_TYPES = new Set(['written', 'placed', 'queued', 'resent', 'acked-by-queue']);

/** A capture the last run wrote and no queue committed, to be sent again as it was (same file, key and facts). */
export interface RecoveredCapture {
  result: CaptureResult & { journal: JournalRef; recovered: true };
  carry?: Carried;
}

export interface JournalEvents {
  warn(text: string): void;
  log(text: string): void;
}

/**
 * The trigger message as a capture's journal keeps it for a re-send: JSON-safe, without the payload (the file is the
 * data) and without what cannot be stored (an HTTP request, a socket); only its topic (and the metadata, if that can
 * be stored) when the rest is too large or cannot be written as JSON.
 */
export function carriedOf(trigger: Msg, metadata: Metadata): Carried {
  const { payload: _payload, _msgid: _id, req: _req, res: _res, ...rest } = trigger;
  const topic = typeof trigger.topic === 'string' ? { topic: trigger.topic } : {};
  for (const carry of [{ msg: rest, metadata }, { msg: topic, metadata }]) {
    try {
      const text = JSON.stringify(carry);
      if (text.length <= MAX_CARRIED_CHARS) return JSON.parse(text) as Carried;
    } catch {
      /* circular, or a BigInt: try with less */
    }
  }
  return { msg: topic, metadata: {} };
}

async function statOf(file: string): Promise<fs.Stats | undefined> {
  try {
    return await fs.promises.stat(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

async function sha256Of(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The capture's memory of files written but not yet committed by a queue, so that one killed between the two is
 * queued at the next start instead of sitting on disk for ever.
 *
 * A capture journals its file (fsynced, while its temp file is synced) *before* it is linked into place, so the
 * entry exists at every instant the file could exist under its name; the queue hands the entry back once it has
 * committed the item ("queued", not synced: losing it costs one harmless re-queue under the same key). At the next
 * start every entry not queued is settled (a temp file never linked is linked now, one linked but not yet named in
 * the journal is found by its inode), and, once any queue has ever confirmed a capture of this node, sent again. A
 * node no queue ever confirmed (wired to something else) has nothing sent again: its journal is compacted away.
 */
export class CaptureJournal extends AppendLog<CaptureJournalRecord> {
  /** Written and not yet queued, oldest first. */
  private readonly open = new Map<string, WrittenRecord>();
  private ackedByQueue = false;
  private toRecover: RecoveredCapture[] = [];
  private warnedFull = false;

  private constructor(
    readonly root: string,
    /** Names the journal's owner (the capture node's id) in the references its captures carry. */
    readonly owner: string,
    private readonly events: JournalEvents,
  ) {
    super(path.join(root, CAPTURE_STATE_DIR, `${owner.replace(/[^A-Za-z0-9._-]/g, '_')}.journal`));
  }

  /** Opens the journal of `owner` in the images folder `root`, settles what the last run left, and compacts it. */
  static async open(root: string, owner: string, events: JournalEvents): Promise<CaptureJournal> {
    const j = new CaptureJournal(path.resolve(root), owner, events);
    const records = await j.load((r): r is CaptureJournalRecord => isRecord(r) && typeof r.t === 'string' && RECORD_TYPES.has(r.t));
    await j.settleLeftovers(records);
    return j;
  }

  /** Captures to send again once the flows have started (handed out once). */
  takeRecovered(): RecoveredCapture[] {
    const out = this.toRecover;
    this.toRecover = [];
    return out;
  }

  /** The recovered captures were sent again: a later start sends each again only up to MAX_RESENDS times. */
  async resent(refs: JournalRef[]): Promise<void> {
    const lines: CaptureJournalRecord[] = [];
    for (const ref of refs) {
      const rec = this.open.get(ref.entry);
      if (!rec) continue;
      rec.resent = (rec.resent ?? 0) + 1;
      lines.push({ t: 'resent', id: ref.entry });
    }
    if (lines.length > 0) await this.appendUnsynced(...lines);
  }

  /**
   * Journals a capture before its temp file is linked into place at `wanted` (the temp file may be syncing meanwhile:
   * its checksum in `facts` is checked before a recovery links it); returns the reference its message carries to the
   * queue. Resolves once the entry is on disk.
   */
  async written(temp: string, wanted: string, facts: Msg, carry?: Carried, original?: OriginalRecord): Promise<JournalRef> {
    const id = crypto.randomBytes(6).toString('hex');
    const orig = original ? { ...original, ...(original.temp ? { temp: this.relative(original.temp) } : {}), file: this.relative(original.file) } : undefined;
    const rec: WrittenRecord = { t: 'written', id, temp: this.relative(temp), file: this.relative(wanted), facts, ...(carry ? { carry } : {}), ...(orig ? { original: orig } : {}) };
    await this.append(rec);
    this.open.set(id, rec);
    if (this.open.size > MAX_OPEN) this.background(this.forgetOldest());
    return { owner: this.owner, entry: id };
  }

  /** The file (or its original) went in under another name than the one journalled (a capture in the same second took it). */
  async placed(ref: JournalRef, file: string, original?: string): Promise<void> {
    const rec = this.open.get(ref.entry);
    const rel = this.relative(file);
    const origRel = original !== undefined ? this.relative(original) : undefined;
    if (!rec || (rec.file === rel && (origRel === undefined || rec.original?.file === origRel))) return;
    await this.append({ t: 'placed', id: ref.entry, file: rel, ...(origRel !== undefined ? { original: origRel } : {}) });
    rec.file = rel;
    if (rec.original && origRel !== undefined) rec.original.file = origRel;
  }

  /** A queue committed the capture: it needs no re-send. The first confirmation ever is synced, the others not. */
  async queued(entry: string): Promise<void> {
    const rec = this.open.get(entry);
    if (!rec || this.isClosed) return;
    this.open.delete(entry);
    if (this.ackedByQueue) {
      await this.appendUnsynced({ t: 'queued', id: entry });
    } else {
      this.ackedByQueue = true;
      await this.append({ t: 'queued', id: entry }, { t: 'acked-by-queue' });
    }
    if (this.lines >= 2 * this.open.size + COMPACT_SLACK) await this.compact();
  }

  /** Captures written and not yet confirmed by a queue. */
  get openCount(): number {
    return this.open.size;
  }

  private compact(): Promise<void> {
    return this.rewrite([...(this.ackedByQueue ? [{ t: 'acked-by-queue' as const }] : []), ...this.open.values()]);
  }

  /** Keeps the journal bounded when no queue confirms this node's captures: the oldest half is forgotten. */
  private async forgetOldest(): Promise<void> {
    const n = this.open.size - MAX_OPEN / 2;
    if (n <= 0) return;
    let i = 0;
    for (const id of this.open.keys()) {
      if (i++ >= n) break;
      this.open.delete(id);
    }
    if (this.ackedByQueue && !this.warnedFull) {
      this.warnedFull = true;
      this.events.warn(`${MAX_OPEN} captures were not confirmed by a queue (is the capture still wired to one?): the oldest ${n} will not be sent again after a restart`);
    }
    await this.compact();
  }

  private background(p: Promise<void>): void {
    p.catch((e: Error) => this.events.warn(`capture journal ${this.file}: ${e.message}`));
  }

  private relative(file: string): string {
    return path.relative(this.root, file).split(path.sep).join('/');
  }

  // ---- at start ------------------------------------------------------------------------------------------------

  private async settleLeftovers(records: CaptureJournalRecord[]): Promise<void> {
    const written = new Map<string, WrittenRecord>();
    for (const r of records) {
      switch (r.t) {
        case 'written':
          written.set(r.id, { ...r });
          break;
        case 'placed': {
          const w = written.get(r.id);
          if (w) w.file = r.file;
          if (w?.original && r.original !== undefined) w.original = { ...w.original, file: r.original };
          break;
        }
        case 'queued':
          written.delete(r.id);
          break;
        case 'resent': {
          const w = written.get(r.id);
          if (w) w.resent = (w.resent ?? 0) + 1;
          break;
        }
        case 'acked-by-queue':
          this.ackedByQueue = true;
          break;
      }
    }
    let notSent = 0;
    for (const w of written.values()) {
      let file: string | { gone: string };
      let original: string | { gone: string } | undefined;
      try {
        // The original first: it is kept whatever becomes of the transformed file.
        if (w.original) original = await this.settle({ file: w.original.file, temp: w.original.temp, bytes: w.original.bytes, sha256: w.original.sha256 });
        file = await this.settle({ file: w.file, temp: w.temp, bytes: w.facts.bytes, sha256: typeof w.facts.sha256 === 'string' ? w.facts.sha256 : undefined });
      } catch (e) {
        // Kept for the next start: a disk error now says nothing about the capture.
        this.events.warn(`the capture ${w.file} left by the last run cannot be checked (${(e as Error).message}): it stays in the journal`);
        this.open.set(w.id, w);
        continue;
      }
      if (typeof file !== 'string') {
        this.events.log(`the capture ${w.file} left by the last run ${file.gone}: dropped from the journal`);
        continue;
      }
      const rec: WrittenRecord = { ...w, file: this.relative(file) };
      delete rec.temp;
      if (w.original) {
        if (typeof original === 'string') rec.original = { ...w.original, file: this.relative(original) };
        else {
          if (original) this.events.log(`the original ${w.original.file} of the capture ${w.file} ${original.gone}`);
          delete rec.original;
        }
        delete rec.original?.temp;
      }
      if (!this.ackedByQueue) {
        notSent++;
      } else if ((rec.resent ?? 0) >= MAX_RESENDS) {
        this.events.log(`the capture ${rec.file} was sent again at ${rec.resent} starts and no queue confirmed it: it stays on disk, not sent again`);
      } else {
        this.open.set(rec.id, rec);
        const kept = rec.original ? { original: { ...rec.original, file: pathInside(this.root, rec.original.file) } } : {};
        const result = { ...rec.facts, file, key: rec.file, ...kept, journal: { owner: this.owner, entry: rec.id }, recovered: true } as RecoveredCapture['result'];
        this.toRecover.push({ result, ...(rec.carry ? { carry: rec.carry } : {}) });
      }
    }
    if (notSent > 0) this.events.log(`${notSent} capture(s) left by the last run are on disk; no queue has ever confirmed a capture of this node, so none is sent again`);
    while (this.open.size > MAX_OPEN) {
      const oldest = this.open.keys().next().value as string;
      this.open.delete(oldest);
      this.toRecover = this.toRecover.filter((r) => r.result.journal.entry !== oldest);
    }
    if (records.length > 0) await this.compact();
  }

  /**
   * Puts a journalled capture in place if the last run did not get that far, and says where its file is, or why there
   * is none to send (uploaded and deleted, deleted by a person, or cut short by a power cut before it was synced).
   */
  private async settle(w: { file: string; temp?: string; bytes: unknown; sha256?: string }): Promise<string | { gone: string }> {
    const wanted = pathInside(this.root, w.file);
    const temp = w.temp !== undefined ? pathInside(this.root, w.temp) : undefined;
    const t = temp !== undefined ? await statOf(temp) : undefined;
    const sha256 = w.sha256;
    if (temp !== undefined && t) {
      // Killed between the journal and the temp file's removal: linked already, or not yet.
      const linked = await this.linkedTwin(wanted, t);
      if (linked) {
        await fs.promises.rm(temp, { force: true });
        return linked;
      }
      // The entry is synced alongside the file, not after it: only a file whose bytes all reached the disk goes in.
      if (t.size !== w.bytes || (sha256 !== undefined && (await sha256Of(temp)) !== sha256)) {
        await fs.promises.rm(temp, { force: true });
        return { gone: 'was not whole on disk (the power went before it was synced)' };
      }
      const { file } = await linkIntoPlace(this.root, temp, wanted);
      await fs.promises.rm(temp, { force: true });
      return file;
    }
    const st = await statOf(wanted);
    // A file of that name is this capture only if it holds the same bytes.
    if (!st?.isFile() || st.size !== w.bytes || (sha256 !== undefined && (await sha256Of(wanted)) !== sha256)) {
      return { gone: 'no longer exists' };
    }
    return wanted;
  }

  /** The name the temp file was linked to (`wanted` or `wanted_N`), by its inode. */
  private async linkedTwin(wanted: string, temp: fs.Stats): Promise<string | undefined> {
    const dir = path.dirname(wanted);
    const ext = path.extname(wanted);
    const base = path.basename(wanted, ext);
    let names: string[];
    try {
      names = await fs.promises.readdir(dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    for (const name of names) {
      if (name !== base + ext && !(name.startsWith(`${base}_`) && name.endsWith(ext) && /^\d+$/.test(name.slice(base.length + 1, name.length - ext.length)))) continue;
      const st = await statOf(path.join(dir, name));
      if (st && st.ino === temp.ino && st.dev === temp.dev) return path.join(dir, name);
    }
    return undefined;
  }
}
