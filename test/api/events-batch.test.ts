import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.ts';
import { auditUntil } from '../helpers/audit.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

// The batch endpoint takes a bulk path for plain purchases and the single-event path for the
// rest. Its contract is that a batch has exactly the effect of its events sent one by one:
// same outcome per event, same balances, and a ledger that verifies.

const NOW = '2026-11-20T12:00:00.000Z';
const STORES = [
  { id: 'store_atl_012', currency: 'USD' },
  { id: 'web_northwind', currency: 'USD' },
  { id: 'web_harbor', currency: 'EUR' },
  { id: 'store_lon_001', currency: 'GBP' },
] as const;

interface Spec {
  kind: 'buy' | 'dup' | 'bopis' | 'twin' | 'refund' | 'bad';
  member: number;
  store: number;
  cents: number;
  ref: number;
}

const spec = fc.record({
  kind: fc.constantFrom('buy', 'buy', 'buy', 'dup', 'bopis', 'twin', 'refund', 'bad'),
  member: fc.integer({ min: 0, max: 6 }),
  store: fc.integer({ min: 0, max: STORES.length - 1 }),
  cents: fc.integer({ min: 0, max: 50_000 }),
  ref: fc.nat(),
}) as fc.Arbitrary<Spec>;

/** A $10 online purchase by a member of its own: the bulk path's plain case. */
const webPurchase = (tag: string, i: number) => ({
  event_id: `${tag}_e${i}`,
  event_type: 'purchase_completed',
  member_id: `${tag}_m${i}`,
  channel: 'online',
  store_id: 'web_northwind',
  transaction_id: `${tag}_t${i}`,
  transaction_ts: new Date(Date.parse(NOW) - 60_000).toISOString(),
  order_id: `${tag}_o${i}`,
  currency: 'USD',
  line_items: [{ sku: 'A', unit_price_cents: 1000, quantity: 1, eligible_for_points: true }],
  subtotal_cents: 1000,
  eligible_subtotal_cents: 1000,
  idempotency_key: `${tag}_k${i}`,
});

/** Turns specs into canonical events; duplicates and refunds point at earlier purchases. */
function toEvents(specs: readonly Spec[], tag: string): unknown[] {
  const purchases: Record<string, unknown>[] = [];
  return specs.map((s, i) => {
    const store = STORES[s.store]!;
    const base = {
      event_id: `${tag}_e${i}`,
      event_type: 'purchase_completed',
      member_id: `${tag}_m${s.member}`,
      channel: 'in_store',
      store_id: store.id,
      transaction_id: `t${i}`,
      transaction_ts: new Date(Date.parse(NOW) - 3_600_000 + i * 1000).toISOString(),
      order_id: `${tag}_o${i}`,
      currency: store.currency,
      line_items: [
        {
          sku: 'SKU-1',
          category: 'outerwear',
          unit_price_cents: s.cents,
          quantity: 1,
          eligible_for_points: true,
        },
      ],
      subtotal_cents: s.cents,
      eligible_subtotal_cents: s.cents,
      idempotency_key: `${tag}_k${i}`,
    };
    const prior = purchases.length > 0 ? purchases[s.ref % purchases.length]! : null;
    if (s.kind === 'dup' && prior) return prior;
    if (s.kind === 'bopis' && prior)
      return { ...prior, event_id: `${tag}_e${i}`, idempotency_key: `${tag}_k${i}`, channel: 'bopis' };
    // Another member's purchase under an earlier order id: the first of the order wins.
    if (s.kind === 'twin' && prior) return { ...base, order_id: prior.order_id };
    if (s.kind === 'refund' && prior) {
      return {
        ...prior,
        event_id: `${tag}_e${i}`,
        idempotency_key: `${tag}_k${i}`,
        event_type: 'purchase_refunded',
        reversal_of: prior.event_id,
        order_id: undefined,
      };
    }
    if (s.kind === 'bad') return { ...base, subtotal_cents: -1 };
    purchases.push(base);
    return base;
  });
}

