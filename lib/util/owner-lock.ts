import crypto from 'crypto';
import fs from 'fs';

/** A lock this process holds; `release` removes it unless another process has since taken it over. */
export interface OwnerLock {
  readonly file: string;
  release(): void;
}

export class OwnerLockError extends Error {
  readonly code = 'LOCKED';
  /** The live process that holds the lock, when one does. */
  constructor(message: string, readonly file: string, readonly holderPid?: number) {
    super(message);
  }
}

/**
 * One owner per resource (a queue database, a recordings folder), across processes. The lock file is created with
 * O_EXCL, so of two processes starting together exactly one wins. It names the holder by pid and by the time that
 * process started, so a lock left by a crash or a power cut is recognised as stale even when, after a reboot, its pid
 * belongs to some other process. `what` names the resource in the error a second owner gets.
 */
export function acquireOwnerLock(file: string, what: string): OwnerLock {
  const me = `${process.pid} ${processStartTime(process.pid) ?? '-'}`;
  for (let i = 0; i < 3; i++) {
    if (create(file, me)) return { file, release: () => releaseIfMine(file, me) };
    const held = readLock(file);
    if (held === undefined) continue;
    const pid = liveHolder(held);
    if (pid !== undefined) throw new OwnerLockError(`${what} is in use by another process (pid ${pid})`, file, pid);
    removeStale(file, held, me);
  }
  throw new OwnerLockError(`cannot lock ${what}`, file);
}

/**
 * Creates the file with this text unless it exists: true when this call created it. The text is written to a temp
 * file first and hard-linked into place (which fails if the name exists), so another process never reads the lock
 * half-written: an empty lock would look stale and be taken over. File systems without hard links (FAT) get O_EXCL.
 */
function create(file: string, text: string): boolean {
  const temp = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  fs.writeFileSync(temp, text);
  try {
    fs.linkSync(temp, file);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw e;
  } finally {
    fs.rmSync(temp, { force: true });
  }
  try {
    fs.writeFileSync(file, text, { flag: 'wx' });
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

/** The lock's text, or undefined when it vanished since (its owner let go, or another process took it over). */
function readLock(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * The live process a lock's text names; undefined when the lock is stale, or is this process's own, left by an owner
 * in this process that did not let go.
 */
function liveHolder(text: string): number | undefined {
  const [pidText, started] = text.trim().split(/\s+/);
  const pid = parseInt(pidText, 10);
  return Number.isInteger(pid) && pid !== process.pid && holderAlive(pid, started) ? pid : undefined;
}

/**
 * Removes a lock judged stale, and only that one. Processes that find the same stale lock (two Node-REDs starting
 * after a power cut) would otherwise each remove it, and a slow one could remove the fresh lock a faster one had just
 * taken in its place. So only the process holding a second, short-lived lock may remove it, and only while it still
 * reads as the stale one. The others go round again, and find a fresh lock or none.
 */
function removeStale(file: string, stale: string, me: string): void {
  const guard = `${file}.takeover`;
  if (!create(guard, me)) {
    // A process that died while taking over leaves the guard behind: it is stale in turn.
    const g = readLock(guard);
    if (g !== undefined && liveHolder(g) === undefined) fs.rmSync(guard, { force: true });
    return;
  }
  try {
    if (readLock(file) === stale) fs.rmSync(file, { force: true });
  } finally {
    fs.rmSync(guard, { force: true });
  }
}

function releaseIfMine(file: string, me: string): void {
  try {
    if (fs.readFileSync(file, 'utf8') === me) fs.rmSync(file, { force: true });
  } catch {
    /* no lock left */
  }
}

/** Start time of a process in clock ticks since boot (Linux), or undefined where /proc does not tell. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function holderAlive(pid: number, started: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const now = processStartTime(pid);
  return started === undefined || started === '-' || now === undefined || now === started;
}
