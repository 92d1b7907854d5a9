import { pt4FromJson, pt4ToJson } from '../../domain/points.ts';
import { AppError } from '../../errors.ts';
import type { Ctx } from '../context.ts';

/**
 * GET /v1/redemptions/{id}: the redemption and what became of its points, in its own points
 * (default-program points for a group redemption). A capture may take less than was held, the
 * rest released; the amount is on the capture entry. A redemption captured at once, or captured
 * before that was recorded, took all of its points.
 */
export async function getRedemption(ctx: Ctx, id: string) {
  const r = await ctx.db.selectFrom('redemptions').selectAll().where('id', '=', id).executeTakeFirst();
  if (!r) throw new AppError('REDEMPTION_NOT_FOUND', undefined, { redemption_id: id });
  let captured = 0n;
  if (r.status === 'captured' || r.status === 'reversed') {
    const capture = await ctx.db
      .selectFrom('entries')
      .select('detail')
      .where('ref_type', '=', 'redemption')
      .where('ref_id', '=', id)
      .where('kind', '=', 'capture')
      .executeTakeFirst();
    const recorded = (capture?.detail as { captured?: unknown } | null | undefined)?.captured;
    captured = (recorded === undefined ? null : pt4FromJson(recorded)) ?? r.points_pt4;
  }
  const settled = r.status !== 'held';
  return {
    redemption_id: r.id,
    member_id: r.member_id,
    brand_id: r.brand_id,
    status: r.status,
    group_redemption: r.group_redemption,
    program_id: r.program_id,
    points: pt4ToJson(r.points_pt4),
    captured: pt4ToJson(captured),
    released: pt4ToJson(settled ? r.points_pt4 - captured : 0n),
    order_id: r.order_id,
    reward_id: r.reward_id,
    created_at: r.created_at.toISOString(),
    hold_expires_at: r.hold_expires_at?.toISOString() ?? null,
    resolved_at: r.resolved_at?.toISOString() ?? null,
  };
}
