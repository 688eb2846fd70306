import { fmtBytes } from '../util/format';
import { SettingsReader } from '../util/settings';

// Byte budgets for metered links (LTE with a data cap): per target, a daily and a monthly allowance counted from the
// bytes actually sent (parts and retries included), on a calendar in a time zone the user picks. When a budget is
// near or spent, items above a priority wait for the next period; small urgent items still go. An option keeps
// large items for an unmetered link.

export interface BudgetSettings {
  /** 0 = no daily budget. */
  dailyBytes: number;
  /** 0 = no monthly budget. */
  monthlyBytes: number;
  /** IANA zone of the calendar the budget follows (the machine's when blank). */
  timeZone: string;
  /** Share of a budget (0..1) from which it counts as near. */
  nearShare: number;
  /** Items with a priority number above this wait while a budget is near or spent (1 is the most urgent). */
  holdAbovePriority: number;
  /** While a budget is spent, even urgent items wait when larger than this. */
  urgentMaxBytes: number;
  /** Items this large or larger go only while the link is known to be unmetered. 0 = off. */
  unmeteredOnlyFromBytes: number;
}

export const NO_BUDGET: BudgetSettings = {
  dailyBytes: 0,
  monthlyBytes: 0,
  timeZone: '',
  nearShare: 0.9,
  holdAbovePriority: 2,
  urgentMaxBytes: 1024 * 1024,
  unmeteredOnlyFromBytes: 0,
};

export function hasBudget(s: BudgetSettings): boolean {
  return s.dailyBytes > 0 || s.monthlyBytes > 0 || s.unmeteredOnlyFromBytes > 0;
}

/** Reads a config node's budget fields (MB in the editor); adds problems to `r`. */
export function readBudget(r: SettingsReader): BudgetSettings {
  const MB = 1024 * 1024;
  const timeZone = r.str('budgetTimeZone');
  if (timeZone && !validZone(timeZone)) r.error(`Budget time zone "${timeZone}" is not a time zone this system knows (like Europe/Berlin or UTC)`);
  return {
    dailyBytes: Math.round(r.num('budgetDailyMB', 'Daily budget', 0, 0, 1e9, { unit: 'MB' }) * MB),
    monthlyBytes: Math.round(r.num('budgetMonthlyMB', 'Monthly budget', 0, 0, 1e10, { unit: 'MB' }) * MB),
    timeZone,
    nearShare: r.num('budgetNearPercent', 'Budget near at', 90, 1, 100, { unit: 'percent' }) / 100,
    holdAbovePriority: r.num('budgetHoldAbove', 'Hold items with priority above', NO_BUDGET.holdAbovePriority, 0, 1000, { integer: true }),
    urgentMaxBytes: Math.round(r.num('budgetUrgentMaxMB', 'Urgent items up to', 1, 0, 1e6, { unit: 'MB' }) * MB),
    unmeteredOnlyFromBytes: Math.round(r.num('unmeteredOnlyFromMB', 'Only on an unmetered link from', 0, 0, 1e6, { unit: 'MB' }) * MB),
  };
}

function validZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The calendar day and month of an instant in a time zone ('' = the machine's): "2026-12-07", "2026-12". */
export function periodsOf(at: number, timeZone: string): { day: string; month: string } {
  const parts = new Intl.DateTimeFormat('en-CA', { timeZone: timeZone || undefined, year: 'numeric', month: '2-digit', day: '2-digit' }).formatToParts(at);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '00';
  return { day: `${get('year')}-${get('month')}-${get('day')}`, month: `${get('year')}-${get('month')}` };
}

/** The first instant after `at` whose day (or month) in the zone differs: when a daily (monthly) budget starts again. */
export function nextReset(at: number, timeZone: string, which: 'day' | 'month'): number {
  const key = (t: number) => periodsOf(t, timeZone)[which];
  const start = key(at);
  // Coarse steps forward (an hour; a day for months), then halve back to the minute. Bounded: at most ~32 days.
  const step = which === 'day' ? 3600_000 : 86_400_000;
  let hi = at + step;
  for (let i = 0; key(hi) === start && i < 40 * 24; i++) hi += step;
  let lo = hi - step;
  while (hi - lo > 1000) {
    const mid = Math.floor((lo + hi) / 2);
    if (key(mid) === start) lo = mid;
    else hi = mid;
  }
  return Math.ceil(hi / 1000) * 1000;
}

export interface BudgetUsage {
  day: { period: string; bytes: number };
  month: { period: string; bytes: number };
}

export type BudgetState = 'ok' | 'near' | 'spent';

export interface BudgetVerdict {
  state: BudgetState;
  /** In words, for status and stats: "budget: 1.8 of 2 GB today". */
  text: string;
  /** The budget that decides (the fuller one), and when it starts again. */
  resetsAt: number | null;
}

/** How full the budgets are. */
export function judgeBudget(s: BudgetSettings, u: BudgetUsage, now: number): BudgetVerdict {
  const rows: { state: BudgetState; share: number; text: string; resetsAt: number }[] = [];
  const add = (limit: number, used: number, word: string, which: 'day' | 'month') => {
    if (limit <= 0) return;
    const share = used / limit;
    const state: BudgetState = share >= 1 ? 'spent' : share >= s.nearShare ? 'near' : 'ok';
    rows.push({ state, share, text: `budget: ${fmtBytes(used)} of ${fmtBytes(limit)} ${word}`, resetsAt: nextReset(now, s.timeZone, which) });
  };
  add(s.dailyBytes, u.day.bytes, 'today', 'day');
  add(s.monthlyBytes, u.month.bytes, 'this month', 'month');
  if (rows.length === 0) return { state: 'ok', text: '', resetsAt: null };
  const order: Record<BudgetState, number> = { ok: 0, near: 1, spent: 2 };
  // The fuller budget decides; between two equally full, the one that resets later.
  rows.sort((a, b) => order[b.state] - order[a.state] || b.share - a.share || b.resetsAt - a.resetsAt);
  const worst = rows[0];
  return { state: worst.state, text: worst.text, resetsAt: worst.state === 'ok' ? null : worst.resetsAt };
}

export type BudgetDecision = { go: true } | { go: false; reason: string; until: number | null };

/**
 * Whether an item may go now. `metered`: true on a metered link, false on an unmetered one, null when nobody says
 * (taken as metered for the unmetered-only rule, which is the safe side on a data cap).
 */
export function decide(
  s: BudgetSettings,
  verdict: BudgetVerdict,
  item: { priority: number; bytes: number },
  metered: boolean | null,
  now: number,
): BudgetDecision {
  if (s.unmeteredOnlyFromBytes > 0 && item.bytes >= s.unmeteredOnlyFromBytes && metered !== false) {
    return { go: false, reason: `${fmtBytes(item.bytes)} waits for an unmetered link`, until: null };
  }
  if (verdict.state === 'ok') return { go: true };
  const urgent = item.priority <= s.holdAbovePriority;
  if (urgent && (verdict.state === 'near' || item.bytes <= s.urgentMaxBytes)) return { go: true };
  const until = verdict.resetsAt;
  const when = until === null ? '' : ` until ${clockIn(until, s.timeZone, now)}`;
  return { go: false, reason: `${verdict.text}, ${urgent ? 'large items' : `priority ${item.priority} and below`} held${when}`, until };
}

/** "00:00", or "1 Jan 00:00" when it is not within a day. */
function clockIn(at: number, timeZone: string, now: number): string {
  const f = new Intl.DateTimeFormat('en-GB', { timeZone: timeZone || undefined, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const d = new Intl.DateTimeFormat('en-GB', { timeZone: timeZone || undefined, day: 'numeric', month: 'short' });
  return at - now > 86_400_000 ? `${d.format(at)} ${f.format(at)}` : f.format(at);
}

/** What a target's budget shows in stats, health and metrics. */
export interface BudgetSnapshot {
  state: BudgetState;
  text: string;
  resetsAt: number | null;
  metered: boolean | null;
  day: { period: string; bytes: number; limit: number };
  month: { period: string; bytes: number; limit: number };
}

/** Where a budget's bytes are kept (BudgetLedger, or a test's stand-in). */
export interface UsageBook {
  add(target: string, bytes: number, at?: number): void;
  usage(target: string, at?: number): BudgetUsage;
  setTimeZone(target: string, timeZone: string): void;
}

/**
 * One target's budget: counts what goes out to it, says how full it is and whether an item may go. `metered` is what
 * the flow last said of the link (msg.topic "metered"), null until it says.
 */
export class TargetBudget {
  metered: boolean | null = null;
  private book?: UsageBook;
  /** Counted before the ledger was open. */
  private early = 0;

  constructor(
    readonly target: string,
    readonly settings: BudgetSettings,
    private readonly now: () => number = Date.now,
  ) {}

  /** The ledger, once open; what was counted before goes into it. */
  attach(book: UsageBook): void {
    this.book = book;
    book.setTimeZone(this.target, this.settings.timeZone);
    if (this.early > 0) book.add(this.target, this.early, this.now());
    this.early = 0;
  }

  count(bytes: number): void {
    if (bytes <= 0) return;
    if (this.book) this.book.add(this.target, bytes, this.now());
    else this.early += bytes;
  }

  snapshot(): BudgetSnapshot {
    const now = this.now();
    const p = periodsOf(now, this.settings.timeZone);
    const u = this.book?.usage(this.target, now) ?? { day: { period: p.day, bytes: this.early }, month: { period: p.month, bytes: this.early } };
    const v = judgeBudget(this.settings, u, now);
    return {
      ...v,
      metered: this.metered,
      day: { ...u.day, limit: this.settings.dailyBytes },
      month: { ...u.month, limit: this.settings.monthlyBytes },
    };
  }

  decide(item: { priority: number; bytes: number }): BudgetDecision {
    const s = this.snapshot();
    return decide(this.settings, s, item, this.metered, this.now());
  }
}
