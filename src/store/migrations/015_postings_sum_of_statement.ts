import { sql, type Kysely } from 'kysely';

// Postings' balance check (migration 011) summed, for each entry a statement inserted postings
// for, every posting of that entry: one probe of postings_entry per entry. The statement's own
// rows are enough. Postings are append-only (migration 001: no update, no delete), and this check
// leaves every entry balanced in every program after every statement, so an entry's sum over the
// table changes by exactly what the statement adds: the statement's rows summing to zero per entry
// and program is the same test, read from the transition table alone. It stays per statement,
// fires in the same place (after the reference checks, by name) and raises the same error.
// Without index probes it needs no planner settings either (011 turned hash and merge joins and
// sequential scans off for the probes), so the function carries none: a function with SET clauses
// saves and restores them on every call.
//
// Measured (2026-12-02, pg_stat_user_functions over the bench's single-event phase, one run each
// on a VM whose speed moved between them: the reference checks took 1.2–1.4× longer in the
// second): 137 → 74 µs per shared accrual transaction of ~8 events.
// An operator who disables the append-only guard and rewrites postings is not caught here but by
// `verify` (entries_balance re-sums every entry from the raw rows).

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create or replace function pointpool_postings_sum_zero() returns trigger language plpgsql as $$
    declare
      bad record;
    begin
      select n.entry_id, n.program_id, sum(n.amount_pt4) as total into bad
        from pp_new n
        group by n.entry_id, n.program_id
        having sum(n.amount_pt4) <> 0
        limit 1;
      if found then
        raise exception 'pointpool: entry % does not balance in program % (sum %)',
          bad.entry_id, bad.program_id, bad.total using errcode = 'P0002';
      end if;
      return null;
    end $$`.execute(db);
}
