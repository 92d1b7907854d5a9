// The accrual engine through the HTTP API (issue 3, "Must show"): POST /v1/events, /batch and
// /simulate, GET /v1/rejections, /v1/reviews, /v1/members/:id/balances and /v1/ledger/verify,
// with app.inject() on PGlite memory:// (or a fresh PostgreSQL database with DATABASE_URL).
//
// One service for the file (creating one costs seconds on PGlite); every test uses its own
// members, so tests do not see each other's balances. The clock is fixed at NOW, inside the
// fixture's outerwear-x3 campaign (2026-01-01 .. 2026-04-01), so transaction times are exact.
// Expected points are worked out by hand from test/fixtures/config.ts:
//   northwind-stars: 5 points per 1000 cents, floor; web-bonus +50 on online; gold-bonus ×1.2;
//                    outerwear-x3 on outerwear lines; stacking highest; absorb_up_to 100
//   acme-points (default program): 1 point per 1000 cents, floor
//   harbor-rewards: 1 point per 100 EUR cents, accumulate (4 decimals); EUR→USD 1.08

import { strict as assert } from 'node:assert';
import { after, afterEach, before, describe, it } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import { ManualClock } from '../../src/clock.ts';
import type { Config } from '../../src/domain/config/schema.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

const NOW = '2026-03-10T12:00:00.000Z';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const clock = new ManualClock(NOW);
let t: TestService;

before(async () => {
  t = await createTestService({ clock });
  await applyDemoConfig(t.app);
});
after(async () => {
  await t?.close();
});

// ---------------------------------------------------------------------------------------------
// Helpers

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
type Headers = { authorization: string };

const STORE_CHANNEL: Record<string, string> = {
  store_atl_012: 'in_store',
  web_northwind: 'online',
  app_northwind: 'app',
  bopis_atl_012: 'bopis',
  web_harbor: 'online',
  store_ber_001: 'in_store',
};

const ago = (hours: number): string => new Date(clock.now().getTime() - hours * HOUR_MS).toISOString();
const plusDays = (iso: string, days: number): string =>
  new Date(Date.parse(iso) + days * DAY_MS).toISOString();

let seq = 0;
/** A unique id per call, so tests never collide in the shared service. */
const uid = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;

interface Line {
  sku: string;
  category?: string;
  unit_price_cents: number;
  quantity: number;
  eligible_for_points?: boolean;
}

interface PurchaseOpts {
  ts?: string;
  order_id?: string;
  key?: string;
  event_id?: string;
  eligible_subtotal_cents?: number;
  currency?: string;
}

const lineTotal = (lines: readonly Line[], eligibleOnly: boolean) =>
  lines
    .filter((l) => !eligibleOnly || l.eligible_for_points !== false)
    .reduce((s, l) => s + l.unit_price_cents * l.quantity, 0);

function purchase(member_id: string, store_id: string, lines: Line[], o: PurchaseOpts = {}): Json {
  const event_id = o.event_id ?? uid('evt');
  return {
    event_id,
    event_type: 'purchase_completed',
    member_id,
    channel: STORE_CHANNEL[store_id] ?? 'in_store',
    store_id,
    transaction_id: `txn_${event_id}`,
    transaction_ts: o.ts ?? ago(1),
    ...(o.order_id ? { order_id: o.order_id } : {}),
    currency: o.currency ?? (store_id.includes('harbor') || store_id.includes('ber') ? 'EUR' : 'USD'),
    line_items: lines.map((l) => ({ eligible_for_points: true, ...l })),
    subtotal_cents: lineTotal(lines, false),
    eligible_subtotal_cents: o.eligible_subtotal_cents ?? lineTotal(lines, true),
    idempotency_key: o.key ?? `key_${event_id}`,
  };
}

const shirt = (cents: number, quantity = 1): Line => ({
  sku: 'SKU-SHIRT',
  category: 'shirts',
  unit_price_cents: cents,
  quantity,
});

function reversal(
  p: Json,
  type: 'purchase_voided' | 'purchase_refunded',
  lines: Line[] = [],
  ts = ago(0.5),
): Json {
  const event_id = uid(type === 'purchase_voided' ? 'void' : 'rfd');
  return {
    event_id,
    event_type: type,
    member_id: p.member_id,
    channel: p.channel,
    store_id: p.store_id,
    transaction_id: `txn_${event_id}`,
    transaction_ts: ts,
    currency: p.currency,
    reversal_of: p.event_id,
    ...(type === 'purchase_refunded'
      ? { line_items: lines.map((l) => ({ eligible_for_points: true, ...l })) }
      : {}),
    idempotency_key: `key_${event_id}`,
  };
}

async function post(ev: unknown, headers: Headers = t.adminHeaders): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/v1/events', headers, payload: ev as object });
}

async function simulate(ev: unknown, headers: Headers = t.adminHeaders): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: 'POST', url: '/v1/events/simulate', headers, payload: ev as object });
}

/** An event answered 200 (a duplicate): its body. */
async function postOk200(ev: Json): Promise<Json> {
  const res = await post(ev);
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Json>();
}

async function postOk(ev: Json): Promise<Json> {
  const res = await post(ev);
  assert.equal(res.statusCode, 201, res.body);
  const body = res.json<Json>();
  assert.equal(body.status, 'accepted');
  return body;
}

async function get(url: string, headers: Headers = t.adminHeaders): Promise<Json> {
  const res = await t.app.inject({ method: 'GET', url, headers });
  assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
  return res.json<Json>();
}

interface Bal {
  available: number;
  pending: number;
  held: number;
  tier: string | null;
  pending_lots: { points: number; available_at: string }[];
}

/** program_id → balance; {} for a member the service has never seen. */
async function balances(member_id: string): Promise<Record<string, Bal>> {
  const res = await t.app.inject({
    method: 'GET',
    url: `/v1/members/${member_id}/balances`,
    headers: t.adminHeaders,
  });
  if (res.statusCode === 404) return {};
  assert.equal(res.statusCode, 200, res.body);
  return Object.fromEntries(res.json<Json>().programs.map((p: Json) => [p.program_id, p]));
}

async function available(member_id: string): Promise<Record<string, number>> {
  const b = await balances(member_id);
  return Object.fromEntries(Object.entries(b).map(([k, v]) => [k, v.available]));
}

async function assertVerifyOk(): Promise<void> {
  const v = await get('/v1/ledger/verify');
  assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c: Json) => !c.ok)));
}

const accrual = (body: Json, program_id: string): Json => {
  const a = body.accruals.find((x: Json) => x.program_id === program_id);
  assert.ok(a, `no accrual in ${program_id}: ${JSON.stringify(body)}`);
  return a;
};

const reversed = (body: Json, program_id: string): Json => {
  const r = body.reversed.find((x: Json) => x.program_id === program_id);
  assert.ok(r, `no reversal in ${program_id}: ${JSON.stringify(body)}`);
  return r;
};

async function rejections(query: string): Promise<Json[]> {
  return (await get(`/v1/rejections?${query}`)).data;
}

/** Spends points of one program: POST /v1/redemptions when it exists, else the service. */
async function redeemPoints(
  member_id: string,
  program_id: string,
  brand_id: string,
  points: number,
): Promise<void> {
  const idempotency_key = uid('rdm');
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/redemptions',
    headers: t.adminHeaders,
    payload: {
      member_id,
      brand_id,
      program_id,
      group_redemption: false,
      points,
      idempotency_key,
      capture: true,
    },
  });
  if (res.statusCode !== 404 || res.json<Json>().error?.code !== 'ROUTE_NOT_FOUND') {
    assert.equal(res.statusCode, 201, res.body);
    return;
  }
  const { redeem } = await import('../../src/services/redemptions/redeem.ts');
  const out = await redeem(
    t.ctx,
    { member_id, brand_id, program_id, points_pt4: BigInt(points) * 10_000n, idempotency_key, capture: true },
    { key_id: null, request_id: 'test' },
  );
  assert.equal(out.http_status, 201, JSON.stringify(out.body));
}

// Hand-computed earn at the fixture's base rates (floor).
const nw = (eligible_cents: number) => Math.floor((eligible_cents * 5) / 1000);
const acme = (eligible_cents: number) => Math.floor(eligible_cents / 1000);

// ---------------------------------------------------------------------------------------------

