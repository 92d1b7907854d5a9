// The rewards catalog through the HTTP API (issue 4): admin CRUD of /v1/rewards, redeeming a
// reward takes its stock in the redemption's transaction, sold out (409 REWARD_SOLD_OUT) and
// outside the window or inactive (409 REWARD_UNAVAILABLE) take no points, stock never goes below
// zero, and a released hold or a reversed redemption gives the stock back.
// app.inject() on PGlite memory:// (or a fresh PostgreSQL database with DATABASE_URL).
//
// Demo config: northwind-stars 5 pts / 1000 cents (a $100 purchase = 50 stars, + 10 acme-points).

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Api, assertError, uid, type Json } from './lifecycle-helpers.ts';

const NOW = '2026-06-10T00:00:00.000Z';
const clock = new ManualClock(NOW);
const api = Api.forTests(clock, { resetClockTo: NOW });

const buyNorthwind = (member: string, cents: number) =>
  api.buy(member, 'northwind', cents, '2026-06-09T10:00:00Z');
const req = (
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
  url: string,
  payload?: Json,
  headers: Record<string, string> = {},
) => api.inject(method, url, payload, headers);
const redeem = (body: Json) => api.command('/v1/redemptions', body);
const stars = async (member: string) =>
  (await api.balanceFields(member, 'available', 'held'))['northwind-stars']!;
const stock = async (id: string): Promise<number | null> =>
  (await req('GET', `/v1/rewards/${id}`)).json().stock;

