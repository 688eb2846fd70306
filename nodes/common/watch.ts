import type { Uplink } from '../../lib/message/uplink';
import type { OutageSummary } from '../../lib/connectivity/outage-log';
import type { LinkState } from '../../lib/connectivity/status';

/**
 * What a node publishes to other nodes of the same Node-RED, in-process: the same values it sends on its outputs (a
 * dashboard widget watches them instead of being wired to every output). Each listener gets each value as it is
 * published, and a listener added later starts from the last one; one that throws cannot break the publisher.
 */
export class Watchers<T> {
  private listeners = new Set<(value: T) => void>();
  private lastValue: T | undefined;

  /** Calls `listener` with the last value published (if any) and then with every new one; returns the unsubscribe. */
  watch(listener: (value: T) => void): () => void {
    this.listeners.add(listener);
    if (this.lastValue !== undefined) this.call(listener, this.lastValue);
    return () => void this.listeners.delete(listener);
  }

  publish(value: T): void {
    this.lastValue = value;
    for (const l of [...this.listeners]) this.call(l, value);
  }

  get last(): T | undefined {
    return this.lastValue;
  }

  /** The publisher is closing: nobody hears from it again. */
  clear(): void {
    this.listeners.clear();
  }

  private call(listener: (value: T) => void, value: T): void {
    try {
      listener(value);
    } catch {
      /* a watcher's fault is its own */
    }
  }
}

export type { LinkState };

/** A connectivity node: its state changes, for watchers. */
export interface LinkPublisher {
  linkStates?: Watchers<LinkState>;
  /** The outages of the last `days` days from its outage log (undefined when it keeps none). */
  outagesOf?: (days: number) => Promise<OutageSummary | undefined>;
}

/** A capture node: the file of each capture it sends on (its `msg.uplink`), for watchers. */
export interface CapturePublisher {
  captures?: Watchers<Uplink>;
}
