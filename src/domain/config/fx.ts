import { div, mul, ONE, ratio, type Ratio } from '../decimal.ts';
import type { FxRate, Group } from './group.ts';

// Currency conversion through the group's common currency. Rates are exact ratios and a
// conversion returns an exact ratio: the caller decides where (and how) to round, once.

/** What fx lookups need from a Group; lets tests and callers pass a smaller object. */
export type FxSource = Pick<Group, 'common_currency' | 'fx'>;

export class NoFxRateError extends Error {
  readonly code = 'NO_FX_RATE';
  constructor(
    readonly currency: string,
    readonly at_ms: number,
  ) {
    super(`no fx rate for ${currency} effective at ${new Date(at_ms).toISOString()}`);
    this.name = 'NoFxRateError';
  }
}

// ISO 4217 minor-unit exponents that differ from the usual 2. Anything not listed has 2, which
// is right for every currency a group is likely to configure; extend here, never at call sites.
const EXPONENTS: Readonly<Record<string, number>> = {
  JPY: 0,
  KRW: 0,
  BHD: 3,
  KWD: 3,
  JOD: 3,
  OMR: 3,
  TND: 3,
};

export function currencyExponent(code: string): number {
  return EXPONENTS[code] ?? 2;
}

/** Units of the common currency per unit of `currency`, as of `at_ms` (latest effective_from <= at). */
export function fxRateAt(group: FxSource, currency: string, at_ms: number): Ratio {
  if (currency === group.common_currency) return ONE;
  const rates = group.fx.get(currency);
  const found = rates ? latestAt(rates, at_ms) : undefined;
  if (!found) throw new NoFxRateError(currency, at_ms);
  return found.rate;
}

// Rates are sorted by effective_from ascending (Group contract); binary search keeps a long rate
// history cheap on the per-event path.
function latestAt(rates: readonly FxRate[], at_ms: number): FxRate | undefined {
  let lo = 0;
  let hi = rates.length; // invariant: rates[< lo] are effective, rates[>= hi] are not
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (rates[mid]!.effective_from_ms <= at_ms) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? rates[lo - 1] : undefined;
}

/**
 * Factor that turns an amount in minor units of `from` into minor units of `to`. Conversion is
 * linear, so callers converting many amounts at one instant compute this once.
 */
export function fxFactor(from: string, to: string, group: FxSource, at_ms: number): Ratio {
  if (from === to) return ONE;
  const toMajorFrom = ratio(1n, 10n ** BigInt(currencyExponent(from)));
  const toMinorTo = ratio(10n ** BigInt(currencyExponent(to)));
  const common = mul(toMajorFrom, fxRateAt(group, from, at_ms));
  return mul(div(common, fxRateAt(group, to, at_ms)), toMinorTo);
}

/** Exact amount in minor units of `to` for `amount_minor` minor units of `from`. */
export function convertMinor(
  amount_minor: bigint,
  from: string,
  to: string,
  group: FxSource,
  at_ms: number,
): Ratio {
  return mul(ratio(amount_minor), fxFactor(from, to, group, at_ms));
}
