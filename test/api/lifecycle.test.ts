// Issue 5 through the HTTP API: activity paging, adjustments (credit, debit, insufficient,
// idempotent, audited, visible in the statement), the order loyalty summary and the tiers
// endpoint. One service for the file; every test uses its own members.
// Points are worked out from test/fixtures/config.ts: northwind-stars 5 per $10 (floor),
// acme-points 1 per $10, harbor-rewards 1 per €1 (accumulate, 0.005 EUR a point, EUR→USD 1.08),
// summit-miles 2 per £1 (0.02 GBP, GBP→USD 1.27). northwind gold: spend ≥ 50000 minor in 365 days.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Api, DAY_MS, pt4, shirt, tieredDemoDoc, uid, type Json } from './lifecycle-helpers.ts';

const NOW = '2026-03-10T12:00:00.000Z';
const clock = new ManualClock(NOW);
const api = Api.forTests(clock, { doc: tieredDemoDoc });

void describe('GET /v1/members/{id}/activity', () => {
  void it('lists the member’s entries newest first with points, lot effects and cause, page by page', async () => {
    clock.set(NOW);
    const m = uid('mbr_act');
    const p1 = await api.purchase(m, 'store_atl_012', [shirt(10000)]); // ns 50, acme 10
    clock.advance(60_000);
    const p2 = await api.purchase(m, 'web_harbor', [shirt(2000)]); // hr 20, acme 2
    clock.advance(60_000);
    const r = await api.redeem({
      member_id: m,
      brand_id: 'northwind',
      program_id: 'northwind-stars',
      points: 30,
    });
    clock.advance(60_000);
    await api.adjust({
      member_id: m,
      program_id: 'northwind-stars',
      points: 7,
      reason_code: 'service_recovery',
      note: 'late delivery',
    });

    const seen: Json[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = `/v1/members/${m}/activity?limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = await api.get(q);
      assert.ok(page.data.length <= 2);
      seen.push(...page.data);
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    assert.equal(seen.length, 4);
    assert.equal(pages, 2);
    const ids = seen.map((e) => BigInt(e.entry_id));
    assert.deepEqual(
      ids,
      [...ids].sort((a, b) => (a > b ? -1 : 1)),
      'newest first',
    );
    assert.deepEqual(
      seen.map((e) => e.kind),
      ['adjustment', 'redemption', 'accrual', 'accrual'],
    );

    const [adj, red, acc2, acc1] = seen as [Json, Json, Json, Json];
    assert.equal(acc1.source.event_id, p1.event.event_id);
    assert.deepEqual(acc1.programs, ['acme-points', 'northwind-stars']);
    assert.deepEqual(Object.fromEntries(acc1.points.map((p: Json) => [p.program_id, p.points])), {
      'acme-points': 10,
      'northwind-stars': 50,
    });
    assert.deepEqual(
      acc1.lot_effects.map((l: Json) => [l.kind, l.program_id, l.issuing_brand_id, l.points]).sort(),
      [
        ['award', 'acme-points', 'northwind', 10],
        ['award', 'northwind-stars', 'northwind', 50],
      ],
    );
    assert.equal(acc2.source.event_id, p2.event.event_id);
    assert.deepEqual(acc2.detail.rules_applied['harbor-rewards'], []);
    assert.equal(red.source.ref_type, 'redemption');
    assert.equal(red.source.ref_id, r.redemption_id);
    assert.deepEqual(red.points, [
      { program_id: 'northwind-stars', points: -30, available: -30, pending: 0, held: 0 },
    ]);
    assert.deepEqual(
      red.lot_effects.map((l: Json) => [l.kind, l.points]),
      [['spend', 30]],
    );
    assert.equal(red.lot_effects[0].value_common, '3/10');
    assert.equal(adj.detail.reason_code, 'service_recovery');
    assert.equal(adj.detail.note, 'late delivery');
    assert.ok(adj.source.request_id);
  });

  void it('rejects a bad cursor and an unknown member', async () => {
    const unknown = await api.inject('GET', '/v1/members/nobody/activity');
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.json<Json>().error.code, 'MEMBER_NOT_FOUND');
    const m = uid('mbr_act');
    await api.purchase(m, 'store_atl_012', [shirt(1000)]);
    // Not a cursor, and a well-formed one naming an id beyond int8 (the query would fail on it).
    for (const cursor of ['not-a-cursor', Buffer.from('v1:9999999999999999999').toString('base64url')]) {
      const res = await api.inject('GET', `/v1/members/${m}/activity?cursor=${cursor}`);
      assert.equal(res.statusCode, 400, res.body);
      assert.equal(res.json<Json>().error.code, 'INVALID_CURSOR');
      assert.equal(res.json<Json>().error.details.field, 'cursor');
    }
  });
});

void describe('POST /v1/adjustments', () => {
  void it('credits through a new lot issued by the program’s brand, expiring by the program’s policy', async () => {
    clock.set(NOW);
    const m = uid('mbr_adj');
    await api.purchase(m, 'store_atl_012', [shirt(2000)]); // ns 10
    const out = await api.adjust({
      member_id: m,
      program_id: 'northwind-stars',
      points: 25,
      reason_code: 'goodwill',
      note: 'sorry about the wait',
    });
    assert.equal(out.direction, 'credit');
    assert.equal(out.points, 25);
    assert.equal(out.issuing_brand_id, 'northwind');
    assert.equal(out.lot.expires_at, new Date(Date.parse(NOW) + 365 * DAY_MS).toISOString());
    assert.equal((await api.balances(m))['northwind-stars']!.available, 35);
    const g = await api.get(`/v1/adjustments/${out.adjustment_id}`);
    assert.equal(g.reason_code, 'goodwill');
    assert.equal(g.points, 25);
  });

  void it('debits lots earliest expiry first and refuses more than is available, changing nothing', async () => {
    clock.set(NOW);
    const m = uid('mbr_adj');
    // harbor-rewards expire at the end of the year after 365 days; a credit expiring sooner is spent first
    await api.purchase(m, 'web_harbor', [shirt(1000)]); // hr 10 (expires 2028-01-01)
    const c = await api.adjust({
      member_id: m,
      program_id: 'harbor-rewards',
      points: 4.5,
      note: 'migration of old card',
      reason_code: 'migration',
    });
    assert.equal(c.lot.expires_at, '2028-01-01T00:00:00.000Z');
    // Both lots expire 2028-01-01: the older award (the purchase, 10) goes first, then 2 of the credit.
    const d = await api.adjust({
      member_id: m,
      program_id: 'harbor-rewards',
      points: -12,
      reason_code: 'correction',
      note: 'double credit',
    });
    assert.equal(d.direction, 'debit');
    assert.deepEqual(
      d.allocations.map((a: Json) => a.points),
      [10, 2],
    );
    assert.equal(d.allocations[1].lot_id, c.lot.lot_id);
    assert.equal((await api.balances(m))['harbor-rewards']!.available, 2.5);

    const before = await api.get(`/v1/members/${m}/activity`);
    const res = await api.inject('POST', '/v1/adjustments', {
      member_id: m,
      program_id: 'harbor-rewards',
      points: -2.5001,
      reason_code: 'fraud',
      note: 'x',
      idempotency_key: uid('adj'),
    });
    assert.equal(res.statusCode, 409);
    assert.equal(res.json<Json>().error.code, 'INSUFFICIENT_POINTS');
    assert.equal(res.json<Json>().error.details.available, 2.5);
    assert.equal((await api.balances(m))['harbor-rewards']!.available, 2.5);
    assert.equal((await api.get(`/v1/members/${m}/activity`)).data.length, before.data.length);
  });

  void it('is idempotent by key: the same body replays, another body is refused', async () => {
    clock.set(NOW);
    const m = uid('mbr_adj');
    await api.purchase(m, 'store_atl_012', [shirt(2000)]);
    const body = {
      member_id: m,
      program_id: 'northwind-stars',
      points: 5,
      reason_code: 'goodwill',
      note: 'once',
      idempotency_key: uid('adj'),
    };
    const first = await api.post('/v1/adjustments', body, 201);
    const again = await api.post('/v1/adjustments', body, 200);
    assert.equal(again.replayed, true);
    assert.equal(again.adjustment_id, first.adjustment_id);
    assert.equal((await api.balances(m))['northwind-stars']!.available, 15);
    const other = await api.inject('POST', '/v1/adjustments', { ...body, points: 6 });
    assert.equal(other.statusCode, 409);
    assert.equal(other.json<Json>().error.code, 'IDEMPOTENCY_KEY_REUSED');
  });

  void it('validates reason code, note, program, brand and amount', async () => {
    const m = uid('mbr_adj');
    await api.purchase(m, 'store_atl_012', [shirt(2000)]);
    const base = {
      member_id: m,
      program_id: 'northwind-stars',
      points: 5,
      reason_code: 'goodwill',
      note: 'n',
    };
    const cases: [Json, number, string][] = [
      [{ ...base, reason_code: 'because' }, 400, 'INVALID_REQUEST'],
      [{ ...base, note: '' }, 400, 'INVALID_REQUEST'],
      [{ ...base, note: undefined }, 400, 'INVALID_REQUEST'],
      [{ ...base, points: 0 }, 422, 'INVALID_AMOUNT'],
      [{ ...base, points: 1.5 }, 422, 'INVALID_AMOUNT'],
      [{ ...base, program_id: 'nope' }, 422, 'UNKNOWN_PROGRAM'],
      [{ ...base, issuing_brand_id: 'nope' }, 422, 'UNKNOWN_BRAND'],
      [{ ...base, program_id: 'acme-points' }, 400, 'INVALID_REQUEST'], // the group program: name the issuer
      [{ ...base, member_id: 'nobody_here' }, 404, 'MEMBER_NOT_FOUND'],
    ];
    for (const [body, status, code] of cases) {
      const res = await api.inject('POST', '/v1/adjustments', { ...body, idempotency_key: uid('adj') });
      assert.equal(res.statusCode, status, `${JSON.stringify(body)}: ${res.body}`);
      assert.equal(res.json<Json>().error.code, code);
    }
    const ok = await api.adjust({ ...base, program_id: 'acme-points', issuing_brand_id: 'summit' });
    assert.equal(ok.issuing_brand_id, 'summit');
    const readKey = await api.post('/v1/api-keys', { name: 'reader', scope: 'read' }, 201);
    const forbidden = await api.t.app.inject({
      method: 'POST',
      url: '/v1/adjustments',
      headers: { authorization: `Bearer ${readKey.secret}` },
      payload: { ...base, idempotency_key: uid('adj') },
    });
    assert.equal(forbidden.statusCode, 403);
  });

  void it('is in the audit log and in the statement with its reason and note', async () => {
    clock.set(NOW);
    const m = uid('mbr_adj');
    await api.purchase(m, 'store_atl_012', [shirt(4000)]); // ns 20
    const credit = await api.adjust({
      member_id: m,
      program_id: 'northwind-stars',
      points: 12,
      reason_code: 'service_recovery',
      note: 'broken zip <b>sorry</b>',
    });
    const debit = await api.adjust({
      member_id: m,
      program_id: 'northwind-stars',
      points: -2,
      reason_code: 'correction',
      note: 'typo',
    });
    const audit = await api.get('/v1/audit?action=adjustment.create&limit=100');
    const mine = audit.data.filter(
      (a: Json) => a.status_code === 201 && a.method === 'POST' && a.path === '/v1/adjustments',
    );
    assert.ok(mine.length >= 2);
    const from = new Date(Date.parse(NOW) - DAY_MS).toISOString();
    const s = await api.get(`/v1/members/${m}/statement?from=${from}&to=${NOW}`);
    const ns = s.programs.find((p: Json) => p.program_id === 'northwind-stars');
    assert.equal(ns.adjusted.points, 10);
    assert.deepEqual(
      ns.adjusted.items.map((i: Json) => [i.adjustment_id, i.reason_code, i.note, i.points]),
      [
        [credit.adjustment_id, 'service_recovery', 'broken zip <b>sorry</b>', 12],
        [debit.adjustment_id, 'correction', 'typo', -2],
      ],
    );
    const res = await api.inject('GET', `/v1/members/${m}/statement?from=${from}&to=${NOW}`, undefined, {
      accept: 'text/html',
    });
    assert.equal(res.statusCode, 200);
    assert.ok(res.body.includes('broken zip &lt;b&gt;sorry&lt;/b&gt;'), 'the note is escaped');
    assert.ok(!res.body.includes('<b>sorry</b>'));
  });

  void it('keeps the ledger verifiable after debits (lots equal their allocations)', async () => {
    const v = await api.verify();
    assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c: Json) => !c.ok)));
  });
});

void describe('GET /v1/orders/{order_id}/loyalty', () => {
  void it('shows what the order earned, what a refund took back and what it redeemed, with conversions', async () => {
    clock.set(NOW);
    const m = uid('mbr_ord');
    await api.purchase(m, 'web_harbor', [shirt(5000)]); // hr 50 to redeem later
    const order = uid('ord');
    const p = await api.purchase(
      m,
      'store_atl_012',
      [shirt(6000), { sku: 'SKU-HAT', category: 'hats', unit_price_cents: 2000, quantity: 1 }],
      { order_id: order },
    );
    // ns: 80 → 40, acme: 8
    await api.refund(p, [{ sku: 'SKU-HAT', category: 'hats', unit_price_cents: 2000, quantity: 1 }]);
    const r = await api.redeem({
      member_id: m,
      brand_id: 'northwind',
      program_id: 'harbor-rewards',
      points: 20,
      order_id: order,
    });
    const s = await api.get(`/v1/orders/${order}/loyalty`);
    assert.equal(s.order_id, order);
    assert.deepEqual(s.member_ids, [m]);
    assert.equal(s.earned.length, 1);
    assert.deepEqual(Object.fromEntries(s.earned[0].programs.map((x: Json) => [x.program_id, x.points])), {
      'acme-points': 8,
      'northwind-stars': 40,
    });
    assert.equal(s.reversed.length, 1);
    assert.equal(s.reversed[0].reversal_of, p.event.event_id);
    assert.deepEqual(Object.fromEntries(s.reversed[0].programs.map((x: Json) => [x.program_id, x.points])), {
      'acme-points': -2,
      'northwind-stars': -10,
    });
    assert.deepEqual(Object.fromEntries(s.net_earned.map((x: Json) => [x.program_id, x.points])), {
      'acme-points': 6,
      'northwind-stars': 30,
    });
    assert.equal(s.redeemed.length, 1);
    const red = s.redeemed[0];
    assert.equal(red.redemption_id, r.redemption_id);
    assert.equal(red.status, 'captured');
    assert.deepEqual(red.breakdown_by_program, [
      {
        program_id: 'harbor-rewards',
        issuing_brand_id: 'harbor',
        points: 20,
        value: { amount_minor: 11, currency: 'USD' },
        conversion: '1 harbor-rewards point = 0.0054 USD',
        cross_brand: true,
      },
    ]);
    assert.deepEqual(
      red.breakdown_by_program.map((b: Json) => b.conversion),
      r.breakdown_by_program.map((b: Json) => b.conversion),
    );
    assert.deepEqual(s.redeemed_value, { amount_minor: 11, currency: 'USD' });
    const none = await api.inject('GET', `/v1/orders/${uid('ord')}/loyalty`);
    assert.equal(none.statusCode, 404);
    assert.equal(none.json<Json>().error.code, 'ORDER_NOT_FOUND');
  });
});

void describe('GET /v1/members/{id}/tiers', () => {
  void it('shows the tier, its benefits, progress to the next and the history as the member climbs', async () => {
    clock.set(NOW);
    const m = uid('mbr_tier');
    await api.purchase(m, 'store_atl_012', [shirt(30000)]);
    let tiers = await api.get(`/v1/members/${m}/tiers`);
    let nw = tiers.programs.find((p: Json) => p.program_id === 'northwind-stars');
    assert.deepEqual(
      tiers.programs.map((p: Json) => p.program_id),
      ['northwind-stars'],
      'only tiered programs',
    );
    assert.equal(nw.tier, 'silver');
    assert.deepEqual(nw.benefits, ['free returns']);
    assert.equal(nw.qualification.metric, 'spend_minor');
    assert.deepEqual(nw.qualification.value, { amount_minor: 30000, currency: 'USD' });
    assert.deepEqual(nw.next_tier, {
      tier: 'gold',
      at_least: { amount_minor: 50000, currency: 'USD' },
      remaining: { amount_minor: 20000, currency: 'USD' },
      qualified: false,
      benefits: ['free shipping', 'early access'],
    });
    assert.deepEqual(
      nw.history.map((h: Json) => [h.tier, h.reason]),
      [['silver', 'upgrade']],
    );

    clock.advance(DAY_MS);
    await api.purchase(m, 'store_atl_012', [shirt(25000)]);
    tiers = await api.get(`/v1/members/${m}/tiers`);
    nw = tiers.programs.find((p: Json) => p.program_id === 'northwind-stars');
    assert.equal(nw.tier, 'gold');
    assert.deepEqual(nw.benefits, ['free shipping', 'early access']);
    assert.equal(nw.next_tier, null);
    assert.deepEqual(nw.qualification.value, { amount_minor: 55000, currency: 'USD' });
    assert.deepEqual(
      nw.history.map((h: Json) => [h.tier, h.reason]),
      [
        ['gold', 'upgrade'],
        ['silver', 'upgrade'],
      ],
    );
    assert.deepEqual(
      nw.tiers.map((x: Json) => [x.tier, x.current]),
      [
        ['silver', false],
        ['gold', true],
      ],
    );

    // Half a day after the first purchase leaves the 365-day window, only the second purchase counts.
    const later = new Date(Date.parse(NOW) + 365.5 * DAY_MS).toISOString();
    const asOf = await api.get(`/v1/members/${m}/tiers?as_of=${later}`);
    assert.deepEqual(asOf.programs[0].qualification.value, { amount_minor: 25000, currency: 'USD' });
    const missing = await api.inject('GET', '/v1/members/nobody_x/tiers');
    assert.equal(missing.statusCode, 404);
  });
});

void describe('points sums', () => {
  void it('pt4 helper is exact', () => {
    assert.equal(pt4(8.25) - pt4(6.25), 20_000n);
  });
});
