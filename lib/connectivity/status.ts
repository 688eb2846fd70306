import { fmtAge } from '../util/format';
import { ConnectivityState } from './monitor';

/** The node status for a state: "online 23 ms", "offline 4m (connection refused)". */
export function connectivityStatus(state: ConnectivityState, now: number): { fill: 'green' | 'yellow'; shape: 'dot' | 'ring'; text: string } {
  if (state.online === true) return { fill: 'green', shape: 'dot', text: state.latencyMs ? `online ${state.latencyMs} ms` : 'online' };
  if (state.online === false) return { fill: 'yellow', shape: 'ring', text: `offline ${fmtAge(now - state.since)} (${state.reason})`.slice(0, 100) };
  return { fill: 'yellow', shape: 'ring', text: `checking… (${state.reason})`.slice(0, 100) };
}