void describe('POST /v1/events: accrual', () => {
  void it('accrues on every channel in the brand program and the default program, shown in balances', async () => {
    for (const store_id of ['store_atl_012', 'web_northwind', 'app_northwind', 'bopis_atl_012']) {
      const member = uid('mbr_chan');
      const ev = purchase(member, store_id, [shirt(8999)], { ts: ago(2) });
      const body = await postOk(ev);
      assert.equal(body.event_id, ev.event_id);
      assert.equal(body.member_id, member);
      assert.deepEqual(body.reversed, []);
      assert.equal(body.accruals.length, 2);
      const online = STORE_CHANNEL[store_id] === 'online';
      // 8999 cents: 44.995 → 44 stars (+50 web-bonus online); 8.999 → 8 acme points.
      const stars = accrual(body, 'northwind-stars');
      assert.equal(stars.points, online ? 94 : 44, store_id);
      assert.deepEqual(stars.rules_applied, online ? ['web-bonus'] : [], store_id);
      assert.equal(stars.status, 'available');
      assert.equal(stars.available_at, ev.transaction_ts);
      assert.equal(stars.expires_at, plusDays(ev.transaction_ts, 365));
      const group = accrual(body, 'acme-points');
      assert.equal(group.points, 8);
      assert.deepEqual(group.rules_applied, []);
      const b = await balances(member);
      assert.deepEqual(Object.keys(b).sort(), ['acme-points', 'northwind-stars']);
      assert.equal(b['northwind-stars']!.available, online ? 94 : 44);
      assert.equal(b['northwind-stars']!.pending, 0);
      assert.equal(b['acme-points']!.available, 8);
    }
    await assertVerifyOk();
  });

  void it('accrues in an accumulate program in another currency (harbor, EUR)', async () => {
    const member = uid('mbr_harbor');
    const body = await postOk(
      purchase(member, 'web_harbor', [
        { sku: 'MILK', category: 'dairy', unit_price_cents: 1347, quantity: 1 },
      ]),
    );
    // 1347 EUR cents at 1 point per 100: 13.47 (4 decimals kept); in acme: 1347 × 1.08 = 1454.76 USD cents → 1.45 → 1.
    assert.equal(accrual(body, 'harbor-rewards').points, 13.47);
    assert.equal(accrual(body, 'acme-points').points, 1);
    assert.deepEqual(await available(member), { 'acme-points': 1, 'harbor-rewards': 13.47 });
  });

  void it('answers the same event twice as a duplicate and changes nothing; a reused key with another body is 409', async () => {
    const member = uid('mbr_dup');
    const ev = purchase(member, 'store_atl_012', [shirt(10000)]);
    await postOk(ev);
    const before = await available(member);
    assert.deepEqual(before, { 'acme-points': 10, 'northwind-stars': 50 });

    const again = await post(ev);
    assert.equal(again.statusCode, 200, again.body);
    const dup = again.json<Json>();
    assert.equal(dup.status, 'duplicate');
    assert.equal(dup.duplicate_of, ev.event_id);
    assert.deepEqual(await available(member), before);

    // Same key, different body (another amount): refused, kept as a rejection, nothing changes.
    const other: Json = {
      ...purchase(member, 'store_atl_012', [shirt(20000)]),
      idempotency_key: ev.idempotency_key,
    };
    const reused = await post(other);
    assert.equal(reused.statusCode, 409, reused.body);
    assert.equal(reused.json<Json>().error.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.deepEqual(await available(member), before);
    const listed = await rejections(`code=IDEMPOTENCY_KEY_REUSED&limit=500`);
    const mine = listed.find((r) => r.event_id === other.event_id);
    assert.ok(mine, 'the reused-key event is listed at /v1/rejections');
    assert.equal(
      reused.json<Json>().error.details.rejection_id,
      String(mine.id),
      'the 409 names its rejection',
    );
    assert.equal(reused.json<Json>().error.details.field, 'idempotency_key');
    assert.equal(mine.field, 'idempotency_key');
    assert.equal(mine.payload.eligible_subtotal_cents, 20000);

    // A third identical retry is still a duplicate of the first.
    const third = await post(ev);
    assert.equal(third.statusCode, 200);
    assert.equal(third.json<Json>().duplicate_of, ev.event_id);
    assert.deepEqual(await available(member), before);
    await assertVerifyOk();
  });

  void it('accepts an event 6 hours late and rejects one 100 hours late with LATE_EVENT', async () => {
    const member = uid('mbr_late');
    const late6 = purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(6) });
    const body = await postOk(late6);
    assert.equal(accrual(body, 'northwind-stars').points, 50);
    assert.equal(accrual(body, 'acme-points').points, 10);
    // Judged at its own time: the lot is awarded then and expires 365 days after.
    assert.equal(accrual(body, 'northwind-stars').expires_at, plusDays(late6.transaction_ts, 365));

    const late100 = purchase(member, 'store_atl_012', [shirt(20000)], { ts: ago(100) });
    const res = await post(late100);
    assert.equal(res.statusCode, 422, res.body);
    const err = res.json<Json>().error;
    assert.equal(err.code, 'LATE_EVENT');
    assert.equal(err.details.field, 'transaction_ts');
    assert.deepEqual(await available(member), { 'acme-points': 10, 'northwind-stars': 50 });

    const listed = await rejections(`code=LATE_EVENT&brand_id=northwind&limit=500`);
    const mine = listed.find((r) => r.event_id === late100.event_id);
    assert.ok(mine, 'the late event is listed');
    assert.equal(mine.id, err.details.rejection_id);
    assert.equal(mine.field, 'transaction_ts');
    assert.equal(mine.store_id, 'store_atl_012');
    assert.deepEqual(mine.payload, late100);
  });

  // RFC 3339 allows a lower-case t and z; as_of and the configuration's instants read them, and
  // so does an event, single or batched, recorded as the instant it names.
  void it('reads transaction_ts written with a lower-case t and z, or with an offset', async () => {
    const member = uid('mbr_ts_case');
    const at = ago(2);
    const lower = purchase(member, 'store_atl_012', [shirt(10000)], {
      ts: at.replace('T', 't').replace('Z', 'z'),
    });
    const body = await postOk(lower);
    assert.equal(accrual(body, 'northwind-stars').available_at, at);
    assert.equal(accrual(body, 'northwind-stars').expires_at, plusDays(at, 365));
    const offset = new Date(Date.parse(at) + 2 * HOUR_MS).toISOString().replace('Z', '+02:00');
    const batched = purchase(member, 'store_atl_012', [shirt(2000)], { ts: offset.replace('T', 't') });
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: t.adminHeaders,
      payload: { events: [batched] },
    });
    assert.equal(res.statusCode, 200, res.body);
    const [result] = res.json<Json>().results as Json[];
    assert.equal(result!.http_status, 201, JSON.stringify(result));
    assert.equal(accrual(result!, 'northwind-stars').available_at, at);
    assert.deepEqual(await available(member), { 'acme-points': 12, 'northwind-stars': 60 });
  });

  void it('nets a purchase and its void to zero in every program', async () => {
    const member = uid('mbr_void');
    const p = purchase(member, 'web_northwind', [
      shirt(8999),
      { sku: 'SKU-HAT', category: 'hats', unit_price_cents: 2500, quantity: 2 },
    ]);
    const body = await postOk(p);
    // 13999 cents: 69.995 → 69 + 50 web-bonus = 119 stars; 13 acme.
    assert.equal(accrual(body, 'northwind-stars').points, 119);
    assert.equal(accrual(body, 'acme-points').points, 13);
    const v = await postOk(reversal(p, 'purchase_voided'));
    assert.deepEqual(v.accruals, []);
    assert.equal(reversed(v, 'northwind-stars').points, 119);
    assert.equal(reversed(v, 'acme-points').points, 13);
    assert.deepEqual(await available(member), { 'acme-points': 0, 'northwind-stars': 0 });

    // Never twice: a second void, or a refund after the void, takes nothing more.
    for (const again of [reversal(p, 'purchase_voided'), reversal(p, 'purchase_refunded', [shirt(8999)])]) {
      const res = await post(again);
      assert.equal(res.statusCode, 422, res.body);
      assert.equal(res.json<Json>().error.code, 'OVER_REFUND');
    }
    assert.deepEqual(await available(member), { 'acme-points': 0, 'northwind-stars': 0 });
    await assertVerifyOk();
  });

  void it("rejects reversals of unknown purchases and of another member's purchase", async () => {
    const member = uid('mbr_rev');
    const p = purchase(member, 'store_atl_012', [shirt(10000)]);
    await postOk(p);
    const unknown = await post(reversal({ ...p, event_id: 'evt_never_seen' }, 'purchase_voided'));
    assert.equal(unknown.statusCode, 422);
    assert.equal(unknown.json<Json>().error.code, 'REVERSAL_TARGET_NOT_FOUND');
    assert.equal(unknown.json<Json>().error.details.field, 'reversal_of');
    const foreign = await post(reversal({ ...p, member_id: uid('mbr_other') }, 'purchase_voided'));
    assert.equal(foreign.statusCode, 422, foreign.body);
    assert.deepEqual(await available(member), { 'acme-points': 10, 'northwind-stars': 50 });
  });

  void it('BOPIS: a second purchase_completed of an accrued order_id is a duplicate whatever its channel and key', async () => {
    const member = uid('mbr_bopis');
    const order_id = uid('ord');
    const web = purchase(member, 'web_northwind', [shirt(10000)], { order_id });
    await postOk(web);
    const before = await available(member);
    assert.deepEqual(before, { 'acme-points': 10, 'northwind-stars': 100 });
    for (const store_id of ['store_atl_012', 'bopis_atl_012']) {
      const pos = purchase(member, store_id, [shirt(10000)], { order_id });
      assert.notEqual(pos.idempotency_key, web.idempotency_key);
      const res = await post(pos);
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json<Json>().status, 'duplicate');
      assert.equal(res.json<Json>().duplicate_of, web.event_id);
      assert.deepEqual(await available(member), before);
      // Its own retry is answered the same way.
      const replay = await post(pos);
      assert.equal(replay.statusCode, 200, replay.body);
      assert.equal(replay.json<Json>().duplicate_of, web.event_id);
    }
    // Another brand may use the same order number: it is a different order.
    const harbor = await postOk(
      purchase(member, 'web_harbor', [{ sku: 'TEA', unit_price_cents: 1000, quantity: 1 }], { order_id }),
    );
    assert.equal(accrual(harbor, 'harbor-rewards').points, 10);
    await assertVerifyOk();
  });

  void it("BOPIS: the store's void or refund naming its own (duplicate) event reverses the order's purchase", async () => {
    const member = uid('mbr_bopis_void');
    const order_id = uid('ord');
    const web = purchase(member, 'web_northwind', [shirt(10000), shirt(4000)], { order_id });
    await postOk(web);
    const pos = purchase(member, 'store_atl_012', [shirt(10000), shirt(4000)], { order_id });
    assert.equal((await postOk200(pos)).duplicate_of, web.event_id);
    // The till knows only its own event: a refund of the $40 shirt, then a void, both naming it.
    // Web: $140 → 70 stars + web-bonus 50 = 120. The $40 shirt: 20 + 4/14 of the bonus (14) = 34.
    const refund = await postOk(reversal(pos, 'purchase_refunded', [shirt(4000)]));
    assert.equal(reversed(refund, 'northwind-stars').points, 34);
    const voided = await postOk(reversal(pos, 'purchase_voided'));
    assert.equal(reversed(voided, 'northwind-stars').points, 120 - 34);
    assert.deepEqual(await available(member), { 'acme-points': 0, 'northwind-stars': 0 });
    // Both took effect on the web event: voiding it again is refused, and the order shows them.
    const again = await post(reversal(web, 'purchase_voided'));
    assert.equal(again.json<Json>().error.code, 'OVER_REFUND', again.body);
    const order = await get(`/v1/orders/${order_id}/loyalty`);
    assert.equal(JSON.stringify(order).includes(refund.event_id), true, JSON.stringify(order));
    assert.equal(JSON.stringify(order).includes(voided.event_id), true, JSON.stringify(order));
    // An id no event ever had is still not found.
    const ghost = await post({ ...reversal(web, 'purchase_voided'), reversal_of: uid('evt_none') });
    assert.equal(ghost.json<Json>().error.code, 'REVERSAL_TARGET_NOT_FOUND', ghost.body);
    await assertVerifyOk();
  });

  void it('earns only on eligible lines (eligible_subtotal_cents as the till reports it)', async () => {
    const member = uid('mbr_elig');
    const ev = purchase(member, 'store_atl_012', [
      shirt(5000),
      {
        sku: 'GIFTCARD-50',
        category: 'gift_card',
        unit_price_cents: 5000,
        quantity: 1,
        eligible_for_points: false,
      },
      { sku: 'SKU-SOCKS', category: 'socks', unit_price_cents: 1200, quantity: 2 },
    ]);
    assert.equal(ev.subtotal_cents, 12400);
    assert.equal(ev.eligible_subtotal_cents, 7400);
    const body = await postOk(ev);
    // 7400 eligible cents: 37 stars, 7 acme — not 62 / 12 on the whole subtotal.
    assert.equal(accrual(body, 'northwind-stars').points, nw(7400));
    assert.equal(accrual(body, 'northwind-stars').points, 37);
    assert.equal(accrual(body, 'acme-points').points, acme(7400));
    assert.equal(accrual(body, 'acme-points').points, 7);
    assert.deepEqual(await available(member), { 'acme-points': 7, 'northwind-stars': 37 });

    // A basket of only ineligible lines earns nothing at all, but is accepted.
    const member2 = uid('mbr_elig');
    const gift = await postOk(
      purchase(member2, 'web_northwind', [
        {
          sku: 'GIFTCARD-50',
          category: 'gift_card',
          unit_price_cents: 5000,
          quantity: 1,
          eligible_for_points: false,
        },
      ]),
    );
    assert.equal(accrual(gift, 'northwind-stars').points, 0);
    assert.equal(accrual(gift, 'acme-points').points, 0);
    assert.deepEqual(await available(member2), { 'acme-points': 0, 'northwind-stars': 0 });
  });

  void it('a refund of one of two same-sku lines takes back the line sold at its price', async () => {
    const member = uid('mbr_refund_price');
    const full: Line = { sku: 'SKU-JACKET', category: 'outerwear', unit_price_cents: 10000, quantity: 1 };
    const sale: Line = { ...full, unit_price_cents: 4000 };
    const p = purchase(member, 'store_atl_012', [full, sale]);
    assert.equal(accrual(await postOk(p), 'northwind-stars').points, 150 + 60); // 50 × 3 and 20 × 3
    const r = await postOk(reversal(p, 'purchase_refunded', [{ ...sale }]));
    assert.equal(reversed(r, 'northwind-stars').points, 60);
    assert.equal(reversed(r, 'acme-points').points, 4);
    assert.deepEqual(await available(member), { 'acme-points': 10, 'northwind-stars': 150 });
  });

  void it("a partial refund takes back exactly the returned line's points, line multiplier included; refunds never exceed the purchase", async () => {
    const member = uid('mbr_refund');
    const jacket: Line = { sku: 'SKU-JACKET', category: 'outerwear', unit_price_cents: 10000, quantity: 1 };
    const tee: Line = { sku: 'SKU-TEE', category: 'tops', unit_price_cents: 2000, quantity: 3 };
    const p = purchase(member, 'store_atl_012', [jacket, tee]);
    const body = await postOk(p);
    // 16000 eligible cents → 80 base stars: jacket 50 × 3 (outerwear-x3) = 150, tees 30 → 180; acme 16.
    const stars = accrual(body, 'northwind-stars');
    assert.equal(stars.points, 180);
    assert.deepEqual(stars.rules_applied, ['outerwear-x3']);
    assert.equal(accrual(body, 'acme-points').points, 16);

    const r1 = await postOk(reversal(p, 'purchase_refunded', [{ ...jacket }]));
    assert.equal(reversed(r1, 'northwind-stars').points, 150);
    assert.equal(reversed(r1, 'acme-points').points, 10);
    assert.deepEqual(await available(member), { 'acme-points': 6, 'northwind-stars': 30 });

    // The jacket again: nothing left of it to return.
    const overJacket = await post(reversal(p, 'purchase_refunded', [{ ...jacket }]));
    assert.equal(overJacket.statusCode, 422, overJacket.body);
    assert.equal(overJacket.json<Json>().error.code, 'OVER_REFUND');

    const r2 = await postOk(reversal(p, 'purchase_refunded', [{ ...tee, quantity: 1 }]));
    assert.equal(reversed(r2, 'northwind-stars').points, 10);
    assert.equal(reversed(r2, 'acme-points').points, 2);

    // Three more tees than remain (2): OVER_REFUND with the field, and nothing changes.
    const overTee = await post(reversal(p, 'purchase_refunded', [{ ...tee, quantity: 3 }]));
    assert.equal(overTee.statusCode, 422, overTee.body);
    assert.equal(overTee.json<Json>().error.code, 'OVER_REFUND');
    assert.equal(overTee.json<Json>().error.details.field, 'line_items[0].quantity');
    assert.deepEqual(await available(member), { 'acme-points': 4, 'northwind-stars': 20 });

    // A sku that was never bought is not refundable.
    const stranger = await post(reversal(p, 'purchase_refunded', [shirt(100)]));
    assert.equal(stranger.statusCode, 422);

    const r3 = await postOk(reversal(p, 'purchase_refunded', [{ ...tee, quantity: 2 }]));
    assert.equal(reversed(r3, 'northwind-stars').points, 20);
    assert.equal(reversed(r3, 'acme-points').points, 4);
    assert.deepEqual(await available(member), { 'acme-points': 0, 'northwind-stars': 0 });

    // Fully refunded: a void now takes nothing and is refused.
    const lateVoid = await post(reversal(p, 'purchase_voided'));
    assert.equal(lateVoid.statusCode, 422, lateVoid.body);
    assert.equal(lateVoid.json<Json>().error.code, 'OVER_REFUND');
    await assertVerifyOk();
  });

  void it('a refund prorates the event-level bonus over the returned lines', async () => {
    const member = uid('mbr_bonus');
    const a: Line = { sku: 'SKU-A', category: 'tops', unit_price_cents: 6000, quantity: 1 };
    const b: Line = { sku: 'SKU-B', category: 'tops', unit_price_cents: 4000, quantity: 1 };
    const p = purchase(member, 'web_northwind', [a, b]);
    const body = await postOk(p);
    assert.equal(accrual(body, 'northwind-stars').points, 100); // 50 + web-bonus 50
    // Returning line a (60% of the value) takes back its 30 and 60% of the 50 bonus.
    const r = await postOk(reversal(p, 'purchase_refunded', [{ ...a }]));
    assert.equal(reversed(r, 'northwind-stars').points, 60);
    assert.equal(reversed(r, 'acme-points').points, 6);
    const rest = await postOk(reversal(p, 'purchase_voided'));
    assert.equal(reversed(rest, 'northwind-stars').points, 40);
    assert.equal(reversed(rest, 'acme-points').points, 4);
    assert.deepEqual(await available(member), { 'acme-points': 0, 'northwind-stars': 0 });
  });

  void it('a refund after the points were spent takes from the rest of the balance and writes off a small shortfall', async () => {
    const member = uid('mbr_spent');
    await postOk(purchase(member, 'store_atl_012', [shirt(6000)], { ts: ago(3) })); // 30 stars, 6 acme
    const p = purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(2) }); // 50 stars, 10 acme
    await postOk(p);
    const priorStars = 30; // what the member had before the reversed purchase
    await redeemPoints(member, 'northwind-stars', 'northwind', 40);
    assert.deepEqual(await available(member), { 'acme-points': 16, 'northwind-stars': 40 });

    const v = await postOk(reversal(p, 'purchase_voided'));
    const r = reversed(v, 'northwind-stars');
    assert.equal(r.points, 50);
    // 40 left in the balance are taken; the 10 short (≤ absorb_up_to 100) are written off.
    assert.equal(r.from_available, 40);
    assert.equal(r.written_off, 10);
    assert.equal(r.negative_balance, 0);
    const after = await available(member);
    assert.deepEqual(after, { 'acme-points': 6, 'northwind-stars': 0 });
    // Never ahead: what is left plus what was spent, less what the program absorbed, is what
    // the member had without the reversed purchase.
    assert.ok(after['northwind-stars'] + 40 - r.written_off <= priorStars);
    const reviews = (await get(`/v1/reviews?member_id=${member}`)).data;
    assert.deepEqual(reviews, []);
    await assertVerifyOk();
  });

  void it('a larger shortfall leaves a recorded negative balance and an open review, paid down by later accruals first', async () => {
    const member = uid('mbr_debt');
    await postOk(purchase(member, 'store_atl_012', [shirt(6000)], { ts: ago(5) })); // 30 stars
    const p = purchase(member, 'store_atl_012', [shirt(40000)], { ts: ago(4) }); // 200 stars
    await postOk(p);
    await redeemPoints(member, 'northwind-stars', 'northwind', 230);
    assert.equal((await available(member))['northwind-stars'], 0);

    const v = await postOk(reversal(p, 'purchase_voided', [], ago(3.5)));
    const r = reversed(v, 'northwind-stars');
    assert.equal(r.points, 200);
    assert.equal(r.negative_balance, 200); // 200 > absorb_up_to 100: not written off
    assert.equal(r.written_off, 0);
    let stars = (await available(member))['northwind-stars']!;
    assert.equal(stars, -200);
    assert.ok(stars + 230 <= 30, 'never ahead of the 30 the member had without the purchase');

    const open = (await get(`/v1/reviews?member_id=${member}&status=open`)).data;
    assert.equal(open.length, 1);
    assert.equal(open[0].program_id, 'northwind-stars');
    assert.equal(open[0].points, 200);
    assert.equal(open[0].kind, 'negative_balance');
    assert.equal(open[0].event_id, v.event_id);
    await assertVerifyOk();

    // Later accruals pay the debt down first: 50 → −150, still open.
    const p3 = await postOk(purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(3) }));
    assert.equal(accrual(p3, 'northwind-stars').points, 50);
    stars = (await available(member))['northwind-stars']!;
    assert.equal(stars, -150);
    assert.equal((await get(`/v1/reviews?member_id=${member}&status=open`)).data.length, 1);
    // Spending is impossible while negative.
    await assert.rejects(() => redeemPoints(member, 'northwind-stars', 'northwind', 1));

    // 150 more clear it: balance 0, the review is resolved.
    await postOk(purchase(member, 'store_atl_012', [shirt(30000)], { ts: ago(2) }));
    assert.equal((await available(member))['northwind-stars'], 0);
    assert.deepEqual((await get(`/v1/reviews?member_id=${member}&status=open`)).data, []);
    const resolved = (await get(`/v1/reviews?member_id=${member}&status=resolved`)).data;
    assert.equal(resolved.length, 1);
    assert.equal(resolved[0].detail.reversal_of, p.event_id, 'why it was opened stays on record');
    assert.equal(typeof resolved[0].detail.resolved_at, 'string');
    // And the next accrual is the member's again.
    await postOk(purchase(member, 'store_atl_012', [shirt(2000)], { ts: ago(1) }));
    assert.equal((await available(member))['northwind-stars'], 10);
    await assertVerifyOk();
  });

  void it("pays the referral bonus once, on the referred member's first qualifying purchase", async () => {
    const referrer = uid('mbr_referrer');
    const referred = uid('mbr_referred');
    const referral = (ts: string): Json => {
      const eid = uid('ref');
      return {
        event_id: eid,
        event_type: 'member_referred',
        member_id: referred,
        referrer_member_id: referrer,
        channel: 'online',
        store_id: 'web_northwind',
        transaction_id: `txn_${eid}`,
        transaction_ts: ts,
        currency: 'USD',
        idempotency_key: `key_${eid}`,
      };
    };
    const link = await postOk(referral(ago(3)));
    assert.deepEqual(link.accruals, []);
    // Below min_spend_minor (5000): no bonus yet.
    const small = await postOk(purchase(referred, 'store_atl_012', [shirt(3000)], { ts: ago(2.5) }));
    assert.equal(small.referral_bonus, undefined);
    assert.equal((await available(referrer))['northwind-stars'] ?? 0, 0);

    const first = await postOk(purchase(referred, 'store_atl_012', [shirt(6000)], { ts: ago(2) }));
    assert.deepEqual(first.referral_bonus, {
      referrer_member_id: referrer,
      program_id: 'northwind-stars',
      points: 500,
      debt_paid: 0,
    });
    assert.equal((await available(referrer))['northwind-stars'], 500);
    // The referred member earns their own points only.
    assert.deepEqual(await available(referred), { 'acme-points': 9, 'northwind-stars': 45 });

    const second = await postOk(purchase(referred, 'store_atl_012', [shirt(8000)], { ts: ago(1) }));
    assert.equal(second.referral_bonus, undefined);
    assert.equal((await available(referrer))['northwind-stars'], 500);
    // Re-sending the referral (new event, same link) pays nothing either.
    const again = await post(referral(ago(0.5)));
    assert.ok(again.statusCode < 500, again.body);
    await postOk(purchase(referred, 'store_atl_012', [shirt(9000)], { ts: ago(0.25) }));
    assert.equal((await available(referrer))['northwind-stars'], 500);
    await assertVerifyOk();
  });

  void it('refunds and voids weighed (fractional) quantities exactly', async () => {
    const member = uid('mbr_weighed');
    const cheese: Line = { sku: 'CHEESE', category: 'deli', unit_price_cents: 2000, quantity: 0.75 };
    const p = purchase(member, 'store_ber_001', [
      cheese,
      { sku: 'BREAD', category: 'bakery', unit_price_cents: 100, quantity: 1 },
    ]);
    const body = await postOk(p);
    // 2000 × 0.75 + 100 = 1600 EUR cents → 16 harbor points; 1600 × 1.08 = 1728 USD cents → 1 acme.
    assert.equal(accrual(body, 'harbor-rewards').points, 16);
    const r = await postOk(reversal(p, 'purchase_refunded', [{ ...cheese, quantity: 0.25 }]));
    assert.equal(reversed(r, 'harbor-rewards').points, 5); // 500 cents' worth
    const over = await post(reversal(p, 'purchase_refunded', [{ ...cheese, quantity: 0.6 }]));
    assert.equal(over.statusCode, 422, over.body);
    assert.equal(over.json<Json>().error.code, 'OVER_REFUND');
    const v = await postOk(reversal(p, 'purchase_voided'));
    assert.equal(reversed(v, 'harbor-rewards').points, 11);
    assert.equal(reversed(v, 'acme-points').points, 1);
    assert.deepEqual(await available(member), { 'acme-points': 0, 'harbor-rewards': 0 });
    await assertVerifyOk();
  });

  void it('a purchase that earned nothing can still be voided after a partial refund, but not refunded past its lines', async () => {
    const member = uid('mbr_nothing');
    const card = (sku: string): Line => ({
      sku,
      category: 'gift_card',
      unit_price_cents: 2500,
      quantity: 1,
      eligible_for_points: false,
    });
    const p = purchase(member, 'store_atl_012', [card('GC-1'), card('GC-2')]);
    await postOk(p);
    const r = await postOk(reversal(p, 'purchase_refunded', [card('GC-1')]));
    assert.equal(reversed(r, 'northwind-stars').points, 0);
    const v = await post(reversal(p, 'purchase_voided'));
    assert.equal(v.statusCode, 201, v.body); // GC-2 is still out: the void is legitimate
    const again = await post(reversal(p, 'purchase_refunded', [card('GC-2')]));
    assert.equal(again.statusCode, 422, again.body);
    assert.equal(again.json<Json>().error.code, 'OVER_REFUND');
    assert.deepEqual(await available(member), { 'acme-points': 0, 'northwind-stars': 0 });
  });

  void it('a refund that arrives before its purchase is rejected, and its retry after the purchase is accepted', async () => {
    const member = uid('mbr_order');
    const p = purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(2) });
    const r = reversal(p, 'purchase_refunded', [shirt(10000)]);
    const early = await post(r);
    assert.equal(early.statusCode, 422, early.body);
    assert.equal(early.json<Json>().error.code, 'REVERSAL_TARGET_NOT_FOUND');
    await postOk(p);
    // The rejection did not consume the idempotency key: the same request now goes through.
    const retried = await postOk(r);
    assert.equal(reversed(retried, 'northwind-stars').points, 50);
    assert.deepEqual(await available(member), { 'acme-points': 0, 'northwind-stars': 0 });
  });

  void it('rejects a reversal older than reversal_lookback_days with REVERSAL_OUTSIDE_WINDOW', async () => {
    const member = uid('mbr_lookback');
    const p = purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(1) });
    await postOk(p);
    try {
      clock.advance(181 * DAY_MS);
      const res = await post(reversal(p, 'purchase_voided', [], ago(1)));
      assert.equal(res.statusCode, 422, res.body);
      assert.equal(res.json<Json>().error.code, 'REVERSAL_OUTSIDE_WINDOW');
      assert.equal(res.json<Json>().error.details.field, 'reversal_of');
      clock.set(NOW);
      clock.advance(179 * DAY_MS);
      const ok = await post(reversal(p, 'purchase_voided', [], ago(1)));
      assert.equal(ok.statusCode, 201, ok.body);
    } finally {
      clock.set(NOW);
    }
    assert.deepEqual(await available(member), { 'acme-points': 0, 'northwind-stars': 0 });
  });

  void it("a reversal must come from the purchase's brand: a harbor key cannot void a northwind purchase", async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: t.adminHeaders,
      payload: { name: 'harbor till', scope: 'brand:harbor' },
    });
    const harbor = { authorization: `Bearer ${created.json<Json>().secret}` };
    const member = uid('mbr_xbrand');
    const p = purchase(member, 'store_atl_012', [shirt(10000)]);
    await postOk(p);
    const sneaky = {
      ...reversal(p, 'purchase_voided'),
      store_id: 'web_harbor',
      channel: 'online',
      currency: 'EUR',
    };
    const res = await post(sneaky, harbor);
    assert.equal(res.statusCode, 422, res.body);
    assert.equal(res.json<Json>().error.details.field, 'store_id');
    assert.deepEqual(await available(member), { 'acme-points': 10, 'northwind-stars': 50 });
    // Not even with the admin key: a harbor store cannot reverse a northwind purchase.
    const viaAdmin = await post({ ...sneaky, event_id: uid('void'), idempotency_key: uid('key') });
    assert.equal(viaAdmin.statusCode, 422, viaAdmin.body);
    assert.deepEqual(await available(member), { 'acme-points': 10, 'northwind-stars': 50 });
  });

  void it('concurrent copies of one event, BOPIS twins and competing voids take effect once', async () => {
    const member = uid('mbr_race');
    const ev = purchase(member, 'store_atl_012', [shirt(10000)]);
    const copies = await Promise.all(Array.from({ length: 6 }, () => post(ev)));
    assert.deepEqual(copies.map((r) => r.statusCode).sort(), [200, 200, 200, 200, 200, 201]);
    const order_id = uid('ord');
    const twins = await Promise.all(
      ['web_northwind', 'store_atl_012', 'bopis_atl_012', 'app_northwind'].map((s) =>
        post(purchase(member, s, [shirt(20000)], { order_id })),
      ),
    );
    assert.deepEqual(twins.map((r) => r.statusCode).sort(), [200, 200, 200, 201]);
    const voids = await Promise.all([0, 1, 2].map(() => post(reversal(ev, 'purchase_voided'))));
    assert.deepEqual(voids.map((r) => r.statusCode).sort(), [201, 422, 422]);
    const b = await available(member);
    // What is left is the one order accrued once (100 stars, +50 if the web twin won; 20 acme).
    assert.equal(b['acme-points'], 20);
    assert.ok(b['northwind-stars'] === 100 || b['northwind-stars'] === 150, JSON.stringify(b));
    await assertVerifyOk();
  });

  void it('upgrades the tier at once: after spend past the gold threshold the next event earns gold-bonus', async () => {
    const member = uid('mbr_tier');
    const a = await postOk(purchase(member, 'store_atl_012', [shirt(30000)], { ts: ago(3) }));
    assert.equal(accrual(a, 'northwind-stars').points, 150);
    assert.equal((await balances(member))['northwind-stars']!.tier, 'silver');
    // 30000 + 25000 ≥ 50000: gold from this purchase on (it earned as silver).
    const b = await postOk(purchase(member, 'store_atl_012', [shirt(25000)], { ts: ago(2) }));
    assert.equal(accrual(b, 'northwind-stars').points, 125);
    assert.deepEqual(accrual(b, 'northwind-stars').rules_applied, []);
    assert.equal((await balances(member))['northwind-stars']!.tier, 'gold');
    const c = await postOk(purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(1) }));
    // 50 × 1.2 = 60.
    assert.equal(accrual(c, 'northwind-stars').points, 60);
    assert.deepEqual(accrual(c, 'northwind-stars').rules_applied, ['gold-bonus']);
    assert.equal(accrual(c, 'acme-points').points, 10);
    assert.deepEqual(await available(member), { 'acme-points': 65, 'northwind-stars': 335 });
  });
});

