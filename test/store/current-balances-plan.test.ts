// The balance read for many members (migration 016) keeps its plan per connection, made at the
// first read, possibly while the tables are small and freshly analysed: there a sequential scan
// looks cheapest, and kept, it would read every member's lots on every read once the tables have
// grown. The function is planned with sequential scans off, so each member is probed by index.
// Read in one transaction: no sequential scan of the tables it reads, after ANALYZE has made them
// look as small as they are. Both stores.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { serviceWithApi, type Api, type AnyDb } from '../api/lifecycle-helpers.ts';
import type { TestService } from '../helpers/store.ts';

const READ_TABLES = ['members', 'accounts', 'enrollments', 'lots'] as const;

void describe('the balance read for many members', () => {
  let t: TestService;
  let api: Api;
  let db: AnyDb;
  before(async () => {
    ({ t, api, db } = await serviceWithApi('2026-06-01T12:00:00.000Z'));
  });
  after(() => t.close());

  void it('probes each member by index on small, analysed tables', async () => {
    for (const m of ['cbp_1', 'cbp_2', 'cbp_3']) await api.buy(m, 'northwind', 10_000);
    for (const table of READ_TABLES) await sql.raw(`analyze ${table}`).execute(db);
    const windows = JSON.stringify([{ program_id: 'northwind-stars', window_seconds: 400 * 86_400 }]);
    const { scans, rows } = await db.transaction().execute(async (trx) => {
      // The counters of the transaction itself: earlier transactions' scans are not in them.
      const count = async () =>
        (
          await sql<{ n: string }>`
            select sum(pg_stat_get_xact_numscans(c.oid))::text as n
            from pg_class c where c.relname in (${sql.join([...READ_TABLES])})`.execute(trx)
        ).rows[0]!.n;
      const before = Number(await count());
      const { rows } = await sql<{ i: number; accounts: unknown }>`
        select i, accounts from pointpool_current_balances_many(
          '{cbp_3,cbp_unknown,cbp_1}'::text[], '{2026-06-01T12:00:00Z,2026-06-01T12:00:00Z,2026-06-01T12:00:00Z}'::timestamptz[],
          ${windows}::json)
        order by i`.execute(trx);
      return { scans: Number(await count()) - before, rows };
    });
    // One row per member that exists, numbered by its place in the arrays.
    assert.deepEqual(
      rows.map((r) => r.i),
      [1, 3],
    );
    assert.ok(rows.every((r) => Array.isArray(r.accounts) && r.accounts.length > 0));
    assert.equal(scans, 0, `sequential scans of ${READ_TABLES.join(', ')}: ${scans}`);
  });
});
