import fs from 'fs';
import path from 'path';
import { SettingsReader } from '../../util/settings';
import { abortedError, ChildRunner, lastLine, splitCommandLine } from '../child-run';
import { CaptureError, CaptureSource } from '../types';

export interface CommandSettings {
  /** A program and its arguments, e.g. `rpicam-still -n -o -`. Run without a shell. */
  command: string;
  /** Where the image arrives: on the program's stdout, or in a file it writes. */
  output: 'stdout' | 'file';
  /** With output 'file': the file the program writes (an absolute path); read, then deleted. */
  file?: string;
  timeoutMs: number;
}

/** Words a person may type expecting a shell; here they would only become arguments. */
const SHELL_OPERATORS = new Set(['|', '||', '&', '&&', ';', ';;', '>', '>>', '<', '<<', '2>', '2>>', '2>&1', '&>', '>&']);

/** Reads a command camera's settings once, at deploy, listing every problem in one Error. */
export function parseCommandSettings(raw: Record<string, unknown>): CommandSettings {
  const r = new SettingsReader(raw);
  const command = r.required('command', 'command', 'Command is required (for example: rpicam-still -n -o -)');
  const output = r.choice('output', 'Image output', ['stdout', 'file'] as const, 'stdout');
  const file = r.str('file');
  const timeoutMs = Math.round(r.num('timeout', 'Timeout', 10, 0.1, 600, { unit: 'seconds' }) * 1000);

  if (command !== '') {
    try {
      const { argv, unquoted } = splitCommandLine(command);
      if (argv.length === 0) r.error('Command is required (for example: rpicam-still -n -o -)');
      const ops = argv.filter((a, i) => unquoted[i] && SHELL_OPERATORS.has(a));
      if (ops.length) {
        r.error(
          `Command: the command runs without a shell, so ${[...new Set(ops)].join(' ')} would only be passed as an argument: ` +
            `put the pipeline in a script and run that, or quote the character if it is meant literally`,
        );
      }
    } catch (e) {
      r.error(`Command: ${(e as Error).message}`);
    }
  }
  if (output === 'file') {
    if (file === '') r.error('Output file is required when the image is written to a file');
    else if (!path.isAbsolute(file)) r.error(`Output file must be an absolute path (got "${file}")`);
  }
  r.check();
  return { command, output, ...(output === 'file' ? { file: path.resolve(file) } : {}), timeoutMs };
}

/**
 * Runs a camera program (rpicam-still, fswebcam, a user's script) for each capture and takes the image from its
 * stdout or from the file it writes. The command line is split into argv here and run without a shell, so nothing in
 * it (or in anything that ends up in it) is ever interpreted as shell syntax.
 */
export class CommandSource implements CaptureSource {
  readonly kind = 'command';
  private readonly children = new ChildRunner();
  private readonly argv: string[];

  constructor(readonly settings: CommandSettings) {
    const { argv } = splitCommandLine(settings.command);
    if (argv.length === 0) throw new Error('the command is empty');
    this.argv = argv;
  }

  /** Process ids of the commands running now. */
  get runningPids(): number[] {
    return this.children.pids;
  }

  async grab(signal: AbortSignal, maxBytes: number): Promise<Buffer> {
    if (this.children.closed) throw new CaptureError('the camera is closed (the flow is stopping)', 'CLOSED');
    if (signal.aborted) throw abortedError(signal);
    const { output, file, timeoutMs } = this.settings;
    const program = this.argv[0];
    // An image left over from an earlier run must never pass for this run's.
    if (output === 'file' && file) await removeQuietly(file);

    const out = await this.children.run({
      file: program,
      args: this.argv.slice(1),
      timeoutMs,
      signal,
      stdout: output === 'stdout' ? 'collect' : 'ignore',
      maxBytes,
    });
    try {
      switch (out.end) {
        case 'spawn-failed': {
          const code = out.spawnError?.code;
          if (code === 'ENOENT') throw new CaptureError(`the command "${program}" was not found: install it, or give its full path`, 'COMMAND_MISSING');
          if (code === 'EACCES') throw new CaptureError(`the command "${program}" cannot be run (permission denied): check that it is executable`, 'COMMAND_MISSING');
          throw new CaptureError(`the command "${program}" could not be started: ${out.spawnError?.message ?? 'unknown error'}`, 'COMMAND_FAILED');
        }
        case 'timeout':
          throw new CaptureError(`"${program}" gave no image within ${timeoutMs / 1000} s and was stopped`, 'TIMEOUT');
        case 'aborted':
          throw abortedError(signal);
        case 'closed':
          throw new CaptureError('the capture was stopped: the camera is closing (the flow is stopping)', 'ABORTED');
        case 'too-large':
          throw new CaptureError(`the image from "${program}" is larger than the limit of ${maxBytes} bytes`, 'TOO_LARGE');
        case 'exit':
          break;
      }
      if (out.code !== 0) {
        const how = out.code !== null ? `exited with code ${out.code}` : `was ended by ${out.signalName ?? 'a signal'}`;
        const last = lastLine(out.stderr);
        throw new CaptureError(`"${program}" ${how}${last ? `: ${last}` : ''}`, 'COMMAND_FAILED');
      }
      const data = output === 'file' && file ? await readOutputFile(file, program, maxBytes) : out.stdout;
      if (data.length === 0) {
        throw new CaptureError(output === 'file' ? `"${program}" wrote an empty file ${file}` : `"${program}" wrote nothing to its output`, 'NO_OUTPUT');
      }
      return data;
    } finally {
      // Whatever happened, the file is not left for the next run (or to fill the disk).
      if (output === 'file' && file) await removeQuietly(file);
    }
  }

  async close(): Promise<void> {
    await this.children.close();
  }
}

async function readOutputFile(file: string, program: string, maxBytes: number): Promise<Buffer> {
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new CaptureError(`"${program}" finished but did not write ${file}: check the command's output option`, 'NO_OUTPUT');
    }
    throw new CaptureError(`the image file ${file} cannot be read: ${(e as Error).message}`, 'NO_OUTPUT');
  }
  try {
    const { size } = await handle.stat();
    if (size > maxBytes) throw new CaptureError(`the image file ${file} is larger than the limit of ${maxBytes} bytes`, 'TOO_LARGE');
    // Read in pieces and count, whatever stat said: never hold more than the limit.
    const chunks: Buffer[] = [];
    let total = 0;
    const piece = Buffer.alloc(Math.min(64 * 1024, maxBytes + 1));
    for (;;) {
      const { bytesRead } = await handle.read(piece, 0, piece.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw new CaptureError(`the image file ${file} is larger than the limit of ${maxBytes} bytes`, 'TOO_LARGE');
      chunks.push(Buffer.from(piece.subarray(0, bytesRead)));
    }
    return Buffer.concat(chunks, total);
  } finally {
    await handle.close();
  }
}

async function removeQuietly(file: string): Promise<void> {
  try {
    await fs.promises.rm(file, { force: true });
  } catch {
    /* a directory, or no permission: reading it will say what is wrong */
  }
}
