// Points that come back after the purchase they were earned by was reversed: a redemption
// reversed, or a hold released, after a void or refund that could not take them (they were
// spent or held) and so wrote a shortfall off or recorded it as a debt. The returning points
// settle that shortfall first (services/redemptions/reclaim.ts): buy, earn, redeem, refund,
// cancel the redemption never leaves the member ahead.
//
// Expected points from test/fixtures/config.ts: northwind-stars 5 per 1000 cents, floor,
// absorb_up_to 100; acme-points 1 per 1000 cents.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const HOUR_MS = 3_600_000;
const clock = new ManualClock('2026-03-10T12:00:00.000Z');
let t: TestService;

before(async () => {
  t = await createTestService({ clock });
  await applyDemoConfig(t.app);
});
after(async () => {
  await t?.close();
});

let seq = 0;
const uid = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;
const ago = (hours: number): string => new Date(clock.now().getTime() - hours * HOUR_MS).toISOString();

async function call(method: 'GET' | 'POST', url: string, payload?: object, status = 200): Promise<Json> {
  const res = await t.app.inject({ method, url, headers: t.adminHeaders, ...(payload ? { payload } : {}) });
  assert.equal(res.statusCode, status, `${method} ${url}: ${res.body}`);
  return res.json<Json>();
}

/** A purchase of one shirt at store_atl_012 (in store: its points are available at once). */
async function buy(member_id: string, cents: number, hoursAgo: number): Promise<Json> {
  const event_id = uid('evt');
  const ev = {
    event_id,
    event_type: 'purchase_completed',
    member_id,
    channel: 'in_store',
    store_id: 'store_atl_012',
    transaction_id: `txn_${event_id}`,
    transaction_ts: ago(hoursAgo),
    currency: 'USD',
    line_items: [{ sku: 'SKU-SHIRT', category: 'shirts', unit_price_cents: cents, quantity: 1 }],
    subtotal_cents: cents,
    eligible_subtotal_cents: cents,
    idempotency_key: `key_${event_id}`,
  };
  await call('POST', '/v1/events', ev, 201);
  return ev;
}

/** Voids a purchase: northwind-stars' part of the answer. */
async function voidIt(p: Json): Promise<Json> {
  const event_id = uid('void');
  const body = await call(
    'POST',
    '/v1/events',
    {
      event_id,
      event_type: 'purchase_voided',
      member_id: p.member_id,
      channel: p.channel,
      store_id: p.store_id,
      transaction_id: `txn_${event_id}`,
      transaction_ts: ago(0.5),
      currency: p.currency,
      reversal_of: p.event_id,
      idempotency_key: `key_${event_id}`,
    },
    201,
  );
  return body.reversed.find((r: Json) => r.program_id === 'northwind-stars');
}

async function redeemStars(member_id: string, points: number, capture = true): Promise<string> {
  const body = await call(
    'POST',
    '/v1/redemptions',
    {
      member_id,
      brand_id: 'northwind',
      program_id: 'northwind-stars',
      group_redemption: false,
      points,
      idempotency_key: uid('rdm'),
      capture,
    },
    201,
  );
  return body.redemption_id;
}

async function stars(member_id: string): Promise<number> {
  const body = await call('GET', `/v1/members/${member_id}/balances`);
  return body.programs.find((p: Json) => p.program_id === 'northwind-stars').available;
}

const starsOf = (items: Json[]): Json => items.find((r) => r.program_id === 'northwind-stars')!;

async function assertVerifyOk(): Promise<void> {
  const v = await call('GET', '/v1/ledger/verify');
  assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c: Json) => !c.ok)));
}

void describe('points returned after their purchase was reversed', () => {
  void it('a reversed redemption first recovers what the void wrote off', async () => {
    const m = uid('mbr_wo');
    const p = await buy(m, 10000, 2); // 50 stars
    const rdm = await redeemStars(m, 40);
    const v = await voidIt(p);
    assert.deepEqual([v.from_available, v.written_off], [10, 40]);
    assert.equal(await stars(m), 0);

    const rev = await call('POST', `/v1/redemptions/${rdm}/reverse`);
    assert.deepEqual(starsOf(rev.restored), {
      program_id: 'northwind-stars',
      points: 40,
      expired_on_restore: 0,
      write_off_recovered: 40,
      debt_paid: 0,
    });
    // The purchase is void and nothing is spent: nothing is the member's.
    assert.equal(await stars(m), 0);
    await buy(m, 10000, 1);
    assert.equal(await stars(m), 50, 'later points are the member’s whole');
    await assertVerifyOk();
  });

  void it('a write-off is recovered once, whichever of the member’s lots the points return to', async () => {
    const m = uid('mbr_two');
    await buy(m, 6000, 3); // 30 stars, earlier expiry: spent first
    const p = await buy(m, 10000, 2); // 50 stars
    const rdm = await redeemStars(m, 60); // 30 of the first lot, 30 of p's
    const v = await voidIt(p); // p's own lot has 20 left: 30 written off
    assert.deepEqual([v.from_available, v.written_off], [20, 30]);

    const rev = await call('POST', `/v1/redemptions/${rdm}/reverse`);
    assert.equal(starsOf(rev.restored).write_off_recovered, 30, 'of the 60 back: 30, not 60');
    assert.equal(await stars(m), 30, 'the first purchase’s 30, as if p had never been made');
    await assertVerifyOk();
  });

  void it('a reversed redemption pays a recorded debt down and resolves its review', async () => {
    const m = uid('mbr_debt');
    const p = await buy(m, 40000, 2); // 200 stars
    const rdm = await redeemStars(m, 200);
    const v = await voidIt(p);
    assert.equal(v.negative_balance, 200);
    assert.equal(await stars(m), -200);

    const rev = await call('POST', `/v1/redemptions/${rdm}/reverse`);
    assert.equal(starsOf(rev.restored).debt_paid, 200);
    assert.equal(await stars(m), 0);
    const reviews = (await call('GET', `/v1/reviews?member_id=${m}`)).data;
    assert.deepEqual(
      reviews.map((r: Json) => [r.status, r.detail.resolution]),
      [['resolved', 'paid down by returned points']],
    );
    // The debt is gone, so a later purchase is not taken for it again, and nothing of the void
    // purchase's lot is left to spend or expire.
    await buy(m, 10000, 1);
    assert.equal(await stars(m), 50);
    await redeemStars(m, 50);
    assert.equal(await stars(m), 0);
    await call('POST', '/v1/jobs/expire/run', { as_of: '2030-01-01T00:00:00Z' });
    assert.equal(await stars(m), 0, 'no lot holds points the member does not have');
    await assertVerifyOk();
  });

  void it('a released hold first recovers what the void wrote off', async () => {
    const m = uid('mbr_hold');
    const p = await buy(m, 10000, 2); // 50 stars
    const hold = await redeemStars(m, 40, false);
    const v = await voidIt(p); // 10 free in its lot, 40 held: written off
    assert.deepEqual([v.from_available, v.written_off], [10, 40]);

    const rel = await call('POST', `/v1/redemptions/${hold}/release`);
    assert.deepEqual(starsOf(rel.points_released_by_program), {
      program_id: 'northwind-stars',
      points: 40,
      write_off_recovered: 40,
      debt_paid: 0,
    });
    assert.equal(await stars(m), 0);
    await assertVerifyOk();
  });
});
