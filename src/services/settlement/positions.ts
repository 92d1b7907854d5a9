import { pt4ToJson } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import { requireGroup } from '../config.ts';
import type { Ctx } from '../context.ts';
import { forEachFlow } from './flows.ts';
import { netOf, PairAccumulator, type PairTotal } from './statement.ts';

// GET /v1/settlement/positions: what each issuing brand owes each redeeming brand for the
// cross-brand redemptions whose flows fall in [from, to) (reversals netted in), and the
// multilateral net per brand. Pair amounts are re-rounded once per pair (statement.ts), so the
// positions over a closed period's flows equal its statement, and `net` sums to zero.

export interface Positions {
  currency: string;
  flows: { issuer_brand_id: string; redeemer_brand_id: string; points: number; amount_minor: number }[];
  net: { brand_id: string; amount_minor: number }[];
}

/** Pair totals over [from, to); `from` null means from the beginning. */
export async function positionPairs(ctx: Ctx, from: Date | null, to: Date): Promise<PairTotal[]> {
  if (from && from.getTime() >= to.getTime())
    throw new AppError('INVALID_RANGE', '`from` must be before `to`', {
      from: from.toISOString(),
      to: to.toISOString(),
    });
  const acc = new PairAccumulator();
  await forEachFlow(ctx.db, { kind: 'range', from, to }, (f) => acc.add(f));
  return acc.totals();
}

export const positionsJson = (currency: string, pairs: readonly PairTotal[]): Positions => ({
  currency,
  flows: pairs.map((p) => ({
    issuer_brand_id: p.issuer_brand_id,
    redeemer_brand_id: p.redeemer_brand_id,
    points: pt4ToJson(p.points_pt4),
    amount_minor: Number(p.amount_minor),
  })),
  net: netOf(pairs).map((n) => ({ brand_id: n.brand_id, amount_minor: Number(n.amount_minor) })),
});

/** Defaults: from the beginning, to now (exclusive). */
export async function settlementPositions(ctx: Ctx, from?: Date, to?: Date): Promise<Positions> {
  const group = await requireGroup(ctx);
  return positionsJson(group.common_currency, await positionPairs(ctx, from ?? null, to ?? ctx.clock.now()));
}
