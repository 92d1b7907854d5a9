import type { PostingInput } from '../../ledger/entry.ts';
import type { Trx } from '../../ledger/post.ts';
import { pt4ToJson } from '../../domain/points.ts';

// A member's spendable accounts (available and held, per program) as the write answers report
// them, read or moved in memory by the postings of a spend.

export interface BalanceRow {
  readonly program_id: string;
  readonly kind: string;
  readonly balance_pt4: bigint;
}

/** The members' available and held accounts, as remainingBalances reports them. */
export const spendableBalancesQuery = (trx: Trx, member_ids: string | readonly string[]) =>
  trx
    .selectFrom('accounts')
    .select(['owner_id', 'program_id', 'kind', 'balance_pt4'])
    .where('owner_id', 'in', typeof member_ids === 'string' ? [member_ids] : member_ids)
    .where('kind', 'in', ['member_available', 'member_held'])
    .orderBy('owner_id')
    .orderBy('program_id');

export async function remainingBalances(
  trx: Trx,
  member_id: string,
): Promise<{ program_id: string; available: number; held: number }[]> {
  return balancesView(await spendableBalancesQuery(trx, member_id).execute());
}

/**
 * remainingBalances without reading them again: the accounts as read under the member's lock,
 * moved by the entry's postings (the lock is held until commit, so nothing else moves them).
 */
export const balancesAfter = (
  member_id: string,
  before: readonly BalanceRow[],
  postings: readonly PostingInput[],
) => balancesView(accountsAfter(member_id, before, postings));

/** The member's spendable account rows moved by postings, by program. */
export function accountsAfter(
  member_id: string,
  before: readonly BalanceRow[],
  postings: readonly PostingInput[],
): BalanceRow[] {
  const rows = new Map(before.map((r) => [`${r.program_id}|${r.kind}`, { ...r }]));
  for (const { account, amount_pt4 } of postings) {
    if (account.owner_id !== member_id) continue;
    if (account.kind !== 'member_available' && account.kind !== 'member_held') continue;
    const key = `${account.program_id}|${account.kind}`;
    const row = rows.get(key) ?? { program_id: account.program_id, kind: account.kind, balance_pt4: 0n };
    rows.set(key, { ...row, balance_pt4: row.balance_pt4 + amount_pt4 });
  }
  return [...rows.values()].sort((a, b) =>
    a.program_id < b.program_id ? -1 : a.program_id > b.program_id ? 1 : 0,
  );
}

function balancesView(
  rows: readonly BalanceRow[],
): { program_id: string; available: number; held: number }[] {
  const out = new Map<string, { program_id: string; available: number; held: number }>();
  for (const r of rows) {
    const b = out.get(r.program_id) ?? { program_id: r.program_id, available: 0, held: 0 };
    if (r.kind === 'member_available') b.available = pt4ToJson(r.balance_pt4);
    else b.held = pt4ToJson(r.balance_pt4);
    out.set(r.program_id, b);
  }
  return [...out.values()];
}
