export interface TriggerOptions {
  /** 'rising': a GPIO-style message (payload 0/1) captures on 1 only; 'both': on 0 and 1; other messages always capture. */
  edge: 'rising' | 'both';
  /** Triggers closer than this to the last accepted one are ignored (a bouncing button). */
  minIntervalMs: number;
  /** A trigger during a capture: skipped, or kept (at most maxQueued) and run after it. */
  overlap: 'skip' | 'queue';
  maxQueued: number;
}

export type TriggerVerdict = 'capture' | 'falling-edge' | 'debounced' | 'busy-skipped' | 'queued' | 'queue-full';

/** Reads a GPIO level from a message (node-red-node-pi-gpio sends msg.payload 0 or 1), if it carries one. */
export function gpioLevel(msg: Record<string, unknown>): 0 | 1 | undefined {
  const p = msg.payload;
  const level = p === 0 || p === '0' || p === false ? 0 : p === 1 || p === '1' || p === true ? 1 : undefined;
  if (level === undefined) return undefined;
  const topic = typeof msg.topic === 'string' ? msg.topic : '';
  // A 0/1 payload is a level when it comes from a GPIO node, or when nothing says otherwise.
  return topic === '' || /^(gpio|pi\/|rpi)/i.test(topic) || typeof p !== 'boolean' ? level : undefined;
}

/** Decides what each trigger does; the node does the capturing. `T` is whatever the caller needs to run a kept trigger. */
export class TriggerGate<T = Record<string, unknown>> {
  private lastAccepted = -Infinity;
  private busy = false;
  private waiting: T[] = [];
  readonly counts: Record<TriggerVerdict, number> = { capture: 0, 'falling-edge': 0, debounced: 0, 'busy-skipped': 0, queued: 0, 'queue-full': 0 };

  constructor(readonly options: TriggerOptions) {}

  offer(msg: Record<string, unknown>, now: number, item: T): TriggerVerdict {
    const v = this.judge(msg, now, item);
    this.counts[v]++;
    return v;
  }

  private judge(msg: Record<string, unknown>, now: number, item: T): TriggerVerdict {
    if (this.options.edge === 'rising' && gpioLevel(msg) === 0) return 'falling-edge';
    if (now - this.lastAccepted < this.options.minIntervalMs) return 'debounced';
    if (this.busy) {
      if (this.options.overlap === 'skip') return 'busy-skipped';
      if (this.waiting.length >= this.options.maxQueued) return 'queue-full';
      this.lastAccepted = now;
      this.waiting.push(item);
      return 'queued';
    }
    this.lastAccepted = now;
    this.busy = true;
    return 'capture';
  }

  /** The capture finished: the next kept trigger, if any, runs now (the gate stays busy for it). */
  finished(): T | undefined {
    const next = this.waiting.shift();
    if (!next) this.busy = false;
    return next;
  }

  /** Triggers still waiting, dropped when the node closes. */
  drain(): T[] {
    const w = this.waiting;
    this.waiting = [];
    this.busy = false;
    return w;
  }
}
