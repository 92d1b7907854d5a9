import { add, cmp, div, mul, ratio, sub, ZERO, type Ratio } from '../decimal.ts';
import { POINT_SCALE, pt4ToRatio, ratioToPt4, type Pt4 } from '../points.ts';
import { orderLotsForSpend, type SpendableLot } from './fefo.ts';

// Group redemption: the member asks for N default-program points and pays with lots from any
// program, valued through each program's money value in the common currency. Every value here is
// an exact Ratio in major units of the common currency; nothing is rounded except the points
// taken from the last lot, and those are rounded UP to the program's precision: the points cost
// of a value is rounded up (the loyalty convention), so a spend never gives more value than it
// takes. Rounding down instead let every small group redemption or transfer create up to one
// step of the last program's value out of nothing (audit F1/F2). The member pays less than one
// step of that program above the exact equivalent; the overpayment is recorded on the entry.

/** 'whole' for floor/nearest programs, 'pt4' (4 decimals) for accumulate programs. */
export type PointPrecision = 'whole' | 'pt4';

export interface ProgramUnit {
  /** Common-currency value of one point: point_value × fx(program currency → common). > 0. */
  readonly unit_value: Ratio;
  readonly precision: PointPrecision;
}

export interface GroupSpendInput {
  readonly lots: readonly SpendableLot[];
  /** Every program that has a lot, and the default program. */
  readonly programs: ReadonlyMap<string, ProgramUnit>;
  readonly default_program_id: string;
  /** The request, in default-program points. */
  readonly points_pt4: Pt4;
}

export interface GroupAllocation {
  readonly lot_id: string;
  readonly program_id: string;
  readonly issuing_brand_id: string;
  readonly points_pt4: Pt4;
  readonly value: Ratio;
}

export interface ProgramTotal {
  readonly program_id: string;
  readonly points_pt4: Pt4;
  readonly value: Ratio;
}

export interface ProgramBrandTotal extends ProgramTotal {
  readonly issuing_brand_id: string;
}

export interface GroupSpendPlan {
  readonly target_value: Ratio;
  readonly allocations: readonly GroupAllocation[];
  /** Sorted by program_id. */
  readonly by_program: readonly ProgramTotal[];
  /** Sorted by program_id, then issuing_brand_id: the default program's lots come from many brands. */
  readonly by_program_brand: readonly ProgramBrandTotal[];
  /** Σ value − target: 0 ≤ overpaid < one precision step of `rounding_program_id`. */
  readonly overpaid_value: Ratio;
  /** The program of the last lot, whose points were rounded up; null when nothing was overpaid. */
  readonly rounding_program_id: string | null;
  /** target − available when the pool is too small (then allocations are empty), else 0. */
  readonly shortfall_value: Ratio;
  readonly available_value: Ratio;
  /** The whole pool in default-program points, floored to the default program's precision. */
  readonly available_default_pt4: Pt4;
}

const PT4_STEP = 1n;
const stepOf = (p: PointPrecision): Pt4 => (p === 'whole' ? POINT_SCALE : PT4_STEP);

/** Exact points → pt4, floored to the program's precision. */
export function floorToPrecision(points: Ratio, precision: PointPrecision): Pt4 {
  const pt4 = ratioToPt4(points, 'floor');
  const step = stepOf(precision);
  // ratioToPt4 floors toward −∞; keep that for negative values too.
  const rem = ((pt4 % step) + step) % step;
  return pt4 - rem;
}

/** Exact points → pt4, rounded up (toward +∞) to the program's precision. */
export function ceilToPrecision(points: Ratio, precision: PointPrecision): Pt4 {
  const pt4 = ratioToPt4(points, 'ceil');
  const step = stepOf(precision);
  const rem = ((pt4 % step) + step) % step;
  return rem === 0n ? pt4 : pt4 + step - rem;
}

export const valueOfPt4 = (points_pt4: Pt4, unit_value: Ratio): Ratio =>
  mul(pt4ToRatio(points_pt4), unit_value);

function unitOf(programs: ReadonlyMap<string, ProgramUnit>, program_id: string): ProgramUnit {
  const unit = programs.get(program_id);
  if (!unit) throw new RangeError(`planGroupSpend: no unit value for program ${program_id}`);
  if (unit.unit_value.num <= 0n)
    throw new RangeError(`planGroupSpend: unit value of ${program_id} must be > 0`);
  return unit;
}

