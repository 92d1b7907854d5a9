// Intercompany settlement through the HTTP API (issue 6, "Must show"): three brands with
// different point values and currencies, group redemptions mixing issuers, a reversal after a
// period closed (it lands in the next period), a late flow dated inside a closed period (also the
// next period), payments with a variance, the liability report, and `verify` — ok after the
// scenario, failing by name when one settlement row is corrupted.
// app.inject() on PGlite memory:// (or a fresh PostgreSQL database with DATABASE_URL).
//
// The demo fixture (test/fixtures/config.ts), values in USD (the common currency):
//   northwind-stars  USD 0.01            = 0.01   USD/pt, 5 pts per 1000 cents, reimbursement 1.0
//   harbor-rewards   EUR 0.005 × 1.08    = 0.0054 USD/pt, 1 pt per 100 cents (accumulate), rate 1.0
//   summit-miles     GBP 0.02 × 1.27     = 0.0254 USD/pt, 2 pts per 100 pence (nearest), rate 0.9
//   acme-points      USD 0.01 (default program, the group-redemption unit), 1 pt per 1000 USD cents
//                    (EUR/GBP converted first); its lots are issued by the brand of the store,
//                    reimbursed at that brand's program rate.
// Every purchase is one line at an in-store till; group redemptions spend lots earliest expiry
// first (acme and northwind: rolling 365 days; harbor: end of year + 365 days; summit: 730 days
// of inactivity), equal expiry earliest awarded first.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { sql } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import { closePeriod } from '../../src/services/settlement/periods.ts';
import { exportPeriodCsv } from '../../src/services/settlement/csv.ts';
import { liabilityReport } from '../../src/services/reports/liability.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const T0 = Date.parse('2026-05-04T10:00:00.000Z');
const HOUR_MS = 3_600_000;
const at = (hours: number): string => new Date(T0 + hours * HOUR_MS).toISOString();
const clock = new ManualClock(at(0));
let t: TestService;

before(async () => {
  t = await createTestService({ clock });
  await applyDemoConfig(t.app);
});
after(async () => {
  await t?.close();
});

const STORE = {
  northwind: { store_id: 'store_atl_012', currency: 'USD' },
  harbor: { store_id: 'store_ber_001', currency: 'EUR' },
  summit: { store_id: 'store_lon_001', currency: 'GBP' },
} as const;

let seq = 0;
const inject = (method: 'GET' | 'POST', url: string, payload?: object): Promise<LightMyRequestResponse> =>
  t.app.inject({ method, url, headers: t.adminHeaders, ...(payload ? { payload } : {}) });

async function ok(
  method: 'GET' | 'POST',
  url: string,
  payload?: object,
  status = method === 'GET' ? 200 : 201,
): Promise<Json> {
  const res = await inject(method, url, payload);
  assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
  return res.json<Json>();
}

async function refused(
  method: 'GET' | 'POST',
  url: string,
  payload: object | undefined,
  status: number,
  code: string,
): Promise<Json> {
  const res = await inject(method, url, payload);
  assert.equal(res.statusCode, status, res.body);
  assert.equal(res.json<Json>().error.code, code);
  return res.json<Json>();
}

async function buy(member_id: string, brand: keyof typeof STORE, cents: number): Promise<Json> {
  const { store_id, currency } = STORE[brand];
  const event_id = `evt_settle_${++seq}`;
  return ok('POST', '/v1/events', {
    event_id,
    event_type: 'purchase_completed',
    member_id,
    channel: 'in_store',
    store_id,
    transaction_id: `txn_${event_id}`,
    transaction_ts: clock.now().toISOString(),
    currency,
    line_items: [
      { sku: 'SKU-1', category: 'misc', unit_price_cents: cents, quantity: 1, eligible_for_points: true },
    ],
    subtotal_cents: cents,
    eligible_subtotal_cents: cents,
    idempotency_key: `key_${event_id}`,
  });
}

