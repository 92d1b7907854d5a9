import { add, cmp, fromInt, mul, ratio, roundRatio, sub, ZERO, type Ratio } from '../decimal.ts';
import { POINT_SCALE, type Pt4 } from '../points.ts';

// A program's rounding decides its smallest unit of points: whole points, or 1 pt4 for
// `accumulate`. The total is rounded once; every split of it (lines, bonuses, refunds) is then
// made in that unit, so parts always sum to the whole and a whole-point program never shows a
// fraction anywhere.

export type ProgramRounding = 'floor' | 'nearest' | 'accumulate';

export const unitPt4 = (rounding: ProgramRounding): Pt4 => (rounding === 'accumulate' ? 1n : POINT_SCALE);

/** Exact points → pt4, by the program's rounding mode. */
export function roundPoints(points: Ratio, rounding: ProgramRounding): Pt4 {
  switch (rounding) {
    case 'floor':
      return roundRatio(points, 'floor') * POINT_SCALE;
    case 'nearest':
      return roundRatio(points, 'half_up') * POINT_SCALE;
    case 'accumulate':
      return roundRatio(mul(points, ratio(POINT_SCALE)), 'floor');
  }
}

/** Largest pt4 multiple of `unit` not above `value` (value >= 0). */
export const floorToUnit = (value: Pt4, unit: Pt4): Pt4 => (value / unit) * unit;

/**
 * Splits `total` (a multiple of `unit`) over parts in proportion to `weights` by largest
 * remainder: the results are multiples of `unit` and sum exactly to `total`. Ties go to the
 * earlier part so the split is deterministic. Weights must be >= 0; all zero gets all zero.
 */
export function distribute(total: Pt4, weights: readonly Ratio[], unit: Pt4): Pt4[] {
  if (total % unit !== 0n) throw new RangeError(`distribute: ${total} is not a multiple of ${unit}`);
  const sum = weights.reduce(add, ZERO);
  if (weights.some((w) => cmp(w, ZERO) < 0)) throw new RangeError('distribute: negative weight');
  if (cmp(sum, ZERO) === 0) {
    if (total !== 0n) throw new RangeError('distribute: nothing to carry a non-zero total');
    return weights.map(() => 0n);
  }
  const units = total / unit;
  const shares = weights.map((w) => mul(mul(fromInt(units), w), ratio(sum.den, sum.num)));
  const floors = shares.map((s) => roundRatio(s, 'floor'));
  let left = units - floors.reduce((a, b) => a + b, 0n);
  const order = shares
    .map((s, i) => ({ i, rem: sub(s, fromInt(floors[i]!)) }))
    .sort((a, b) => cmp(b.rem, a.rem) || a.i - b.i);
  for (const { i } of order) {
    if (left === 0n) break;
    floors[i]! += 1n;
    left -= 1n;
  }
  return floors.map((f) => f * unit);
}
