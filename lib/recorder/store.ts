import crypto from 'crypto';
import fs from 'fs';
import path from 'path';
import { syncFolder } from '../util/fs-durable';
import { acquireOwnerLock, OwnerLock, OwnerLockError } from '../util/owner-lock';
import { BudgetItem } from './budget';
import { renderFileName } from './file-name';
import { ClosedRecord, Journal, JournalRecord } from './journal';
import { Mp4VideoTrack, readMp4VideoTrack } from '../media/mp4-header';
import { NoVideoError, probeVideo, VideoInfo } from '../media/probe-video';
import { ListEntry, parseList } from './segment-list';

/** The recorder's own folder inside the recordings folder: journal, per-run segment lists, files being written. */
export const STATE_DIR = '.uplink-recorder';
const JOURNAL_FILE = 'journal';
const LOCK_FILE = 'lock';
const QUARANTINE_DIR = 'unreadable';
/** Less than this between one segment's end and the next one's start is jitter of the clocks, not a gap. */
const GAP_MIN_S = 0.5;
/** A run id (see newRun), and ffmpeg's numbered name for one of its segments. */
const RUN = 'r[0-9a-z]{9}[0-9a-f]{4}';
const RUN_RE = new RegExp(`^${RUN}$`);
const WORKING_RE = new RegExp(`^(${RUN})-(\\d{6,})\\.mp4$`);

export interface Segment extends Omit<ClosedRecord, 'state'> {
  /** Absolute path of the file. */
  path: string;
  state: 'closed' | 'sent' | 'uploaded';
}

export interface StoreOptions {
  folder: string;
  camera: string;
  nameTemplate: string;
  ffprobePath: string;
  requestedS: number;
  warn: (text: string) => void;
}

/**
 * A segment as the store keeps it, every field named in one literal. Spread from its record (`{ ...record, path }`),
 * each object got a hidden class of its own in V8: a store of thousands made every pass over it (the budget's, after
 * each segment) some 25 times slower, and each segment cost the memory of its own class.
 */
function segmentOf(r: ClosedRecord, file: string, state: Segment['state']): Segment {
  return {
    t: 'closed',
    id: r.id,
    run: r.run,
    file: r.file,
    bytes: r.bytes,
    sha256: r.sha256,
    durationS: r.durationS,
    codec: r.codec,
    width: r.width,
    height: r.height,
    capturedAt: r.capturedAt,
    listStart: r.listStart,
    n: r.n,
    requestedS: r.requestedS,
    partial: r.partial,
    gapBeforeS: r.gapBeforeS,
    path: file,
    state,
  };
}

/** Recorders in this process by state folder: two nodes must not share one. */
const claimed = new Set<string>();

