import fs from 'fs';
import path from 'path';
import { makeFolderDurably, syncFolder, writeFileDurably } from './fs-durable';

export interface AppendLogOptions {
  /**
   * Each write reaches the disk before it returns (the file is opened O_DSYNC, where the platform has it): an append
   * is one trip through Node's thread pool instead of a write and an fdatasync. For a log whose appends are all synced
   * anyway; appendUnsynced then syncs too.
   */
  syncEveryWrite?: boolean;
}

/**
 * A journal of JSON lines, appended to and synced before its writer acts on what a line says (the recorder's and the
 * capture's journals). A crash can tear only the line being written: it is cut off when the journal is next opened.
 * The file (and its folder) are made by the first append, so a journal never written leaves nothing on disk.
 */
export class AppendLog<T extends object> {
  private fh: fs.promises.FileHandle | undefined;
  /** The open file syncs each write itself (O_DSYNC). */
  private writesSynced = false;
  private chain: Promise<unknown> = Promise.resolve();
  private exists = false;
  private closed = false;
  /** Lines in the file: a writer compacts when far more than what it still needs. */
  lines = 0;

  protected constructor(
    readonly file: string,
    private readonly options: AppendLogOptions = {},
  ) {}

  /** Reads the journal (when there is one): its records that `accept` takes, the torn last line (if any) removed. */
  protected async load(accept: (r: unknown) => r is T): Promise<T[]> {
    let text = '';
    try {
      text = await fs.promises.readFile(this.file, 'utf8');
      this.exists = true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const cut = text.lastIndexOf('\n') + 1;
    if (cut < text.length) await fs.promises.truncate(this.file, Buffer.byteLength(text.slice(0, cut)));
    const records: T[] = [];
    for (const line of text.slice(0, cut).split('\n')) {
      if (line.trim() === '') continue;
      try {
        const r: unknown = JSON.parse(line);
        if (accept(r)) records.push(r);
      } catch {
        /* a line torn by a crash, then written after: skip it */
      }
    }
    this.lines = records.length;
    return records;
  }

  /** Appends records in one write and syncs them to disk; resolves once they are durable. */
  append(...records: T[]): Promise<void> {
    return this.write(records, true);
  }

  /**
   * Appends records without waiting for the disk: they survive the process being killed (the kernel has them), not a
   * power cut. For records whose loss costs only a repeat of harmless work.
   */
  appendUnsynced(...records: T[]): Promise<void> {
    return this.write(records, false);
  }

  private write(records: T[], sync: boolean): Promise<void> {
    return this.serially(async () => {
      const fh = await this.handle();
      await fh.write(records.map((r) => JSON.stringify(r) + '\n').join(''));
      if (sync && !this.writesSynced) await fh.datasync();
      this.lines += records.length;
    });
  }

  /** Replaces the whole journal with `records` (temp file, fsync, rename, fsync of the folder); with none, removes it. */
  rewrite(records: T[]): Promise<void> {
    return this.serially(async () => {
      if (records.length === 0) {
        await this.fh?.close();
        this.fh = undefined;
        if (this.exists) {
          await fs.promises.rm(this.file, { force: true });
          await syncFolder(path.dirname(this.file));
        }
        this.exists = false;
        this.lines = 0;
        return;
      }
      if (!this.exists) await makeFolderDurably(path.dirname(this.file));
      await writeFileDurably(this.file, records.map((r) => JSON.stringify(r) + '\n').join(''));
      this.exists = true;
      this.lines = records.length;
      // The handle open before points at the file just replaced: appends go to the new one.
      const old = this.fh;
      this.fh = undefined;
      await old?.close();
    });
  }

  /** Waits for what was appended, then closes the file; later appends fail. */
  async close(): Promise<void> {
    this.closed = true;
    await this.chain;
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Runs steps one after the other; a step asked for after close() fails (those asked for before still run). */
  private serially(step: () => Promise<void>): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`the journal ${this.file} is closed`));
    const run = this.chain.then(step);
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async handle(): Promise<fs.promises.FileHandle> {
    if (this.fh) return this.fh;
    if (!this.exists) await makeFolderDurably(path.dirname(this.file));
    const { O_WRONLY, O_APPEND, O_CREAT, O_DSYNC } = fs.constants;
    const dsync = this.options.syncEveryWrite === true && O_DSYNC !== undefined;
    this.fh = await fs.promises.open(this.file, dsync ? O_WRONLY | O_APPEND | O_CREAT | O_DSYNC : 'a');
    this.writesSynced = dsync;
    if (!this.exists) {
      // A new journal's name must survive a power cut as well as its lines.
      await syncFolder(path.dirname(this.file));
      this.exists = true;
    }
    return this.fh;
  }
}
