import { fxRateAt, currencyExponent } from './config/fx.ts';
import type { CompiledProgram, Group } from './config/group.ts';
import { mul } from './decimal.ts';
import { unitValue, valueMinor } from './lots/conversion.ts';
import type { PointPrecision, ProgramUnit } from './lots/group-plan.ts';
import { pt4ToRatio, type Pt4 } from './points.ts';

// What points are worth, in their program's currency and in the group's common currency.

export const precisionOf = (p: CompiledProgram): PointPrecision =>
  p.rounding === 'accumulate' ? 'pt4' : 'whole';

/** Value of one point of the program in the common currency at `at_ms`, and its precision. */
export function programUnit(group: Group, program: CompiledProgram, at_ms: number): ProgramUnit {
  return {
    unit_value: unitValue(program.point_value, fxRateAt(group, program.currency, at_ms)),
    precision: precisionOf(program),
  };
}

export function programUnits(group: Group, at_ms: number): Map<string, ProgramUnit> {
  const out = new Map<string, ProgramUnit>();
  for (const p of group.programs.values()) out.set(p.id, programUnit(group, p, at_ms));
  return out;
}

export interface Money {
  readonly amount_minor: bigint;
  readonly currency: string;
}

/** Points valued in their own program's currency (display rounding). */
export function valueInProgramCurrency(program: CompiledProgram, points_pt4: Pt4): Money {
  const major = mul(pt4ToRatio(points_pt4), program.point_value);
  return { amount_minor: valueMinor(major, currencyExponent(program.currency)), currency: program.currency };
}

export const moneyJson = (m: Money): { amount_minor: number; currency: string } => ({
  amount_minor: Number(m.amount_minor),
  currency: m.currency,
});
