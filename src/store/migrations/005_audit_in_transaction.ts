import { sql, type Kysely } from 'kysely';

// A write's audit row now commits inside the write's own transaction, before the HTTP status is
// known: such rows carry no status (detail.outcome = 'committed').

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table audit_log alter column status_code drop not null`.execute(db);
}
