import { TAKING_KINDS_SQL } from '../../ledger/read.ts';
import { sql, type Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';

// The liability report's reads, aggregated in SQL (sums of bigint points: exact).

export interface OutstandingRow {
  program_id: string;
  issuing_brand_id: string;
  available_pt4: bigint;
  pending_pt4: bigint;
  held_pt4: bigint;
}

// Allocation kinds that take points out of a lot, and the ones that hold or release them: the
// same classification as verify's lots_equal_allocations check.
const TAKES = sql`(${TAKING_KINDS_SQL})`;

/**
 * Open points per (program, issuing brand). With `as_of` null, the lots as they stand. With an
 * instant in the past, each lot is rebuilt from its allocations posted up to then (like the
 * balances view's as_of): a lot counts if its source entry was posted by then, and it was pending
 * then if it is still pending or matured later.
 */
export async function outstandingAsOf(db: Kysely<DB>, as_of: Date | null): Promise<OutstandingRow[]> {
  const q =
    as_of === null
      ? sql<OutstandingRow>`select program_id, issuing_brand_id,
          sum(case when state = 'available' then remaining_pt4 - held_pt4 else 0 end)::int8 as available_pt4,
          sum(case when state = 'pending' then remaining_pt4 else 0 end)::int8 as pending_pt4,
          sum(held_pt4)::int8 as held_pt4
        from lots where remaining_pt4 > 0
        group by program_id, issuing_brand_id order by program_id, issuing_brand_id`
      : sql<OutstandingRow>`with moves as (
          select la.lot_id,
            sum(case when e.at <= ${as_of} and la.kind in ${TAKES} then la.points_pt4
                     when e.at <= ${as_of} and la.kind = 'restore' then -la.points_pt4 else 0 end) as taken,
            sum(case when e.at > ${as_of} then 0 when la.kind = 'hold' then la.points_pt4
                     when la.kind in ('release', 'capture') then -la.points_pt4 else 0 end) as held,
            bool_or(la.kind = 'mature' and e.at > ${as_of}) as matured_later
          from lot_allocations la join entries e on e.id = la.entry_id group by la.lot_id),
        lot as (
          select l.program_id, l.issuing_brand_id, l.points_pt4 - coalesce(m.taken, 0) as remaining,
            coalesce(m.held, 0) as held, (l.state = 'pending' or coalesce(m.matured_later, false)) as pending
          from lots l join entries src on src.id = l.source_entry_id and src.at <= ${as_of}
          left join moves m on m.lot_id = l.id)
        select program_id, issuing_brand_id,
          sum(case when pending then 0 else remaining - held end)::int8 as available_pt4,
          sum(case when pending then remaining else 0 end)::int8 as pending_pt4,
          sum(held)::int8 as held_pt4
        from lot where remaining > 0
        group by program_id, issuing_brand_id order by program_id, issuing_brand_id`;
  return (await q.execute(db)).rows;
}

export interface ActivityRow {
  brand_id: string;
  program_id: string;
  /** Awarded (issuance debits). */
  issued_pt4: bigint;
  /** Taken back by purchase reversals (issuance credits). */
  reversed_pt4: bigint;
  /** Spent at this brand, net of redemption reversals. */
  redeemed_pt4: bigint;
  /** Breakage of this brand's lots, net. */
  expired_pt4: bigint;
  /** Reversal shortfalls absorbed by this brand. */
  written_off_pt4: bigint;
}

/** Postings to the brands' system accounts over [from, to); system accounts are owned by a brand. */
export async function systemActivity(db: Kysely<DB>, from: Date | null, to: Date): Promise<ActivityRow[]> {
  const since = from ?? new Date(0);
  const res = await sql<ActivityRow>`select a.owner_id as brand_id, a.program_id,
      coalesce(sum(case when a.kind = 'issuance' and p.amount_pt4 < 0 then -p.amount_pt4 else 0 end), 0)::int8 as issued_pt4,
      coalesce(sum(case when a.kind = 'issuance' and p.amount_pt4 > 0 then p.amount_pt4 else 0 end), 0)::int8 as reversed_pt4,
      coalesce(sum(case when a.kind = 'redemption' then p.amount_pt4 else 0 end), 0)::int8 as redeemed_pt4,
      coalesce(sum(case when a.kind = 'breakage' then p.amount_pt4 else 0 end), 0)::int8 as expired_pt4,
      coalesce(sum(case when a.kind = 'writeoff' then -p.amount_pt4 else 0 end), 0)::int8 as written_off_pt4
    from postings p join accounts a on a.id = p.account_id
    where a.kind in ('issuance', 'redemption', 'breakage', 'writeoff') and p.at >= ${since} and p.at < ${to}
    group by a.owner_id, a.program_id order by a.owner_id, a.program_id`.execute(db);
  return res.rows;
}
