/**
 * A setting that names an environment variable Node-RED could not resolve: `${NAME}` stays in place when NAME is
 * unset (a shipped flow imported into a Node-RED started without Uplink's variables). It means "not set".
 */
const UNRESOLVED_ENV = /^\$\{\S+\}$/;

/** A setting as text: trimmed, and '' for nothing (an unresolved `${NAME}` included). */
export function text(v: unknown): string {
  const t = typeof v === 'string' ? v.trim() : v === undefined || v === null ? '' : String(v).trim();
  return UNRESOLVED_ENV.test(t) ? '' : t;
}

/**
 * A node whose settings are not wrong but not given yet (the bucket, the project URL, the camera's address are
 * blank): it waits, with a yellow status and one line in the log, instead of failing on every message.
 */
export class NotConfiguredError extends Error {
  constructor(readonly missing: Missing[]) {
    super(`not configured: set the ${joinWords([...new Set(missing.map((m) => m.what))])}`);
  }
}

/** A blank setting a node needs: what to set, and the error it is when other things are wrong as well. */
export interface Missing {
  what: string;
  error: string;
}

/** "a", "a and b", "a, b and c". */
export function joinWords(words: string[]): string {
  return words.length <= 1 ? (words[0] ?? '') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

const DECIMAL = /^-?(\d+(\.\d+)?|\.\d+)$/;

/**
 * Reads a node's editor settings once, at deploy, collecting every problem so a person sees them all in one error
 * instead of fixing them one deploy at a time.
 */
export class SettingsReader {
  readonly errors: string[] = [];
  /** Settings left blank that the node cannot work without: what to set, and the error it is when other things are wrong. */
  readonly missing: Missing[] = [];

  constructor(private readonly raw: Record<string, unknown>) {}

  str(key: string): string {
    return text(this.raw[key]);
  }

  /** A decimal number in [min, max] ('0x10' and '1e3' are typos here, not numbers); blank gives the default. */
  num(key: string, label: string, def: number, min: number, max: number, opts: { integer?: boolean; unit?: string } = {}): number {
    const v = this.raw[key];
    const t = text(v);
    if (t === '') return def;
    const n = typeof v === 'number' ? v : DECIMAL.test(t) ? Number(t) : NaN;
    if (!Number.isFinite(n) || (opts.integer && !Number.isInteger(n)) || n < min || n > max) {
      this.errors.push(`${label} must be ${opts.integer ? 'a whole number' : 'a number'}${opts.unit ? ` of ${opts.unit}` : ''} from ${min} to ${max} (got "${t}")`);
      return def;
    }
    return n;
  }

  choice<T extends string>(key: string, label: string, options: readonly T[], def: T): T {
    const t = text(this.raw[key]);
    if (t === '') return def;
    if (!options.includes(t as T)) {
      this.errors.push(`${label} must be one of ${options.join(', ')} (got "${t}")`);
      return def;
    }
    return t as T;
  }

  error(message: string): void {
    this.errors.push(message);
  }

  /**
   * A setting the node needs, as text. Blank is not an error by itself: the node is not configured yet (see check).
   * `what` names it for "not configured: set the …"; `error` is how it reads among other problems.
   */
  required(key: string, what: string, error: string): string {
    const t = this.str(key);
    if (t === '') this.missing.push({ what, error });
    return t;
  }

  /** Records a blank value the node needs that was not read through `required` (a credential). */
  need(what: string, error: string): void {
    this.missing.push({ what, error });
  }

  /** Takes in the problems a nested parser found (a camera's settings inside the recorder's). */
  absorb(e: unknown): void {
    if (e instanceof NotConfiguredError) this.missing.push(...e.missing);
    else this.errors.push((e as Error).message);
  }

  /**
   * Throws one Error naming every problem found, if any; a node whose only problem is blank required settings gets a
   * NotConfiguredError instead, naming what to set.
   */
  check(): void {
    if (this.errors.length > 0) throw new Error([...this.errors, ...this.missing.map((m) => m.error)].join('; '));
    if (this.missing.length > 0) throw new NotConfiguredError(this.missing);
  }
}

/** Parses "200-299, 401" into the list of accepted status codes. */
export function parseStatusList(text: string): number[] {
  const out = new Set<number>();
  for (const part of text.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const m = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(part);
    if (!m) throw new Error(`"${part}" is not a status code or a range like 200-299`);
    const a = Number(m[1]);
    const b = m[2] ? Number(m[2]) : a;
    if (a < 100 || b > 599 || b < a) throw new Error(`"${part}" is not a range of HTTP status codes (100-599)`);
    for (let c = a; c <= b; c++) out.add(c);
  }
  return [...out];
}
