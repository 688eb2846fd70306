/** How sizes and durations read in status texts, logs and errors: one place, so every node says them alike. */

/** "512 B", "3.4 KB", "12 KB", "1.5 MB", "2.25 GB". */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

/** A size with its exact count beside it, for limits a person compares against: "1.5 MB (1572864 bytes)". */
export function fmtBytesExact(n: number): string {
  if (n >= 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MB (${n} bytes)`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KB (${n} bytes)`;
  return `${n} bytes`;
}

/** Whole megabytes, for disk space: "200 MB". */
export function fmtMegabytes(n: number): string {
  return `${Math.round(n / (1024 * 1024))} MB`;
}

/** A span in the largest unit that keeps it readable: "45 s", "12 min", "5 h", "3 days". */
export function fmtDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} days`;
}

/** A short age for a node status: "42s", "4m", "2h05", "3d". */
export function fmtAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}`;
  return `${Math.floor(s / 86400)}d`;
}

/** A timeout or interval: "5 s", "2.5 s". */
export function fmtSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${(ms / 1000).toFixed(1)} s`;
}

/**
 * A clock time in a time zone ('' = the machine's): "00:00", or "1 Jan 00:00" when it is more than a day after `now`.
 * What a budget's hold and reset say ("held until 00:00").
 */
export function fmtClockIn(at: number, timeZone: string, now: number): string {
  const f = new Intl.DateTimeFormat('en-GB', { timeZone: timeZone || undefined, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const d = new Intl.DateTimeFormat('en-GB', { timeZone: timeZone || undefined, day: 'numeric', month: 'short' });
  return at - now > 86_400_000 ? `${d.format(at)} ${f.format(at)}` : f.format(at);
}
