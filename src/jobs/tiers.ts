import type { Ctx } from '../services/context.ts';
import { requireGroup } from '../services/config.ts';
import { reviewTier } from '../services/tiers.ts';
import { byMemberId, forEachMemberBatch, type JobProgress } from './batch.ts';

// tiers: re-qualifies every enrolled member of a tiered program over the window ending at as_of.
// Upgrades happen at once on accrual; this job applies downgrades, at most one tier per run.

export async function runTiers(ctx: Ctx, as_of: Date, onProgress?: (p: JobProgress) => void) {
  const group = await requireGroup(ctx);
  const tiered = [...group.programs.values()].filter((p) => p.tiers.some((t) => t.qualify));
  let evaluated = 0;
  let downgraded = 0;
  let upgraded = 0;
  if (tiered.length === 0)
    return { job: 'tiers', as_of: as_of.toISOString(), evaluated, downgraded, upgraded, skipped_members: 0 };
  const { skipped_members } = await forEachMemberBatch(
    ctx,
    async (after, limit) => {
      let q = ctx.db
        .selectFrom('enrollments')
        .select('member_id')
        .distinct()
        .where(
          'program_id',
          'in',
          tiered.map((p) => p.id),
        )
        .orderBy('member_id')
        .limit(limit);
      if (after !== null) q = q.where('member_id', '>', after);
      return byMemberId(
        (await q.execute()).map((r) => r.member_id),
        limit,
      );
    },
    async (trx, member_ids) => {
      const rows = await trx
        .selectFrom('enrollments')
        .select(['member_id', 'program_id', 'tier', 'tier_since'])
        .where('member_id', 'in', member_ids)
        .where(
          'program_id',
          'in',
          tiered.map((p) => p.id),
        )
        .execute();
      for (const e of rows) {
        const program = group.programs.get(e.program_id)!;
        evaluated++;
        const moved = await reviewTier(trx, e.member_id, program, e, as_of, ctx.clock.now());
        if (moved === 'downgrade') downgraded++;
        else if (moved === 'upgrade') upgraded++;
      }
    },
    onProgress,
  );
  return { job: 'tiers', as_of: as_of.toISOString(), evaluated, downgraded, upgraded, skipped_members };
}
