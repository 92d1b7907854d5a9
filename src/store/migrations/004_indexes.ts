import { sql, type Kysely } from 'kysely';

// Indexes for reads measured slow by `npm run bench` (docs/performance.md): a member's lots as
// of a past instant (balances?as_of, statements) scanned the whole lots table.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index lots_member_expiry on lots (member_id, expires_at)`.execute(db);
}
