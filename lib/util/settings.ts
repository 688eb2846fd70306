/** A setting as text: trimmed, and '' for nothing. */
export function text(v: unknown): string {
  return typeof v === 'string' ? v.trim() : v === undefined || v === null ? '' : String(v).trim();
}

const DECIMAL = /^-?(\d+(\.\d+)?|\.\d+)$/;

/**
 * Reads a node's editor settings once, at deploy, collecting every problem so a person sees them all in one error
 * instead of fixing them one deploy at a time.
 */
export class SettingsReader {
  readonly errors: string[] = [];

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

  /** Throws one Error naming every problem found, if any. */
  check(): void {
    if (this.errors.length > 0) throw new Error(this.errors.join('; '));
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
