import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.ts';
import { sharedReadStats } from '../../src/services/balances-current.ts';
import { applyDemoConfig, createTestService, isPostgres, type TestService } from '../helpers/store.ts';

// GET /v1/members/{id}/balances sent concurrently: reads that arrive while another is in flight
// are answered together by one statement (src/services/balances-current.ts). Each must get,
// byte for byte, the answer it gets alone: the right member's balances (never another's), 404
// for an unknown member, and pending and expiring lots in their order.

const NOW = '2026-11-20T12:00:00.000Z';
const STORES = [
  { id: 'store_atl_012', currency: 'USD' },
  { id: 'web_harbor', currency: 'EUR' },
  { id: 'store_lon_001', currency: 'GBP' },
] as const;

void describe('balance reads under concurrency equal the same reads one by one', () => {
  let t: TestService;
  before(async () => {
    t = await createTestService({ clock: new ManualClock(NOW) });
    await applyDemoConfig(t.app);
  });
  after(async () => {
    await t?.close();
  });

  const get = (member: string) =>
    t.app.inject({ method: 'GET', url: `/v1/members/${member}/balances`, headers: t.adminHeaders });

  void it('answers each read as alone, unknown members included', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            member: fc.integer({ min: 0, max: 7 }),
            store: fc.integer({ min: 0, max: STORES.length - 1 }),
            cents: fc.integer({ min: 0, max: 40_000 }),
            days_ago: fc.integer({ min: 0, max: 2 }),
          }),
          { maxLength: 20 },
        ),
        fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 2, maxLength: 60 }),
        async (purchases, reads) => {
          const tag = `sr${run++}`;
          for (const [i, p] of purchases.entries()) {
            const store = STORES[p.store]!;
            const res = await t.app.inject({
              method: 'POST',
              url: '/v1/events',
              headers: t.adminHeaders,
              payload: {
                event_id: `${tag}_e${i}`,
                event_type: 'purchase_completed',
                member_id: `${tag}_m${p.member}`,
                channel: 'in_store',
                store_id: store.id,
                transaction_id: `${tag}_t${i}`,
                transaction_ts: new Date(Date.parse(NOW) - p.days_ago * 86_400_000 - i * 1000).toISOString(),
                currency: store.currency,
                line_items: [{ sku: 'A', unit_price_cents: p.cents, quantity: 1, eligible_for_points: true }],
                subtotal_cents: p.cents,
                eligible_subtotal_cents: p.cents,
                idempotency_key: `${tag}_k${i}`,
              },
            });
            assert.equal(res.statusCode, 201, res.body);
          }
          // Members 8 and 9 never bought: 404 alone, 404 together.
          const members = reads.map((m) => `${tag}_m${m}`);
          const together = await Promise.all(members.map(get));
          for (const [i, m] of members.entries()) {
            const alone = await get(m);
            assert.equal(together[i]!.statusCode, alone.statusCode, m);
            assert.equal(together[i]!.body, alone.body, m);
          }
        },
      ),
      { numRuns: 10 },
    );
    // PGlite answers a read without yielding to the next request, so reads never wait there.
    if (isPostgres())
      assert.ok(sharedReadStats(t.ctx).statements > 0, JSON.stringify(sharedReadStats(t.ctx)));
  });
});
