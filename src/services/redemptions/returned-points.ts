import { memberAccount, systemAccount } from '../../ledger/accounts.ts';
import type { LotMove, PostingInput } from '../../ledger/entry.ts';

/** An allocation whose points go back to their lot (a reversed capture, a released hold). */
export interface ReturnedAllocation {
  readonly lot_id: bigint;
  readonly program_id: string;
  readonly issuing_brand_id: string;
  readonly points_pt4: bigint;
  readonly expires_at: Date | null;
}

/** What every move of the allocation's points back to its lot has in common. */
export const returnMoveBase = (a: ReturnedAllocation, member_id: string) => ({
  lot_id: a.lot_id,
  program_id: a.program_id,
  member_id,
  issuing_brand_id: a.issuing_brand_id,
  points_pt4: a.points_pt4,
  held_delta_pt4: 0n,
  state_from: 'available' as const,
});

/**
 * Credits points back in their lot to the member's available account or, when the lot has
 * expired by `now`, expires them at once to breakage rather than showing available points nobody
 * can spend. Appends the posting (and the expiry move); answers whether they expired.
 */
export function creditReturned(
  a: ReturnedAllocation,
  member_id: string,
  now: Date,
  postings: PostingInput[],
  moves: LotMove[],
): boolean {
  if (a.expires_at !== null && a.expires_at.getTime() <= now.getTime()) {
    postings.push({
      account: systemAccount(a.program_id, 'breakage', a.issuing_brand_id),
      amount_pt4: a.points_pt4,
    });
    moves.push({ ...returnMoveBase(a, member_id), kind: 'expire', remaining_delta_pt4: -a.points_pt4 });
    return true;
  }
  postings.push({
    account: memberAccount(a.program_id, member_id, 'member_available'),
    amount_pt4: a.points_pt4,
  });
  return false;
}
