import { sql, type Kysely } from 'kysely';

// The ledger's documents are stored as `json`, not `jsonb`: an entry's earn explanation, an
// event's request, outcome and earn reference (with a reversal's progress), an idempotency key's
// answer. Each is written whole and read back whole; the database never searches inside them but
// for two `->>` reads, which `json` has too. `jsonb` parses each into a tree on the way in and
// prints it again on the way out; `json` checks its syntax and keeps the text. Measured in
// docs/performance.md (the 2026-12-01 early morning session). A store that already holds a
// ledger has these tables rewritten once here, under their locks.

const COLUMNS = [
  ['entries', 'detail'],
  ['events', 'payload'],
  ['events', 'outcome'],
  ['events', 'earn'],
  ['idempotency_keys', 'response'],
] as const;

export async function up(db: Kysely<unknown>): Promise<void> {
  for (const [table, column] of COLUMNS)
    await sql`alter table ${sql.id(table)} alter column ${sql.id(column)} type json using ${sql.id(column)}::json`.execute(
      db,
    );
}