async function createReward(body: Json): Promise<Json> {
  const res = await req('POST', '/v1/rewards', {
    brand_id: 'northwind',
    program_id: 'northwind-stars',
    name: 'Tote bag',
    ...body,
  });
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

void describe('rewards catalog', () => {
  void it('CRUD: create, read, list, patch, delete (deactivate)', async () => {
    const id = uid('rwd_tote');
    const created = await createReward({
      id,
      points_cost: 20,
      stock: 5,
      valid_from: '2026-06-01T00:00:00Z',
      valid_to: '2026-07-01T00:00:00Z',
    });
    assert.deepEqual(
      { ...created, created_at: undefined, updated_at: undefined },
      {
        id,
        brand_id: 'northwind',
        program_id: 'northwind-stars',
        name: 'Tote bag',
        points_cost: 20,
        stock: 5,
        valid_from: '2026-06-01T00:00:00.000Z',
        valid_to: '2026-07-01T00:00:00.000Z',
        active: true,
        created_at: undefined,
        updated_at: undefined,
      },
    );
    assert.deepEqual((await req('GET', `/v1/rewards/${id}`)).json(), created);
    const list = (await req('GET', '/v1/rewards?brand_id=northwind')).json().data as Json[];
    assert.ok(list.some((r) => r.id === id));
    assert.ok(
      !((await req('GET', '/v1/rewards?brand_id=harbor')).json().data as Json[]).some((r) => r.id === id),
    );
    const patched = await req('PATCH', `/v1/rewards/${id}`, {
      name: 'Canvas tote',
      points_cost: 15,
      stock: 3,
    });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal(patched.json().name, 'Canvas tote');
    assert.equal(patched.json().points_cost, 15);
    assert.equal(patched.json().stock, 3);
    const del = await req('DELETE', `/v1/rewards/${id}`);
    assert.equal(del.statusCode, 200, del.body);
    assert.equal(del.json().active, false);
    assert.equal((await req('GET', `/v1/rewards/${id}`)).json().active, false);
    assert.ok(
      !((await req('GET', '/v1/rewards?active=true')).json().data as Json[]).some((r) => r.id === id),
    );
    // Errors.
    assertError(await req('GET', '/v1/rewards/rwd_missing'), 404, 'REWARD_NOT_FOUND');
    assertError(await req('PATCH', '/v1/rewards/rwd_missing', { name: 'x' }), 404, 'REWARD_NOT_FOUND');
    assertError(
      await req('POST', '/v1/rewards', {
        brand_id: 'nope',
        program_id: 'northwind-stars',
        name: 'x',
        points_cost: 1,
      }),
      422,
      'UNKNOWN_BRAND',
    );
    assertError(
      await req('POST', '/v1/rewards', {
        brand_id: 'northwind',
        program_id: 'northwind-stars',
        name: 'x',
        points_cost: 1,
        stock: -1,
      }),
      400,
      'INVALID_REQUEST',
    );
    assertError(
      await req('POST', '/v1/rewards', {
        brand_id: 'northwind',
        program_id: 'northwind-stars',
        name: 'x',
        points_cost: 1,
        valid_from: '2026-07-01T00:00:00Z',
        valid_to: '2026-06-01T00:00:00Z',
      }),
      400,
      'INVALID_REQUEST',
    );
    const key = await req('POST', '/v1/api-keys', { name: uid('k'), scope: 'brand:northwind' });
    assertError(
      await req(
        'POST',
        '/v1/rewards',
        { brand_id: 'northwind', program_id: 'northwind-stars', name: 'x', points_cost: 1 },
        { authorization: `Bearer ${key.json().secret as string}` },
      ),
      403,
      'FORBIDDEN',
    );
  });

  void it('takes a body as sent: null is "no limit", "" is not a date, "5" is not a number', async () => {
    // The validator once coerced types: `stock: null` became 0 (sold out) and `valid_from: ""`
    // became null (no window). Query values are still typed by their schema.
    const id = uid('rwd_open');
    const created = await createReward({ id, points_cost: 5, stock: null, valid_from: null, valid_to: null });
    assert.equal(created.stock, null);
    assert.equal((await req('PATCH', `/v1/rewards/${id}`, { stock: 4 })).json().stock, 4);
    const unlimited = await req('PATCH', `/v1/rewards/${id}`, { stock: null });
    assert.equal(unlimited.statusCode, 200, unlimited.body);
    assert.equal(await stock(id), null);
    for (const [field, value] of [
      ['valid_from', ''],
      ['valid_to', ''],
      ['valid_from', 0],
      ['stock', ''],
      ['stock', '5'],
      ['stock', false],
      ['points_cost', '10'],
      ['active', 'false'],
      ['active', 0],
      ['name', 42],
    ] as const) {
      const err = assertError(
        await req('PATCH', `/v1/rewards/${id}`, { [field]: value }),
        400,
        'INVALID_REQUEST',
      );
      assert.equal(err.details.field, `body.${field}`, JSON.stringify(err));
    }
    assert.equal(await stock(id), null);
    assert.equal((await req('GET', `/v1/rewards/${id}`)).json().active, true);
    // Query values: typed by the schema, strictly.
    assert.ok(
      ((await req('GET', '/v1/rewards?active=true&brand_id=northwind')).json().data as Json[]).some(
        (r) => r.id === id,
      ),
    );
    assertError(await req('GET', '/v1/rewards?active=yes'), 400, 'INVALID_REQUEST');
    assertError(await req('GET', '/v1/rewards?active=1'), 400, 'INVALID_REQUEST');
  });

  void it('a price and a window are checked against the reward they make, on create and on change', async () => {
    // A fractional price in a whole-point program could never be paid.
    const frac = assertError(
      await req('POST', '/v1/rewards', {
        brand_id: 'northwind',
        program_id: 'northwind-stars',
        name: 'x',
        points_cost: 1.5,
      }),
      422,
      'INVALID_AMOUNT',
    );
    assert.equal(frac.details.field, 'points_cost');
    const id = uid('rwd_window');
    await createReward({
      id,
      points_cost: 10,
      valid_from: '2026-06-10T12:00:00Z',
      valid_to: '2026-06-10T13:00:00Z',
    });
    assert.equal(
      assertError(await req('PATCH', `/v1/rewards/${id}`, { points_cost: 2.5 }), 422, 'INVALID_AMOUNT')
        .details.field,
      'points_cost',
    );
    // Moving the start past the stored end would make it silently unavailable.
    const win = assertError(
      await req('PATCH', `/v1/rewards/${id}`, { valid_from: '2026-07-01T00:00:00Z' }),
      400,
      'INVALID_REQUEST',
    );
    assert.equal(win.details.field, 'valid_to');
    const stored = (await req('GET', `/v1/rewards/${id}`)).json();
    assert.deepEqual([stored.points_cost, stored.valid_from], [10, '2026-06-10T12:00:00.000Z']);
    // Both ends moved together are fine.
    const moved = await req('PATCH', `/v1/rewards/${id}`, {
      valid_from: '2026-07-01T00:00:00Z',
      valid_to: '2026-08-01T00:00:00Z',
    });
    assert.equal(moved.statusCode, 200, moved.body);
  });

  void it('quantity without a reward_id is 400 naming quantity, and takes no points', async () => {
    const member = uid('mbr');
    await buyNorthwind(member, 10_000);
    const before = await stars(member);
    const err = assertError(
      await redeem({ member_id: member, brand_id: 'northwind', points: 10, quantity: 2 }),
      400,
      'INVALID_REQUEST',
    );
    assert.equal(err.details.field, 'quantity');
    assert.deepEqual(await stars(member), before);
  });

  void it('a reward hold is captured whole: a partial capture is 422 and leaves the hold', async () => {
    const member = uid('mbr');
    await buyNorthwind(member, 10_000);
    const reward = await createReward({ id: uid('rwd_whole'), points_cost: 10, stock: 5 });
    const hold = await redeem({
      member_id: member,
      brand_id: 'northwind',
      reward_id: reward.id,
      quantity: 2,
      capture: false,
    });
    assert.equal(hold.statusCode, 201, hold.body);
    const id = hold.json().redemption_id as string;
    const err = assertError(
      await req('POST', `/v1/redemptions/${id}/capture`, { points: 10 }),
      422,
      'INVALID_AMOUNT',
    );
    assert.equal(err.details.field, 'points');
    assert.deepEqual(await stars(member), { available: 30, held: 20 });
    assert.equal(await stock(reward.id), 3);
    const whole = await req('POST', `/v1/redemptions/${id}/capture`, { points: 20 });
    assert.equal(whole.statusCode, 200, whole.body);
    assert.deepEqual(await stars(member), { available: 30, held: 0 });
  });

  void it('redeeming takes stock; sold out is 409 and takes no points; stock never below zero', async () => {
    const m = uid('mbr_rw');
    await buyNorthwind(m, 10000); // 50 stars
    const id = uid('rwd_mug');
    await createReward({ id, name: 'Mug', points_cost: 15, stock: 2 });
    const r = await redeem({ member_id: m, brand_id: 'northwind', reward_id: id });
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.json().points, 15);
    assert.deepEqual(r.json().reward, { reward_id: id, name: 'Mug', quantity: 1 });
    assert.equal(await stock(id), 1);
    assert.deepEqual(await stars(m), { available: 35, held: 0 });
    // Two more than the one left.
    const e = assertError(
      await redeem({ member_id: m, brand_id: 'northwind', reward_id: id, quantity: 2 }),
      409,
      'REWARD_SOLD_OUT',
    );
    assert.equal(e.details.reward_id, id);
    assert.equal(await stock(id), 1);
    assert.deepEqual(await stars(m), { available: 35, held: 0 });
    // Points given must match the reward's price × quantity.
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', reward_id: id, points: 10 }),
      422,
      'INVALID_AMOUNT',
    );
    assert.equal(
      (await redeem({ member_id: m, brand_id: 'northwind', reward_id: id, points: 15 })).statusCode,
      201,
    );
    assert.equal(await stock(id), 0);
    assertError(await redeem({ member_id: m, brand_id: 'northwind', reward_id: id }), 409, 'REWARD_SOLD_OUT');
    assert.equal(await stock(id), 0);
    assert.deepEqual(await stars(m), { available: 20, held: 0 });
    // Many at once against a stock of 3: exactly 3 go through (PGlite serializes; PostgreSQL runs them in parallel).
    const id2 = uid('rwd_pin');
    await createReward({ id: id2, name: 'Pin', points_cost: 1, stock: 3 });
    const many = await Promise.all(
      Array.from({ length: 8 }, () => redeem({ member_id: m, brand_id: 'northwind', reward_id: id2 })),
    );
    assert.deepEqual(many.map((x) => x.statusCode).sort(), [201, 201, 201, 409, 409, 409, 409, 409]);
    assert.ok(
      many.filter((x) => x.statusCode === 409).every((x) => x.json().error.code === 'REWARD_SOLD_OUT'),
    );
    assert.equal(await stock(id2), 0);
    assert.deepEqual(await stars(m), { available: 17, held: 0 });
    // Not enough points: 409 INSUFFICIENT_POINTS and the stock stays.
    const id3 = uid('rwd_jacket');
    await createReward({ id: id3, name: 'Jacket', points_cost: 500, stock: 4 });
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', reward_id: id3 }),
      409,
      'INSUFFICIENT_POINTS',
    );
    assert.equal(await stock(id3), 4);
    // Unlimited stock (null) is never sold out.
    const id4 = uid('rwd_sticker');
    await createReward({ id: id4, name: 'Sticker', points_cost: 1 });
    assert.equal(
      (await redeem({ member_id: m, brand_id: 'northwind', reward_id: id4, quantity: 3 })).statusCode,
      201,
    );
    assert.equal(await stock(id4), null);
    assert.deepEqual(await stars(m), { available: 14, held: 0 });
  });

  void it('outside its window, inactive, at another brand or as a group redemption: 409 REWARD_UNAVAILABLE, no points taken', async () => {
    const m = uid('mbr_win');
    await buyNorthwind(m, 10000);
    const id = uid('rwd_window');
    await createReward({
      id,
      points_cost: 5,
      stock: 10,
      valid_from: '2026-06-15T00:00:00Z',
      valid_to: '2026-06-20T00:00:00Z',
    });
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', reward_id: id }),
      409,
      'REWARD_UNAVAILABLE',
    );
    clock.set('2026-06-15T00:00:00Z'); // valid_from is inclusive
    assert.equal((await redeem({ member_id: m, brand_id: 'northwind', reward_id: id })).statusCode, 201);
    clock.set('2026-06-20T00:00:00Z'); // valid_to is exclusive
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', reward_id: id }),
      409,
      'REWARD_UNAVAILABLE',
    );
    clock.set('2026-06-16T00:00:00Z');
    assertError(await redeem({ member_id: m, brand_id: 'harbor', reward_id: id }), 409, 'REWARD_UNAVAILABLE');
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', group_redemption: true, reward_id: id }),
      409,
      'REWARD_UNAVAILABLE',
    );
    assert.equal((await req('DELETE', `/v1/rewards/${id}`)).statusCode, 200);
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', reward_id: id }),
      409,
      'REWARD_UNAVAILABLE',
    );
    assert.equal(await stock(id), 9);
    assert.deepEqual(await stars(m), { available: 45, held: 0 });
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', reward_id: 'rwd_missing' }),
      404,
      'REWARD_NOT_FOUND',
    );
  });

  void it('a released or timed-out hold and a reversed redemption give the stock back', async () => {
    const m = uid('mbr_back');
    await buyNorthwind(m, 10000);
    const id = uid('rwd_cap');
    await createReward({ id, name: 'Cap', points_cost: 10, stock: 1 });
    const h = await redeem({ member_id: m, brand_id: 'northwind', reward_id: id, capture: false });
    assert.equal(h.statusCode, 201, h.body);
    assert.equal(await stock(id), 0);
    assert.deepEqual(await stars(m), { available: 40, held: 10 });
    assertError(await redeem({ member_id: m, brand_id: 'northwind', reward_id: id }), 409, 'REWARD_SOLD_OUT');
    assert.equal(
      (await req('POST', `/v1/redemptions/${h.json().redemption_id as string}/release`)).statusCode,
      200,
    );
    assert.equal(await stock(id), 1);
    assert.deepEqual(await stars(m), { available: 50, held: 0 });
    // Timed out (30 min default): the release-holds job gives it back.
    const h2 = await redeem({ member_id: m, brand_id: 'northwind', reward_id: id, capture: false });
    assert.equal(await stock(id), 0);
    clock.advance(31 * 60_000);
    const j = await req('POST', '/v1/jobs/release-holds/run', {});
    assert.equal(j.statusCode, 200, j.body);
    assert.equal(await stock(id), 1);
    assertError(
      await req('POST', `/v1/redemptions/${h2.json().redemption_id as string}/capture`),
      409,
      'HOLD_ALREADY_RESOLVED',
    );
    // Captured then reversed (order cancelled): stock back once, and only once.
    const c = await redeem({ member_id: m, brand_id: 'northwind', reward_id: id });
    assert.equal(c.statusCode, 201, c.body);
    assert.equal(await stock(id), 0);
    assert.equal(
      (await req('POST', `/v1/redemptions/${c.json().redemption_id as string}/reverse`)).statusCode,
      200,
    );
    assert.equal(await stock(id), 1);
    assertError(
      await req('POST', `/v1/redemptions/${c.json().redemption_id as string}/reverse`),
      409,
      'REDEMPTION_NOT_REVERSIBLE',
    );
    assert.equal(await stock(id), 1);
    assert.deepEqual(await stars(m), { available: 50, held: 0 });
    const v = await req('GET', '/v1/ledger/verify');
    assert.equal(v.json().ok, true, v.body);
  });
});
