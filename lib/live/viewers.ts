/**
 * Who is watching: players reload a live playlist every target duration, so a viewer is anyone who asked for it
 * within the last few of those. Counted by an id the player sends (the dashboard's player adds one per page), else by
 * address and browser. Bounded: a flood of ids cannot grow memory past `max`.
 */
export class ViewerCount {
  private readonly seen = new Map<string, number>();

  constructor(private readonly windowMs: () => number, private readonly now: () => number = Date.now, private readonly max = 1000) {}

  saw(id: string): void {
    const now = this.now();
    this.seen.delete(id);
    this.seen.set(id, now);
    if (this.seen.size > this.max) this.prune(now);
    // Still too many live ones: forget the oldest (a Map keeps insertion order, and a renewed id went to its end).
    while (this.seen.size > this.max) this.seen.delete(this.seen.keys().next().value as string);
  }

  count(): number {
    this.prune(this.now());
    return this.seen.size;
  }

  private prune(now: number): void {
    const since = now - this.windowMs();
    for (const [id, at] of this.seen) {
      if (at >= since) break; // in order of last sight: the rest are newer
      this.seen.delete(id);
    }
  }
}
