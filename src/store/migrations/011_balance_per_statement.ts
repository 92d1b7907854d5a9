import { sql, type Kysely } from 'kysely';

// Every entry's postings sum to zero per program, checked once per statement that inserts
// postings instead of once per entry at commit.
//
// Migration 001 checked it with a deferred constraint trigger on entries, FOR EACH ROW: at commit,
// one PL/pgSQL call and one query per entry. A batch of 1,000 purchases paid 1,000 of them
// (pgbench, alternating, 1,000 entries of 2 postings per transaction: 52.6–60.2 ms with it,
// 44.2–45.3 ms with this check; 8 entries: 1.30–1.37 and 1.16–1.29 ms). Here one query per statement
// sums the postings of every entry the statement touched: a lateral subquery per entry, so the
// only plan is a probe of postings_entry per new entry (a plain join let the cached plan walk
// the whole postings index instead: redemption p99 47–52 → 110–115 ms in the bench until it was
// written this way), with join methods and sequential scans off like the reference checks
// (migration 008).
//
// The check is now at the end of the statement, not at commit: an entry's postings must be
// inserted by one statement, which is what postEntries does (its chunks never split an entry).
// That is stricter, not weaker: no statement can leave an entry unbalanced even for a moment.
// An entry without postings passes, as it did. Postings are append-only (migration 001), so an
// insert is the only way a sum can change. The trigger's name sorts after the reference checks'
// (postings_account_id_ref, postings_entry_id_ref): triggers fire in name order, so a posting of
// a missing entry is reported as that, not as an unbalanced entry.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`drop trigger entries_balance on entries`.execute(db);
  await sql`drop function pointpool_entry_balances()`.execute(db);
  await sql`
    create function pointpool_postings_sum_zero() returns trigger language plpgsql
      set enable_hashjoin = off set enable_mergejoin = off set enable_seqscan = off as $$
    declare
      bad record;
    begin
      select n.entry_id, s.program_id, s.total into bad
        from (select distinct entry_id from pp_new) n
        cross join lateral (
          select p.program_id, sum(p.amount_pt4) as total from postings p
          where p.entry_id = n.entry_id
          group by p.program_id
          having sum(p.amount_pt4) <> 0
          limit 1) s
        limit 1;
      if found then
        raise exception 'pointpool: entry % does not balance in program % (sum %)',
          bad.entry_id, bad.program_id, bad.total using errcode = 'P0002';
      end if;
      return null;
    end $$`.execute(db);
  await sql`create trigger postings_sum_zero after insert on postings
    referencing new table as pp_new for each statement execute function pointpool_postings_sum_zero()`.execute(
    db,
  );
}