export function planGroupSpend(input: GroupSpendInput): GroupSpendPlan {
  const ordered = orderLotsForSpend(input.lots.filter((l) => l.spendable_pt4 > 0n));
  const totals = new Map<string, Pt4>();
  for (const l of ordered) totals.set(l.program_id, (totals.get(l.program_id) ?? 0n) + l.spendable_pt4);
  return planOver(input, ordered, totals, true)!;
}

/**
 * planGroupSpend when `lots` are only the first spendable lots in spend order (a FEFO prefix)
 * and `totals` each program's spendable points over all of them: the pool is valued from the
 * totals and the walk runs over the prefix, so a member with a thousand lots need not have them
 * all read to spend from the first few. The plan is planGroupSpend's over all the lots, or null
 * when the walk would go past the prefix (`complete` false: there are lots after it).
 */
export function planGroupSpendFromPrefix(
  input: GroupSpendInput & { readonly totals: ReadonlyMap<string, Pt4>; readonly complete: boolean },
): GroupSpendPlan | null {
  const ordered = orderLotsForSpend(input.lots.filter((l) => l.spendable_pt4 > 0n));
  return planOver(input, ordered, input.totals, input.complete);
}

/**
 * The pool is valued per program: Σ over lots of points × unit value equals, exactly, the
 * program's total points × unit value (and costs one product per program, not one per lot).
 */
function planOver(
  input: GroupSpendInput,
  ordered: readonly SpendableLot[],
  totals: ReadonlyMap<string, Pt4>,
  complete: boolean,
): GroupSpendPlan | null {
  if (input.points_pt4 < 0n) throw new RangeError('planGroupSpend: negative request');
  const def = unitOf(input.programs, input.default_program_id);
  const target = valueOfPt4(input.points_pt4, def.unit_value);
  let available = ZERO;
  for (const [program_id, pt4] of totals)
    if (pt4 > 0n) available = add(available, valueOfPt4(pt4, unitOf(input.programs, program_id).unit_value));
  const available_default_pt4 = floorToPrecision(div(available, def.unit_value), def.precision);
  const base = { target_value: target, available_value: available, available_default_pt4 };

  if (cmp(available, target) < 0) {
    return {
      ...base,
      allocations: [],
      by_program: [],
      by_program_brand: [],
      overpaid_value: ZERO,
      rounding_program_id: null,
      shortfall_value: sub(target, available),
    };
  }

  const { allocations, remaining, rounded_at } = walk(ordered, input.programs, target);
  if (remaining.num > 0n) {
    // Every lot of the prefix taken whole and the request not yet covered: the rest of the walk
    // is in lots not read. Over all the lots this cannot happen: a lot is only ever cut where it
    // covers what is left, so whole lots worth at least the target cover it.
    if (!complete) return null;
    throw new Error('planGroupSpend: the pool covers the target but the walk did not');
  }
  const overpaid = sub(ZERO, remaining);
  return {
    ...base,
    allocations,
    by_program: totalsByProgram(allocations),
    by_program_brand: totalsByProgramBrand(allocations),
    overpaid_value: overpaid,
    rounding_program_id: overpaid.num === 0n ? null : rounded_at,
    shortfall_value: ZERO,
  };
}

interface WalkResult {
  allocations: GroupAllocation[];
  /** target − Σ value: > 0 when the lots ran out, ≤ 0 (an overpayment) when covered. */
  remaining: Ratio;
  /** The program of the lot that covered the rest of the target; null when the lots ran out. */
  rounded_at: string | null;
}

/**
 * Lots in spend order are taken whole while they are worth no more than what is left; the first
 * worth more is cut at what is left, rounded UP to its precision. Rounding up never needs more
 * than the lot holds: a lot worth more than what is left holds at least its exact points, and a
 * cut that would round past the lot's end (a fraction in a whole-point lot) takes it whole,
 * which already covers the target. So the walk covers the target exactly when the pool does,
 * and the overpayment is below one step: the cut is less than one step above the exact points.
 */
