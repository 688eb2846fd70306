import { ChildProcess, spawn } from 'child_process';
import { CaptureError } from './types';

/** How long a child has to finish after SIGTERM before it gets SIGKILL. */
export const KILL_GRACE_MS = 2000;
/** After SIGKILL (which cannot be ignored), how long to wait for the pipes to close before giving up on them. */
const PIPE_GRACE_MS = 1000;
/** Kept from the end of stderr: enough for the last few lines, bounded whatever the child prints. */
const STDERR_TAIL = 8192;

export interface ChildRunOptions {
  file: string;
  args: readonly string[];
  /** The whole run, from spawn to exit. */
  timeoutMs: number;
  signal: AbortSignal;
  /** Whether stdout is the result (collected up to maxBytes) or thrown away. */
  stdout: 'collect' | 'ignore';
  maxBytes: number;
}

/** Why the run ended: the child exited by itself, or we stopped it (and why), or it never started. */
export type ChildEnd = 'exit' | 'timeout' | 'aborted' | 'closed' | 'too-large' | 'spawn-failed';

export interface ChildOutcome {
  end: ChildEnd;
  /** Exit code, or null when a signal ended it (or it never started). */
  code: number | null;
  signalName: NodeJS.Signals | null;
  stdout: Buffer;
  /** The end of what the child wrote to stderr. */
  stderr: string;
  spawnError?: NodeJS.ErrnoException;
  elapsedMs: number;
}

interface Running {
  pid: number | undefined;
  stop(reason: ChildEnd): void;
  done: Promise<ChildOutcome>;
}

/**
 * Runs the child processes of one capture source, so that none outlives the call that started it or the source's
 * close(). Each run resolves (never rejects) only after its child is gone: exited by itself, or stopped with SIGTERM
 * at the deadline, on abort or on close, and SIGKILL if it is still there KILL_GRACE_MS later.
 */
export class ChildRunner {
  private readonly running = new Set<Running>();
  private closing = false;

  /** Process ids of the children running now (for status and tests). */
  get pids(): number[] {
    return [...this.running].map((r) => r.pid).filter((p): p is number => p !== undefined);
  }

  get closed(): boolean {
    return this.closing;
  }

  run(opts: ChildRunOptions): Promise<ChildOutcome> {
    const started = Date.now();
    const outcome = (end: ChildEnd, extra: Partial<ChildOutcome> = {}): ChildOutcome => ({
      end,
      code: null,
      signalName: null,
      stdout: Buffer.alloc(0),
      stderr: '',
      elapsedMs: Date.now() - started,
      ...extra,
    });
    if (this.closing) return Promise.resolve(outcome('closed'));
    if (opts.signal.aborted) return Promise.resolve(outcome('aborted'));

    let child: ChildProcess;
    try {
      // No shell, ever: argv goes to the program as given. Its own process group, so a wrapper script's children are
      // stopped with it. stdin is /dev/null: a program waiting for input (ffmpeg's "Overwrite?") gets EOF, not a hang.
      child = spawn(opts.file, opts.args, {
        stdio: ['ignore', opts.stdout === 'collect' ? 'pipe' : 'ignore', 'pipe'],
        detached: true,
        windowsHide: true,
      });
    } catch (e) {
      // Thrown synchronously only for invalid arguments (a NUL byte in argv, for one).
      return Promise.resolve(outcome('spawn-failed', { spawnError: e as NodeJS.ErrnoException }));
    }

    // Set inside the executor (which runs at once), used by close() through `entry`.
    let stopChild: (reason: ChildEnd) => void = () => undefined;
    const done = new Promise<ChildOutcome>((resolve) => {
      const chunks: Buffer[] = [];
      let bytes = 0;
      let stderr = '';
      let stopReason: ChildEnd | undefined;
      let spawnError: NodeJS.ErrnoException | undefined;
      let exitCode: number | null = null;
      let exitSignal: NodeJS.Signals | null = null;
      let finished = false;
      const timers: NodeJS.Timeout[] = [];

      const signalGroup = (sig: NodeJS.Signals): void => {
        const pid = child.pid;
        if (pid === undefined) return;
        try {
          process.kill(-pid, sig);
        } catch {
          // The group is gone (or was never made): signal the child itself; a no-op once it has exited.
          try {
            child.kill(sig);
          } catch {
            /* already gone */
          }
        }
      };

      const finish = (): void => {
        if (finished) return;
        finished = true;
        for (const t of timers) clearTimeout(t);
        opts.signal.removeEventListener('abort', onAbort);
        child.stdout?.destroy();
        child.stderr?.destroy();
        this.running.delete(entry);
        const end: ChildEnd = spawnError ? 'spawn-failed' : (stopReason ?? 'exit');
        resolve(outcome(end, { code: exitCode, signalName: exitSignal, stdout: Buffer.concat(chunks, bytes), stderr, spawnError }));
      };

      const stop = (reason: ChildEnd): void => {
        if (finished || stopReason) return;
        stopReason = reason;
        signalGroup('SIGTERM');
        timers.push(
          setTimeout(() => {
            signalGroup('SIGKILL');
            // A process stuck in the kernel (a wedged USB camera) may not even die of SIGKILL: stop waiting for it.
            timers.push(setTimeout(finish, PIPE_GRACE_MS));
          }, KILL_GRACE_MS),
        );
      };

      const onAbort = (): void => stop('aborted');
      stopChild = stop;

      child.stdout?.on('data', (chunk: Buffer) => {
        if (stopReason) return;
        bytes += chunk.length;
        if (bytes > opts.maxBytes) {
          // Never hold more than asked: drop what came and stop the child.
          chunks.length = 0;
          bytes = 0;
          stop('too-large');
          return;
        }
        chunks.push(chunk);
      });
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (s: string) => {
        stderr += s;
        if (stderr.length > 2 * STDERR_TAIL) stderr = stderr.slice(-STDERR_TAIL);
      });
      // Errors on the pipes themselves (EPIPE and the like) end in 'close' too; only note them.
      child.stdout?.on('error', () => undefined);
      child.stderr?.on('error', () => undefined);

      child.on('error', (err: NodeJS.ErrnoException) => {
        if (child.pid === undefined) {
          // It never started (ENOENT, EACCES): nothing to wait for.
          spawnError = err;
          finish();
        }
      });
      child.on('exit', (code, sig) => {
        exitCode = code;
        exitSignal = sig;
        // 'close' follows once the pipes are drained. If something the child left behind still holds them, stop it.
        timers.push(
          setTimeout(() => {
            signalGroup('SIGKILL');
            finish();
          }, PIPE_GRACE_MS),
        );
      });
      child.on('close', () => finish());

      timers.push(setTimeout(() => stop('timeout'), opts.timeoutMs));
      opts.signal.addEventListener('abort', onAbort, { once: true });
    });
    const entry: Running = { pid: child.pid, stop: (reason) => stopChild(reason), done };
    this.running.add(entry);
    return done;
  }

  /** Stops every running child (SIGTERM, then SIGKILL) and waits until all are gone; later runs end at once. */
  async close(): Promise<void> {
    this.closing = true;
    const all = [...this.running];
    for (const r of all) r.stop('closed');
    await Promise.all(all.map((r) => r.done));
  }
}

