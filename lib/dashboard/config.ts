import { text } from '../util/settings';

/**
 * Who may retry and purge failed items from the Uplink status widget:
 * - `permission`: whoever holds the queue's write permission (`uplink-offline-queue.write`), exactly as for the queue's
 *   admin endpoints: with Node-RED's adminAuth, a browser logged in to the editor as such a user; without adminAuth,
 *   anyone who reaches Node-RED (as for the editor itself);
 * - `disabled`: the buttons are shown, greyed out, and the server refuses;
 * - `hidden`: no buttons, and the server refuses.
 */
export type ActionsMode = 'permission' | 'disabled' | 'hidden';
export const ACTIONS_MODES: readonly ActionsMode[] = ['permission', 'disabled', 'hidden'];

/** The widget's settings as the runtime uses them. */
export interface StatusWidgetConfig {
  /** The offline-queue node shown (its node id). */
  queue: string;
  /** The connectivity node whose link state is shown, if any. */
  connectivity: string;
  /** The capture node whose latest capture is shown, if any. */
  capture: string;
  actions: ActionsMode;
  /** How many failed items the list shows (the rest are counted). */
  failedShown: number;
}

export function parseStatusWidgetConfig(raw: Record<string, unknown>): StatusWidgetConfig {
  const queue = text(raw.queue);
  if (queue === '') throw new Error('pick the offline queue to show');
  const actions = text(raw.actions) || 'permission';
  if (!(ACTIONS_MODES as readonly string[]).includes(actions)) throw new Error(`retry and purge must be one of ${ACTIONS_MODES.join(', ')} (got "${actions}")`);
  return { queue, connectivity: text(raw.connectivity), capture: text(raw.capture), actions: actions as ActionsMode, failedShown: 50 };
}
