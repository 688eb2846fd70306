import { fmtBytes, fmtClockIn } from '../util/format';

// What the status widget draws of a target's byte budget: one bar per period that has a limit, how full it is, when
// it starts again (on the budget's own calendar), and which items wait. The figures are the ones the uploader's
// budget gives stats, health and metrics (lib/upload/budget's BudgetSnapshot); this only decides how they read.

export type BudgetState = 'ok' | 'near' | 'spent';

/** A target's budget as lib/upload/budget's TargetBudget.snapshot() gives it (the parts drawn here). */
export interface BudgetFigures {
  state: BudgetState;
  metered: boolean | null;
  day: { bytes: number; limit: number };
  month: { bytes: number; limit: number };
  resets: { day: number; month: number };
  rules: { timeZone: string; nearShare: number; holdAbovePriority: number; urgentMaxBytes: number; unmeteredOnlyFromBytes: number };
}

export interface BudgetBar {
  period: 'day' | 'month';
  /** "today", "this month". */
  label: string;
  used: number;
  limit: number;
  /** Whole percent used, floored (99.9 % is not yet 100 %); above 100 when the count went past the limit. */
  percent: number;
  /** Width of the filled part, 0..100. */
  fill: number;
  /** Where "near" starts on the bar, 0..100. */
  nearAt: number;
  state: BudgetState;
  /** "1.8 GB of 2.00 GB". */
  figures: string;
  /** "resets 00:00", "resets 1 Jan 00:00", with the zone's short name when the budget names a zone. */
  resets: string;
}

export interface BudgetPanel {
  /** The target's name (its config node's). */
  target: string;
  /** The fuller of its budgets decides. */
  state: BudgetState;
  bars: BudgetBar[];
  /** Which items wait while the budget is near or spent ("priority 3 and higher held · 1–2 still go"); null when none. */
  held: string | null;
  /** The unmetered-only rule, when set: "items from 50.0 MB wait for an unmetered link". */
  unmetered: string | null;
}

/** The panel of one target's budget, or null when it has nothing to draw (no daily or monthly limit, no unmetered rule). */
export function budgetPanel(target: string, b: BudgetFigures, now: number): BudgetPanel | null {
  const bars: BudgetBar[] = [];
  const add = (period: 'day' | 'month', label: string, p: { bytes: number; limit: number }) => {
    if (!(p.limit > 0)) return;
    const share = p.bytes / p.limit;
    const state: BudgetState = share >= 1 ? 'spent' : share >= b.rules.nearShare ? 'near' : 'ok';
    bars.push({
      period,
      label,
      used: p.bytes,
      limit: p.limit,
      percent: Math.floor(share * 100 + 1e-9),
      fill: Math.min(100, Math.max(0, share * 100)),
      nearAt: Math.min(100, Math.max(0, b.rules.nearShare * 100)),
      state,
      figures: `${fmtBytes(p.bytes)} of ${fmtBytes(p.limit)}`,
      resets: `resets ${fmtClockIn(b.resets[period], b.rules.timeZone, now)}${zoneName(b.rules.timeZone, b.resets[period])}`,
    });
  };
  add('day', 'today', b.day);
  add('month', 'this month', b.month);
  const u = b.rules.unmeteredOnlyFromBytes;
  const unmetered = u > 0 ? (b.metered === false ? `link unmetered: items from ${fmtBytes(u)} go now` : `items from ${fmtBytes(u)} wait for an unmetered link`) : null;
  if (bars.length === 0 && !unmetered) return null;
  const order: Record<BudgetState, number> = { ok: 0, near: 1, spent: 2 };
  const state = bars.reduce<BudgetState>((w, bar) => (order[bar.state] > order[w] ? bar.state : w), 'ok');
  return { target, state, bars, held: heldText(state, b.rules), unmetered };
}

/** Which priorities wait (1 is the most urgent): the rules of lib/upload/budget's decide, in words. */
export function heldText(state: BudgetState, r: { holdAbovePriority: number; urgentMaxBytes: number }): string | null {
  if (state === 'ok') return null;
  const h = r.holdAbovePriority;
  if (h < 1 || (state === 'spent' && r.urgentMaxBytes <= 0)) return 'every item held';
  const urgent = h === 1 ? 'priority 1' : `priorities 1–${h}`;
  const held = `priority ${h + 1} and higher held`;
  return state === 'near' ? `${held} · ${urgent} still go` : `${held} · ${urgent} go up to ${fmtBytes(r.urgentMaxBytes)}`;
}

/** " UTC", " CET": the zone a reset time is in, when the budget names one (blank = the machine's, said as nothing). */
function zoneName(timeZone: string, at: number): string {
  if (!timeZone) return '';
  const part = new Intl.DateTimeFormat('en-GB', { timeZone, timeZoneName: 'short' }).formatToParts(at).find((p) => p.type === 'timeZoneName');
  return part ? ` ${part.value}` : '';
}
