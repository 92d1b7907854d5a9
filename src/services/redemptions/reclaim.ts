import { sql } from 'kysely';
import { pt4ToJson, type Pt4 } from '../../domain/points.ts';
import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import type { FloorMove, LotMove, PostingInput } from '../../ledger/entry.ts';
import type { Trx } from '../../ledger/post.ts';
import { returnMoveBase, type ReturnedAllocation } from './returned-points.ts';

// Points that come back to the member's available balance (a reversed redemption, a released
// hold) may be points a reversal has claimed since they left. A purchase reversed while its
// points were spent or held takes what it can and leaves a shortfall: written off by the issuing
// brand within the program's limit, else recorded as the member's debt. Handing the returning
// points to the member as well would leave them ahead by that shortfall (buy, earn, redeem,
// refund, cancel the redemption). So, before they count as the member's again:
// - a lot's own reversals' write-off not yet recovered takes them back first, to the issuing
//   brand's write-off account (an allocation of kind writeoff_recovery on the lot);
// - then a recorded debt in the program is paid down, as newly available points always pay it
//   (accruals, maturation): a debt_paydown allocation and a floor move.

const least = (a: Pt4, b: Pt4): Pt4 => (a < b ? a : b);

export interface Reclaimed {
  readonly postings: PostingInput[];
  readonly moves: LotMove[];
  readonly floors: FloorMove[];
  /** Per program: the write-off recovered and the debt paid, out of the returned points. */
  readonly byProgram: Map<string, { recovered: Pt4; paid: Pt4 }>;
}

/** A program's part of an answer: of the points returned, what went to reversals' claims. */
export const reclaimedView = (t: { recovered: Pt4; paid: Pt4 } | undefined) => ({
  write_off_recovered: pt4ToJson(t?.recovered ?? 0n),
  debt_paid: pt4ToJson(t?.paid ?? 0n),
});

/**
 * What reversals claim of `credited` (allocations whose points were just credited back to the
 * member's available balance, in the same entry), in order; lots and accounts are read under
 * the member's lock, which the caller holds.
 */
export async function reclaimReturned(
  trx: Trx,
  member_id: string,
  credited: readonly ReturnedAllocation[],
): Promise<Reclaimed> {
  const out: Reclaimed = { postings: [], moves: [], floors: [], byProgram: new Map() };
  if (credited.length === 0) return out;
  const owed = await unrecoveredWriteOffs(trx, [...new Set(credited.map((a) => a.lot_id))]);
  const debt = await debts(trx, member_id, [...new Set(credited.map((a) => a.program_id))]);
  for (const a of credited) {
    const base = returnMoveBase(a, member_id);
    const account = memberAccount(a.program_id, member_id, 'member_available');
    const tally = out.byProgram.get(a.program_id) ?? { recovered: 0n, paid: 0n };
    const recovered = least(a.points_pt4, owed.get(a.lot_id) ?? 0n);
    if (recovered > 0n) {
      owed.set(a.lot_id, owed.get(a.lot_id)! - recovered);
      out.moves.push({
        ...base,
        kind: 'writeoff_recovery',
        points_pt4: recovered,
        remaining_delta_pt4: -recovered,
      });
      out.postings.push({ account, amount_pt4: -recovered });
      out.postings.push({
        account: systemAccount(a.program_id, 'writeoff', a.issuing_brand_id),
        amount_pt4: recovered,
      });
    }
    const paid = least(a.points_pt4 - recovered, debt.get(a.program_id) ?? 0n);
    if (paid > 0n) {
      debt.set(a.program_id, debt.get(a.program_id)! - paid);
      out.moves.push({ ...base, kind: 'debt_paydown', points_pt4: paid, remaining_delta_pt4: -paid });
      out.floors.push({ account, delta_pt4: paid });
    }
    out.byProgram.set(a.program_id, { recovered: tally.recovered + recovered, paid: tally.paid + paid });
  }
  return out;
}

/**
 * Per lot: what the reversals of its award (a purchase's, or a referral bonus's) wrote off,
 * less what was recovered on it since.
 */
async function unrecoveredWriteOffs(trx: Trx, lot_ids: readonly bigint[]): Promise<Map<bigint, Pt4>> {
  const { rows } = await sql<{ lot_id: bigint; owed_pt4: bigint }>`
    select l.id as lot_id,
      coalesce((select -sum(p.amount_pt4)
                  from entries e
                  join postings p on p.entry_id = e.id
                  join accounts a on a.id = p.account_id and a.kind = 'writeoff' and a.program_id = l.program_id
                 where e.kind = 'reversal'
                   and ((e.ref_type = 'event' and e.ref_id = l.source_event_id)
                     or (e.ref_type = 'referral' and 'referral:' || e.ref_id = l.source_event_id))), 0)::int8
      - coalesce((select sum(x.points_pt4) from lot_allocations x
                   where x.lot_id = l.id and x.kind = 'writeoff_recovery'), 0)::int8 as owed_pt4
    from lots l
    where l.id = any(${lot_ids.map(String)}::int8[])`.execute(trx);
  return new Map(rows.map((r) => [BigInt(r.lot_id), BigInt(r.owed_pt4)]));
}

/** Per program: the member's recorded debt (the negative floor of the available account). */
async function debts(trx: Trx, member_id: string, programs: readonly string[]): Promise<Map<string, Pt4>> {
  const rows = await trx
    .selectFrom('accounts')
    .select(['program_id', 'floor_pt4'])
    .where('owner_id', '=', member_id)
    .where('kind', '=', 'member_available')
    .where('program_id', 'in', programs)
    .execute();
  return new Map(rows.map((r) => [r.program_id, r.floor_pt4 < 0n ? -r.floor_pt4 : 0n]));
}
