// Points that come back after the purchase they were earned by was reversed: a redemption
// reversed, or a hold released, after a void or refund that could not take them (they were
// spent or held) and so wrote a shortfall off or recorded it as a debt. The returning points
// settle that shortfall first (services/redemptions/reclaim.ts): buy, earn, redeem, refund,
// cancel the redemption never leaves the member ahead.
//
// Expected points from test/fixtures/config.ts: northwind-stars 5 per 1000 cents, floor,
// absorb_up_to 100; acme-points 1 per 1000 cents.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Api, HOUR_MS, shirt, uid, type Json } from './lifecycle-helpers.ts';

const clock = new ManualClock('2026-03-10T12:00:00.000Z');
const api = Api.forTests(clock);
const ago = (hours: number): string => new Date(clock.now().getTime() - hours * HOUR_MS).toISOString();

/** A purchase of one shirt at store_atl_012 (in store: its points are available at once). */
async function buy(member_id: string, cents: number, hoursAgo: number): Promise<Json> {
  const ev = api.purchaseEvent(member_id, 'store_atl_012', [shirt(cents)], { ts: ago(hoursAgo) });
  assert.equal((await api.post('/v1/events', ev)).status, 'accepted');
  return ev;
}

const starsOf = (items: Json[]): Json => items.find((r) => r.program_id === 'northwind-stars')!;

/** Voids a purchase: northwind-stars' part of the answer. */
const voidIt = async (p: Json): Promise<Json> =>
  starsOf((await api.reverse({ event: p }, 'purchase_voided')).reversed);

const redeemStars = async (member_id: string, points: number, capture = true): Promise<string> =>
  (
    await api.redeem({
      member_id,
      brand_id: 'northwind',
      program_id: 'northwind-stars',
      group_redemption: false,
      points,
      capture,
    })
  ).redemption_id;

const stars = async (member_id: string): Promise<number> =>
  (await api.available(member_id))['northwind-stars']!;

void describe('points returned after their purchase was reversed', () => {
  void it('a reversed redemption first recovers what the void wrote off', async () => {
    const m = uid('mbr_wo');
    const p = await buy(m, 10000, 2); // 50 stars
    const rdm = await redeemStars(m, 40);
    const v = await voidIt(p);
    assert.deepEqual([v.from_available, v.written_off], [10, 40]);
    assert.equal(await stars(m), 0);

    const rev = await api.post(`/v1/redemptions/${rdm}/reverse`, undefined, 200);
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
    await api.assertVerifyOk();
  });

  void it('a write-off is recovered once, whichever of the member’s lots the points return to', async () => {
    const m = uid('mbr_two');
    await buy(m, 6000, 3); // 30 stars, earlier expiry: spent first
    const p = await buy(m, 10000, 2); // 50 stars
    const rdm = await redeemStars(m, 60); // 30 of the first lot, 30 of p's
    const v = await voidIt(p); // p's own lot has 20 left: 30 written off
    assert.deepEqual([v.from_available, v.written_off], [20, 30]);

    const rev = await api.post(`/v1/redemptions/${rdm}/reverse`, undefined, 200);
    assert.equal(starsOf(rev.restored).write_off_recovered, 30, 'of the 60 back: 30, not 60');
    assert.equal(await stars(m), 30, 'the first purchase’s 30, as if p had never been made');
    await api.assertVerifyOk();
  });

  void it('a reversed redemption pays a recorded debt down and resolves its review', async () => {
    const m = uid('mbr_debt');
    const p = await buy(m, 40000, 2); // 200 stars
    const rdm = await redeemStars(m, 200);
    const v = await voidIt(p);
    assert.equal(v.negative_balance, 200);
    assert.equal(await stars(m), -200);

    const rev = await api.post(`/v1/redemptions/${rdm}/reverse`, undefined, 200);
    assert.equal(starsOf(rev.restored).debt_paid, 200);
    assert.equal(await stars(m), 0);
    const reviews = (await api.get(`/v1/reviews?member_id=${m}`)).data;
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
    await api.runJob('expire', '2030-01-01T00:00:00Z');
    assert.equal(await stars(m), 0, 'no lot holds points the member does not have');
    await api.assertVerifyOk();
  });

  void it('a released hold first recovers what the void wrote off', async () => {
    const m = uid('mbr_hold');
    const p = await buy(m, 10000, 2); // 50 stars
    const hold = await redeemStars(m, 40, false);
    const v = await voidIt(p); // 10 free in its lot, 40 held: written off
    assert.deepEqual([v.from_available, v.written_off], [10, 40]);

    const rel = await api.post(`/v1/redemptions/${hold}/release`, undefined, 200);
    assert.deepEqual(starsOf(rel.points_released_by_program), {
      program_id: 'northwind-stars',
      points: 40,
      write_off_recovered: 40,
      debt_paid: 0,
    });
    assert.equal(await stars(m), 0);
    await api.assertVerifyOk();
  });
});
