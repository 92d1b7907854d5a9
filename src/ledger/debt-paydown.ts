import { memberAccount } from './accounts.ts';
import type { FloorMove, NewLot } from './entry.ts';

// A member whose reversal left a recorded debt in a program (a negative floor on the available
// account) has no spendable lot there: every point that becomes available to them in that
// program pays the debt first, whatever brings it (an accrual, maturing points, an adjustment,
// points returned by a reversed redemption, a transfer received, a referral bonus). Otherwise
// the new lot could be spent while the debt stays recorded and the balance would go back below
// zero through a redemption (verify: no_spendable_lots_under_debt).

/**
 * New available lots of one member in one program, with `debt_pt4` (>= 0) paid out of them in
 * order: each lot's remaining is what is left of it, and the floor moves up by what was paid.
 */
export function payDebtFromNewLots(
  lots: readonly NewLot[],
  member_id: string,
  program_id: string,
  debt_pt4: bigint,
): { lots: NewLot[]; floors: FloorMove[]; paid_pt4: bigint } {
  let owed = debt_pt4 > 0n ? debt_pt4 : 0n;
  const out = lots.map((l) => {
    if (owed === 0n || l.state !== 'available' || l.member_id !== member_id || l.program_id !== program_id)
      return l;
    const pay = l.remaining_pt4 < owed ? l.remaining_pt4 : owed;
    owed -= pay;
    return { ...l, remaining_pt4: l.remaining_pt4 - pay };
  });
  const paid_pt4 = (debt_pt4 > 0n ? debt_pt4 : 0n) - owed;
  const floors: FloorMove[] =
    paid_pt4 > 0n
      ? [{ account: memberAccount(program_id, member_id, 'member_available'), delta_pt4: paid_pt4 }]
      : [];
  return { lots: out, floors, paid_pt4 };
}
