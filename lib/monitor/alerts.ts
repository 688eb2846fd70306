import type { AlertName, Condition, Severity } from './health';

// Alerts: the health conditions over time. One message when a condition starts, one when it ends, never one per
// look: a condition must hold for `raiseAfterS` before it is raised and be gone for `clearAfterS` before it clears
// (so a link that drops and returns within that time is one episode), and the same alert is not raised again
// within `minIntervalS` of its last raise (a flapping link gives one alert, not hundreds).

export interface AlertTiming {
  raiseAfterS: number;
  clearAfterS: number;
  minIntervalS: number;
}

export const DEFAULT_ALERT_TIMING: AlertTiming = { raiseAfterS: 0, clearAfterS: 60, minIntervalS: 300 };

export interface AlertEvent {
  alert: AlertName;
  subject: string;
  state: 'raised' | 'cleared';
  severity: Severity;
  message: string;
  /** When the condition started (raised) or when it was last seen (cleared). */
  since: number;
  at: number;
  value: number | null;
  threshold: number | null;
}

interface Track {
  /** When the condition was first seen holding in the current run of looks, if it holds. */
  holdingSince: number | null;
  /** When it was last seen holding. */
  lastHeld: number | null;
  raised: boolean;
  raisedAt: number | null;
  lastRaise: number | null;
  condition: Condition;
}

export class AlertBook {
  private readonly tracks = new Map<string, Track>();

  constructor(private readonly timing: AlertTiming) {}

  /** Feeds one look's conditions (those with an alert); returns the messages to send now. */
  update(conditions: Condition[], now: number): AlertEvent[] {
    const out: AlertEvent[] = [];
    const seen = new Set<string>();
    for (const c of conditions) {
      if (!c.alert) continue;
      const key = `${c.alert}\u0000${c.subject}`;
      // Two conditions for one key (an outage turning long): the holding one wins.
      if (seen.has(key) && !c.active) continue;
      seen.add(key);
      let t = this.tracks.get(key);
      if (!t) {
        if (!c.active) continue;
        t = { holdingSince: null, lastHeld: null, raised: false, raisedAt: null, lastRaise: null, condition: c };
        this.tracks.set(key, t);
      }
      if (c.active) {
        t.holdingSince ??= now;
        t.lastHeld = now;
        t.condition = c;
      } else {
        t.holdingSince = null;
      }
      const e = this.step(t, now);
      if (e) out.push(e);
    }
    // A subject gone from the board (its node removed): its alert clears after the same wait.
    for (const [key, t] of this.tracks) {
      if (seen.has(key)) continue;
      t.holdingSince = null;
      const e = this.step(t, now);
      if (e) out.push(e);
    }
    return out;
  }

  /** The alerts raised now. */
  active(): { alert: AlertName; subject: string; since: number; message: string; severity: Severity }[] {
    return [...this.tracks.values()]
      .filter((t) => t.raised)
      .map((t) => ({ alert: t.condition.alert!, subject: t.condition.subject, since: t.raisedAt!, message: t.condition.message, severity: t.condition.severity }));
  }

  private step(t: Track, now: number): AlertEvent | null {
    const c = t.condition;
    const base = { alert: c.alert!, subject: c.subject, severity: c.severity, value: c.value, threshold: c.threshold, at: now };
    if (!t.raised && t.holdingSince !== null) {
      const held = now - t.holdingSince >= this.timing.raiseAfterS * 1000;
      const rested = t.lastRaise === null || now - t.lastRaise >= this.timing.minIntervalS * 1000;
      if (held && rested) {
        t.raised = true;
        t.raisedAt = now;
        t.lastRaise = now;
        return { ...base, state: 'raised', message: c.message, since: t.holdingSince };
      }
      return null;
    }
    if (t.raised && t.holdingSince === null && t.lastHeld !== null && now - t.lastHeld >= this.timing.clearAfterS * 1000) {
      t.raised = false;
      const key = `${c.alert}\u0000${c.subject}`;
      // Kept only while its minimum interval runs, to hold back a new raise.
      if (this.timing.minIntervalS <= 0) this.tracks.delete(key);
      return { ...base, state: 'cleared', message: `cleared: ${c.message}`, since: t.lastHeld };
    }
    if (!t.raised && t.holdingSince === null && (t.lastRaise === null || now - t.lastRaise >= this.timing.minIntervalS * 1000)) {
      this.tracks.delete(`${c.alert}\u0000${c.subject}`);
    }
    return null;
  }
}
