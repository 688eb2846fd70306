import { ChildProcess, spawn } from 'child_process';
import type { Readable, Writable } from 'stream';
import { guardedCommand } from '../util/child-guard';
import { ProcessEnd } from './ffmpeg-reason';

/** Kept from the end of stderr: the last lines say why ffmpeg stopped; a chatty camera must not grow memory. */
const STDERR_TAIL = 8192;
/** A process stuck in the kernel (a wedged USB camera) may not even die of SIGKILL: stop waiting for it after this. */
const GONE_AFTER_KILL_MS = 2000;

export interface ProcessPipes {
  /** A pipe to write ffmpeg's input into (`-i pipe:0`); /dev/null otherwise. */
  stdin?: boolean;
  /** A pipe to read what ffmpeg writes to `pipe:1`; /dev/null otherwise. */
  stdout?: boolean;
  /** ffmpeg's working folder, where plain names in its arguments are. */
  cwd?: string;
}

export interface ProcessExit extends ProcessEnd {
  /** From spawn to exit. */
  runMs: number;
  /** We asked it to stop (SIGTERM). */
  stopped: boolean;
}

/**
 * One long-running ffmpeg. Spawned through `setpriv --pdeathsig` so it dies with Node-RED even when Node-RED is
 * SIGKILLed, in its own process group (a terminal's Ctrl-C reaches Node-RED, which then stops it properly), stdin
 * and stdout /dev/null unless a pipe is asked for. Stopped with one SIGTERM, which lets ffmpeg finish the segment it
 * is writing and list it (a second signal would cut it short), and SIGKILL if it is still there after the grace time.
 */
export class RecordingProcess {
  readonly exited: Promise<ProcessExit>;
  private readonly child: ChildProcess;
  private stopRequested = false;
  private killed = false;
  private done = false;
  private killTimer: NodeJS.Timeout | undefined;
  private finish: (code: number | null, signal: NodeJS.Signals | null) => void = () => undefined;

  constructor(file: string, args: string[], readonly killGraceMs = 5000, pipes: ProcessPipes = {}) {
    const started = Date.now();
    const cmd = guardedCommand(file, args, 'TERM');
    let stderr = '';
    let spawnError: NodeJS.ErrnoException | undefined;
    this.child = spawn(cmd.file, cmd.args, {
      stdio: [pipes.stdin ? 'pipe' : 'ignore', pipes.stdout ? 'pipe' : 'ignore', 'pipe'],
      detached: true,
      windowsHide: true,
      ...(pipes.cwd ? { cwd: pipes.cwd } : {}),
    });
    // A pipe's end closed by ffmpeg's exit is not an error of ours: the exit says what happened.
    this.child.stdin?.on('error', () => undefined);
    this.child.stdout?.on('error', () => undefined);
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (s: string) => {
      stderr += s;
      if (stderr.length > 2 * STDERR_TAIL) stderr = stderr.slice(-STDERR_TAIL);
    });
    this.child.stderr?.on('error', () => undefined);
    this.exited = new Promise<ProcessExit>((resolve) => {
      this.finish = (code, signal) => {
        if (this.done) return;
        this.done = true;
        if (this.killTimer) clearTimeout(this.killTimer);
        resolve({ code, signal, stderr, spawnError, runMs: Date.now() - started, stopped: this.stopRequested });
      };
      this.child.on('error', (err: NodeJS.ErrnoException) => {
        if (this.child.pid === undefined) {
          spawnError = err;
          this.finish(null, null);
        }
      });
      // 'close' waits for stderr to be read to its end, so the reason is complete.
      this.child.on('close', (code, signal) => this.finish(code, signal));
    });
  }

  /** ffmpeg's input pipe, when asked for. */
  get stdin(): Writable | null {
    return this.child.stdin;
  }

  /** ffmpeg's output pipe, when asked for. */
  get stdout(): Readable | null {
    return this.child.stdout;
  }

  get pid(): number | undefined {
    return this.done ? undefined : this.child.pid;
  }

  /** Asks ffmpeg to finish (one SIGTERM), kills it after the grace time, and resolves once it is gone. */
  stop(): Promise<ProcessExit> {
    if (!this.done && !this.stopRequested) {
      this.stopRequested = true;
      this.signal('SIGTERM');
      this.killTimer = setTimeout(() => this.kill(), this.killGraceMs);
    }
    return this.exited;
  }

  /** SIGKILL now, for a process that did not stop within the grace time. */
  kill(): Promise<ProcessExit> {
    if (!this.done && !this.killed) {
      this.killed = true;
      if (this.killTimer) clearTimeout(this.killTimer);
      this.signal('SIGKILL');
      this.killTimer = setTimeout(() => this.finish(null, 'SIGKILL'), GONE_AFTER_KILL_MS);
    }
    return this.exited;
  }

  private signal(sig: NodeJS.Signals): void {
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        this.child.kill(sig);
      } catch {
        /* already gone */
      }
    }
  }
}
