// Ledger fixtures for tests that need real rows to point at: a member credited with one lot.

import { memberAccount, systemAccount } from '../../src/ledger/accounts.ts';
import { postEntry, type PostedEntry, type Trx } from '../../src/ledger/post.ts';

/** Credits `points` to the member in the program, from the brand, as one available lot. */
export function creditOneLot(
  trx: Trx,
  c: { member: string; program: string; brand: string; points: bigint; at: Date; expires_at: Date | null },
): Promise<PostedEntry> {
  return postEntry(trx, {
    kind: 'test',
    member_id: c.member,
    at: c.at,
    postings: [
      { account: memberAccount(c.program, c.member, 'member_available'), amount_pt4: c.points },
      { account: systemAccount(c.program, 'issuance', c.brand), amount_pt4: -c.points },
    ],
    new_lots: [
      {
        program_id: c.program,
        member_id: c.member,
        issuing_brand_id: c.brand,
        points_pt4: c.points,
        remaining_pt4: c.points,
        state: 'available',
        awarded_at: c.at,
        available_at: c.at,
        expires_at: c.expires_at,
        source_event_id: null,
      },
    ],
  });
}
