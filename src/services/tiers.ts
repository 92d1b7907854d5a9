import { sql } from 'kysely';
import type { CompiledProgram } from '../domain/config/group.ts';
import { DAY_MS } from '../domain/expiry.ts';
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

/**
 * The metric over the window ending at `at` with every reversal counted at the time of the
 * purchase it reversed (program_activity stamps it at its own time): what the window's purchases
 * are worth as the ledger now knows them. The purchase is found through the reversal's entry
 * (which names it), or through its events row when it took no points (the row of the reversal
 * being recorded is not written yet; its entry is).
 */
async function tierMetricNetOfReversals(
  trx: Trx,
  member_id: string,
  program: CompiledProgram,
  at: Date,
): Promise<bigint> {
  const qualify = program.tiers.find((t) => t.qualify)?.qualify;
  if (!qualify) return 0n;
  const { from_ms, to_ms } = tierWindow(qualify, at.getTime());
  const column = qualify.metric === 'spend_minor' ? sql.ref('pa.spend_minor') : sql.ref('pa.points_pt4');
  const { rows } = await sql<{ total: bigint | null }>`
    select sum(${column})::int8 as total
    from program_activity pa
    left join entries en on en.id = pa.entry_id and en.kind = 'reversal' and en.ref_type = 'event'
    left join events pe on pe.event_id = en.ref_id
    left join events rv on rv.event_id = pa.event_id and rv.reversal_of is not null
    left join events pu on pu.event_id = rv.reversal_of
    where pa.member_id = ${member_id} and pa.program_id = ${program.id}
      and coalesce(pe.transaction_ts, pu.transaction_ts, pa.at) >= ${new Date(from_ms)}
      and coalesce(pe.transaction_ts, pu.transaction_ts, pa.at) < ${new Date(to_ms)}`.execute(trx);
  return rows[0]?.total ?? 0n;
}

/** How long a tier reached is kept: one qualification period. */
function retentionMs(program: CompiledProgram): number {
  const qualify = program.tiers.find((t) => t.qualify)?.qualify;
  return (qualify?.window === 'calendar_year' ? 365 : (qualify?.window_days ?? 365)) * DAY_MS;
}

/**
 * Re-qualifies a member's tier over the window ending at `as_of` (the tiers job, and a reversal
 * at once): at most one tier down. A tier reached is kept for one whole qualification period, so
 * the downgrade comes at its end, not the day an old purchase leaves the rolling window — but
 * only a tier really reached: the metric as of the day it was reached, with the purchases
 * reversed since taken out, must still qualify for it. So voiding the purchase that lifted the
 * member takes the tier back at once instead of leaving it for a year. The caller holds the
 * member's lock.
 */
export async function reviewTier(
  trx: Trx,
  member_id: string,
  program: CompiledProgram,
  held: { tier: string | null; tier_since: Date | null },
  as_of: Date,
  now: Date,
): Promise<'upgrade' | 'downgrade' | null> {
  const metric = await tierMetricValue(trx, member_id, program, as_of);
  const next = evaluateTier(program.tiers, metric, held.tier, 'full', { max_steps_down: 1 });
  if (next === held.tier) return null;
  const idx = (t: string | null) => program.tiers.findIndex((x) => x.id === t);
  const down = idx(next) < idx(held.tier);
  if (down && held.tier_since && as_of.getTime() < held.tier_since.getTime() + retentionMs(program)) {
    const reached = await tierMetricNetOfReversals(trx, member_id, program, held.tier_since);
    if (idx(evaluateTier(program.tiers, reached, null, 'upgrade_only')) >= idx(held.tier)) return null;
  }
  await setTier(trx, member_id, program.id, next, as_of, now, down ? 'downgrade' : 'upgrade');
  return down ? 'downgrade' : 'upgrade';
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
