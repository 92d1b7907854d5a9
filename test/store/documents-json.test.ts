// Migration 012 stores the write-once documents as json: an upgraded store keeps every document
// it holds, whole, and the columns are json afterwards (both stores).

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { migrateTo, migrateToLatest } from '../../src/store/migrate.ts';
import { withBareStore } from '../helpers/store.ts';

const DOCUMENTS = {
  detail: {
    earn: { 'northwind-stars': { lines: [{ sku: 'S-1', points_pt4: '500000' }] }, 'acme-points': {} },
  },
  payload: {
    event_id: 'ev_1',
    line_items: [{ sku: 'é€😀 "q" \\', quantity: 1 }],
    nested: { a: [[], {}, null] },
  },
  outcome: { status: 'accepted', accruals: [{ program_id: 'northwind-stars', points: 50 }], reversed: [] },
  earn: { entry_id: '1' },
  response: { event_id: 'ev_1' },
};

void describe('migration 012: documents as json', () => {
  void it('keeps the documents of a store written before it, and makes their columns json', async () => {
    await withBareStore(async (db) => {
      await migrateTo(db, '011_balance_per_statement');
      const d = (v: unknown) => JSON.stringify(v);
      await sql`insert into entries (kind, at, detail) values ('test', now(), ${d(DOCUMENTS.detail)}::jsonb)`.execute(
        db,
      );
      await sql`
        insert into events (event_id, idempotency_key, event_type, member_id, store_id, brand_id, channel,
                            transaction_ts, received_at, request_hash, payload, outcome, earn)
        values ('ev_1', 'k1', 'purchase_completed', 'm1', 'store_atl_012', 'northwind', 'in_store', now(), now(), 'h',
                ${d(DOCUMENTS.payload)}::jsonb, ${d(DOCUMENTS.outcome)}::jsonb, ${d(DOCUMENTS.earn)}::jsonb)`.execute(
        db,
      );
      await sql`
        insert into idempotency_keys (scope, key, request_hash, status_code, response, created_at)
        values ('event', 'k1', 'h', 0, ${d(DOCUMENTS.response)}::jsonb, now())`.execute(db);

      await migrateToLatest(db);

      const types = await sql<{ table_name: string; column_name: string; data_type: string }>`
        select table_name, column_name, data_type from information_schema.columns
        where (table_name, column_name) in (('entries', 'detail'), ('events', 'payload'), ('events', 'outcome'),
                                            ('events', 'earn'), ('idempotency_keys', 'response'))
        order by 1, 2`.execute(db);
      assert.deepEqual(
        types.rows.map((r) => `${r.table_name}.${r.column_name} ${r.data_type}`),
        [
          'entries.detail json',
          'events.earn json',
          'events.outcome json',
          'events.payload json',
          'idempotency_keys.response json',
        ],
      );
      const stored = await sql<Record<keyof typeof DOCUMENTS, unknown>>`
        select en.detail, e.payload, e.outcome, e.earn, k.response
        from entries en, events e, idempotency_keys k`.execute(db);
      assert.deepEqual(stored.rows, [DOCUMENTS]);
    });
  });
});