const redeem = (member_id: string, brand_id: string, points: number, capture = true): Promise<Json> =>
  ok('POST', '/v1/redemptions', {
    member_id,
    brand_id,
    group_redemption: true,
    points,
    capture,
    idempotency_key: `rdm_settle_${++seq}`,
  });

const breakdown = (r: Json) =>
  (r.breakdown_by_program as Json[]).map((b) => [b.program_id, b.issuing_brand_id, b.points]);
const verify = async () => ok('GET', '/v1/ledger/verify');

// Redemption ids, shared by the steps below (they run in order).
const R: Record<string, string> = {};
const hashes: Record<number, string> = {};

void describe('settlement scenario: three brands, three periods', () => {
  void it('earns at three brands and redeems across them', async () => {
    // m1: $100.00 at northwind → 50 northwind-stars + 10 acme (issuer northwind), exp T0+365d
    assert.deepEqual(
      (await buy('m1', 'northwind', 100_00)).accruals.map((a: Json) => [a.program_id, a.points]),
      [
        ['northwind-stars', 50],
        ['acme-points', 10],
      ],
    );
    clock.set(at(1));
    // €12.34 at harbor → 12.34 harbor-rewards; 1234 EUR cents × 1.08 = 1332.72 USD cents → 1 acme
    assert.deepEqual(
      (await buy('m1', 'harbor', 12_34)).accruals.map((a: Json) => [a.program_id, a.points]),
      [
        ['harbor-rewards', 12.34],
        ['acme-points', 1],
      ],
    );
    clock.set(at(2));
    // £30.00 at summit → 60 summit-miles; 3000 × 1.27 = 3810 USD cents → 3 acme
    assert.deepEqual(
      (await buy('m1', 'summit', 30_00)).accruals.map((a: Json) => [a.program_id, a.points]),
      [
        ['summit-miles', 60],
        ['acme-points', 3],
      ],
    );

    clock.set(at(3));
    // R1: m1 spends 68 acme points ($0.68) at summit. FEFO: northwind-stars 50 ($0.50) and acme/northwind
    // 10 ($0.10) expire first, then acme/harbor 1, acme/summit 3, then harbor-rewards for the last
    // $0.04: 0.04 / 0.0054 = 7.40740… → rounded up at the 4th decimal to 7.4075 points worth
    // $0.0400005 (the member pays $0.0000005 above the exact equivalent; settled with the points).
    const r1 = await redeem('m1', 'summit', 68);
    R.r1 = r1.redemption_id;
    assert.deepEqual(breakdown(r1), [
      ['acme-points', 'harbor', 1],
      ['acme-points', 'northwind', 10],
      ['acme-points', 'summit', 3],
      ['harbor-rewards', 'harbor', 7.4075],
      ['northwind-stars', 'northwind', 50],
    ]);

    clock.set(at(4));
    // m2: £10.01 at summit → 1001 × 2 / 100 = 20.02 → 20 miles (nearest); 1001 × 1.27 = 1271.27 → 1 acme
    await buy('m2', 'summit', 10_01);
    clock.set(at(5));
    // R2a: 15 acme points ($0.15) at harbor: acme/summit 1 ($0.01), then $0.14 / 0.0254 = 5.51 →
    // rounded up to 6 miles ($0.1524, $0.0124 overpaid). R2b: 13 points ($0.13) from the 14 miles
    // left: 0.13 / 0.0254 = 5.12 → 6 miles ($0.1524, $0.0224 overpaid, under one mile).
    const r2a = await redeem('m2', 'harbor', 15);
    assert.deepEqual(breakdown(r2a), [
      ['acme-points', 'summit', 1],
      ['summit-miles', 'summit', 6],
    ]);
    const r2b = await redeem('m2', 'harbor', 13);
    assert.deepEqual(breakdown(r2b), [['summit-miles', 'summit', 6]]);
    R.r2b = r2b.redemption_id;
  });

  // Flows (exact minor units = value × issuer's rate × 100; amount rounded half-even with the
  // residual carried per pair within each redemption):
  //   R1  northwind→summit  nw-stars 50:  0.50 × 1.0 → 50          amount 50
  //                          acme 10:      0.10 × 1.0 → 10          amount 10
  //       harbor→summit     acme 1:       0.01 × 1.0 → 1           amount 1
  //                          harbor 7.4075: 0.0400005 → 4.00005    running 5.00005 → 5: amount 4
  //   R2a summit→harbor     acme 1:       0.01 × 0.9 → 0.9         running 0.9 → 1: amount 1
  //                          miles 6:      0.1524 × 0.9 → 13.716    running 14.616 → 15: amount 14
  //   R2b summit→harbor     miles 6:      13.716                   amount 14
  // Period 1 per pair: harbor→summit exact 5.00005 → 5 (allocations 1 + 4 = 5, residual 0);
  //   northwind→summit 60 (60, 0); summit→harbor exact 14.616 + 13.716 = 28.332 → 28 while the
  //   allocations' amounts sum to 1 + 14 + 14 = 29: residual −1.
  // Net (issuer pays, redeemer receives): harbor −5 + 28 = 23; northwind −60; summit 5 + 60 − 28 = 37.
  const P1_FLOWS = [
    {
      issuer_brand_id: 'harbor',
      redeemer_brand_id: 'summit',
      points: 8.4075,
      allocation_count: 2,
      allocations_amount_minor: 5,
      residual_minor: 0,
      amount_minor: 5,
      exact_minor: '5.00005',
    },
    {
      issuer_brand_id: 'northwind',
      redeemer_brand_id: 'summit',
      points: 60,
      allocation_count: 2,
      allocations_amount_minor: 60,
      residual_minor: 0,
      amount_minor: 60,
      exact_minor: '60',
    },
    {
      issuer_brand_id: 'summit',
      redeemer_brand_id: 'harbor',
      points: 13,
      allocation_count: 3,
      allocations_amount_minor: 29,
      residual_minor: -1,
      amount_minor: 28,
      exact_minor: '28.332',
    },
  ];
  const P1_NET = [
    { brand_id: 'harbor', amount_minor: 23 },
    { brand_id: 'northwind', amount_minor: -60 },
    { brand_id: 'summit', amount_minor: 37 },
  ];

  void it('positions over the range: gross per pair and net summing to zero', async () => {
    const p = await ok(
      'GET',
      `/v1/settlement/positions?from=${encodeURIComponent(at(0))}&to=${encodeURIComponent(at(6))}`,
    );
    assert.deepEqual(p, {
      currency: 'USD',
      flows: P1_FLOWS.map((f) => ({
        issuer_brand_id: f.issuer_brand_id,
        redeemer_brand_id: f.redeemer_brand_id,
        points: f.points,
        amount_minor: f.amount_minor,
      })),
      net: P1_NET,
    });
    // [T0+4h, T0+6h) holds only R2a and R2b: summit→harbor 28.332 → 28, 1 + 6 + 6 = 13 points
    const later = await ok(
      'GET',
      `/v1/settlement/positions?from=${encodeURIComponent(at(4))}&to=${encodeURIComponent(at(6))}`,
    );
    assert.deepEqual(later.flows, [
      { issuer_brand_id: 'summit', redeemer_brand_id: 'harbor', points: 13, amount_minor: 28 },
    ]);
    assert.deepEqual(later.net, [
      { brand_id: 'harbor', amount_minor: 28 },
      { brand_id: 'summit', amount_minor: -28 },
    ]);
    await refused(
      'GET',
      `/v1/settlement/positions?from=${encodeURIComponent(at(6))}&to=${encodeURIComponent(at(6))}`,
      undefined,
      422,
      'INVALID_RANGE',
    );
  });

  void it('closes period 1 into a statement; a second close of the range is refused', async () => {
    clock.set(at(6));
    await refused('POST', '/v1/settlement/periods', { to: at(7) }, 422, 'INVALID_RANGE'); // in the future
    const p1 = await ok('POST', '/v1/settlement/periods', { to: at(6) });
    assert.equal(p1.id, 1);
    assert.equal(p1.from, null);
    assert.equal(p1.to, at(6));
    assert.equal(p1.closed_at, at(6));
    assert.equal(p1.flow_count, 7);
    assert.equal(p1.late_flow_count, 0);
    assert.match(p1.hash, /^sha256:[0-9a-f]{64}$/);
    assert.deepEqual(p1.flows, P1_FLOWS);
    assert.deepEqual(p1.net, P1_NET);
    assert.deepEqual(p1.payments, []);
    hashes[1] = p1.hash;
    const again = await refused(
      'POST',
      '/v1/settlement/periods',
      { to: at(6) },
      409,
      'SETTLEMENT_PERIOD_ALREADY_CLOSED',
    );
    assert.equal(again.error.details.period_id, 1);
    await refused('POST', '/v1/settlement/periods', { to: at(5) }, 409, 'SETTLEMENT_PERIOD_ALREADY_CLOSED');
    assert.deepEqual(await ok('GET', '/v1/settlement/periods/1'), p1);
  });

  void it('exports period 1 as CSV: a line per pair, then the net lines', async () => {
    const res = await inject('GET', '/v1/settlement/periods/1.csv');
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^text\/csv/);
    const to = at(6);
    assert.equal(
      res.body,
      [
        'record_type,period_id,period_from,period_to,currency,issuer_brand_id,redeemer_brand_id,brand_id,points,allocations_amount_minor,residual_minor,amount_minor,amount',
        `flow,1,,${to},USD,harbor,summit,,8.4075,5,0,5,0.05`,
        `flow,1,,${to},USD,northwind,summit,,60,60,0,60,0.60`,
        `flow,1,,${to},USD,summit,harbor,,13,29,-1,28,0.28`,
        `net,1,,${to},USD,,,harbor,,,,23,0.23`,
        `net,1,,${to},USD,,,northwind,,,,-60,-0.60`,
        `net,1,,${to},USD,,,summit,,,,37,0.37`,
        '',
      ].join('\r\n'),
    );
    assert.equal(await exportPeriodCsv(t.ctx, 1), res.body);
    await refused('GET', '/v1/settlement/periods/9.csv', undefined, 404, 'SETTLEMENT_PERIOD_NOT_FOUND');
    await refused('GET', '/v1/settlement/periods/9', undefined, 404, 'SETTLEMENT_PERIOD_NOT_FOUND');
    await refused('GET', '/v1/settlement/periods/1.json', undefined, 400, 'INVALID_REQUEST');
  });

  void it('records payments and flags the variance', async () => {
    const paid = await ok('POST', '/v1/settlement/periods/1/payments', {
      issuer_brand_id: 'northwind',
      redeemer_brand_id: 'summit',
      amount_minor: 60,
      reference: 'WIRE-0001',
      paid_at: at(6),
      idempotency_key: 'pay-1',
    });
    assert.equal(paid.amount_minor, 60);
    assert.equal(paid.currency, 'USD');
    const replay = await ok(
      'POST',
      '/v1/settlement/periods/1/payments',
      {
        issuer_brand_id: 'northwind',
        redeemer_brand_id: 'summit',
        amount_minor: 60,
        reference: 'WIRE-0001',
        paid_at: at(6),
        idempotency_key: 'pay-1',
      },
      200,
    );
    assert.equal(replay.replayed, true);
    await refused(
      'POST',
      '/v1/settlement/periods/1/payments',
      {
        issuer_brand_id: 'northwind',
        redeemer_brand_id: 'summit',
        amount_minor: 61,
        idempotency_key: 'pay-1',
      },
      409,
      'IDEMPOTENCY_KEY_REUSED',
    );
    // harbor pays summit 4 cents of the 5 owed: variance −1 (over half a cent: flagged)
    await ok('POST', '/v1/settlement/periods/1/payments', {
      issuer_brand_id: 'harbor',
      redeemer_brand_id: 'summit',
      amount_minor: 4,
      reference: 'WIRE-0002',
    });
    await ok('POST', '/v1/settlement/periods/1/payments', {
      issuer_brand_id: 'summit',
      redeemer_brand_id: 'harbor',
      amount_minor: 28,
    });
    await refused(
      'POST',
      '/v1/settlement/periods/1/payments',
      { issuer_brand_id: 'nobody', redeemer_brand_id: 'summit', amount_minor: 1 },
      422,
      'UNKNOWN_BRAND',
    );
    await refused(
      'POST',
      '/v1/settlement/periods/1/payments',
      { issuer_brand_id: 'summit', redeemer_brand_id: 'summit', amount_minor: 1 },
      422,
      'INVALID_PAYMENT',
    );
    await refused(
      'POST',
      '/v1/settlement/periods/1/payments',
      { issuer_brand_id: 'harbor', redeemer_brand_id: 'summit', amount_minor: 0 },
      422,
      'INVALID_AMOUNT',
    );
    await refused(
      'POST',
      '/v1/settlement/periods/1/payments',
      { issuer_brand_id: 'harbor', redeemer_brand_id: 'summit', amount_minor: 1, currency: 'EUR' },
      422,
      'CURRENCY_MISMATCH',
    );
    await refused(
      'POST',
      '/v1/settlement/periods/7/payments',
      { issuer_brand_id: 'harbor', redeemer_brand_id: 'summit', amount_minor: 1 },
      404,
      'SETTLEMENT_PERIOD_NOT_FOUND',
    );

    const st = await ok('GET', '/v1/settlement/periods/1');
    assert.deepEqual(st.flows, P1_FLOWS, 'payments never change the frozen figures');
    assert.equal(st.hash, hashes[1]);
    assert.deepEqual(
      st.payments.map((p: Json) => [p.issuer_brand_id, p.redeemer_brand_id, p.amount_minor, p.reference]),
      [
        ['northwind', 'summit', 60, 'WIRE-0001'],
        ['harbor', 'summit', 4, 'WIRE-0002'],
        ['summit', 'harbor', 28, null],
      ],
    );
    assert.deepEqual(st.variances, [
      {
        issuer_brand_id: 'harbor',
        redeemer_brand_id: 'summit',
        owed_minor: 5,
        paid_minor: 4,
        variance_minor: -1,
        flagged: true,
      },
      {
        issuer_brand_id: 'northwind',
        redeemer_brand_id: 'summit',
        owed_minor: 60,
        paid_minor: 60,
        variance_minor: 0,
        flagged: false,
      },
      {
        issuer_brand_id: 'summit',
        redeemer_brand_id: 'harbor',
        owed_minor: 28,
        paid_minor: 28,
        variance_minor: 0,
        flagged: false,
      },
    ]);
  });

  void it('a reversal after the close lands in period 2; period 1 is unchanged', async () => {
    clock.set(at(7));
    await ok('POST', `/v1/redemptions/${R.r1}/reverse`, {}, 200);
    // m1's lots are back; a hold of 20 points at harbor takes northwind-stars 20 (earliest
    // expiry), a partial capture of 15 keeps 15 ($0.15 × 1.0 = 15 cents) and releases 5.
    const hold = await redeem('m1', 'harbor', 20, false);
    assert.deepEqual(breakdown(hold), [['northwind-stars', 'northwind', 20]]);
    await ok('POST', `/v1/redemptions/${hold.redemption_id}/capture`, { points: 15 }, 200);
    clock.set(at(8));
    const p2 = await ok('POST', '/v1/settlement/periods', { to: at(8) });
    // Period 2: R1's reversal negates its four flows exactly (harbor→summit −1 −4 = −5 with
    // exact −5.00005 → −5; northwind→summit −60), plus northwind→harbor 15.
    // Net: harbor +5 + 15 = 20; northwind +60 − 15 = 45; summit −5 − 60 = −65.
    assert.deepEqual([p2.id, p2.from, p2.to, p2.flow_count, p2.late_flow_count], [2, at(6), at(8), 5, 0]);
    assert.deepEqual(p2.flows, [
      {
        issuer_brand_id: 'harbor',
        redeemer_brand_id: 'summit',
        points: -8.4075,
        allocation_count: 2,
        allocations_amount_minor: -5,
        residual_minor: 0,
        amount_minor: -5,
        exact_minor: '-5.00005',
      },
      {
        issuer_brand_id: 'northwind',
        redeemer_brand_id: 'harbor',
        points: 15,
        allocation_count: 1,
        allocations_amount_minor: 15,
        residual_minor: 0,
        amount_minor: 15,
        exact_minor: '15',
      },
      {
        issuer_brand_id: 'northwind',
        redeemer_brand_id: 'summit',
        points: -60,
        allocation_count: 2,
        allocations_amount_minor: -60,
        residual_minor: 0,
        amount_minor: -60,
        exact_minor: '-60',
      },
    ]);
    assert.deepEqual(p2.net, [
      { brand_id: 'harbor', amount_minor: 20 },
      { brand_id: 'northwind', amount_minor: 45 },
      { brand_id: 'summit', amount_minor: -65 },
    ]);
    // Nothing paid yet: every pair's variance is −owed, flagged.
    assert.deepEqual(
      p2.variances.map((v: Json) => [v.variance_minor, v.flagged]),
      [
        [5, true],
        [-15, true],
        [60, true],
      ],
    );
    hashes[2] = p2.hash;
    const p1 = await ok('GET', '/v1/settlement/periods/1');
    assert.equal(p1.hash, hashes[1]);
    assert.deepEqual(p1.flows, P1_FLOWS);
  });

  void it('a flow dated inside a closed period (committed after its close) falls into the next one', async () => {
    // As when a reversal's transaction began before the close and committed after it: the flow's
    // `at` is before period 2's `to`, but period 2 is closed, so period 3 takes it.
    clock.set(new Date(T0 + 8 * HOUR_MS - 60_000));
    await ok('POST', `/v1/redemptions/${R.r2b}/reverse`, {}, 200);
    clock.set(at(9));
    const p3 = await closePeriod(t.ctx, clock.now()); // the CLI's entry point
    // summit→harbor −13.716 → −14 (the flow's own amount, residual 0); net harbor −14, summit +14.
    assert.deepEqual([p3.id, p3.from, p3.to, p3.flow_count, p3.late_flow_count], [3, at(8), at(9), 1, 1]);
    assert.deepEqual(p3.flows, [
      {
        issuer_brand_id: 'summit',
        redeemer_brand_id: 'harbor',
        points: -6,
        allocation_count: 1,
        allocations_amount_minor: -14,
        residual_minor: 0,
        amount_minor: -14,
        exact_minor: '-13.716',
      },
    ]);
    assert.deepEqual(p3.net, [
      { brand_id: 'harbor', amount_minor: -14 },
      { brand_id: 'summit', amount_minor: 14 },
    ]);
    assert.equal((await ok('GET', '/v1/settlement/periods/2')).hash, hashes[2]);
    const list = await ok('GET', '/v1/settlement/periods?limit=2');
    assert.deepEqual(
      list.data.map((p: Json) => [p.id, p.from, p.to]),
      [
        [3, at(8), at(9)],
        [2, at(6), at(8)],
      ],
    );
    assert.equal(list.next_before, 2);
    assert.deepEqual(
      (await ok('GET', '/v1/settlement/periods?before=2')).data.map((p: Json) => p.id),
      [1],
    );
  });

  void it('positions over everything: reversed pairs net to zero, nets sum to zero', async () => {
    const p = await ok('GET', '/v1/settlement/positions');
    // summit→harbor: 14.616 + 13.716 − 13.716 = 14.616 → 15, 1 + 6 points (R2a stands); northwind→harbor 15;
    // R1 and its reversal cancel: those pairs stay listed at zero.
    assert.deepEqual(p.flows, [
      { issuer_brand_id: 'harbor', redeemer_brand_id: 'summit', points: 0, amount_minor: 0 },
      { issuer_brand_id: 'northwind', redeemer_brand_id: 'harbor', points: 15, amount_minor: 15 },
      { issuer_brand_id: 'northwind', redeemer_brand_id: 'summit', points: 0, amount_minor: 0 },
      { issuer_brand_id: 'summit', redeemer_brand_id: 'harbor', points: 7, amount_minor: 15 },
    ]);
    assert.deepEqual(p.net, [
      { brand_id: 'harbor', amount_minor: 30 },
      { brand_id: 'northwind', amount_minor: -15 },
      { brand_id: 'summit', amount_minor: -15 },
    ]);
  });

  void it('liability report: outstanding by program and issuer, activity, flows', async () => {
    const now = await ok('GET', '/v1/reports/liability');
    assert.equal(now.as_of, at(9));
    // m1: acme 1/harbor, 10/northwind, 3/summit; harbor-rewards 12.34; northwind-stars 50 − 15 = 35;
    // summit-miles 60 + m2's 20 − 6 (R2a) = 74. Values: 12.34 × 0.0054 = 0.066636 → 7 cents;
    // 74 × 0.0254 = 1.8796 → 187.96 → 188.
    assert.deepEqual(
      now.outstanding.map((r: Json) => [
        r.program_id,
        r.issuing_brand_id,
        r.available,
        r.pending,
        r.held,
        r.value.amount_minor,
      ]),
      [
        ['acme-points', 'harbor', 1, 0, 0, 1],
        ['acme-points', 'northwind', 10, 0, 0, 10],
        ['acme-points', 'summit', 3, 0, 0, 3],
        ['harbor-rewards', 'harbor', 12.34, 0, 0, 7],
        ['northwind-stars', 'northwind', 35, 0, 0, 35],
        ['summit-miles', 'summit', 74, 0, 0, 188],
      ],
    );
    // Per brand, exact sums rounded once: harbor 0.01 + 0.066636 → 7.6636 → 8; summit 0.03 + 1.8796 → 190.96 → 191.
    assert.deepEqual(
      now.outstanding_by_brand.map((b: Json) => [b.brand_id, b.value.amount_minor]),
      [
        ['harbor', 8],
        ['northwind', 45],
        ['summit', 191],
      ],
    );

    // As of T0+5.5h (after R2a/R2b, before any reversal): m1 kept harbor-rewards 12.34 − 7.4075
    // = 4.9325 (0.0266355 USD → 3 cents) and 60 miles, m2 20 − 12 = 8 miles: 68 × 0.0254 = 1.7272 → 173.
    const then = await liabilityReport(t.ctx, new Date(T0 + 5.5 * HOUR_MS), new Date(at(0)), new Date(at(6)));
    assert.deepEqual(
      then.outstanding.map((r) => [r.program_id, r.issuing_brand_id, r.available, r.value?.amount_minor]),
      [
        ['harbor-rewards', 'harbor', 4.9325, 3],
        ['summit-miles', 'summit', 68, 173],
      ],
    );
    // Activity over [T0, T0+6h): summit issued 80 miles (2.032 USD → 203) and 4 acme; at summit
    // 50 northwind-stars were redeemed; at harbor 12 miles (R2a + R2b).
    const row = (brand: string, program: string) =>
      then.activity.rows.find((r) => r.brand_id === brand && r.program_id === program)!;
    assert.deepEqual(row('summit', 'summit-miles').issued, { points: 80, amount_minor: 203 });
    assert.deepEqual(row('summit', 'acme-points').issued, { points: 4, amount_minor: 4 });
    assert.deepEqual(row('summit', 'northwind-stars').redeemed, { points: 50, amount_minor: 50 });
    assert.deepEqual(row('harbor', 'summit-miles').redeemed, { points: 12, amount_minor: 30 }); // 0.3048 → 30.48 → 30
    assert.deepEqual(
      then.cross_brand_flows.flows.map((f) => f.amount_minor),
      P1_FLOWS.map((f) => f.amount_minor),
    );
    await refused(
      'GET',
      `/v1/reports/liability?from=${encodeURIComponent(at(9))}&to=${encodeURIComponent(at(1))}`,
      undefined,
      422,
      'INVALID_RANGE',
    );
  });

  void it('is admin only', async () => {
    const key = await ok('POST', '/v1/api-keys', { name: 'harbor pos', scope: 'brand:harbor' });
    const headers = { authorization: `Bearer ${key.secret}` };
    for (const url of [
      '/v1/settlement/positions',
      '/v1/settlement/periods/1',
      '/v1/settlement/periods/1.csv',
      '/v1/reports/liability',
    ]) {
      const res = await t.app.inject({ method: 'GET', url, headers });
      assert.equal(res.statusCode, 403, `${url}: ${res.body}`);
    }
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/settlement/periods',
      headers,
      payload: { to: at(9) },
    });
    assert.equal(res.statusCode, 403);
  });

  void it('verify is ok after the scenario', async () => {
    const v = await verify();
    assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c: Json) => !c.ok)));
    for (const name of [
      'settlement_equals_cross_brand_redemptions',
      'settlement_flows_match_allocations',
      'settlement_statements_unchanged',
      'settlement_net_sums_to_zero',
    ]) {
      assert.ok(
        v.checks.some((c: Json) => c.name === name && c.ok),
        name,
      );
    }
  });

  void it('the store refuses to rewrite a flow; verify names the check when one is corrupted anyway', async () => {
    const flow = await t.ctx.db
      .selectFrom('settlement_flows')
      .select(['id', 'amount_minor'])
      .where('period_id', '=', 1n)
      .where('issuer_brand_id', '=', 'summit')
      .orderBy('id')
      .limit(1)
      .executeTakeFirstOrThrow();
    await assert.rejects(
      sql`update settlement_flows set amount_minor = amount_minor + 1 where id = ${flow.id}`.execute(
        t.ctx.db,
      ),
      /only ever gets its period assigned/,
    );
    await assert.rejects(
      sql`update settlement_periods set hash = 'x' where id = 1`.execute(t.ctx.db),
      /append-only/,
    );
    // An operator with DDL rights can still do it: verify must notice.
    await sql`alter table settlement_flows disable trigger settlement_flows_guard`.execute(t.ctx.db);
    await sql`update settlement_flows set amount_minor = amount_minor + 1 where id = ${flow.id}`.execute(
      t.ctx.db,
    );
    await sql`alter table settlement_flows enable trigger settlement_flows_guard`.execute(t.ctx.db);
    const v = await verify();
    assert.equal(v.ok, false);
    const failed = v.checks.filter((c: Json) => !c.ok).map((c: Json) => c.name);
    assert.deepEqual(failed, ['settlement_flows_match_allocations', 'settlement_statements_unchanged']);
    const detail = v.checks.find((c: Json) => c.name === 'settlement_flows_match_allocations')
      .detail as string;
    assert.match(
      detail,
      new RegExp(`flow ${flow.id}: amount_minor ${flow.amount_minor + 1n}, expected ${flow.amount_minor}`),
    );
    assert.match(
      v.checks.find((c: Json) => c.name === 'settlement_statements_unchanged').detail,
      /period_id.*"1"/,
    );
  });
});
