import { fmtAge } from '../util/format';
import { ConnectivityState } from './monitor';

/** The node status for a state: "online 23 ms", "offline 4m (connection refused)". */
export function connectivityStatus(state: ConnectivityState, now: number): { fill: 'green' | 'yellow'; shape: 'dot' | 'ring'; text: string } {
  if (state.online === true) return { fill: 'green', shape: 'dot', text: state.latencyMs ? `online ${state.latencyMs} ms` : 'online' };
  if (state.online === false) return { fill: 'yellow', shape: 'ring', text: `offline ${fmtAge(now - state.since)} (${state.reason})`.slice(0, 100) };
  return { fill: 'yellow', shape: 'ring', text: `checking… (${state.reason})`.slice(0, 100) };
}

/**
 * The link state as the connectivity node sends it on every change (`msg.payload` of its `topic: "connectivity"`
 * messages): what the queue, a dashboard widget and a flow read.
 */
export interface LinkState {
  online: boolean | null;
  /** false while the target's settings are blank (nothing is probed). */
  configured?: boolean;
  /** ISO time of the change. */
  since: string;
  latency?: number | null;
  reason: string;
  target?: string;
}
