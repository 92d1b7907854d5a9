import { sql, type Kysely } from 'kysely';
import { TAKING_KINDS_SQL as TAKING } from '../ledger/read.ts';
import type { DB } from '../store/schema.ts';

/** A lot as it stood at an instant, rebuilt from its allocations booked by then. */
export interface LotThen {
  readonly id: bigint;
  readonly program_id: string;
  readonly issuing_brand_id: string;
  readonly pending: boolean;
  readonly remaining_pt4: bigint;
  readonly held_pt4: bigint;
  readonly available_at: Date;
  readonly expires_at: Date | null;
}

/** What a redemption at the instant could still take of the lot: held points are committed. */
export const freeThen = (l: LotThen): bigint => l.remaining_pt4 - l.held_pt4;

// The member's lots booked by `at` with points left then: remaining from the taking and restoring
// allocations, held from holds less releases and captures, and pending until a mature move booked
// by `at`. A lot with points left at `at` may be empty now, so this reads all of them (by the
// lots_member_expiry index), not only the open ones. GET /balances?as_of and the statement both
// read lots this way, so they agree at the same instant.
export async function lotsAt(
  db: Kysely<DB>,
  member_id: string,
  at: Date,
  /** Only lots whose expires_at is in (after, until]. */
  expiring?: { readonly after?: Date; readonly until: Date },
): Promise<LotThen[]> {
  const rows = await sql<LotThen>`
    select * from (
      select l.id, l.program_id, l.issuing_brand_id, l.available_at, l.expires_at,
        (l.points_pt4 - coalesce(sum(case when a.kind in (${TAKING}) then a.points_pt4
                                         when a.kind = 'restore' then -a.points_pt4 else 0 end), 0))::int8 as remaining_pt4,
        coalesce(sum(case when a.kind = 'hold' then a.points_pt4
                          when a.kind in ('release', 'capture') then -a.points_pt4 else 0 end), 0)::int8 as held_pt4,
        (l.state = 'pending' or exists (
           select 1 from lot_allocations m join entries me on me.id = m.entry_id
           where m.lot_id = l.id and m.kind = 'mature' and me.at > ${at})) as pending
      from lots l
      join entries se on se.id = l.source_entry_id and se.at <= ${at}
      left join lot_allocations a on a.lot_id = l.id
        and exists (select 1 from entries e where e.id = a.entry_id and e.at <= ${at})
      where l.member_id = ${member_id}
        ${expiring ? sql`and l.expires_at <= ${expiring.until}` : sql``}
        ${expiring?.after ? sql`and l.expires_at > ${expiring.after}` : sql``}
      group by l.id) q
    where remaining_pt4 > 0
    order by available_at, id`.execute(db);
  return rows.rows;
}
