import type { Group } from '../../domain/config/group.ts';
import { planGroupSpendFromPrefix, type GroupSpendPlan } from '../../domain/lots/group-plan.ts';
import type { SpendableLot } from '../../domain/lots/fefo.ts';
import { ratioToJson } from '../../domain/earn/codec.ts';
import { isWholePt4, type Pt4 } from '../../domain/points.ts';
import { programUnits } from '../../domain/valuation.ts';
import { AppError } from '../../errors.ts';
import type { OpenLot } from '../../ledger/read.ts';
import type { Trx } from '../../ledger/post.ts';
import { together } from '../../store/write-behind.ts';
import { poolOf, poolReads, poolsOf, wholePool, type SpendPool } from './spend-read.ts';

// What a member can spend and how a request would be paid, shared by redemption, the redeemable
// check and transfers. A single-program spend is the group plan over one program whose "default"
// is itself, so both paths take lots in the same order and round the same way.

export interface SpendScope {
  readonly group_redemption: boolean;
  /** The one program spent from when not a group redemption. */
  readonly program_id: string;
  /** A group spend's programs when not all of them (a group transfer: those allowing transfers). */
  readonly programs?: readonly string[];
}

export interface SpendPlan {
  readonly plan: GroupSpendPlan;
  readonly lots: ReadonlyMap<string, OpenLot>;
  /** The unit the request's points are in: the default program (group) or the program. */
  readonly unit_program_id: string;
}

export function resolveScope(
  group: Group,
  brand_id: string,
  group_redemption: boolean,
  program_id: string | undefined,
): SpendScope {
  const brand = group.brands.get(brand_id);
  if (!brand)
    throw new AppError('UNKNOWN_BRAND', `Brand ${brand_id} is not in the configuration`, {
      field: 'brand_id',
    });
  if (group_redemption) return { group_redemption: true, program_id: group.default_program_id };
  const pid = program_id ?? brand.program;
  if (!group.programs.has(pid))
    throw new AppError('UNKNOWN_PROGRAM', `Program ${pid} is not in the configuration`, {
      field: 'program_id',
    });
  return { group_redemption: false, program_id: pid };
}

/** Lots a spend may take now: available, unexpired, with points not already held. */
export function spendable(lots: readonly OpenLot[], now: Date): SpendableLot[] {
  return lots
    .filter(
      (l) =>
        l.state === 'available' &&
        (l.expires_at === null || l.expires_at.getTime() > now.getTime()) &&
        l.remaining_pt4 > l.held_pt4,
    )
    .map((l) => ({
      id: String(l.id),
      program_id: l.program_id,
      issuing_brand_id: l.issuing_brand_id,
      spendable_pt4: l.remaining_pt4 - l.held_pt4,
      expires_at_ms: l.expires_at?.getTime() ?? null,
      awarded_at_ms: l.awarded_at.getTime(),
    }));
}

/** The member's spend pool (spend-read.ts) and the plan over it, reading every lot only if need be. */
export async function planSpend(
  trx: Trx,
  group: Group,
  member_id: string,
  scope: SpendScope,
  points_pt4: Pt4,
  now: Date,
): Promise<SpendPlan> {
  const programs = spendPrograms(group, scope);
  const [lots, totals] = await together(trx, poolReads(trx, [member_id], programs, now));
  const pool = poolOf(poolsOf(lots, totals), member_id);
  return (
    planFromPool(group, pool, scope, points_pt4, now) ??
    planFromPool(group, await wholePool(trx, member_id, programs, now), scope, points_pt4, now)!
  );
}

/** The programs a spend in this scope may take lots from. */
export const spendPrograms = (group: Group, scope: SpendScope): string[] =>
  scope.group_redemption ? [...(scope.programs ?? group.programs.keys())] : [scope.program_id];

/**
 * The plan over a pool read at `now` (its lots and totals in other programs are ignored); null
 * when the walk needs lots past those read (then plan over wholePool).
 */
export function planFromPool(
  group: Group,
  pool: SpendPool,
  scope: SpendScope,
  points_pt4: Pt4,
  now: Date,
): SpendPlan | null {
  const programs = new Set(spendPrograms(group, scope));
  const lots = pool.lots.filter((l) => programs.has(l.program_id));
  const plan = planGroupSpendFromPrefix({
    lots: spendable(lots, now),
    totals: new Map([...pool.totals].filter(([program_id]) => programs.has(program_id))),
    complete: pool.complete,
    programs: programUnits(group, now.getTime()),
    default_program_id: scope.program_id,
    points_pt4,
  });
  return (
    plan && { plan, lots: new Map(lots.map((l) => [String(l.id), l])), unit_program_id: scope.program_id }
  );
}

/**
 * What an entry records of its plan's rounding: the value taken above the request (the last lot's
 * points are rounded up, group-plan.ts) and the program rounded. Entries written before the rule
 * changed carry `absorbed_value`/`absorbing_program_id` instead (a shortfall the group bore).
 */
export const overpaidDetail = (spend: SpendPlan) => ({
  overpaid_value: ratioToJson(spend.plan.overpaid_value),
  rounding_program_id: spend.plan.rounding_program_id,
});

/** The points asked for are positive and in the program's precision (whole unless accumulate): POST and redeemable alike. */
export function checkPrecision(group: Group, program_id: string, points: Pt4): void {
  const program = group.programs.get(program_id);
  if (points <= 0n) throw new AppError('INVALID_AMOUNT', 'points must be positive', { field: 'points' });
  if (program && program.rounding !== 'accumulate' && !isWholePt4(points)) {
    throw new AppError('INVALID_AMOUNT', `${program_id} points are whole points`, { field: 'points' });
  }
}
