// The hot transactions run their statements as prepared ones, whose generic plan each connection
// makes once, possibly while the store is empty, and keeps (store/write-behind.ts). Such a plan
// must probe indexes whatever the tables come to hold: a sequential scan planned on an empty
// `events` would read the whole table on every later event. Each prepared statement's plan, read
// back with EXPLAIN on the connection that made it, after accruals, redemptions, holds, transfers
// and a void on an empty store. Both stores. EXPLAIN runs under the settings the statements run
// under: PostgreSQL plans a statement again after an invalidation (a reset of its caches when the
// backend falls behind on shared invalidations, as under a loaded test run), and then under the
// settings of the transaction that executes it.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import { PREPARED_SETTINGS } from '../../src/store/write-behind.ts';
import { Api, type AnyDb } from '../api/lifecycle-helpers.ts';

// One connection: the plans read back are those the requests made.
const api = Api.forTests(new ManualClock('2026-06-01T12:00:00.000Z'), { poolSize: 1 });

/** Tables that grow with the members and their events. */
const GROWING = [
  'members',
  'enrollments',
  'events',
  'idempotency_keys',
  'entries',
  'postings',
  'accounts',
  'lots',
  'lot_allocations',
  'redemptions',
  'program_activity',
  'tier_history',
  'referrals',
  'settlement_flows',
  'audit_log',
];

void describe('prepared statements made on an empty store', () => {
  void it('plan no sequential scan of a table that grows', async () => {
    const members = ['pp_m1', 'pp_m2', 'pp_m3', 'pp_m4'];
    // Alone, then together (shared transactions on PostgreSQL), then as a batch.
    await api.buy('pp_m0', 'northwind', 10_000);
    await Promise.all(members.map((m) => api.buy(m, 'northwind', 10_000)));
    const redeem = (m: string, i: number) =>
      api.post('/v1/redemptions', {
        member_id: m,
        brand_id: 'northwind',
        points: 10,
        idempotency_key: `pp_r${i}_${m}`,
      });
    await redeem('pp_m0', 0);
    await Promise.all(members.map((m) => redeem(m, 1)));
    await Promise.all(members.map((m) => redeem(m, 2)));
    // Holds captured, released and a capture reversed; a transfer; a purchase voided.
    const hold = (i: number) =>
      api.post('/v1/redemptions', {
        member_id: 'pp_m1',
        brand_id: 'northwind',
        points: 5,
        capture: false,
        idempotency_key: `pp_h${i}`,
      });
    const [a, b] = [await hold(1), await hold(2)];
    const captured = await api.post(`/v1/redemptions/${a.redemption_id}/capture`, {}, 200);
    await api.post(`/v1/redemptions/${b.redemption_id}/release`, {}, 200);
    await api.post(`/v1/redemptions/${String(captured.redemption_id)}/reverse`, {}, 200);
    await api.post('/v1/transfers', {
      from_member_id: 'pp_m2',
      to_member_id: 'pp_m3',
      points: 5,
      program_id: 'northwind-stars',
      idempotency_key: 'pp_t1',
    });
    await api.reverse(await api.buy('pp_m4', 'northwind', 2_000), 'purchase_voided');

    const db = api.t.ctx.db as AnyDb;
    const statements = (
      await sql<{ name: string; statement: string; params: number }>`
        select name, statement, cardinality(parameter_types) as params
        from pg_prepared_statements where name like 'pp\\_%'`.execute(db)
    ).rows;
    assert.ok(statements.length >= 25, `prepared statements: ${statements.length}`);
    const scans: string[] = [];
    await db.transaction().execute(async (trx) => {
      // EXPLAIN EXECUTE shows the generic plan the statement holds.
      for (const setting of PREPARED_SETTINGS) await sql.raw(setting).execute(trx);
      for (const s of statements) {
        const args = Array.from({ length: Number(s.params) }, () => 'null').join(', ');
        const { rows } = await sql
          .raw<Record<string, string>>(`explain execute ${s.name}${args ? `(${args})` : ''}`)
          .execute(trx);
        const plan = rows.map((r) => Object.values(r)[0]).join('\n');
        for (const table of GROWING)
          if (new RegExp(`Seq Scan on ${table}\\b`).test(plan)) scans.push(`${table} (${s.name}): ${plan}`);
      }
    });
    assert.deepEqual(scans, []);
  });
});
