import { sql, type Kysely } from 'kysely';

// pp_expect(ok, sqlstate, detail) raises `sqlstate` with `detail` (JSON) as its message unless ok.
// The ledger's balance and lot moves travel with the commit (store/write-behind.ts), so nothing
// in TypeScript sees their row counts in time: each such statement asserts its own count in SQL,
// and services/transaction.ts turns these states back into the catalogue's errors.
//   PP001  a member account did not move: not enough points
//   PP002  a lot did not move: it changed under the entry, or would be overdrawn
//   PP003  a posting found no account (a bug: the entry would not balance)

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function pp_expect(ok boolean, state text, detail text) returns void
    language plpgsql as $body$
    begin
      if ok is not true then
        raise exception using errcode = state, message = detail;
      end if;
    end
    $body$`.execute(db);
}
