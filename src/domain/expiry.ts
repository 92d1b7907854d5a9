import type { ExpiryConfig } from './config/schema.ts';

// When a lot stops being spendable. All arithmetic is in UTC epoch milliseconds; a "day" is
// exactly 24 h (UTC has no DST), so results never depend on the server's time zone.
//
// Boundaries: `expires_at_ms` is the FIRST instant at which the lot is expired. At
// expires_at − 1 ms it is still spendable; at expires_at it is not (isExpired is `>=`). So:
// - rolling { days }: awarded + days × 24 h. Awarded 2026-03-10T15:00Z with 30 days expires
//   at 2026-04-09T15:00Z exactly.
// - end_of_period { period, after_days }: take awarded + after_days × 24 h, find the calendar
//   month / quarter (Jan, Apr, Jul, Oct) / year in UTC that contains that instant, and expire at
//   the first instant of the NEXT period (i.e. the lot lives through the last ms of the period).
//   An instant exactly at a period start belongs to the period it starts.
// - inactivity { days }: last activity (default: the award itself) + days × 24 h. The caller
//   recomputes it on each activity; the lot row stores the latest value.
// - never: null.
// A tier's `expiry_days`, when given, replaces the program policy by a rolling rule of that many
// days (tiers lengthen or shorten the life of what their members earn).

export const DAY_MS = 86_400_000;

export interface ExpiryOptions {
  readonly tier_expiry_days?: number;
  readonly last_activity_ms?: number;
}

function assertInstant(ms: number, what: string): void {
  if (!Number.isSafeInteger(ms)) throw new RangeError(`${what} must be an integer ms timestamp`);
}

export function computeExpiresAt(
  policy: ExpiryConfig,
  awarded_at_ms: number,
  opts: ExpiryOptions = {},
): number | null {
  assertInstant(awarded_at_ms, 'awarded_at_ms');
  if (opts.tier_expiry_days !== undefined) return awarded_at_ms + opts.tier_expiry_days * DAY_MS;
  switch (policy.kind) {
    case 'rolling':
      return awarded_at_ms + policy.days * DAY_MS;
    case 'end_of_period':
      return endOfPeriod(awarded_at_ms + policy.after_days * DAY_MS, policy.period);
    case 'inactivity': {
      const last = opts.last_activity_ms ?? awarded_at_ms;
      assertInstant(last, 'last_activity_ms');
      return last + policy.days * DAY_MS;
    }
    case 'never':
      return null;
  }
}

/** First instant of the calendar period after the one containing `at_ms` (UTC). */
export function endOfPeriod(at_ms: number, period: 'month' | 'quarter' | 'year'): number {
  const d = new Date(at_ms);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  // Date.UTC normalises month 12 to January of the next year, which handles Dec → Jan.
  switch (period) {
    case 'month':
      return Date.UTC(y, m + 1, 1);
    case 'quarter':
      return Date.UTC(y, m - (m % 3) + 3, 1);
    case 'year':
      return Date.UTC(y + 1, 0, 1);
  }
}

export const isExpired = (expires_at_ms: number | null, as_of_ms: number): boolean =>
  expires_at_ms !== null && as_of_ms >= expires_at_ms;