/** The last non-empty line of a program's stderr, trimmed and kept short. */
export function lastLine(stderr: string): string {
  const lines = stderr.split(/\r?\n|\r/).map((l) => l.trim()).filter((l) => l !== '');
  const last = lines[lines.length - 1] ?? '';
  return last.length > 300 ? `${last.slice(0, 300)}…` : last;
}

/**
 * Splits a command line into argv the way a POSIX shell splits words, and does nothing else a shell does: no
 * variables, globs, pipes, redirections or command separators. Quotes ('…' literal, "…" with \" and \\) group words;
 * a backslash outside quotes keeps the next character. `unquoted[i]` says whether word i had no quoting at all.
 */
export function splitCommandLine(line: string): { argv: string[]; unquoted: boolean[] } {
  const argv: string[] = [];
  const unquoted: boolean[] = [];
  let word = '';
  let inWord = false;
  let plain = true;
  let i = 0;
  const end = (): void => {
    if (inWord) {
      argv.push(word);
      unquoted.push(plain);
    }
    word = '';
    inWord = false;
    plain = true;
  };
  while (i < line.length) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      end();
      i++;
    } else if (c === "'") {
      const close = line.indexOf("'", i + 1);
      if (close < 0) throw new Error(`the command has an unclosed ' (at character ${i + 1})`);
      word += line.slice(i + 1, close);
      inWord = true;
      plain = false;
      i = close + 1;
    } else if (c === '"') {
      inWord = true;
      plain = false;
      let j = i + 1;
      for (;;) {
        if (j >= line.length) throw new Error(`the command has an unclosed " (at character ${i + 1})`);
        const d = line[j];
        if (d === '"') break;
        if (d === '\\' && (line[j + 1] === '"' || line[j + 1] === '\\')) {
          word += line[j + 1];
          j += 2;
        } else {
          word += d;
          j++;
        }
      }
      i = j + 1;
    } else if (c === '\\') {
      if (i + 1 >= line.length) throw new Error('the command ends with a lone \\');
      word += line[i + 1];
      inWord = true;
      plain = false;
      i += 2;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  end();
  return { argv, unquoted };
}

/** An abort by the caller; a TimeoutError reason (AbortSignal.timeout) is a timeout. */
export function abortedError(signal: AbortSignal): CaptureError {
  const reason = signal.reason as { name?: string } | undefined;
  if (reason?.name === 'TimeoutError') return new CaptureError('the capture took longer than allowed and was stopped', 'TIMEOUT');
  return new CaptureError('the capture was stopped before it finished', 'ABORTED');
}
