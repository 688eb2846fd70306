import fs from 'fs';

/**
 * A child process (ffmpeg recording for hours) must not outlive Node-RED, even when Node-RED is killed with SIGKILL
 * and gets no chance to stop it. Linux can send a signal to a child when its parent dies (PR_SET_PDEATHSIG); util-linux's
 * `setpriv --pdeathsig` sets it and then execs the command, so the command runs as the direct child it would have been.
 * util-linux is part of every Debian and Raspberry Pi OS install; where setpriv is missing the command runs unguarded.
 */
const SETPRIV_PATHS = ['/usr/bin/setpriv', '/bin/setpriv'];
let setpriv: string | null | undefined;

function findSetpriv(): string | null {
  if (setpriv !== undefined) return setpriv;
  setpriv = process.platform === 'linux' ? (SETPRIV_PATHS.find((p) => fs.existsSync(p)) ?? null) : null;
  return setpriv;
}

/** The file and arguments to spawn so that `file` receives `signal` when this process dies. */
export function guardedCommand(file: string, args: string[], signal: 'TERM' | 'INT' | 'KILL' = 'TERM'): { file: string; args: string[]; guarded: boolean } {
  const sp = findSetpriv();
  if (!sp) return { file, args, guarded: false };
  return { file: sp, args: ['--pdeathsig', signal, '--', file, ...args], guarded: true };
}
