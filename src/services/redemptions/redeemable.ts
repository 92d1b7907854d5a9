import { currencyExponent } from '../../domain/config/fx.ts';
import { mul } from '../../domain/decimal.ts';
import { REDEEMED_VALUE_ROUNDING, valueMinor } from '../../domain/lots/conversion.ts';
import { pt4ToJson, pt4ToRatio, type Pt4 } from '../../domain/points.ts';
import { programUnit } from '../../domain/valuation.ts';
import { AppError } from '../../errors.ts';
import { requireGroup } from '../config.ts';
import type { Ctx } from '../context.ts';
import { checkPrecision, planSpend, resolveScope } from './spend-plan.ts';

/** Would a redemption of `points` succeed now? The same plan the redemption would make, unwritten. */
export async function redeemable(
  ctx: Ctx,
  q: {
    member_id: string;
    brand_id: string;
    points_pt4: Pt4;
    program_id?: string | undefined;
    group_redemption?: boolean | undefined;
  },
) {
  const group = await requireGroup(ctx);
  const scope = resolveScope(group, q.brand_id, q.group_redemption ?? false, q.program_id);
  // What POST /v1/redemptions would refuse is not redeemable: the same 422.
  checkPrecision(group, scope.program_id, q.points_pt4);
  const member = await ctx.db
    .selectFrom('members')
    .select('id')
    .where('id', '=', q.member_id)
    .executeTakeFirst();
  if (!member) throw new AppError('MEMBER_NOT_FOUND', undefined, { member_id: q.member_id });
  const now = ctx.clock.now();
  const spend = await ctx.db
    .transaction()
    .execute((trx) => planSpend(trx, group, q.member_id, scope, q.points_pt4, now));
  const available = spend.plan.available_default_pt4;
  const shortfall = q.points_pt4 > available ? q.points_pt4 - available : 0n;
  const unit = programUnit(group, group.programs.get(scope.program_id)!, now.getTime());
  return {
    member_id: q.member_id,
    brand_id: q.brand_id,
    program_id: scope.program_id,
    group_redemption: scope.group_redemption,
    points: pt4ToJson(q.points_pt4),
    redeemable: shortfall === 0n,
    available: pt4ToJson(available),
    shortfall: pt4ToJson(shortfall),
    value: {
      amount_minor: Number(
        valueMinor(
          mul(pt4ToRatio(q.points_pt4), unit.unit_value),
          currencyExponent(group.common_currency),
          REDEEMED_VALUE_ROUNDING,
        ),
      ),
      currency: group.common_currency,
    },
  };
}
