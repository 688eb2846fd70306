import { ResumeHandle, ResumeState } from './types';

/**
 * What an offline queue offers the uploader for the items it delivers: durable upload progress in the item's row,
 * a lease kept alive while an upload moves, progress for the stats, and the half uploads of items that went away.
 * The queue registers itself under the token it puts into each message (`msg.uplink.item.queue`); both nodes run in
 * the same Node-RED process, and a message without a known token simply uploads without resuming.
 */
export interface ResumeProvider {
  load(itemId: number, target: string): Promise<ResumeState | undefined>;
  save(itemId: number, target: string, state: ResumeState, confirmedBytes: number): Promise<void>;
  clear(itemId: number, target: string): Promise<void>;
  /** Bytes sent of an item's attempt; keeps its lease alive. */
  progress(itemId: number, attempt: number, sentBytes: number, totalBytes: number): void;
  /** The attempt ended (either way): its progress is no longer shown. */
  finished(itemId: number): void;
  abandoned(target: string, limit: number): Promise<{ id: number; state: ResumeState }[]>;
  forgetAbandoned(ids: number[]): Promise<void>;
}

const providers = new Map<string, ResumeProvider>();

export function registerResumeProvider(token: string, provider: ResumeProvider): () => void {
  providers.set(token, provider);
  return () => {
    if (providers.get(token) === provider) providers.delete(token);
  };
}

export function resumeProvider(token: unknown): ResumeProvider | undefined {
  return typeof token === 'string' ? providers.get(token) : undefined;
}

/** The handle one upload attempt uses: the provider's storage, narrowed to one item on one target. */
export function resumeHandle(provider: ResumeProvider, itemId: number, target: string): ResumeHandle {
  return {
    load: () => provider.load(itemId, target),
    save: (state, confirmed) => provider.save(itemId, target, state, confirmed),
    clear: () => provider.clear(itemId, target),
  };
}
