import { sql, type Kysely } from 'kysely';

// The ledger's busiest references are checked once per statement instead of once per row.
//
// A foreign key checks each inserted row with its own query, which also locks the referenced row
// (FOR KEY SHARE, a WAL record) so that nobody deletes it before the commit. A purchase inserts 14
// such rows (4 postings × 2 references, 2 lots, 2 activity rows, 2 enrollments), a redemption ~9;
// those checks were a quarter of PostgreSQL's CPU in batch accrual (docs/performance-history.md,
// 2026-11-30 late evening). Here each of these references is checked by one trigger per statement,
// an anti-join of the statement's new rows (a transition table) against the referenced key, which
// gives the same guarantee because the referenced rows can never go away:
// - referenced rows (members, accounts, entries, lots) cannot be deleted, re-keyed or truncated;
// - the referencing columns cannot be changed once written.
// The anti-join's plan is made once per connection and kept (PL/pgSQL), so the function pins it
// to index probes of the referenced key: a plan made while a table was small would otherwise
// scan the whole table for every statement once it has grown.
// Violations raise 23503 (foreign_key_violation), as the foreign keys did.

/** [table, column, referenced table]: each referenced by its `id` (verify re-checks them all). */
export const CHECKED_REFERENCES = [
  ['postings', 'entry_id', 'entries'],
  ['postings', 'account_id', 'accounts'],
  ['lots', 'source_entry_id', 'entries'],
  ['lot_allocations', 'entry_id', 'entries'],
  ['lot_allocations', 'lot_id', 'lots'],
  ['program_activity', 'entry_id', 'entries'],
  ['enrollments', 'member_id', 'members'],
] as const;

const REFERENCED = ['members', 'accounts', 'entries', 'lots'] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create function pointpool_keep_referenced() returns trigger language plpgsql as $$
    begin
      raise exception 'pointpool: rows of % are referenced by the ledger: % refused', tg_table_name, tg_op
        using errcode = '23503';
    end $$`.execute(db);
  await sql`
    create function pointpool_fixed_reference() returns trigger language plpgsql as $$
    begin
      raise exception 'pointpool: %.% references the ledger and cannot change', tg_table_name, tg_argv[0]
        using errcode = '23503';
    end $$`.execute(db);
  // Only a change of the key itself fires (UPDATE OF id … WHEN): balance updates of accounts and
  // lots never queue these triggers. entries already refuses every update and delete.
  for (const table of REFERENCED) {
    if (table !== 'entries')
      await sql`create trigger ${sql.id(`${table}_keep_referenced`)} before delete on ${sql.id(table)}
        for each row execute function pointpool_keep_referenced()`.execute(db);
    await sql`create trigger ${sql.id(`${table}_keep_key`)} before update of id on ${sql.id(table)}
      for each row when (new.id is distinct from old.id) execute function pointpool_keep_referenced()`.execute(
      db,
    );
    await sql`create trigger ${sql.id(`${table}_keep_referenced_truncate`)} before truncate on ${sql.id(table)}
      for each statement execute function pointpool_keep_referenced()`.execute(db);
  }
  for (const reference of CHECKED_REFERENCES) await checkPerStatement(db, reference);
}

/**
 * Replaces the foreign key `<table>_<column>_fkey` by a check per statement (see above); the
 * referenced table must already refuse deletes, re-keying and truncation.
 */
export async function checkPerStatement(
  db: Kysely<unknown>,
  [table, column, target]: readonly [string, string, string],
): Promise<void> {
  const fn = `pointpool_ref_${table}_${column}`;
  const message = `pointpool: ${table}.${column} references a row of ${target} that does not exist`;
  await sql`alter table ${sql.id(table)} drop constraint ${sql.id(`${table}_${column}_fkey`)}`.execute(db);
  await sql`
    create function ${sql.id(fn)}() returns trigger language plpgsql
      set enable_hashjoin = off set enable_mergejoin = off set enable_seqscan = off as $$
    declare
      missing text;
    begin
      select n.${sql.id(column)}::text into missing from pp_new n
        where n.${sql.id(column)} is not null
          and not exists (select from ${sql.id(target)} r where r.id = n.${sql.id(column)})
        limit 1;
      if found then
        raise exception using errcode = '23503', message = ${sql.lit(message)},
          detail = format('Key (${sql.raw(column)})=(%s) is not present in table "${sql.raw(target)}".', missing);
      end if;
      return null;
    end $$`.execute(db);
  await sql`create trigger ${sql.id(`${table}_${column}_ref`)} after insert on ${sql.id(table)}
    referencing new table as pp_new for each statement execute function ${sql.id(fn)}()`.execute(db);
  await sql`create trigger ${sql.id(`${table}_${column}_fixed`)} before update of ${sql.id(column)} on ${sql.id(table)}
    for each row when (new.${sql.id(column)} is distinct from old.${sql.id(column)})
    execute function pointpool_fixed_reference(${sql.lit(column)})`.execute(db);
}
