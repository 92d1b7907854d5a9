import { sql, type CompiledQuery } from 'kysely';
import { intArray, textArray } from '../store/pg-arrays.ts';
import { accountKey, type AccountRef } from './accounts.ts';
import type { EntryInput } from './entry.ts';
import type { Trx } from './post.ts';

// The member-account half of posting: every member account the entries touch moves by one
// conditional statement per run, which asserts in SQL that every account it names moved
// (pp_expect, PP001: not enough points). Built here, sent by postEntries as a deferred write.

export interface MergedPosting {
  readonly account: AccountRef;
  readonly amount_pt4: bigint;
}

interface Move {
  readonly account: AccountRef;
  amount: bigint;
  floor: bigint;
}

/**
 * Moves every member account the entries touch by a conditional upsert. Rows go in key order,
 * so concurrent writers take row locks in the same order. A debit that would pass the account's
 * floor, or of an account that does not exist yet, matches no row (the WHERE): both mean "not
 * enough points", the statement's own count check fails, and the whole transaction rolls back.
 */
export function memberBalanceMoves(
  trx: Trx,
  inputs: readonly EntryInput[],
  perEntry: readonly { member: readonly MergedPosting[] }[],
): CompiledQuery[] {
  const rows = new Map<string, Move>();
  const at = (account: AccountRef) => {
    const key = accountKey(account);
    let r = rows.get(key);
    if (!r) rows.set(key, (r = { account, amount: 0n, floor: 0n }));
    return r;
  };
  for (const m of perEntry) for (const p of m.member) at(p.account).amount += p.amount_pt4;
  for (const input of inputs) for (const f of input.floor_moves ?? []) at(f.account).floor += f.delta_pt4;
  const sorted = [...rows.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, r]) => r);
  return runsOf(sorted).map((part) => moveStatement(trx, part));
}

// PostgreSQL checks CHECK constraints on the proposed INSERT row before it looks for a conflict,
// so a debit (or a floor paydown) must not go through the upsert: the row it proposes (balance <
// floor, or floor > 0) fails the CHECK even when the account exists and has enough. Such rows
// only ever update an existing account (a missing one has nothing to debit). Runs of consecutive
// rows of one kind keep the statements, and so the row locks, in key order.
const insertable = (r: Move) => r.amount >= r.floor && r.floor <= 0n;

function runsOf(sorted: readonly Move[]): Move[][] {
  const runs: Move[][] = [];
  for (const r of sorted) {
    const last = runs[runs.length - 1];
    if (last && last.length < 2_000 && insertable(last[0]!) === insertable(r)) last.push(r);
    else runs.push([r]);
  }
  return runs;
}

function moveStatement(trx: Trx, part: readonly Move[]): CompiledQuery {
  const text = (f: (a: AccountRef) => string) => textArray(part.map((r) => f(r.account)));
  const rows = sql`unnest(${text((a) => a.program_id)}::text[], ${text((a) => a.kind)}::text[], ${text((a) => a.owner_id)}::text[],
                          ${intArray(part.map((r) => r.amount))}::int8[], ${intArray(part.map((r) => r.floor))}::int8[])`;
  const move = !insertable(part[0]!)
    ? sql`
        update accounts a set balance_pt4 = a.balance_pt4 + v.amount, floor_pt4 = a.floor_pt4 + v.floor
        from ${rows} as v(program_id, kind, owner_id, amount, floor)
        where a.program_id = v.program_id and a.kind = v.kind and a.owner_id = v.owner_id
          and a.balance_pt4 + v.amount >= a.floor_pt4 + v.floor and a.floor_pt4 + v.floor <= 0
        returning a.id`
    : sql`
        insert into accounts (program_id, kind, owner_id, balance_pt4, floor_pt4)
        select * from ${rows}
        on conflict (program_id, kind, owner_id) do update
          set balance_pt4 = accounts.balance_pt4 + excluded.balance_pt4,
              floor_pt4 = accounts.floor_pt4 + excluded.floor_pt4
          where accounts.balance_pt4 + excluded.balance_pt4 >= accounts.floor_pt4 + excluded.floor_pt4
            and accounts.floor_pt4 + excluded.floor_pt4 <= 0
        returning id`;
  const debit = part.find((r) => r.amount < 0n) ?? part[0]!;
  return sql`
    with moved as (${move})
    select pp_expect((select count(*) from moved) = ${part.length}::int8, 'PP001', ${JSON.stringify(insufficientDetail(debit))})`.compile(
    trx,
  );
}

/** What PP001 reports: the first debit of the statement (services/transaction.ts reads it). */
function insufficientDetail(r: Move) {
  return {
    message: `Not enough points in ${r.account.program_id} (${r.account.kind})`,
    details: {
      program_id: r.account.program_id,
      account_kind: r.account.kind,
      requested_pt4: String(-r.amount),
    },
  };
}
