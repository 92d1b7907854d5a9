import type { CompiledProgram } from '../domain/config/group.ts';
import { pt4ToJson } from '../domain/points.ts';
import { baseTier, progressToNext, thresholdOf, tierMetric, tierWindow } from '../domain/tiers.ts';
import { AppError } from '../errors.ts';
import type { Trx } from '../ledger/post.ts';
import { requireGroup } from './config.ts';
import type { Ctx } from './context.ts';
import { tierSinceThen, tierThen, tiersAsOf } from './tier-at.ts';
import { tierMetricValue } from './tiers.ts';
import { inTransaction } from './transaction.ts';

// GET /v1/members/{id}/tiers: per tiered program the member is enrolled in, the tier they hold
// (at a past as_of: the one held then), the benefits it gives, how far they are from the next tier
// (the program's qualification metric over its window ending at as_of) and their tier history,
// newest first.

const HISTORY_LIMIT = 100;

/** A metric amount in its unit: spend in the program's currency minor units, points as points. */
function metricJson(program: CompiledProgram, metric: 'spend_minor' | 'points_earned', v: bigint) {
  return metric === 'spend_minor'
    ? { amount_minor: Number(v), currency: program.currency }
    : { points: pt4ToJson(v) };
}

export async function memberTiers(ctx: Ctx, member_id: string, as_of?: Date) {
  const group = await requireGroup(ctx);
  const now = ctx.clock.now();
  const at = as_of ?? now;
  // A past as_of answers with the tier held then (tier-at.ts), as the balances view does; without
  // one (or with one not in the past) the enrollment row's tier is the answer.
  const historical = as_of !== undefined && as_of.getTime() < now.getTime();
  // One read transaction: the enrollment, the metric and the history agree with each other.
  return inTransaction(ctx.db, async (trx) => {
    const member = await trx
      .selectFrom('members')
      .select('id')
      .where('id', '=', member_id)
      .executeTakeFirst();
    if (!member) throw new AppError('MEMBER_NOT_FOUND', undefined, { member_id });
    const enrollments = await trx
      .selectFrom('enrollments')
      .select(['program_id', 'tier', 'tier_since', 'enrolled_at'])
      .where('member_id', '=', member_id)
      .orderBy('program_id')
      .execute();
    const then = historical ? await tiersAsOf(trx, member_id, at) : null;
    const programs = [];
    for (const e of enrollments) {
      const program = group.programs.get(e.program_id);
      if (!program || program.tiers.length === 0) continue;
      // Not yet enrolled at as_of: no tier then (the balances view leaves the program out too).
      if (then && e.enrolled_at.getTime() > at.getTime()) continue;
      const held = then
        ? {
            tier: tierThen(group, e.program_id, e.tier, then),
            tier_since: tierSinceThen(e.program_id, e.tier_since, then),
          }
        : e;
      programs.push(await programTiers(trx, member_id, program, held, at));
    }
    return { member_id, as_of: at.toISOString(), programs };
  });
}

async function programTiers(
  trx: Trx,
  member_id: string,
  program: CompiledProgram,
  /** The tier held at `at` and since when: the enrollment's now, the history's at a past as_of. */
  e: { tier: string | null; tier_since: Date | null },
  at: Date,
) {
  const metric = tierMetric(program.tiers);
  const qualify = program.tiers.find((t) => t.qualify)?.qualify;
  const value = metric ? await tierMetricValue(trx, member_id, program, at) : 0n;
  // Enrolled without a purchase (a transfer, an adjustment, a referral bonus): the base tier.
  const tier = e.tier ?? baseTier(program.tiers);
  const current = program.tiers.find((t) => t.id === tier) ?? null;
  const progress = metric ? progressToNext(program.tiers, tier, value) : null;
  const next = progress ? program.tiers.find((t) => t.id === progress.next_tier) : undefined;
  const window = qualify ? tierWindow(qualify, at.getTime()) : null;
  const history = await trx
    .selectFrom('tier_history')
    .select(['tier', 'from_at', 'recorded_at', 'reason'])
    .where('member_id', '=', member_id)
    .where('program_id', '=', program.id)
    // As known at `at`: a past as_of does not show changes recorded after it.
    .where('recorded_at', '<=', at)
    .orderBy('from_at', 'desc')
    .orderBy('id', 'desc')
    .limit(HISTORY_LIMIT)
    .execute();
  return {
    program_id: program.id,
    brand_id: program.brand_id,
    tier,
    tier_since: e.tier_since?.toISOString() ?? null,
    benefits: current?.benefits ?? [],
    qualification:
      metric && qualify && window
        ? {
            metric,
            window:
              qualify.window === 'calendar_year'
                ? { kind: 'calendar_year' }
                : { kind: 'rolling', days: qualify.window_days ?? 365 },
            from: new Date(window.from_ms).toISOString(),
            to: new Date(window.to_ms).toISOString(),
            value: metricJson(program, metric, value),
          }
        : null,
    next_tier:
      progress && metric
        ? {
            tier: progress.next_tier,
            at_least: metricJson(program, metric, progress.at_least),
            remaining: metricJson(program, metric, progress.remaining),
            qualified: progress.remaining === 0n,
            benefits: next?.benefits ?? [],
          }
        : null,
    tiers: program.tiers.map((t) => ({
      tier: t.id,
      at_least: metric ? metricJson(program, metric, thresholdOf(t)) : null,
      benefits: t.benefits ?? [],
      expiry_days: t.expiry_days ?? null,
      current: t.id === tier,
    })),
    history: history.map((h) => ({
      tier: h.tier,
      from_at: h.from_at.toISOString(),
      recorded_at: h.recorded_at.toISOString(),
      reason: h.reason,
    })),
  };
}
