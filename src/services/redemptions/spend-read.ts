import { sql, type CompiledQuery } from 'kysely';
import type { Pt4 } from '../../domain/points.ts';
import type { Trx } from '../../ledger/post.ts';
import type { OpenLot } from '../../ledger/read.ts';
import { textArray } from '../../store/pg-arrays.ts';

// What a spend reads of a member's lots. A plan needs the pool's value (each program's spendable
// points) and the lots in spend order only until the request is covered. A frequent shopper holds
// hundreds of lots per program, and reading them all cost a group redemption over 5 × 200 lots
// ~10 ms of this process's CPU to receive and parse (docs/performance.md). So a spend reads each
// program's total and the first PREFIX_LOTS spendable lots in spend order, and reads the rest only
// when its walk gets past them (planGroupSpendFromPrefix answers null).
//
// "Spendable" and "spend order" here are spend-plan.ts's spendable() and fefo.ts's
// compareLotsForSpend, in SQL: available, not expired at `now`, points not all held; by expiry
// (never-expiring last), then award, then id. Instants compare at the millisecond, as the Dates
// this process reads them into do.

/** Lots read ahead of a spend's walk; a walk that needs more reads them all. */
export const PREFIX_LOTS = 64;

export interface SpendPool {
  /** The spendable lots in the spend's programs: the first ones in spend order, or all. */
  readonly lots: readonly OpenLot[];
  /** Each program's spendable points over all the member's lots in it. */
  readonly totals: ReadonlyMap<string, Pt4>;
  /** True when `lots` holds every spendable lot. */
  readonly complete: boolean;
}

// `open` (remaining_pt4 > 0) adds nothing to `remaining_pt4 > held_pt4` but lets PostgreSQL use
// the partial index lots_member_open (member_id, program_id) WHERE open.
const spendableAt = (now: Date) => sql`l.open and l.remaining_pt4 > l.held_pt4
  and l.state = 'available'
  and (l.expires_at is null or date_trunc('milliseconds', l.expires_at) > ${now.toISOString()}::timestamptz)`;

/** Each (member, program)'s spendable points at `now`. */
function spendTotalsQuery(
  trx: Trx,
  member_ids: readonly string[],
  program_ids: readonly string[],
  now: Date,
): CompiledQuery<{ member_id: string; program_id: string; spendable_pt4: bigint }> {
  return sql<{ member_id: string; program_id: string; spendable_pt4: bigint }>`
    select l.member_id, l.program_id, sum(l.remaining_pt4 - l.held_pt4)::int8 as spendable_pt4
    from lots l
    where l.member_id = any(${textArray(member_ids)}::text[]) and l.program_id = any(${textArray(program_ids)}::text[])
      and ${spendableAt(now)}
    group by l.member_id, l.program_id`.compile(trx);
}

/** Each member's first `limit` spendable lots in spend order (all of them when `limit` is null). */
function spendLotsQuery(
  trx: Trx,
  member_ids: readonly string[],
  program_ids: readonly string[],
  now: Date,
  limit: number | null,
): CompiledQuery<OpenLot> {
  return sql<OpenLot>`
    select l.* from unnest(${textArray(member_ids)}::text[]) as m(id)
    cross join lateral (
      select l.id, l.program_id, l.member_id, l.issuing_brand_id, l.points_pt4, l.remaining_pt4, l.held_pt4,
             l.state, l.awarded_at, l.available_at, l.expires_at, l.source_event_id
      from lots l
      where l.member_id = m.id and l.program_id = any(${textArray(program_ids)}::text[]) and ${spendableAt(now)}
      order by date_trunc('milliseconds', l.expires_at), date_trunc('milliseconds', l.awarded_at), l.id
      ${limit === null ? sql`` : sql`limit ${limit}`}) l`.compile(trx);
}

/** The reads of the members' pools, to send with others (write-behind `together`): poolsOf. */
export const poolReads = (
  trx: Trx,
  member_ids: readonly string[],
  program_ids: readonly string[],
  now: Date,
) =>
  [
    spendLotsQuery(trx, member_ids, program_ids, now, PREFIX_LOTS),
    spendTotalsQuery(trx, member_ids, program_ids, now),
  ] as const;

/** Pools per member from what poolReads answered; members with nothing spendable have none. */
export function poolsOf(
  lots: readonly OpenLot[],
  totals: readonly { member_id: string; program_id: string; spendable_pt4: bigint }[],
): Map<string, SpendPool> {
  const out = new Map<string, { lots: OpenLot[]; totals: Map<string, Pt4>; complete: boolean }>();
  const of = (member_id: string) => {
    let p = out.get(member_id);
    if (!p) out.set(member_id, (p = { lots: [], totals: new Map(), complete: true }));
    return p;
  };
  for (const l of lots) of(l.member_id).lots.push(l);
  for (const t of totals) of(t.member_id).totals.set(t.program_id, t.spendable_pt4);
  for (const p of out.values()) p.complete = p.lots.length < PREFIX_LOTS;
  return out;
}

const EMPTY_POOL: SpendPool = { lots: [], totals: new Map(), complete: true };

/** A member's pool in poolsOf's answer. */
export const poolOf = (pools: ReadonlyMap<string, SpendPool>, member_id: string): SpendPool =>
  pools.get(member_id) ?? EMPTY_POOL;

/** Every spendable lot of the member in the programs, with the totals they make. */
export async function wholePool(
  trx: Trx,
  member_id: string,
  program_ids: readonly string[],
  now: Date,
): Promise<SpendPool> {
  const { rows: lots } = await trx.executeQuery(spendLotsQuery(trx, [member_id], program_ids, now, null));
  const totals = new Map<string, Pt4>();
  for (const l of lots)
    totals.set(l.program_id, (totals.get(l.program_id) ?? 0n) + l.remaining_pt4 - l.held_pt4);
  return { lots, totals, complete: true };
}