/** An outcome without what legitimately differs between two stores (rejection ids). */
function comparable(o: Record<string, unknown>): unknown {
  const text = JSON.stringify(o, (k, v: unknown) => (k === 'rejection_id' ? undefined : v));
  return JSON.parse(text);
}

void describe('POST /v1/events/batch equals the same events one by one', () => {
  let bulk: TestService;
  let single: TestService;
  before(async () => {
    bulk = await createTestService({ clock: new ManualClock(NOW) });
    single = await createTestService({ clock: new ManualClock(NOW) });
    await applyDemoConfig(bulk.app);
    await applyDemoConfig(single.app);
  });
  after(async () => {
    await bulk?.close();
    await single?.close();
  });

  void it('gives the same outcome per event, the same balances, and verifies', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(spec, { minLength: 2, maxLength: 40 }), async (specs) => {
        const tag = `r${run++}`;
        const events = toEvents(specs, tag);
        const res = await bulk.app.inject({
          method: 'POST',
          url: '/v1/events/batch',
          headers: bulk.adminHeaders,
          payload: { events },
        });
        assert.equal(res.statusCode, 200);
        const batchResults = res.json<{ results: Record<string, unknown>[] }>().results;
        assert.equal(batchResults.length, events.length);
        for (const [i, ev] of events.entries()) {
          const one = await single.app.inject({
            method: 'POST',
            url: '/v1/events',
            headers: single.adminHeaders,
            payload: ev as object,
          });
          const fromBatch = batchResults[i]!;
          assert.equal(fromBatch.http_status, one.statusCode, `event ${i} status`);
          const body = Object.fromEntries(Object.entries(fromBatch).filter(([k]) => k !== 'http_status'));
          assert.deepEqual(
            comparable(body),
            comparable(one.json<Record<string, unknown>>()),
            `event ${i} body`,
          );
        }
        for (let m = 0; m <= 6; m++) {
          // Balances and expiring lots; the profile with each enrollment's tier and last activity;
          // tiers with their history and progress.
          for (const view of ['/balances', '', '/tiers']) {
            const url = `/v1/members/${tag}_m${m}${view}`;
            const a = await bulk.app.inject({ method: 'GET', url, headers: bulk.adminHeaders });
            const b = await single.app.inject({ method: 'GET', url, headers: single.adminHeaders });
            assert.equal(a.statusCode, b.statusCode, url);
            assert.deepEqual(a.json(), b.json(), url);
          }
        }
      }),
      {
        numRuns: 8,
        examples: [
          // Member 0's second purchase owns order o1; member 1's twin of it comes after, yet was
          // in bulk round 0 (member 1's first purchase) and took the order first.
          [
            [
              { kind: 'buy', member: 0, store: 0, cents: 1000, ref: 0 },
              { kind: 'buy', member: 0, store: 0, cents: 1000, ref: 0 },
              { kind: 'twin', member: 1, store: 0, cents: 1000, ref: 1 },
              { kind: 'buy', member: 0, store: 0, cents: 1000, ref: 0 },
              { kind: 'buy', member: 2, store: 1, cents: 1000, ref: 0 },
            ],
          ],
        ],
      },
    );
    for (const t of [bulk, single]) {
      const v = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
      assert.equal(v.json<{ ok: boolean }>().ok, true, v.body);
    }
  });

  void it('takes the bulk path for plain purchases (one entry per event, all accepted)', async () => {
    const events = Array.from({ length: 50 }, (_, i) => webPurchase('bulk', i));
    const res = await bulk.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: bulk.adminHeaders,
      payload: { events },
    });
    const results = res.json<{
      results: { status: string; accruals: { program_id: string; points: number }[] }[];
    }>().results;
    assert.equal(results.filter((r) => r.status === 'accepted').length, 50);
    // northwind-stars: 5 points per $10 plus the 50-point web bonus; acme-points: 1 per $10.
    assert.deepEqual(results[0]!.accruals.map((a) => [a.program_id, a.points]).sort(), [
      ['acme-points', 1],
      ['northwind-stars', 55],
    ]);
    const again = await bulk.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: bulk.adminHeaders,
      payload: { events },
    });
    const replays = again.json<{ results: { status: string }[] }>().results;
    assert.ok(replays.every((r) => r.status === 'duplicate'));
  });

  void it("earns in bulk with the tier the member held at the purchase's time (gold-bonus)", async () => {
    // $600 at 11:00 makes the member gold in northwind-stars (spend 50,000 within 365 days);
    // the batch's purchase at 11:59 is then judged with gold (×1.2), one at 10:00 (late, before
    // the upgrade) with silver.
    const at = (hhmm: string) => `2026-11-20T${hhmm}:00.000Z`;
    const buy = (i: number, cents: number, ts: string) => ({
      ...webPurchase('tier', i),
      member_id: 'tier_gold',
      channel: 'in_store',
      store_id: 'store_atl_012',
      transaction_ts: ts,
      line_items: [{ sku: 'A', unit_price_cents: cents, quantity: 1, eligible_for_points: true }],
      subtotal_cents: cents,
      eligible_subtotal_cents: cents,
    });
    const first = await bulk.app.inject({
      method: 'POST',
      url: '/v1/events',
      headers: bulk.adminHeaders,
      payload: buy(0, 60_000, at('11:00')),
    });
    assert.equal(first.statusCode, 201, first.body);
    // The first event of a batch, sent with another member's purchase so that both go in bulk.
    const starsOfFirst = async (events: unknown[]) => {
      const res = await bulk.app.inject({
        method: 'POST',
        url: '/v1/events/batch',
        headers: bulk.adminHeaders,
        payload: { events },
      });
      const [result] = res.json<{
        results: { accruals: { program_id: string; points: number; rules_applied: string[] }[] }[];
      }>().results;
      const stars = result!.accruals.find((a) => a.program_id === 'northwind-stars')!;
      return [stars.points, stars.rules_applied];
    };
    // 10,000 cents: 50 base points × 1.2.
    assert.deepEqual(await starsOfFirst([buy(1, 10_000, at('11:59')), webPurchase('tier', 2)]), [
      60,
      ['gold-bonus'],
    ]);
    assert.deepEqual(await starsOfFirst([buy(3, 10_000, at('10:00')), webPurchase('tier', 4)]), [50, []]);
  });

  void it('audits each call once, with the 200 it answered, whether its events went in bulk or one by one', async () => {
    // Two purchases take the bulk path; one alone takes the single-event path, whose own answer
    // (201 accepted) is not the batch's.
    const calls = {
      'req-batch-bulk': [webPurchase('audit', 0), webPurchase('audit', 1)],
      'req-batch-one': [webPurchase('audit', 2)],
    };
    for (const [request_id, events] of Object.entries(calls)) {
      const res = await bulk.app.inject({
        method: 'POST',
        url: '/v1/events/batch',
        headers: { ...bulk.adminHeaders, 'x-request-id': request_id },
        payload: { events },
      });
      assert.equal(res.statusCode, 200, res.body);
    }
    // The status of a row written before the reply was known is filled in after it.
    const mine = (data: Record<string, unknown>[]) => data.filter((r) => String(r.request_id) in calls);
    const page = await auditUntil(bulk.app, bulk.adminHeaders, '/v1/audit?limit=50', (data) =>
      mine(data).every((r) => r.status_code === 200),
    );
    const rows = mine(page.data);
    assert.deepEqual(rows.map((r) => [r.request_id, r.action, r.status_code]).sort(), [
      ['req-batch-bulk', 'event.batch', 200],
      ['req-batch-one', 'event.batch', 200],
    ]);
  });
});