async function exists(p: string): Promise<fs.Stats | undefined> {
  try {
    return await fs.promises.stat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * A segment is read in reads of up to this many bytes (the buffer grows to fit the segments, from 1 MB): 10 s of a
 * 3 Mbit/s camera in one read, a minute in a few. Each read is a trip through Node's thread pool, which costs Node
 * about as much CPU as hashing 80 KB on x86 with SHA instructions, more on a busy or virtual machine.
 */
const HASH_READ_MAX_BYTES = 4 * 1024 * 1024;
const MB = 1024 * 1024;
/** Hashed this much at a time, the event loop free in between: short steps on a Pi without SHA instructions too. */
const HASH_STEP_BYTES = MB;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The file's SHA-256 and length, once its bytes are on the disk: the queue will hold only its path, so a power cut after
 * the segment is handed on must not leave the queue pointing at pages that never reached the SD card. Also the video
 * track its MP4 header states, from the first read (ffmpeg's empty moov is at the very start): one pass over the file.
 * `buf` is read into again and again. `size` is the file's size when looked at just before: the reads stop at a short
 * read that reaches it, without one more read to learn that the end is there (a file system may read short before its
 * end, so a short read alone does not say so).
 */
async function hashAndSync(file: string, size: number, buf: Buffer): Promise<{ sha256: string; bytes: number; track: Mp4VideoTrack | undefined }> {
  const hash = crypto.createHash('sha256');
  let track: Mp4VideoTrack | undefined;
  let pos = 0;
  const fh = await fs.promises.open(file, 'r');
  try {
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) break;
      if (pos === 0) track = headerTrack(buf.subarray(0, bytesRead));
      for (let at = 0; at < bytesRead; at += HASH_STEP_BYTES) {
        if (at > 0) await nextTurn();
        hash.update(buf.subarray(at, Math.min(bytesRead, at + HASH_STEP_BYTES)));
      }
      pos += bytesRead;
      if (bytesRead < buf.length && pos >= size) break;
    }
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return { sha256: hash.digest('hex'), bytes: pos, track };
}

/** The header's video track, or undefined (ffprobe is asked then) whatever the bytes hold. */
function headerTrack(head: Buffer): Mp4VideoTrack | undefined {
  try {
    return readMp4VideoTrack(head);
  } catch {
    return undefined;
  }
}

/** Puts a file at a second name without ever replacing a file there: a hard link, or a checked rename where links are missing (FAT). */
async function linkInto(from: string, to: string): Promise<void> {
  try {
    await fs.promises.link(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
    if (await exists(to)) throw Object.assign(new Error(`${to} exists`), { code: 'EEXIST' });
    await fs.promises.rename(from, to);
  }
}

/**
 * What the recorder knows about its segments, kept in an fsynced journal so that each closed segment is handed on
 * once across crashes and restarts, and so that only files it recorded are ever deleted.
 *
 * ffmpeg writes each run's segments under numbered names in the state folder (`<run>-000003.mp4`: unique, whatever
 * the clock does) and appends each one it closes to the run's CSV list. A closed segment is probed, hashed, journalled
 * with its final name, then linked to that name in the recordings folder: its name comes from the template and the
 * segment's start time, never collides (ffmpeg's own -strftime names have one-second resolution, repeat an hour when
 * DST ends, and `-y` would overwrite), and is never the file being written.
 */
export class SegmentStore {
  readonly stateDir: string;
  private readonly segments = new Map<string, Segment>();
  /** The video stream of a run whose MP4 header said too little, from ffprobe on its first segment. */
  private readonly runStream = new Map<string, Omit<VideoInfo, 'durationS'>>();
  /** Every id journalled (sent, deleted, set aside): a listed or leftover file with one of these is not new. */
  private readonly known = new Set<string>();
  private readonly byPath = new Map<string, string>();
  private readonly quarantined = new Map<string, { file: string; bytes: number }>();
  /** Each run's clock: wall time (ms) of its stream time 0. */
  private readonly anchors = new Map<string, number>();
  private readonly runsSeen = new Set<string>();
  private lastN = 0;
  private lastEndMs: number | undefined;
  private released = false;
  /**
   * Kept from one segment's hash to the next. V8 counts the buffers Node allocates toward its next full collection of
   * Node-RED's whole heap (100-150 CPU ms): a read stream's 64 KB chunks (190 per minute of video) brought one per
   * 60 s segment, and a fresh 1 MB buffer per segment still brought some at 2 s segments. It grows with the
   * segments, from 1 MB to at most HASH_READ_MAX_BYTES, and never shrinks.
   */
  private hashBuffer: Buffer | undefined;
  /**
   * The recordings folder and the state folder, held open to be synced after every segment (an open and a close
   * each time cost as much CPU as the sync): both are the recorder's, under its lock, for as long as it runs.
   */
  private readonly heldFolders = new Map<string, fs.promises.FileHandle>();

  private constructor(
    readonly options: StoreOptions,
    private readonly journal: Journal,
    private readonly lock: OwnerLock,
  ) {
    this.stateDir = path.join(options.folder, STATE_DIR);
  }

  /** Claims the folder (one recorder per folder), creates it, and reads the journal. */
  static async open(options: StoreOptions): Promise<SegmentStore> {
    const stateDir = path.join(options.folder, STATE_DIR);
    if (claimed.has(stateDir)) throw new Error(`another recorder node already records into ${options.folder}: give each recorder its own folder`);
    await fs.promises.mkdir(path.join(stateDir, QUARANTINE_DIR), { recursive: true });
    const lock = SegmentStore.lock(stateDir, options.folder);
    claimed.add(stateDir);
    try {
      const { journal, records } = await Journal.open(path.join(stateDir, JOURNAL_FILE));
      const store = new SegmentStore(options, journal, lock);
      store.load(records);
      await store.holdFolders();
      return store;
    } catch (e) {
      claimed.delete(stateDir);
      lock.release();
      throw e;
    }
  }

  /** So that a second Node-RED on the same folder is refused. */
  private static lock(stateDir: string, folder: string): OwnerLock {
    const file = path.join(stateDir, LOCK_FILE);
    try {
      return acquireOwnerLock(file, `the recordings folder ${folder}`);
    } catch (e) {
      if (e instanceof OwnerLockError && e.holderPid !== undefined) {
        throw new Error(`process ${e.holderPid} already records into ${folder} (see ${file}): give each recorder its own folder`);
      }
      throw e;
    }
  }

  private async holdFolders(): Promise<void> {
    for (const dir of [this.options.folder, this.stateDir]) {
      const handle = await fs.promises.open(dir, 'r').catch(() => undefined);
      // Where a folder cannot be opened, syncFolder tries (and says) each time.
      if (handle) this.heldFolders.set(path.resolve(dir), handle);
    }
  }

  /** Makes a folder's entry list durable, through the handle held for it if there is one. */
  private async syncDir(dir: string): Promise<void> {
    const held = this.heldFolders.get(path.resolve(dir));
    if (!held) return syncFolder(dir);
    try {
      await held.sync();
    } catch {
      /* not supported here (FAT, SMB shares): the file itself was synced, which is the most they offer */
    }
  }

  private load(records: JournalRecord[]): void {
    for (const r of records) {
      switch (r.t) {
        case 'meta':
          this.lastN = Math.max(this.lastN, r.lastN);
          if (r.lastEndMs !== undefined) this.lastEndMs = Math.max(this.lastEndMs ?? 0, r.lastEndMs);
          break;
        case 'closed': {
          const seg = segmentOf(r, this.abs(r.file), r.state ?? 'closed');
          const old = this.segments.get(r.id);
          if (old) this.byPath.delete(old.path);
          this.segments.set(r.id, seg);
          this.byPath.set(seg.path, r.id);
          this.known.add(r.id);
          this.runsSeen.add(r.run);
          this.lastN = Math.max(this.lastN, r.n);
          const at = Date.parse(r.capturedAt);
          this.anchors.set(r.run, at - r.listStart * 1000);
          this.lastEndMs = Math.max(this.lastEndMs ?? 0, at + r.durationS * 1000);
          break;
        }
        case 'sent':
        case 'uploaded': {
          const seg = this.segments.get(r.id);
          if (seg && (r.t === 'uploaded' || seg.state === 'closed')) seg.state = r.t;
          break;
        }
        case 'deleted': {
          const seg = this.segments.get(r.id);
          if (seg) this.byPath.delete(seg.path);
          this.segments.delete(r.id);
          this.quarantined.delete(r.id);
          this.known.add(r.id);
          break;
        }
        case 'quarantined':
          this.quarantined.set(r.id, { file: r.file, bytes: 0 });
          this.known.add(r.id);
          break;
      }
    }
  }

  private abs(rel: string): string {
    return path.join(this.options.folder, ...rel.split('/'));
  }

  // ---- runs ------------------------------------------------------------------------------------------------

  /** A new run: its id (sortable by time), its list file, and ffmpeg's name pattern for its segments. */
  newRun(): { run: string; listFile: string; pattern: string } {
    const run = `r${Date.now().toString(36).padStart(9, '0')}${crypto.randomBytes(2).toString('hex')}`;
    // ffmpeg reads % in the whole path as a number format: a folder called "100%" must not become one.
    const dir = this.stateDir.replace(/%/g, '%%');
    return { run, listFile: this.listFile(run), pattern: path.join(dir, `${run}-%06d.mp4`) };
  }

  /** The file ffmpeg is writing (or wrote) for a run's segment number. */
  workingFile(run: string, index: number): string {
    return this.working(`${run}-${String(index).padStart(6, '0')}`);
  }

  /** The file ffmpeg writes a segment into, by the segment's id. */
  private working(id: string): string {
    return path.join(this.stateDir, `${id}.mp4`);
  }

  private listFile(run: string): string {
    return path.join(this.stateDir, `${run}.csv`);
  }

  /** Bytes of the files ffmpeg is writing or left behind in the state folder. */
  async workingBytes(): Promise<number> {
    const names = (await fs.promises.readdir(this.stateDir)).filter((name) => WORKING_RE.test(name));
    const sizes = await Promise.all(names.map(async (name) => (await exists(path.join(this.stateDir, name)))?.size ?? 0));
    return sizes.reduce((a, b) => a + b, 0);
  }

  /**
   * A segment ffmpeg has listed as closed: made final and journalled, ready to hand on. Undefined when it was handled
   * before, is missing, or was unreadable (set aside, with a warning).
   */
  async closeListed(run: string, entry: ListEntry): Promise<Segment | undefined> {
    const m = WORKING_RE.exec(entry.file);
    if (!m || m[1] !== run) {
      this.options.warn(`ignoring "${entry.file}" in the segment list of run ${run}: not a segment of that run`);
      return undefined;
    }
    const id = entry.file.slice(0, -4);
    if (this.known.has(id)) return undefined;
    return this.finalize(run, id, { start: entry.start, end: entry.end });
  }

  /**
   * Hands on what a run left: entries its list names that were not handled yet, then any segment file it never
   * listed (the one being written when ffmpeg or Node-RED was killed: readable up to its last fragment, so it goes
   * on marked partial, or is set aside with a warning when no video can be read from it). The list is removed once
   * every file it names is accounted for.
   */
  async settleRun(run: string): Promise<Segment[]> {
    const out: Segment[] = [];
    const listFile = this.listFile(run);
    let entries: ListEntry[] = [];
    try {
      entries = parseList(await fs.promises.readFile(listFile, 'utf8'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    let lastEnd: number | undefined;
    const listed = new Set<string>();
    let complete = true;
    for (const entry of entries) {
      listed.add(entry.file);
      const seg = await this.closeListed(run, entry).catch((e: Error) => {
        complete = false;
        this.options.warn(`segment ${entry.file}: ${e.message}`);
        return undefined;
      });
      if (seg) out.push(seg);
      lastEnd = entry.end;
    }
    const leftovers = (await fs.promises.readdir(this.stateDir))
      .map((name) => WORKING_RE.exec(name))
      .filter((m): m is RegExpExecArray => m !== null && m[1] === run && !listed.has(m[0]) && !this.known.has(m[0].slice(0, -4)))
      .sort((a, b) => Number(a[2]) - Number(b[2]));
    for (const m of leftovers) {
      const seg = await this.finalize(run, m[0].slice(0, -4), { start: lastEnd ?? 0, partial: true }).catch((e: Error) => {
        complete = false;
        this.options.warn(`leftover segment ${m[0]}: ${e.message}`);
        return undefined;
      });
      if (seg) {
        out.push(seg);
        lastEnd = seg.listStart + seg.durationS;
      }
    }
    if (complete) {
      await fs.promises.rm(listFile, { force: true });
    }
    return out;
  }

  /** Runs that left a list or segment files in the state folder, oldest first. */
  async runsOnDisk(): Promise<string[]> {
    const runs = new Set<string>();
    for (const name of await fs.promises.readdir(this.stateDir)) {
      const m = WORKING_RE.exec(name);
      if (m) runs.add(m[1]);
      else if (name.endsWith('.csv') && RUN_RE.test(name.slice(0, -4))) runs.add(name.slice(0, -4));
    }
    return [...runs].sort();
  }

  /** Segments journalled as closed but never handed on (a crash came between): put in place, ready to send. */
  async unsent(): Promise<Segment[]> {
    const out: Segment[] = [];
    for (const seg of this.ordered()) {
      if (seg.state !== 'closed') continue;
      if (await this.place(seg)) out.push(seg);
      else {
        this.options.warn(`segment ${seg.file} was recorded but its file is gone: it cannot be sent`);
        await this.forget(seg.id, 'gone');
      }
    }
    return out;
  }

  private async finalize(run: string, id: string, where: { start: number; end?: number; partial?: boolean }): Promise<Segment | undefined> {
    const working = this.working(id);
    const st = await exists(working);
    if (!st) {
      if (!where.partial) this.options.warn(`segment ${id}.mp4 is in the segment list but its file is gone`);
      return undefined;
    }
    let info: VideoInfo;
    let content: { sha256: string; bytes: number };
    try {
      if (where.end !== undefined && !where.partial && where.end > where.start) {
        // ffprobe costs more CPU than ffmpeg spends copying a minute of video, and a segment ffmpeg listed as closed
        // needs none: its length is in the list, its codec and size in its MP4 header, read while it is hashed. Only
        // a header that does not say (a codec mp4-header.ts does not name) is probed, once per run.
        const read = await this.hashAndSync(working, st.size);
        content = read;
        const stream = read.track ?? this.runStream.get(run) ?? (await this.probeStream(run, working));
        info = { ...stream, durationS: Math.round((where.end - where.start) * 1000) / 1000 };
      } else {
        // Cut short by a crash: no list entry, so ffprobe reads how long it is, and whether any video is in it.
        info = await probeVideo(this.options.ffprobePath, working);
        content = await this.hashAndSync(working, st.size);
      }
    } catch (e) {
      // ffprobe missing or too slow says nothing about the file: it stays where it is, to be tried again.
      if (!(e instanceof NoVideoError)) throw e;
      await this.quarantine(id, working, st.size, e.message);
      return undefined;
    }
    const anchor = this.anchorOf(run, st.mtimeMs - (where.end ?? where.start + info.durationS) * 1000);
    const startMs = anchor + where.start * 1000;
    const capturedAt = new Date(Math.round(startMs));
    let gapBeforeS: number | undefined;
    if (!this.runsSeen.has(run) && this.lastEndMs !== undefined) {
      const gap = (startMs - this.lastEndMs) / 1000;
      if (gap >= GAP_MIN_S) gapBeforeS = Math.round(gap * 1000) / 1000;
    }
    this.runsSeen.add(run);
    const n = this.lastN + 1;
    const file = await this.freeName(renderFileName(this.options.nameTemplate, { camera: this.options.camera, at: capturedAt, segment: n }), false);
    const record: ClosedRecord = {
      t: 'closed',
      id,
      run,
      file,
      bytes: content.bytes,
      sha256: content.sha256,
      durationS: info.durationS,
      codec: info.codec,
      width: info.width,
      height: info.height,
      capturedAt: capturedAt.toISOString(),
      listStart: where.start,
      n,
      requestedS: this.options.requestedS,
      ...(where.partial ? { partial: true } : {}),
      ...(gapBeforeS !== undefined ? { gapBeforeS } : {}),
    };
    await this.journal.append(record);
    this.lastN = n;
    this.lastEndMs = Math.max(this.lastEndMs ?? 0, startMs + info.durationS * 1000);
    const seg = segmentOf(record, this.abs(file), 'closed');
    this.segments.set(id, seg);
    this.byPath.set(seg.path, id);
    this.known.add(id);
    if (!(await this.place(seg, true))) throw new Error(`the file of segment ${id} vanished while it was being named`);
    return seg;
  }

  private async hashAndSync(file: string, size: number): Promise<{ sha256: string; bytes: number; track: Mp4VideoTrack | undefined }> {
    // Room for the whole segment and one byte more (so that its read is short, and the last), within the limit.
    const wanted = Math.min(HASH_READ_MAX_BYTES, Math.ceil((size + 1) / MB) * MB);
    const kept = this.hashBuffer;
    const buf = kept && kept.length >= wanted ? kept : Buffer.allocUnsafe(wanted);
    // Taken while in use: should two hashes ever overlap, the second gets a buffer of its own.
    this.hashBuffer = undefined;
    try {
      return await hashAndSync(file, size, buf);
    } finally {
      this.hashBuffer = buf;
    }
  }

  /** The stream of a run, from ffprobe on one of its segments. */
  private async probeStream(run: string, file: string): Promise<Omit<VideoInfo, 'durationS'>> {
    const { codec, width, height } = await probeVideo(this.options.ffprobePath, file);
    const stream = { codec, width, height };
    this.runStream.set(run, stream);
    return stream;
  }

  /**
   * Wall time of a run's stream time 0. The run id holds the time ffmpeg was started, which is when a live camera's
   * stream begins, give or take the RTSP handshake. A segment's own mtime is no good for this: ffmpeg spends seconds
   * probing a stream before it writes anything, then writes what it buffered in a burst. `latest` (a segment's mtime
   * less its end) bounds it from above, for a clock that jumped back since.
   */
  private anchorOf(run: string, latest: number): number {
    let anchor = this.anchors.get(run);
    if (anchor === undefined) {
      const started = parseInt(run.slice(1, 10), 36);
      anchor = Number.isFinite(started) && started <= latest ? started : latest;
      this.anchors.set(run, anchor);
    }
    return anchor;
  }

  /**
   * A name from the template that no file and no known segment has: name.mp4, name_1.mp4, name_2.mp4… `look`: false
   * skips asking the disk, for a name about to be linked (a link never replaces a file: one found there sends place()
   * the careful way, which names the segment anew).
   */
  private async freeName(wanted: string, look = true): Promise<string> {
    const base = wanted.slice(0, -4);
    for (let i = 0; i < 1000; i++) {
      const rel = i === 0 ? wanted : `${base}_${i}.mp4`;
      const p = this.abs(rel);
      if (!this.byPath.has(p) && !(look && (await exists(p)))) return rel;
    }
    throw new Error(`1000 files already share the name ${wanted}: put %S or {segment} in the file name template`);
  }

  /**
   * Links the working file to the segment's final name and removes the working name; false when neither exists.
   * `fresh`: the name was just chosen, so the link is tried first, without looking (the usual case, where the name is
   * free and the folder exists); a name taken (by a file the recorder did not know) or a missing folder takes the
   * careful way.
   */
  private async place(seg: Segment, fresh = false): Promise<boolean> {
    const working = this.working(seg.id);
    if (fresh) {
      const linked = await linkInto(working, seg.path).then(
        () => true,
        (e: NodeJS.ErrnoException) => {
          if (e.code === 'EEXIST' || e.code === 'ENOENT') return false;
          throw e;
        },
      );
      if (linked) {
        await this.dropWorkingName(working, path.dirname(seg.path));
        return true;
      }
    }
    const [w, f] = await Promise.all([exists(working), exists(seg.path)]);
    if (f) {
      if (w && (w.ino !== f.ino || w.dev !== f.dev)) {
        // Something else took the final name since it was journalled: give the segment a new one.
        const file = await this.freeName(seg.file);
        this.byPath.delete(seg.path);
        Object.assign(seg, { file, path: this.abs(file) });
        this.byPath.set(seg.path, seg.id);
        const { path: _p, state: _s, ...record } = seg;
        await this.journal.append(record);
        return this.place(seg);
      }
      if (w) await fs.promises.unlink(working);
      return true;
    }
    if (!w) return false;
    const dir = path.dirname(seg.path);
    await fs.promises.mkdir(dir, { recursive: true });
    await linkInto(working, seg.path);
    await this.dropWorkingName(working, dir);
    return true;
  }

  /** Once the final name is there: the working name goes, and both folders are synced. */
  private async dropWorkingName(working: string, dir: string): Promise<void> {
    // The two folders at once: each sync waits on the disk, and one wait costs less than two.
    await Promise.all([
      this.syncDir(dir),
      fs.promises
        .unlink(working)
        .catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        })
        .then(() => this.syncDir(this.stateDir)),
    ]);
  }

  private async quarantine(id: string, working: string, bytes: number, why: string): Promise<void> {
    const to = path.join(this.stateDir, QUARANTINE_DIR, `${id}.mp4`);
    const rel = path.relative(this.options.folder, to).split(path.sep).join('/');
    await this.journal.append({ t: 'quarantined', id, file: rel });
    await fs.promises.rename(working, to);
    this.quarantined.set(id, { file: rel, bytes });
    this.known.add(id);
    this.options.warn(`segment file ${id}.mp4 (${bytes} bytes) holds no readable video (${why}): moved to ${to}`);
  }

  // ---- states ----------------------------------------------------------------------------------------------

  async markSent(id: string): Promise<void> {
    const seg = this.segments.get(id);
    if (!seg || seg.state !== 'closed') return;
    await this.journal.append({ t: 'sent', id });
    seg.state = 'sent';
  }

  /** The uploader says this file is stored: it may be deleted first when space runs short. Undefined if not ours. */
  async markUploaded(file: string): Promise<Segment | undefined> {
    const id = this.byPath.get(path.resolve(file));
    const seg = id ? this.segments.get(id) : undefined;
    if (!seg) return undefined;
    if (seg.state !== 'uploaded') {
      await this.journal.append({ t: 'uploaded', id: seg.id });
      seg.state = 'uploaded';
    }
    return seg;
  }

  /** Deletes recordings the budget chose (only files this journal names, only inside the folder). */
  async remove(ids: string[], why: 'budget' | 'dropped'): Promise<Segment[]> {
    const gone: Segment[] = [];
    const root = path.resolve(this.options.folder) + path.sep;
    for (const id of ids) {
      const seg = this.segments.get(id);
      if (!seg || !path.resolve(seg.path).startsWith(root)) continue;
      // The file first, then the journal: a crash between leaves a record of a missing file, never an orphan file.
      await fs.promises.unlink(seg.path).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'ENOENT') throw e;
      });
      await this.forget(id, why);
      gone.push(seg);
    }
    return gone;
  }

  private async forget(id: string, why: 'budget' | 'dropped' | 'gone'): Promise<void> {
    await this.journal.append({ t: 'deleted', id, why });
    const seg = this.segments.get(id);
    if (seg) this.byPath.delete(seg.path);
    this.segments.delete(id);
    this.quarantined.delete(id);
  }

  /** Notices files deleted by someone else (the queue after an upload, a person): they no longer count. */
  async refresh(): Promise<number> {
    let gone = 0;
    for (const seg of [...this.segments.values()]) {
      if (seg.state === 'closed') continue;
      const st = await exists(seg.path);
      if (!st) {
        await this.forget(seg.id, 'gone');
        gone++;
      } else seg.bytes = st.size;
    }
    for (const [id, q] of [...this.quarantined]) {
      const st = await exists(this.abs(q.file));
      if (!st) await this.forget(id, 'gone');
      else q.bytes = st.size;
    }
    return gone;
  }

  /**
   * What the budget weighs: the recordings it may delete, oldest first, and the bytes it may not (segments not handed
   * on yet, and files set aside, which wait for a person).
   */
  budgetItems(): { items: BudgetItem[]; pendingBytes: number } {
    const items: BudgetItem[] = [];
    let pendingBytes = 0;
    for (const q of this.quarantined.values()) pendingBytes += q.bytes;
    for (const seg of this.ordered()) {
      if (seg.state === 'closed') pendingBytes += seg.bytes;
      else items.push({ id: seg.id, bytes: seg.bytes, uploaded: seg.state === 'uploaded' });
    }
    return { items, pendingBytes };
  }

  counts(): { onDisk: number; uploaded: number; notUploaded: number; bytes: number; unreadable: number } {
    let uploaded = 0;
    let bytes = 0;
    for (const s of this.segments.values()) {
      if (s.state === 'uploaded') uploaded++;
      bytes += s.bytes;
    }
    return { onDisk: this.segments.size, uploaded, notUploaded: this.segments.size - uploaded, bytes, unreadable: this.quarantined.size };
  }

  /** Sizes of the most recent segments, newest last. */
  recentBytes(n: number): number[] {
    return this.ordered().slice(-n).map((seg) => seg.bytes);
  }

  /**
   * The segments, oldest first. The map holds them in that order already (each segment made gets the next number, and
   * the journal lists them as they were made), so this only checks it: the budget asks after every segment, and
   * sorting the thousands a full disk holds each time cost more than handling the segment itself.
   */
  private ordered(): Segment[] {
    const all = [...this.segments.values()];
    for (let i = 1; i < all.length; i++) if (all[i].n < all[i - 1].n) return all.sort((a, b) => a.n - b.n);
    return all;
  }

  // ---- journal upkeep ---------------------------------------------------------------------------------------

  /**
   * Rewrites the journal with only what is still needed once it has grown well past that: the segments on disk,
   * files set aside, and the ids of runs whose lists are still on disk (so none of their entries is sent twice).
   */
  async compactIfDue(): Promise<boolean> {
    const live = this.segments.size + this.quarantined.size;
    if (this.journal.lines < 2 * live + 500) return false;
    // Files the queue (or a person) deleted need no record any more.
    await this.refresh();
    const runs = new Set(await this.runsOnDisk());
    const records: JournalRecord[] = [{ t: 'meta', lastN: this.lastN, ...(this.lastEndMs !== undefined ? { lastEndMs: this.lastEndMs } : {}) }];
    for (const seg of this.ordered()) {
      const { path: _p, state, ...record } = seg;
      records.push({ ...record, ...(state !== 'closed' ? { state } : {}) });
    }
    for (const [id, q] of this.quarantined) records.push({ t: 'quarantined', id, file: q.file });
    for (const id of this.known) {
      if (this.segments.has(id) || this.quarantined.has(id)) continue;
      if (runs.has(id.slice(0, id.lastIndexOf('-')))) records.push({ t: 'deleted', id, why: 'gone' });
      else this.known.delete(id);
    }
    await this.journal.rewrite(records);
    return true;
  }

  async close(): Promise<void> {
    if (this.released) return;
    this.released = true;
    try {
      for (const handle of this.heldFolders.values()) await handle.close().catch(() => undefined);
      this.heldFolders.clear();
      await this.journal.close();
    } finally {
      claimed.delete(this.stateDir);
      this.lock.release();
    }
  }
}
