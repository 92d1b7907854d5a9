import { formatRatio, mul, ratio, roundRatio, type Ratio, type RoundingMode } from '../decimal.ts';

// How a program's point value is shown to the member and turned into money.
//
// Rounding choice: every money amount shown to the member or returned by the API (a balance's
// `value`, a redemption's `value` and breakdown) is rounded half-to-even at the currency's minor
// unit. Half-even is symmetric around zero, so a reversal shows exactly the negative of what it
// reverses, and it has no upward bias when many amounts are summed. It is display only: what the
// member is charged is decided in points (group-plan.ts, always floored), and what brands owe
// each other is rounded by settle.ts.
export const DISPLAY_ROUNDING: RoundingMode = 'half_even';
/**
 * What a redemption is worth to the member (the discount a till grants from `value`) rounds down:
 * rounded to nearest, one-point redemptions of a program worth 2.54 cents a point each showed 3
 * cents, so splitting a redemption gained the member up to half a cent a time. Settlement uses
 * the exact values either way.
 */
export const REDEEMED_VALUE_ROUNDING: RoundingMode = 'floor';

const MAX_PLACES = 30;
const CONVERSION_PLACES = 10;

/** Common-currency value of one point: point_value (program currency) × fx (common per program currency). */
export const unitValue = (point_value: Ratio, fx_to_common: Ratio): Ratio => mul(point_value, fx_to_common);

/**
 * "1 harbor-rewards point = 0.0054 USD". Exact up to 10 decimals (rounded half-even beyond,
 * trailing zeros cut); a nonzero value too small for 10 decimals gets more places rather than
 * reading "= 0", up to 30.
 */
export function conversionLine(program_id: string, unit_value: Ratio, common_currency: string): string {
  let places = CONVERSION_PLACES;
  let text = formatRatio(unit_value, places);
  while (unit_value.num !== 0n && /^-?0$/.test(text) && places < MAX_PLACES) {
    places += CONVERSION_PLACES;
    text = formatRatio(unit_value, places);
  }
  return `1 ${program_id} point = ${text} ${common_currency}`;
}

/** Major units (exact) → integer minor units, e.g. (16.875 USD, 2) → 1688n with half_even. */
export function valueMinor(
  value_in_major_units: Ratio,
  currency_exponent: number,
  mode: RoundingMode = DISPLAY_ROUNDING,
): bigint {
  if (!Number.isInteger(currency_exponent) || currency_exponent < 0 || currency_exponent > 6) {
    throw new RangeError(`valueMinor: bad currency exponent ${currency_exponent}`);
  }
  return roundRatio(mul(value_in_major_units, ratio(10n ** BigInt(currency_exponent))), mode);
}
