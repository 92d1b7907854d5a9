import type { TierConfig } from './config/schema.ts';
import { POINT_SCALE } from './points.ts';
import { DAY_MS } from './expiry.ts';

// Tier evaluation over one metric. Tiers are configured lowest first; a tier without `qualify`
// is a base tier that everyone enrolled qualifies for.
//
// Units: `metric_value` is in the unit of the tiers' metric as the ledger holds it —
// `spend_minor`: minor units; `points_earned`: pt4 (the config's whole-point `at_least` is
// scaled by POINT_SCALE here, so callers never compare whole points with pt4). A program's tiers
// are expected to share one metric (see tierMetric); validation should enforce it.

export type TierMetric = 'spend_minor' | 'points_earned';
export type TierQualify = NonNullable<TierConfig['qualify']>;
export type TierMode = 'upgrade_only' | 'full';

const DEFAULT_WINDOW_DAYS = 365;

/** The metric the tiers qualify on, or null when none has a qualify rule. */
export function tierMetric(tiers: readonly TierConfig[]): TierMetric | null {
  return tiers.find((t) => t.qualify)?.qualify?.metric ?? null;
}

/** A tier's threshold in ledger units (pt4 for points_earned); 0 for a base tier. */
export function thresholdOf(tier: TierConfig): bigint {
  const q = tier.qualify;
  if (!q) return 0n;
  const at_least = BigInt(q.at_least);
  return q.metric === 'points_earned' ? at_least * POINT_SCALE : at_least;
}

/** Index of the highest tier the metric qualifies for, −1 when none. */
function qualifyingIndex(tiers: readonly TierConfig[], metric_value: bigint): number {
  for (let i = tiers.length - 1; i >= 0; i--) {
    const t = tiers[i];
    if (t && thresholdOf(t) <= metric_value) return i;
  }
  return -1;
}

/**
 * The tier every enrolled member holds at least: the highest one a metric of zero qualifies for
 * (a base tier has no qualify rule), or null when the program has none.
 */
export function baseTier(tiers: readonly TierConfig[]): string | null {
  return evaluateTier(tiers, 0n, null, 'upgrade_only');
}

/**
 * upgrade_only (event time: "upgrade at once") never lowers; full (the tiers job) may lower, but
 * by at most `max_steps_down` tiers per evaluation, so a member slides down gradually. A current
 * tier no longer in the configuration counts as no tier.
 */
export function evaluateTier(
  tiers: readonly TierConfig[],
  metric_value: bigint,
  current: string | null,
  mode: TierMode,
  opts: { max_steps_down?: number } = {},
): string | null {
  const steps = opts.max_steps_down ?? 1;
  if (!Number.isInteger(steps) || steps < 0) throw new RangeError('evaluateTier: bad max_steps_down');
  const q = qualifyingIndex(tiers, metric_value);
  const c = current === null ? -1 : tiers.findIndex((t) => t.id === current);
  const next = q >= c ? q : mode === 'upgrade_only' ? c : Math.max(q, c - steps);
  return next < 0 ? null : (tiers[next]?.id ?? null);
}

/**
 * The qualification window as a half-open interval [from_ms, to_ms). to_ms = as_of + 1 ms so
 * that activity stamped exactly at as_of counts (state "as of" an instant includes it).
 * rolling: the window_days (default 365) × 24 h ending there; calendar_year: from 1 January
 * 00:00 UTC of as_of's year.
 */
export function tierWindow(qualify: TierQualify, as_of_ms: number): { from_ms: number; to_ms: number } {
  const to_ms = as_of_ms + 1;
  if (qualify.window === 'calendar_year') {
    return { from_ms: Date.UTC(new Date(as_of_ms).getUTCFullYear(), 0, 1), to_ms };
  }
  return { from_ms: to_ms - (qualify.window_days ?? DEFAULT_WINDOW_DAYS) * DAY_MS, to_ms };
}

export interface TierProgress {
  readonly next_tier: string;
  readonly metric: bigint;
  /** In ledger units, like `metric`. */
  readonly at_least: bigint;
  readonly remaining: bigint;
}

/** The first tier above `current` that has a qualify rule; null at the top. */
export function progressToNext(
  tiers: readonly TierConfig[],
  current: string | null,
  metric: bigint,
): TierProgress | null {
  const c = current === null ? -1 : tiers.findIndex((t) => t.id === current);
  const next = tiers.slice(c + 1).find((t) => t.qualify);
  if (!next) return null;
  const at_least = thresholdOf(next);
  return { next_tier: next.id, metric, at_least, remaining: at_least > metric ? at_least - metric : 0n };
}
