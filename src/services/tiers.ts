import { sql } from 'kysely';
import type { CompiledProgram } from '../domain/config/group.ts';
import { evaluateTier, tierMetric, tierWindow } from '../domain/tiers.ts';
import type { Trx } from '../ledger/post.ts';
import { deferWrite, prefetch, type Prefetched } from '../store/write-behind.ts';

// Tier state per (member, program): the current tier on the enrollment, and its history so that
// an event is judged by the tier the member held at its transaction time.

/** The member's tier in the program at `at` (history first; the enrollment when no history). */
export async function tierAt(
  trx: Pick<Trx, 'selectFrom'>,
  member_id: string,
  program_id: string,
  at: Date,
): Promise<string | null> {
  const row = await trx
    .selectFrom('tier_history')
    .select('tier')
    .where('member_id', '=', member_id)
    .where('program_id', '=', program_id)
    .where('from_at', '<=', at)
    .orderBy('from_at', 'desc')
    .orderBy('id', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row?.tier ?? null;
}

/**
 * The member's tier at `at` in each of the programs, as tierAt answers it, in one statement;
 * send it alone or together with other reads (store/write-behind.ts).
 */
export function tiersAtQuery(
  trx: Pick<Trx, 'selectFrom'>,
  member_id: string,
  program_ids: readonly string[],
  at: Date,
) {
  return trx
    .selectFrom('tier_history')
    .distinctOn('program_id')
    .select(['program_id', 'tier'])
    .where('member_id', '=', member_id)
    .where('program_id', 'in', program_ids.length > 0 ? [...program_ids] : [''])
    .where('from_at', '<=', at)
    .orderBy('program_id')
    .orderBy('from_at', 'desc')
    .orderBy('id', 'desc');
}

/** The program's qualification metric for the member over the window ending at `at`. */
export async function tierMetricValue(
  trx: Trx,
  member_id: string,
  program: CompiledProgram,
  at: Date,
): Promise<bigint> {
  const query = tierMetricQuery(trx, member_id, program, at);
  if (!query) return 0n;
  return (await trx.executeQuery(query)).rows[0]?.total ?? 0n;
}

function tierMetricQuery(trx: Trx, member_id: string, program: CompiledProgram, at: Date) {
  const qualify = program.tiers.find((t) => t.qualify)?.qualify;
  if (!qualify) return null;
  const { from_ms, to_ms } = tierWindow(qualify, at.getTime());
  const column = qualify.metric === 'spend_minor' ? sql.ref('spend_minor') : sql.ref('points_pt4');
  return sql<{ total: bigint | null }>`
    select sum(${column})::int8 as total from program_activity
    where member_id = ${member_id} and program_id = ${program.id} and at >= ${new Date(from_ms)} and at < ${new Date(to_ms)}`.compile(
    trx,
  );
}

export async function setTier(
  trx: Trx,
  member_id: string,
  program_id: string,
  tier: string | null,
  from_at: Date,
  recorded_at: Date,
  reason: string,
): Promise<void> {
  await deferWrite(
    trx,
    trx
      .updateTable('enrollments')
      .set({ tier, tier_since: from_at })
      .where('member_id', '=', member_id)
      .where('program_id', '=', program_id),
  );
  await deferWrite(
    trx,
    trx.insertInto('tier_history').values({ member_id, program_id, tier, from_at, recorded_at, reason }),
  );
}

export interface UpgradeReads {
  readonly current: Prefetched<{ tier: string | null }>;
  readonly metric: Prefetched<{ total: bigint | null }> | null;
}

/**
 * Queues what an immediate upgrade needs to know (the current tier, the metric so far), to be read
 * with the activity's other reads; null for a program whose tiers do not qualify by a metric.
 */
export async function prefetchUpgrade(
  trx: Trx,
  member_id: string,
  program: CompiledProgram,
  at: Date,
): Promise<UpgradeReads | null> {
  if (program.tiers.length === 0 || !tierMetric(program.tiers)) return null;
  const metricQuery = tierMetricQuery(trx, member_id, program, at);
  return {
    current: await prefetch(
      trx,
      trx
        .selectFrom('enrollments')
        .select('tier')
        .where('member_id', '=', member_id)
        .where('program_id', '=', program.id),
    ),
    metric: metricQuery ? await prefetch(trx, metricQuery) : null,
  };
}

/**
 * After activity: lift the member at once if the metric now qualifies for a higher tier. The
 * metric is what prefetchUpgrade read before the activity was recorded, plus `added_metric`, the
 * activity's own contribution (it lies inside the window, which ends at its time).
 */
export async function upgradeIfQualified(
  trx: Trx,
  member_id: string,
  program: CompiledProgram,
  at: Date,
  now: Date,
  reads: UpgradeReads,
  added_metric: bigint,
): Promise<string | null> {
  const current = (await reads.current.rows())[0]?.tier ?? null;
  const metric = ((await reads.metric?.rows())?.[0]?.total ?? 0n) + added_metric;
  const next = evaluateTier(program.tiers, metric, current, 'upgrade_only');
  if (next === current) return null;
  await setTier(trx, member_id, program.id, next, at, now, 'upgrade');
  return next;
}
