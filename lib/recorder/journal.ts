import fs from 'fs';
import path from 'path';
import { syncFolder } from '../util/fs-durable';

/** A closed segment, as it was handed on: what its message said, and where it came from. */
export interface ClosedRecord {
  t: 'closed';
  /** ffmpeg's numbered name for it, without ".mp4": `<run>-000003`. Unique for ever. */
  id: string;
  run: string;
  /** Its file below the recordings folder, with "/". */
  file: string;
  bytes: number;
  sha256: string;
  durationS: number;
  codec: string;
  width: number;
  height: number;
  capturedAt: string;
  /** Where the segment starts in its run's stream, in seconds (the run's clock is its start time minus this). */
  listStart: number;
  /** Counts every segment this recorder has made, across runs and restarts. */
  n: number;
  requestedS: number;
  partial?: boolean;
  gapBeforeS?: number;
  /** Compacted journals carry the state in the record itself. */
  state?: 'sent' | 'uploaded';
}

export type JournalRecord =
  | ClosedRecord
  | { t: 'sent'; id: string }
  | { t: 'uploaded'; id: string }
  | { t: 'deleted'; id: string; why: 'budget' | 'dropped' | 'gone' }
  | { t: 'quarantined'; id: string; file: string }
  | { t: 'meta'; lastN: number; lastEndMs?: number };

/**
 * The recorder's memory of every segment it handed on, one JSON line per event, appended and fsynced before the
 * recorder acts on it. A crash can tear only the line being written: it is cut off when the journal is next opened.
 */
export class Journal {
  private fh: fs.promises.FileHandle | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  /** Lines in the file: compaction is due when far more than the segments still known. */
  lines = 0;

  private constructor(readonly file: string) {}

  /** Opens (or creates) the journal and returns its records, the torn last line (if any) removed. */
  static async open(file: string): Promise<{ journal: Journal; records: JournalRecord[] }> {
    const j = new Journal(file);
    let text = '';
    try {
      text = await fs.promises.readFile(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const cut = text.lastIndexOf('\n') + 1;
    if (cut < text.length) await fs.promises.truncate(file, Buffer.byteLength(text.slice(0, cut)));
    const records: JournalRecord[] = [];
    for (const line of text.slice(0, cut).split('\n')) {
      if (line.trim() === '') continue;
      try {
        const r = JSON.parse(line) as JournalRecord;
        if (r && typeof r === 'object' && typeof r.t === 'string') records.push(r);
      } catch {
        /* a line torn by a crash, then written after: skip it */
      }
    }
    j.lines = records.length;
    j.fh = await fs.promises.open(file, 'a');
    if (text === '') await syncFolder(path.dirname(file));
    return { journal: j, records };
  }

  /** Appends records in one write and syncs them to disk; resolves once they are durable. */
  append(...records: JournalRecord[]): Promise<void> {
    const run = this.chain.then(async () => {
      if (!this.fh) throw new Error('the recorder journal is closed');
      await this.fh.write(records.map((r) => JSON.stringify(r)).join('\n') + '\n');
      await this.fh.datasync();
      this.lines += records.length;
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Replaces the whole journal with `records` (temp file, fsync, rename, fsync of the folder). */
  rewrite(records: JournalRecord[]): Promise<void> {
    const run = this.chain.then(async () => {
      const temp = `${this.file}.compact`;
      const fh = await fs.promises.open(temp, 'w');
      try {
        await fh.write(records.map((r) => JSON.stringify(r) + '\n').join(''));
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await this.fh?.close();
        this.fh = undefined;
        await fs.promises.rename(temp, this.file);
        await syncFolder(path.dirname(this.file));
        this.lines = records.length;
      } finally {
        // Whatever happened, appends go on to the journal in place (the old one when the rename failed).
        if (!this.fh) this.fh = await fs.promises.open(this.file, 'a');
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.chain;
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}
