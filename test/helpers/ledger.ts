// Ledger fixtures for tests that need real rows to point at: a member credited with one lot.

import { memberAccount, systemAccount } from '../../src/ledger/accounts.ts';
import type { EntryInput } from '../../src/ledger/entry.ts';
import { postEntry, type PostedEntry, type Trx } from '../../src/ledger/post.ts';

export interface OneLotCredit {
  readonly member: string;
  readonly program: string;
  readonly brand: string;
  readonly points: bigint;
  readonly at: Date;
  readonly expires_at: Date | null;
}

/** The entry that credits `points` to the member in the program, from the brand, as one available lot. */
export function oneLotCredit(c: OneLotCredit): EntryInput {
  return {
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
  };
}

/** Posts oneLotCredit's entry. */
export function creditOneLot(trx: Trx, c: OneLotCredit): Promise<PostedEntry> {
  return postEntry(trx, oneLotCredit(c));
}