function walk(
  ordered: readonly SpendableLot[],
  programs: ReadonlyMap<string, ProgramUnit>,
  target: Ratio,
): WalkResult {
  const allocations: GroupAllocation[] = [];
  let remaining = target;
  for (const lot of ordered) {
    if (remaining.num <= 0n) break;
    const unit = unitOf(programs, lot.program_id);
    const lot_value = valueOfPt4(lot.spendable_pt4, unit.unit_value);
    const whole = cmp(lot_value, remaining) <= 0;
    const cut = whole ? lot.spendable_pt4 : ceilToPrecision(div(remaining, unit.unit_value), unit.precision);
    const points_pt4 = cut < lot.spendable_pt4 ? cut : lot.spendable_pt4;
    const value = valueOfPt4(points_pt4, unit.unit_value);
    allocations.push({
      lot_id: lot.id,
      program_id: lot.program_id,
      issuing_brand_id: lot.issuing_brand_id,
      points_pt4,
      value,
    });
    remaining = sub(remaining, value);
    if (!whole) return { allocations, remaining, rounded_at: lot.program_id };
  }
  return { allocations, remaining, rounded_at: null };
}

function totalsByProgram(allocations: readonly GroupAllocation[]): ProgramTotal[] {
  const m = new Map<string, { points_pt4: Pt4; value: Ratio }>();
  for (const a of allocations) {
    const t = m.get(a.program_id) ?? { points_pt4: 0n, value: ZERO };
    m.set(a.program_id, { points_pt4: t.points_pt4 + a.points_pt4, value: add(t.value, a.value) });
  }
  return [...m.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([program_id, t]) => ({ program_id, ...t }));
}

function totalsByProgramBrand(allocations: readonly GroupAllocation[]): ProgramBrandTotal[] {
  const m = new Map<string, ProgramBrandTotal>();
  for (const a of allocations) {
    // JSON of the pair is collision-free whatever characters the ids contain.
    const key = JSON.stringify([a.program_id, a.issuing_brand_id]);
    const t = m.get(key);
    m.set(key, {
      program_id: a.program_id,
      issuing_brand_id: a.issuing_brand_id,
      points_pt4: (t?.points_pt4 ?? 0n) + a.points_pt4,
      value: add(t?.value ?? ZERO, a.value),
    });
  }
  return [...m.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, t]) => t);
}

/**
 * `group.points` of the balances endpoint: every program's available points converted through
 * their money value into default-program points. The sum is exact and floored once, so it
 * equals `available_default_pt4` of a plan over the same lots. A negative program balance (a
 * recorded reversal shortfall) counts as zero: it is a debt, not something a group redemption
 * could spend or net against another program.
 */
export function poolInDefaultPoints(
  balances_by_program: ReadonlyMap<string, Pt4>,
  unit_values: ReadonlyMap<string, Ratio>,
  default_unit_value: Ratio,
  precision: PointPrecision,
): Pt4 {
  if (default_unit_value.num <= 0n)
    throw new RangeError('poolInDefaultPoints: default unit value must be > 0');
  let total = ZERO;
  for (const [program_id, pt4] of balances_by_program) {
    if (pt4 <= 0n) continue;
    const uv = unit_values.get(program_id);
    if (!uv) throw new RangeError(`poolInDefaultPoints: no unit value for program ${program_id}`);
    total = add(total, valueOfPt4(pt4, uv));
  }
  return floorToPrecision(div(total, default_unit_value), precision);
}

/** One precision step of a program, in common-currency value: a plan overpays less than this there. */
export const stepValue = (unit: ProgramUnit): Ratio =>
  mul(ratio(stepOf(unit.precision), POINT_SCALE), unit.unit_value);

/**
 * Each `by_program_brand` line's part of the target: its value taken, less the overpayment on
 * the line of the last allocation (the one rounded up). The parts sum to the target exactly, so
 * a breakdown rounded from them by largest remainder adds up to the rounded target (audit F10),
 * and a line taken whole shows what it is worth; the overpayment is shown on its own.
 */
export function targetParts(plan: GroupSpendPlan): Ratio[] {
  const last = plan.allocations.at(-1);
  return plan.by_program_brand.map((b) =>
    last && b.program_id === last.program_id && b.issuing_brand_id === last.issuing_brand_id
      ? sub(b.value, plan.overpaid_value)
      : b.value,
  );
}