void describe('POST /v1/events: malformed events and GET /v1/rejections', () => {
  const base = (): Json => purchase(uid('mbr_bad'), 'store_atl_012', [shirt(1000)]);
  const cases: [string, (e: Json) => unknown, string, string | null][] = [
    ['missing member_id', (e) => (delete e.member_id, e), 'INVALID_EVENT', 'member_id'],
    ['missing idempotency_key', (e) => (delete e.idempotency_key, e), 'INVALID_EVENT', 'idempotency_key'],
    ['missing line_items', (e) => (delete e.line_items, e), 'INVALID_EVENT', 'line_items'],
    ['subtotal as a string', (e) => ({ ...e, subtotal_cents: '1000' }), 'INVALID_EVENT', 'subtotal_cents'],
    ['subtotal fractional', (e) => ({ ...e, subtotal_cents: 10.5 }), 'INVALID_EVENT', 'subtotal_cents'],
    [
      'negative unit price',
      (e) => ({ ...e, line_items: [{ ...e.line_items[0], unit_price_cents: -1000 }] }),
      'INVALID_EVENT',
      'line_items[0].unit_price_cents',
    ],
    [
      'negative eligible subtotal',
      (e) => ({ ...e, eligible_subtotal_cents: -5 }),
      'INVALID_EVENT',
      'eligible_subtotal_cents',
    ],
    [
      'eligible above subtotal',
      (e) => ({ ...e, eligible_subtotal_cents: 5000 }),
      'INVALID_EVENT',
      'eligible_subtotal_cents',
    ],
    [
      'zero quantity',
      (e) => ({ ...e, line_items: [{ ...e.line_items[0], quantity: 0 }] }),
      'INVALID_EVENT',
      'line_items[0].quantity',
    ],
    [
      'quantity as a string',
      (e) => ({ ...e, line_items: [{ ...e.line_items[0], quantity: '1' }] }),
      'INVALID_EVENT',
      'line_items[0].quantity',
    ],
    ['huge amount', (e) => ({ ...e, subtotal_cents: 1e20 }), 'INVALID_EVENT', 'subtotal_cents'],
    [
      'bad timestamp format',
      (e) => ({ ...e, transaction_ts: '2026-03-10 12:00' }),
      'INVALID_EVENT',
      'transaction_ts',
    ],
    [
      'impossible timestamp',
      (e) => ({ ...e, transaction_ts: '2026-02-30T25:61:00Z' }),
      'INVALID_EVENT',
      'transaction_ts',
    ],
    // Date.parse would roll these over to the 1st of the next month, a day nobody wrote.
    [
      'a day the month lacks',
      (e) => ({ ...e, transaction_ts: '2026-11-31T10:00:00Z' }),
      'INVALID_EVENT',
      'transaction_ts',
    ],
    [
      '29 February of a common year',
      (e) => ({ ...e, transaction_ts: '2026-02-29T10:00:00Z' }),
      'INVALID_EVENT',
      'transaction_ts',
    ],
    // PostgreSQL cannot store year 0000; nothing in a ledger predates the epoch.
    [
      'year 0000',
      (e) => ({ ...e, transaction_ts: '0000-01-01T00:00:00Z' }),
      'INVALID_EVENT',
      'transaction_ts',
    ],
    [
      'before 1970',
      (e) => ({ ...e, transaction_ts: '1969-12-31T23:59:59Z' }),
      'INVALID_EVENT',
      'transaction_ts',
    ],
    // A member id is a path segment of /v1/members/{member_id}: one the paths cannot name is refused.
    ['member id with #', (e) => ({ ...e, member_id: 'abc#1' }), 'INVALID_EVENT', 'member_id'],
    ['member id with /', (e) => ({ ...e, member_id: 'abc/1' }), 'INVALID_EVENT', 'member_id'],
    [
      'timestamp as a number',
      (e) => ({ ...e, transaction_ts: 1773144000000 }),
      'INVALID_EVENT',
      'transaction_ts',
    ],
    ['unknown event type', (e) => ({ ...e, event_type: 'purchase_exploded' }), 'INVALID_EVENT', 'event_type'],
    ['bad currency', (e) => ({ ...e, currency: 'usd' }), 'INVALID_EVENT', 'currency'],
    [
      'refund without reversal_of',
      (e) => ({ ...e, event_type: 'purchase_refunded' }),
      'INVALID_EVENT',
      'reversal_of',
    ],
    [
      'referral without referrer',
      (e) => ({ ...e, event_type: 'member_referred' }),
      'INVALID_EVENT',
      'referrer_member_id',
    ],
    ['line item not an object', (e) => ({ ...e, line_items: [42] }), 'INVALID_EVENT', 'line_items[0]'],
    ['unknown store', (e) => ({ ...e, store_id: 'store_nowhere_9' }), 'UNKNOWN_STORE', 'store_id'],
    [
      'future event',
      (e) => ({ ...e, transaction_ts: new Date(clock.now().getTime() + 2 * DAY_MS).toISOString() }),
      'FUTURE_EVENT',
      'transaction_ts',
    ],
    ['no exchange rate', (e) => ({ ...e, currency: 'JPY' }), 'CURRENCY_MISMATCH', 'currency'],
    ['an array', () => [], 'INVALID_EVENT', null],
    ['a string', () => 'purchase', 'INVALID_EVENT', null],
    ['a number', () => 7, 'INVALID_EVENT', null],
  ];

  for (const [name, mutate, code, field] of cases) {
    void it(`${name} → 422 ${code}, field ${field}, kept at /v1/rejections`, async () => {
      const payload = mutate(base());
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { ...t.adminHeaders, 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      });
      assert.equal(res.statusCode, 422, res.body);
      const err = res.json<Json>().error;
      assert.equal(err.code, code);
      assert.equal(err.details.field, field);
      assert.equal(typeof err.details.rejection_id, 'string');
      const listed = await rejections(`code=${code}&limit=500`);
      const mine = listed.find((r) => r.id === err.details.rejection_id);
      assert.ok(mine, 'listed');
      assert.equal(mine.field, field);
      if (typeof payload === 'object' && payload !== null && !Array.isArray(payload))
        assert.deepEqual(mine.payload, payload);
      // Nothing accrued for the would-be member.
      const member = (payload as Json)?.member_id;
      if (typeof member === 'string') assert.deepEqual(await available(member), {});
    });
  }

  void it('never answers 5xx to hostile bodies', async () => {
    const bodies: string[] = [
      '{',
      'null',
      '{"event_id": {"$gt": ""}}',
      JSON.stringify({ ...base(), line_items: Array(501).fill(base().line_items[0]) }),
      JSON.stringify({ ...base(), member_id: 'x'.repeat(10_000) }),
      JSON.stringify({ ...base(), line_items: [{ ...base().line_items[0], quantity: 1e-9 }] }),
      JSON.stringify({ ...base(), line_items: [{ ...base().line_items[0], quantity: Number.MAX_VALUE }] }),
      JSON.stringify({ ...base(), idempotency_key: 'ü'.repeat(5) }),
      JSON.stringify({ ...base(), order_id: '' }),
      '{"__proto__": {"admin": true}}',
    ];
    for (const payload of bodies) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/events',
        headers: { ...t.adminHeaders, 'content-type': 'application/json' },
        payload,
      });
      assert.ok(
        res.statusCode >= 400 && res.statusCode < 500,
        `${payload.slice(0, 80)} → ${res.statusCode} ${res.body}`,
      );
      assert.equal(typeof res.json<Json>().error.code, 'string');
    }
  });

  void it('filters rejections by code and store_id and pages them by cursor, newest first', async () => {
    const store = `store_gone_${process.pid}`;
    const sent: string[] = [];
    for (let i = 0; i < 5; i++) {
      const e: Json = { ...base(), store_id: store };
      sent.push(e.event_id);
      const res = await post(e);
      assert.equal(res.statusCode, 422);
    }
    // Another store's rejection and another code at this store must not show up.
    await post({ ...base(), store_id: `${store}_other` });
    const otherCode: Json = { ...base(), store_id: store, subtotal_cents: 'x' };
    await post(otherCode);

    const seen: Json[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: Json = await get(
        `/v1/rejections?code=UNKNOWN_STORE&store_id=${store}&limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      assert.ok(page.data.length <= 2);
      seen.push(...page.data);
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    assert.equal(pages, 3);
    assert.deepEqual(
      seen.map((r) => r.event_id),
      [...sent].reverse(),
    );
    for (const r of seen) {
      assert.equal(r.code, 'UNKNOWN_STORE');
      assert.equal(r.store_id, store);
    }
    const byStore = (await get(`/v1/rejections?store_id=${store}`)).data;
    assert.equal(byStore.length, 6);
    assert.equal(byStore[0].event_id, otherCode.event_id);
    assert.equal(byStore[0].code, 'INVALID_EVENT');
    assert.equal((await get(`/v1/rejections?store_id=${store}&from=${NOW}`)).data.length, 6);
    assert.equal((await get(`/v1/rejections?store_id=${store}&to=${NOW}`)).data.length, 0);
    const bad = await t.app.inject({
      method: 'GET',
      url: '/v1/rejections?cursor=not-a-cursor',
      headers: t.adminHeaders,
    });
    assert.equal(bad.statusCode, 400);
  });
});

void describe('POST /v1/events/batch', () => {
  void it('answers one result per event, in order, each with its own status and http_status', async () => {
    const member = uid('mbr_batch');
    const a = purchase(member, 'store_atl_012', [shirt(10000)]);
    const bad = (() => {
      const e = purchase(member, 'store_atl_012', [shirt(1000)]);
      delete e.member_id;
      return e;
    })();
    const reusedKey: Json = {
      ...purchase(member, 'store_atl_012', [shirt(7000)]),
      idempotency_key: a.idempotency_key,
    };
    const late = purchase(member, 'store_atl_012', [shirt(1000)], { ts: ago(100) });
    const unknownStore: Json = { ...purchase(member, 'store_atl_012', [shirt(1000)]), store_id: 'nowhere' };
    const d = purchase(member, 'web_northwind', [shirt(2000)]);
    const voidA = reversal(a, 'purchase_voided');
    const events = [a, bad, a, reusedKey, late, unknownStore, d, voidA, voidA];
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: t.adminHeaders,
      payload: { events },
    });
    assert.equal(res.statusCode, 200, res.body);
    const results: Json[] = res.json<Json>().results;
    assert.equal(results.length, events.length);
    assert.deepEqual(
      results.map((r) => r.http_status),
      [201, 422, 200, 409, 422, 422, 201, 201, 200],
    );
    assert.equal(results[0]!.status, 'accepted');
    assert.equal(accrual(results[0]!, 'northwind-stars').points, 50);
    assert.equal(results[1]!.error.code, 'INVALID_EVENT');
    assert.equal(results[1]!.error.details.field, 'member_id');
    assert.equal(results[2]!.status, 'duplicate');
    assert.equal(results[2]!.duplicate_of, a.event_id);
    assert.equal(results[3]!.error.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(results[4]!.error.code, 'LATE_EVENT');
    assert.equal(results[5]!.error.code, 'UNKNOWN_STORE');
    assert.equal(accrual(results[6]!, 'northwind-stars').points, 60); // 10 + web-bonus 50
    assert.equal(reversed(results[7]!, 'northwind-stars').points, 50);
    assert.equal(results[8]!.status, 'duplicate');
    assert.deepEqual(await available(member), { 'acme-points': 2, 'northwind-stars': 60 });
    const listed = (await rejections('limit=500')).map((r) => r.event_id);
    for (const e of [late, unknownStore, reusedKey])
      assert.ok(listed.includes(e.event_id), `${e.event_id} listed`);
    await assertVerifyOk();
  });

  void it('refuses an empty or oversized batch as a whole (4xx), never 5xx', async () => {
    for (const payload of [{ events: [] }, { events: Array(1001).fill({}) }, { nope: 1 }]) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/events/batch',
        headers: t.adminHeaders,
        payload,
      });
      assert.ok(res.statusCode >= 400 && res.statusCode < 500, `${res.statusCode} ${res.body}`);
    }
  });
});

void describe('POST /v1/events/simulate', () => {
  void it('explains what an event would earn and changes nothing', async () => {
    const member = uid('mbr_sim');
    await postOk(purchase(member, 'store_atl_012', [shirt(10000)]));
    const before = await balances(member);
    const ev = purchase(member, 'web_northwind', [
      { sku: 'SKU-JACKET', category: 'outerwear', unit_price_cents: 10000, quantity: 1 },
      shirt(5000),
    ]);
    const res = await simulate(ev);
    assert.equal(res.statusCode, 200, res.body);
    const sim = res.json<Json>();
    const stars = accrual(sim, 'northwind-stars');
    // 15000 cents → 75 base: jacket 50 × 3 = 150, shirt 25, + web-bonus 50 = 225.
    assert.equal(stars.points, 225);
    assert.deepEqual([...stars.rules_applied].sort(), ['outerwear-x3', 'web-bonus']);
    const jacketLine = stars.lines.find((l: Json) => l.sku === 'SKU-JACKET');
    assert.equal(jacketLine.multiplier, '3');
    assert.deepEqual(jacketLine.rules_applied, ['outerwear-x3']);
    assert.equal(jacketLine.points, 150);
    assert.deepEqual(stars.bonuses, [{ rule_id: 'web-bonus', line_index: null, points: 50 }]);
    assert.equal(accrual(sim, 'acme-points').points, 15);

    assert.deepEqual(await balances(member), before);
    // Nothing stored: the very same event is then accepted as new (not a duplicate).
    const real = await postOk(ev);
    assert.equal(accrual(real, 'northwind-stars').points, 225);
    // A new member is not created by simulate.
    const ghost = uid('mbr_ghost');
    const g = await simulate(purchase(ghost, 'store_atl_012', [shirt(1000)]));
    assert.equal(g.statusCode, 200, g.body);
    const m = await t.app.inject({ method: 'GET', url: `/v1/members/${ghost}`, headers: t.adminHeaders });
    assert.equal(m.statusCode, 404);
    // A malformed simulate names the field.
    const bad = await simulate({ ...ev, subtotal_cents: -1 });
    assert.equal(bad.statusCode, 422);
    assert.equal(bad.json<Json>().error.details.field, 'subtotal_cents');
  });

  void it('computes late, future and duplicate events and says what intake would answer', async () => {
    const verdict = async (ev: Json) => {
      const res = await simulate(ev);
      assert.equal(res.statusCode, 200, res.body);
      const body = res.json<Json>();
      assert.equal(accrual(body, 'northwind-stars').points, 50, 'the earn is computed whatever intake says');
      return body.intake as Json;
    };
    const member = uid('mbr_sim_verdict');
    const fresh = purchase(member, 'store_atl_012', [shirt(10000)], { order_id: uid('ord') });
    assert.deepEqual(await verdict(fresh), { status: 'accepted' });
    const late = await verdict(purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(100) }));
    assert.equal(late.status, 'rejected');
    assert.equal(late.code, 'LATE_EVENT');
    assert.equal(late.http_status, 422);
    assert.equal(late.field, 'transaction_ts');
    const future = await verdict(purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(-1) }));
    assert.equal(future.code, 'FUTURE_EVENT');

    await postOk(fresh);
    // The same request again (same key), the same event under a new key, the same order.
    assert.deepEqual(await verdict(fresh), { status: 'duplicate', duplicate_of: fresh.event_id });
    assert.deepEqual(await verdict({ ...fresh, idempotency_key: uid('key') }), {
      status: 'duplicate',
      duplicate_of: fresh.event_id,
    });
    const sameOrder = purchase(member, 'store_atl_012', [shirt(10000)], { order_id: fresh.order_id });
    assert.deepEqual(await verdict(sameOrder), { status: 'duplicate', duplicate_of: fresh.event_id });
    // The key used for another body, the event id used for another event: intake's 409s.
    const keyReused = await verdict({
      ...sameOrder,
      order_id: uid('ord'),
      idempotency_key: fresh.idempotency_key,
    });
    assert.equal(keyReused.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(keyReused.http_status, 409);
    const idReused = await verdict({ ...sameOrder, order_id: uid('ord'), event_id: fresh.event_id });
    assert.equal(idReused.code, 'EVENT_ID_REUSED');
    assert.equal(idReused.field, 'event_id');
    // Simulating wrote nothing: intake's answers to the same events are the ones simulate gave.
    assert.equal(
      (await post(purchase(member, 'store_atl_012', [shirt(10000)], { ts: ago(100) }))).statusCode,
      422,
    );
    const again = await post(sameOrder);
    assert.equal(again.json<Json>().status, 'duplicate', again.body);
  });
});

void describe('brand keys', () => {
  void it('a brand:harbor key posts for harbor stores only (403 FORBIDDEN for northwind)', async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: t.adminHeaders,
      payload: { name: 'harbor pos', scope: 'brand:harbor' },
    });
    assert.equal(created.statusCode, 201, created.body);
    const harbor = { authorization: `Bearer ${created.json<Json>().secret}` };
    const member = uid('mbr_brand');
    const foreignEvent = purchase(member, 'store_atl_012', [shirt(10000)]);
    const foreign = await post(foreignEvent, harbor);
    assert.equal(foreign.statusCode, 403, foreign.body);
    assert.equal(foreign.json<Json>().error.code, 'FORBIDDEN');
    assert.equal(foreign.json<Json>().error.details.field, 'store_id');
    const foreignRejection = foreign.json<Json>().error.details.rejection_id as string;
    assert.match(foreignRejection, /^\d+$/);
    assert.deepEqual(await available(member), {});
    const own = await post(
      purchase(member, 'store_ber_001', [{ sku: 'BREAD', unit_price_cents: 250, quantity: 2 }]),
      harbor,
    );
    assert.equal(own.statusCode, 201, own.body);
    assert.equal(accrual(own.json<Json>(), 'harbor-rewards').points, 5);
    // In a batch the forbidden event fails alone.
    const foreignInBatch = purchase(member, 'web_northwind', [shirt(1000)]);
    const batch = await t.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: harbor,
      payload: {
        events: [
          foreignInBatch,
          purchase(member, 'web_harbor', [{ sku: 'EGGS', unit_price_cents: 300, quantity: 1 }]),
        ],
      },
    });
    assert.equal(batch.statusCode, 200, batch.body);
    assert.deepEqual(
      batch.json<Json>().results.map((r: Json) => r.http_status),
      [403, 201],
    );
    assert.deepEqual(await available(member), { 'acme-points': 0, 'harbor-rewards': 8 });
    // Simulate follows the same rule.
    const sim = await simulate(purchase(member, 'store_atl_012', [shirt(1000)]), harbor);
    assert.equal(sim.statusCode, 403);
    // A brand key sees only its own brand's rejections.
    await post({ ...purchase(member, 'store_atl_012', [shirt(1000)], { ts: ago(100) }) });
    // An event it sent that names no known store, or does not parse, is kept under its brand.
    const lost = purchase(member, 'store_nowhere_9', [shirt(1000)]);
    assert.equal((await post(lost, harbor)).statusCode, 422);
    const broken = { ...purchase(member, 'store_ber_001', [shirt(1000)]), subtotal_cents: -1 };
    assert.equal((await post(broken, harbor)).statusCode, 422);
    const mine = (await get('/v1/rejections?limit=500', harbor)).data;
    assert.ok(mine.every((r: Json) => r.brand_id === 'harbor'));
    for (const ev of [lost, broken] as Json[])
      assert.ok(
        mine.some((r: Json) => r.event_id === ev.event_id),
        `the harbor key finds its rejected ${String(ev.event_id)}`,
      );
    // Events refused for another brand's store are kept too, under the brand that sent them.
    const forbidden = mine.filter((r: Json) => r.code === 'FORBIDDEN' && r.payload.member_id === member);
    assert.deepEqual(
      forbidden.map((r: Json) => [r.event_id, r.store_id, r.field, r.payload.member_id]).sort(),
      [foreignEvent, foreignInBatch].map((ev: Json) => [ev.event_id, ev.store_id, 'store_id', member]).sort(),
    );
    assert.ok(forbidden.some((r: Json) => r.id === foreignRejection));
    const northwind = (await get('/v1/rejections?limit=500&brand_id=northwind')).data;
    assert.ok(!northwind.some((r: Json) => r.code === 'FORBIDDEN' && r.payload.member_id === member));
    const noKey = await t.app.inject({
      method: 'POST',
      url: '/v1/events',
      payload: purchase(member, 'store_ber_001', [shirt(1000)]),
    });
    assert.equal(noKey.statusCode, 401);
  });
});

// ---------------------------------------------------------------------------------------------
// Configuration variants: each test PUTs a modified copy of the demo config and the demo config
// is restored afterwards (rules take effect for the events that follow).

function variant(edit: (stars: Config['programs'][number], doc: Config) => void): Config {
  const doc = demoConfigDoc();
  const stars = doc.programs.find((p) => p.id === 'northwind-stars')!;
  edit(stars, doc);
  return doc;
}

void describe('configuration variants', () => {
  afterEach(async () => {
    await applyDemoConfig(t.app);
  });

  void it('rounds 1.25 points per dollar on $13.47 to 16 (floor), 17 (nearest) and 16.8375 (accumulate)', async () => {
    const expected = { floor: 16, nearest: 17, accumulate: 16.8375 } as const;
    for (const rounding of ['floor', 'nearest', 'accumulate'] as const) {
      await applyDemoConfig(
        t.app,
        variant((s) => {
          s.earn = { points: '1.25', per_amount_minor: 100 };
          s.rounding = rounding;
        }),
      );
      const member = uid(`mbr_round_${rounding}`);
      const body = await postOk(purchase(member, 'store_atl_012', [shirt(1347)]));
      assert.equal(accrual(body, 'northwind-stars').points, expected[rounding], rounding);
      assert.equal(accrual(body, 'acme-points').points, 1);
      assert.equal((await available(member))['northwind-stars'], expected[rounding]);
    }
    await assertVerifyOk();
  });

  void it('accumulate keeps fractions exact through a refund', async () => {
    await applyDemoConfig(
      t.app,
      variant((s) => {
        s.earn = { points: '1.25', per_amount_minor: 100 };
        s.rounding = 'accumulate';
      }),
    );
    const member = uid('mbr_acc');
    const p = purchase(member, 'store_atl_012', [
      shirt(1347),
      { sku: 'SKU-CAP', category: 'hats', unit_price_cents: 999, quantity: 1 },
    ]);
    const body = await postOk(p);
    // 2346 × 1.25 / 100 = 29.325
    assert.equal(accrual(body, 'northwind-stars').points, 29.325);
    const r = await postOk(
      reversal(p, 'purchase_refunded', [
        { sku: 'SKU-CAP', category: 'hats', unit_price_cents: 999, quantity: 1 },
      ]),
    );
    // 999 × 1.25 / 100 = 12.4875
    assert.equal(reversed(r, 'northwind-stars').points, 12.4875);
    assert.equal((await available(member))['northwind-stars'], 16.8375);
    await postOk(reversal(p, 'purchase_voided'));
    assert.equal((await available(member))['northwind-stars'], 0);
    await assertVerifyOk();
  });

  void it('resolves overlapping category and campaign multipliers by the stacking mode', async () => {
    // A March campaign ×2 on every purchase overlaps outerwear-x3 on the jacket line.
    const campaign = (multiplier: string) => ({
      id: 'spring-campaign',
      when: "event.channel == 'in_store'",
      multiplier,
      valid_from: '2026-03-01T00:00:00Z',
      valid_to: '2026-04-01T00:00:00Z',
    });
    const lines = [
      { sku: 'SKU-JACKET', category: 'outerwear', unit_price_cents: 10000, quantity: 1 },
      shirt(10000),
    ];
    // base 50 + 50. highest: jacket max(3, 2) = 3 → 150, shirt 2 → 100 = 250.
    // additive: jacket 1 + 2 + 1 = 4 → 200, shirt 2 → 100 = 300.
    // additive with a ×4 campaign: jacket 1 + 2 + 3 = 6, capped at max_multiplier 5 → 250, shirt 4 → 200 = 450.
    const cases = [
      { stacking: 'highest', multiplier: '2', points: 250, jacket: '3' },
      { stacking: 'additive', multiplier: '2', points: 300, jacket: '4' },
      { stacking: 'additive', multiplier: '4', points: 450, jacket: '5' },
    ] as const;
    for (const c of cases) {
      await applyDemoConfig(
        t.app,
        variant((s) => {
          s.stacking = c.stacking;
          s.rules = [...(s.rules ?? []), campaign(c.multiplier)];
        }),
      );
      const member = uid('mbr_stack');
      const ev = purchase(member, 'store_atl_012', lines);
      const body = await postOk(ev);
      const stars = accrual(body, 'northwind-stars');
      assert.equal(stars.points, c.points, `${c.stacking} ×${c.multiplier}`);
      assert.deepEqual([...stars.rules_applied].sort(), ['outerwear-x3', 'spring-campaign']);
      assert.equal(accrual(body, 'acme-points').points, 20);
      const sim = await simulate({ ...ev, event_id: uid('sim'), idempotency_key: uid('sim') });
      const jacket = accrual(sim.json<Json>(), 'northwind-stars').lines.find(
        (l: Json) => l.sku === 'SKU-JACKET',
      );
      assert.equal(jacket.multiplier, c.jacket);
      // The refund of the jacket takes back what the jacket line earned under that stacking.
      const r = await postOk(reversal(ev, 'purchase_refunded', [{ ...lines[0]! }]));
      assert.equal(reversed(r, 'northwind-stars').points, 50 * Number(c.jacket));
    }
    // Outside the campaign's validity (a late event before 1 March is judged by its own time) —
    // here: an event 6 h late on the campaign's first morning is in; we check the window edge by
    // simulating one at 2026-02-28T23:00Z (out of the late window is irrelevant for simulate).
    await applyDemoConfig(
      t.app,
      variant((s) => (s.rules = [...(s.rules ?? []), campaign('2')])),
    );
    const early = await simulate(
      purchase(uid('mbr_stack'), 'store_atl_012', lines, { ts: '2026-02-28T23:00:00Z' }),
    );
    assert.equal(early.statusCode, 200, early.body);
    assert.equal(accrual(early.json<Json>(), 'northwind-stars').points, 200); // 150 + 50: no campaign
  });

  void it('with pending_days > 0 the lot is pending until available_at, and a void cancels it', async () => {
    await applyDemoConfig(
      t.app,
      variant((s) => (s.pending_days = 14)),
    );
    const member = uid('mbr_pending');
    const p = purchase(member, 'store_atl_012', [shirt(8999)], { ts: ago(2) });
    const body = await postOk(p);
    const stars = accrual(body, 'northwind-stars');
    assert.equal(stars.status, 'pending');
    assert.equal(stars.points, 44);
    assert.equal(stars.available_at, plusDays(p.transaction_ts, 14));
    assert.equal(accrual(body, 'acme-points').status, 'available');
    const b = await balances(member);
    assert.equal(b['northwind-stars']!.pending, 44);
    assert.equal(b['northwind-stars']!.available, 0);
    assert.deepEqual(b['northwind-stars']!.pending_lots, [
      { points: 44, available_at: plusDays(p.transaction_ts, 14) },
    ]);
    assert.equal(b['acme-points']!.available, 8);
    const v = await postOk(reversal(p, 'purchase_voided'));
    assert.equal(reversed(v, 'northwind-stars').from_pending, 44);
    const after = await balances(member);
    assert.equal(after['northwind-stars']!.pending, 0);
    assert.equal(after['northwind-stars']!.available, 0);
    assert.equal(after['acme-points']!.available, 0);

    // Another member's pending lot becomes spendable at available_at (the mature job).
    const m2 = uid('mbr_pending');
    const p2 = purchase(m2, 'store_atl_012', [shirt(10000)], { ts: ago(1) });
    await postOk(p2);
    assert.equal((await balances(m2))['northwind-stars']!.pending, 50);
    try {
      clock.set(plusDays(p2.transaction_ts, 14));
      const job = await t.app.inject({
        method: 'POST',
        url: '/v1/jobs/mature/run',
        headers: t.adminHeaders,
        payload: { as_of: clock.now().toISOString() },
      });
      assert.equal(job.statusCode, 200, job.body);
      const matured = await balances(m2);
      assert.equal(matured['northwind-stars']!.available, 50);
      assert.equal(matured['northwind-stars']!.pending, 0);
      assert.deepEqual(matured['northwind-stars']!.pending_lots, []);
    } finally {
      clock.set(NOW);
    }
    await assertVerifyOk();
  });
});
