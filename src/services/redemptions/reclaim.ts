import { sql } from 'kysely';
import { pt4ToJson, type Pt4 } from '../../domain/points.ts';
import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import type { FloorMove, LotMove, PostingInput } from '../../ledger/entry.ts';
import type { Trx } from '../../ledger/post.ts';
import { resolvePaidDebts } from '../events/accrue.ts';
import { returnMoveBase, type ReturnedAllocation } from './returned-points.ts';

// Points that come back to the member's available balance (a reversed redemption, a released
// hold) may be points a reversal has claimed since they left. A purchase reversed while its
// points were spent or held takes what it can (its own lot first, then the member's other lots)
// and leaves a shortfall: written off by the purchase's brand within the program's limit, else
// recorded as the member's debt. Handing the returning points to the member as well would leave
// them ahead by that shortfall (buy, earn, redeem, refund, cancel the redemption). So, before
// they count as the member's again, they settle the member's shortfalls in their program:
// - first what reversals wrote off and nothing has recovered yet, back to the write-off account
//   of the brand that absorbed it (an allocation of kind writeoff_recovery on the lot);
// - then a recorded debt, paid down as newly available points always pay it (accruals,
//   maturation): a debt_paydown allocation and a floor move.
// Per member and program, not per lot: a reversal that found its own lot spent takes the
// member's other lots, so the points a write-off stands for may come back to any lot of the
// program (test/api/reversal-never-ahead.property.test.ts found such a chain). Once nothing is
// spent or held any more, the member holds exactly what their purchases earned less what their
// reversals took back.

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
  const programs = [...new Set(credited.map((a) => a.program_id))];
  const owed = await unrecoveredWriteOffs(trx, member_id, programs);
  const debt = await debts(trx, member_id, programs);
  for (const a of credited) {
    const base = returnMoveBase(a, member_id);
    const account = memberAccount(a.program_id, member_id, 'member_available');
    const tally = out.byProgram.get(a.program_id) ?? { recovered: 0n, paid: 0n };
    let left = a.points_pt4;
    for (const w of owed.filter((w) => w.program_id === a.program_id && w.owed_pt4 > 0n)) {
      const r = least(left, w.owed_pt4);
      if (r === 0n) break;
      w.owed_pt4 -= r;
      left -= r;
      tally.recovered += r;
      out.moves.push({ ...base, kind: 'writeoff_recovery', points_pt4: r, remaining_delta_pt4: -r });
      out.postings.push({ account, amount_pt4: -r });
      out.postings.push({ account: systemAccount(a.program_id, 'writeoff', w.brand_id), amount_pt4: r });
    }
    const paid = least(left, debt.get(a.program_id) ?? 0n);
    if (paid > 0n) {
      debt.set(a.program_id, debt.get(a.program_id)! - paid);
      tally.paid += paid;
      out.moves.push({ ...base, kind: 'debt_paydown', points_pt4: paid, remaining_delta_pt4: -paid });
      out.floors.push({ account, delta_pt4: paid });
    }
    out.byProgram.set(a.program_id, tally);
  }
  return out;
}

/** After the entry is posted: closes the reviews of the debts the returned points paid off. */
export const resolveRepaidDebts = (trx: Trx, member_id: string, reclaimed: Reclaimed, now: Date) =>
  resolvePaidDebts(trx, member_id, reclaimed.floors, now, 'paid down by returned points');

/**
 * Per program and brand (in brand order): what reversals of this member's points wrote off, less
 * what returning points recovered since; both are postings to the brand's write-off account in
 * the member's own entries.
 */
async function unrecoveredWriteOffs(
  trx: Trx,
  member_id: string,
  programs: readonly string[],
): Promise<{ program_id: string; brand_id: string; owed_pt4: Pt4 }[]> {
  const { rows } = await sql<{ program_id: string; brand_id: string; owed_pt4: bigint }>`
    select a.program_id, a.owner_id as brand_id, (-sum(p.amount_pt4))::int8 as owed_pt4
    from entries e
    join postings p on p.entry_id = e.id
    join accounts a on a.id = p.account_id
    where e.member_id = ${member_id} and a.kind = 'writeoff' and a.program_id = any(${programs}::text[])
    group by a.program_id, a.owner_id
    having sum(p.amount_pt4) < 0
    order by a.program_id, a.owner_id`.execute(trx);
  return rows.map((r) => ({ program_id: r.program_id, brand_id: r.brand_id, owed_pt4: BigInt(r.owed_pt4) }));
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
