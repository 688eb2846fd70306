import type { Command } from '../queue/input';

/** What the widget's buttons may ask of the queue: nothing else reaches it from a browser. */
export type StatusAction = { command: Extract<Command, 'retry-failed' | 'purge-failed'>; ids?: number[] };

/** At most this many items in one request (a page lists fewer). */
export const MAX_ACTION_IDS = 100;

export class ActionError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/**
 * Reads a button's request: `retry` or `purge`, and either no ids (every failed item) or a list of item ids, each a
 * whole number above 0. Anything else is refused, never passed on.
 */
export function parseStatusAction(action: string, body: unknown): StatusAction {
  const command = action === 'retry' ? 'retry-failed' : action === 'purge' ? 'purge-failed' : undefined;
  if (!command) throw new ActionError(`unknown action "${action.slice(0, 40)}" (retry, purge)`, 400);
  const ids = body !== null && typeof body === 'object' ? (body as Record<string, unknown>).ids : undefined;
  if (ids === undefined) return { command };
  if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_ACTION_IDS) {
    throw new ActionError(`ids must be a list of 1 to ${MAX_ACTION_IDS} item ids`, 400);
  }
  if (!ids.every((id) => typeof id === 'number' && Number.isInteger(id) && id > 0)) throw new ActionError('each item id must be a whole number above 0', 400);
  return { command, ids: [...new Set(ids as number[])] };
}
