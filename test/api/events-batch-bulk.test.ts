import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import { intArray, textArray, timestampArray } from '../../src/store/pg-arrays.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

// The batch path's bulk transaction (src/services/events/batch.ts): that plain purchases really
// take it (the one-by-one equivalence in events-batch.test.ts holds either way, since anything
// the bulk transaction cannot do falls back to the single-event path), and that the array
// literals its statements send (pg-arrays.ts) reach the database unchanged.

const NOW = '2026-11-20T12:00:00.000Z';

void describe('batch bulk path', () => {
  let t: TestService;
  before(async () => {
    t = await createTestService({ clock: new ManualClock(NOW) });
    await applyDemoConfig(t.app);
  });
  after(async () => {
    await t?.close();
  });

  void it('accrues plain purchases of distinct members in one transaction', async () => {
    const events = Array.from({ length: 30 }, (_, i) => ({
      event_id: `xb_e${i}`,
      event_type: 'purchase_completed',
      member_id: `xb_m${i}`,
      channel: 'in_store',
      store_id: i % 2 ? 'store_atl_012' : 'store_lon_001',
      transaction_id: `xb_t${i}`,
      transaction_ts: new Date(Date.parse(NOW) - 60_000 - i * 1000).toISOString(),
      order_id: `xb_o${i}`,
      currency: i % 2 ? 'USD' : 'GBP',
      line_items: [{ sku: 'A', unit_price_cents: 1000 + i, quantity: 1, eligible_for_points: true }],
      subtotal_cents: 1000 + i,
      eligible_subtotal_cents: 1000 + i,
      idempotency_key: `xb_k${i}`,
    }));
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: t.adminHeaders,
      payload: { events },
    });
    assert.equal(res.statusCode, 200);
    const results = res.json<{ results: { http_status: number }[] }>().results;
    assert.deepEqual(
      results.map((r) => r.http_status),
      events.map(() => 201),
    );
    // One transaction wrote every events row (the single-event path would take one each).
    const { rows } = await sql<{ n: number }>`
      select count(distinct xmin::text)::int4 as n from events where event_id like 'xb\\_%'`.execute(
      t.ctx.db,
    );
    assert.equal(rows[0]!.n, 1);
  });

  void it('sends text, integers and instants through array literals unchanged', async () => {
    const text = fc.oneof(
      fc.string(),
      fc.constantFrom('', 'NULL', 'null', '"', '\\', '\\"', '{}', '{a,b}', ' a ', 'a,b', "it's", 'é€😀'),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.option(text.filter((s) => !s.includes('\0'))), { maxLength: 20 }),
        fc.array(fc.option(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n })), { maxLength: 20 }),
        fc.array(fc.option(fc.integer({ min: 0, max: 4_102_444_800_000 })), { maxLength: 20 }),
        async (texts, ints, instants) => {
          const { rows } = await sql<{ texts: (string | null)[]; ints: string[]; instants: string[] }>`
            select ${textArray(texts)}::text[] as texts,
                   array(select coalesce(v::text, 'null') from unnest(${intArray(ints)}::int8[]) as u(v)) as ints,
                   array(select coalesce(to_char(v at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'null')
                         from unnest(${timestampArray(instants)}::timestamptz[]) as u(v)) as instants`.execute(
            t.ctx.db,
          );
          assert.deepEqual(rows[0]!.texts, texts);
          assert.deepEqual(
            rows[0]!.ints,
            ints.map((v) => (v === null ? 'null' : String(v))),
          );
          assert.deepEqual(
            rows[0]!.instants,
            instants.map((v) => (v === null ? 'null' : new Date(v).toISOString())),
          );
        },
      ),
      { numRuns: 60 },
    );
  });
});
