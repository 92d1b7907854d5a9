import type { CompiledProgram } from '../domain/config/group.ts';
import { DAY_MS } from '../domain/expiry.ts';
import { evaluateTier } from '../domain/tiers.ts';
import type { Ctx } from '../services/context.ts';
import { requireGroup } from '../services/config.ts';
import { setTier, tierMetricValue } from '../services/tiers.ts';
import { byMemberId, forEachMemberBatch, type JobProgress } from './batch.ts';

// tiers: re-qualifies every enrolled member of a tiered program over the window ending at as_of.
// Upgrades happen at once on accrual; this job applies downgrades, at most one tier per run.

function retentionMs(program: CompiledProgram): number {
  const qualify = program.tiers.find((t) => t.qualify)?.qualify;
  return (qualify?.window === 'calendar_year' ? 365 : (qualify?.window_days ?? 365)) * DAY_MS;
}

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
        const metric = await tierMetricValue(trx, e.member_id, program, as_of);
        const next = evaluateTier(program.tiers, metric, e.tier, 'full', { max_steps_down: 1 });
        evaluated++;
        if (next === e.tier) continue;
        const idx = (t: string | null) => program.tiers.findIndex((x) => x.id === t);
        // A tier, once reached, is kept for one whole qualification period: the downgrade comes
        // at the end of that period, not the day an old purchase leaves the rolling window.
        if (
          idx(next) < idx(e.tier) &&
          e.tier_since &&
          as_of.getTime() < e.tier_since.getTime() + retentionMs(program)
        )
          continue;
        if (idx(next) < idx(e.tier)) downgraded++;
        else upgraded++;
        await setTier(
          trx,
          e.member_id,
          e.program_id,
          next,
          as_of,
          ctx.clock.now(),
          idx(next) < idx(e.tier) ? 'downgrade' : 'upgrade',
        );
      }
    },
    onProgress,
  );
  return { job: 'tiers', as_of: as_of.toISOString(), evaluated, downgraded, upgraded, skipped_members };
}
