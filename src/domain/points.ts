import { formatScaled, parseDecimal, ratio, roundRatio, type Ratio } from './decimal.ts';

// Points are held everywhere as bigint in units of 1/10,000 point ("pt4"), so that a program
// with `accumulate` rounding keeps its 4 decimals exactly and whole-point programs are just
// multiples of 10,000. Names carry the unit last: `points_pt4`.
export const POINT_SCALE = 10_000n;
export const POINT_DECIMALS = 4;

export type Pt4 = bigint;

export const wholePoints = (n: bigint | number): Pt4 => BigInt(n) * POINT_SCALE;

/** pt4 → the JSON number the contract shows (whole, or up to 4 decimals). */
export function pt4ToJson(p: Pt4): number {
  return Number(formatScaled(p, POINT_DECIMALS));
}

export const pt4ToString = (p: Pt4): string => formatScaled(p, POINT_DECIMALS);

/** pt4 → exact ratio in points. */
export const pt4ToRatio = (p: Pt4): Ratio => ratio(p, POINT_SCALE);

/** Exact points (a ratio) → pt4, rounded by `mode` at the 4th decimal. */
export const ratioToPt4 = (r: Ratio, mode: 'floor' | 'half_even' | 'ceil' = 'floor'): Pt4 =>
  roundRatio(ratio(r.num * POINT_SCALE, r.den), mode);

/**
 * A JSON number from a request → pt4, or null when it is not a finite number with at most 4
 * decimals. The number's shortest decimal rendering is what the caller typed, so parsing that
 * string is exact.
 */
export function pt4FromJson(n: unknown): Pt4 | null {
  if (typeof n !== 'number' || !Number.isFinite(n)) return null;
  if (Math.abs(n) > 1e15) return null;
  const s = String(n);
  if (!/^-?\d+(\.\d{1,4})?$/.test(s)) return null;
  const r = parseDecimal(s);
  return (r.num * POINT_SCALE) / r.den;
}

export const isWholePt4 = (p: Pt4): boolean => p % POINT_SCALE === 0n;
