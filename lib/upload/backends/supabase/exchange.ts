/** A Storage or PostgREST error answer, as far as it could be read. */
export interface Answer {
  httpStatus: number;
  /** Storage's real status (the string statusCode of the body), else the HTTP status. */
  status: number;
  code?: string;
  message?: string;
  retryAfter?: string | null;
}

/**
 * The requests of one upload attempt: every one gets the item's signal plus an idle timeout that restarts whenever
 * body bytes go out (a large file on a slow uplink is not cut off while it is moving), and the last error answer is
 * kept whole, because storage-js keeps only its message and string statusCode and drops the code and Retry-After.
 */
export class Exchange {
  private readonly timers = new Set<NodeJS.Timeout>();
  private touchCurrent?: () => void;
  lastError?: Answer;
  lastThrown?: unknown;

  constructor(
    private readonly signal: AbortSignal,
    private readonly timeoutMs: number,
  ) {}

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    this.lastError = undefined;
    const idle = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      if (timer) {
        clearTimeout(timer);
        this.timers.delete(timer);
      }
      timer = setTimeout(() => idle.abort(new DOMException(`no progress within ${this.timeoutMs} ms`, 'TimeoutError')), this.timeoutMs);
      this.timers.add(timer);
    };
    arm();
    this.touchCurrent = arm;
    const signals = [this.signal, idle.signal];
    if (init?.signal) signals.push(init.signal);
    let res: Response;
    try {
      res = await fetch(input, { ...init, signal: AbortSignal.any(signals) });
    } catch (e) {
      this.lastThrown = e;
      throw e;
    } finally {
      if (this.touchCurrent === arm) this.touchCurrent = undefined;
    }
    // The timer keeps running (restarted) while the answer's body is read; close() clears it.
    arm();
    if (res.ok) return res;
    let text = '';
    try {
      text = await res.text();
    } catch (e) {
      this.lastThrown = e;
      throw e;
    }
    this.lastError = parseAnswer(res.status, text, res.headers.get('retry-after'));
    return new Response(text, { status: res.status, statusText: res.statusText, headers: res.headers });
  };

  /** Bytes of the request body went out: the idle timeout starts again. */
  touch(): void {
    this.touchCurrent?.();
  }

  close(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}

export function parseAnswer(httpStatus: number, text: string, retryAfter: string | null): Answer {
  let body: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (v && typeof v === 'object' && !Array.isArray(v)) body = v as Record<string, unknown>;
  } catch {
    body = undefined;
  }
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined);
  const real = Number(str(body?.statusCode));
  return {
    httpStatus,
    status: Number.isInteger(real) && real >= 100 && real <= 599 ? real : httpStatus,
    code: str(body?.code) ?? str(body?.error),
    message: (str(body?.message) ?? str(body?.error) ?? (body ? undefined : text.trim().slice(0, 200))) || undefined,
    retryAfter,
  };
}

/** Keys are sanitized upstream; encoding each segment keeps any other character from changing the request path. */
export function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

/** Storage and PostgREST both take the key twice: as the gateway's apikey and as the bearer token. */
export function authHeaders(key: string): Record<string, string> {
  return { apikey: key, Authorization: `Bearer ${key}` };
}
