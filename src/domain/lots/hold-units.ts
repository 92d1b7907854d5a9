import { add, div, sub, ZERO, type Ratio } from '../decimal.ts';
import { pt4ToRatio, type Pt4 } from '../points.ts';
import type { PointPrecision, ProgramUnit } from './group-plan.ts';

// Part of a hold is taken at the conversion the hold was placed at, the one the member was shown
// and the one a whole capture settles at: valued at today's rates instead, a fall in a rate or a
// point value since left the held points worth less than the part asked for, and the whole hold
// was captured (and settled) for part of it.

/** One held part: a lot's points held for the redemption and what they were worth then. */
export interface HeldPart {
  readonly program_id: string;
  readonly points_pt4: Pt4;
  /** Common-currency worth when held; null for a hold recorded without it. */
  readonly value: Ratio | null;
}

/**
 * The units a hold was placed at: each held program's value per point is what its held points
 * were worth then; the unit of the points asked for (the redemption's own program, or the default
 * program of a group redemption) is the hold's request — its worth less the rounding it overpaid —
 * per point asked. Null when a held part's worth was not recorded.
 */
export function unitsAtHold(
  held: readonly HeldPart[],
  request: { readonly unit_program_id: string; readonly points_pt4: Pt4; readonly overpaid_value: Ratio },
  precisionOf: (program_id: string) => PointPrecision,
): Map<string, ProgramUnit> | null {
  const sums = new Map<string, { points: Pt4; value: Ratio }>();
  let worth = ZERO;
  for (const h of held) {
    if (h.value === null || h.points_pt4 <= 0n) return null;
    const s = sums.get(h.program_id) ?? { points: 0n, value: ZERO };
    sums.set(h.program_id, { points: s.points + h.points_pt4, value: add(s.value, h.value) });
    worth = add(worth, h.value);
  }
  if (sums.size === 0 || request.points_pt4 <= 0n) return null;
  const units = new Map<string, ProgramUnit>();
  for (const [program_id, s] of sums)
    units.set(program_id, {
      unit_value: div(s.value, pt4ToRatio(s.points)),
      precision: precisionOf(program_id),
    });
  if (!units.has(request.unit_program_id)) {
    const requested = sub(worth, request.overpaid_value);
    if (requested.num <= 0n) return null;
    units.set(request.unit_program_id, {
      unit_value: div(requested, pt4ToRatio(request.points_pt4)),
      precision: precisionOf(request.unit_program_id),
    });
  }
  return units;
}
