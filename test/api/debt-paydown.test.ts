// A member whose void left a recorded debt (a shortfall above the program's absorb limit) cannot
// spend again before it is paid: every point that becomes available to them in the program pays
// it first (src/ledger/debt-paydown.ts), points received by transfer and a referral bonus
// included. Before, those two landed spendable: a friend's transfer, redeemed at once, put the
// member back below zero through a redemption and left the debt recorded for ever.
//
// Expected points from test/fixtures/config.ts: northwind-stars 5 per 1000 cents, floor,
// absorb_up_to 100, referral bonus 500 from 5000 cents; acme-points 1 per 1000 cents.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Api, assertError, uid, type Json } from './lifecycle-helpers.ts';

const clock = new ManualClock('2026-03-10T12:00:00.000Z');
const api = Api.forTests(clock);
const STARS = 'northwind-stars';

const programOf = (items: Json[], program_id: string): Json =>
  items.find((r) => r.program_id === program_id)!;

/** Buys `cents` at northwind, spends every star (and acme point) it earned, then voids it. */
async function inDebt(member_id: string, cents: number): Promise<{ stars: Json; acme: Json }> {
  const p = await api.buy(member_id, 'northwind', cents);
  const earned = (id: string) => programOf(p.accruals, id).points as number;
  for (const program_id of [STARS, 'acme-points'])
    await api.redeem({ member_id, brand_id: 'northwind', program_id, points: earned(program_id) });
  const v = await api.reverse(p, 'purchase_voided');
  return { stars: programOf(v.reversed, STARS), acme: programOf(v.reversed, 'acme-points') };
}

const transfer = (from: string, to: string, points: number, where: Json) =>
  api.post('/v1/transfers', {
    from_member_id: from,
    to_member_id: to,
    points,
    idempotency_key: uid('trf'),
    ...where,
  });

const redeemStars = (member_id: string, points: number) =>
  api.command('/v1/redemptions', {
    member_id,
    brand_id: 'northwind',
    program_id: STARS,
    points,
    capture: true,
    idempotency_key: uid('rdm'),
  });

async function reviewsOf(member_id: string, program_id: string): Promise<Json[]> {
  const page = await api.get(`/v1/reviews?member_id=${member_id}&program_id=${program_id}&limit=10`);
  return page.data as Json[];
}

void describe('a recorded debt is paid before anything is spendable again', () => {
  void it('points received by transfer pay the receiver’s debt first', async () => {
    const m = uid('mbr_debtor');
    const friend = uid('mbr_friend');
    const { stars, acme } = await inDebt(m, 400_00); // 200 stars: 200 > 100, recorded
    assert.equal(stars.negative_balance, 200);
    assert.equal((await api.available(m))[STARS], -200);
    await api.buy(friend, 'northwind', 400_00); // 200 stars, 40 acme

    const first = await transfer(friend, m, 150, { program_id: STARS });
    assert.deepEqual(first.credited, { program_id: STARS, points: 150, debt_paid: 150 });
    assert.equal((await api.available(m))[STARS], -50);
    assertError(await redeemStars(m, 1), 409, 'INSUFFICIENT_POINTS');
    assert.deepEqual(
      (await reviewsOf(m, STARS)).map((r) => r.status),
      ['open'],
    );

    const second = await transfer(friend, m, 50, { program_id: STARS });
    assert.equal(second.credited.debt_paid, 50);
    assert.equal((await api.available(m))[STARS], 0);
    assertError(await redeemStars(m, 1), 409, 'INSUFFICIENT_POINTS');
    const [review] = await reviewsOf(m, STARS);
    assert.equal(review!.status, 'resolved');
    assert.equal(review!.detail.resolution, 'paid down by a transfer received');

    // A group transfer lands in the default program and pays the debt recorded there.
    const acmeDebt = acme.negative_balance as number;
    assert.ok(acmeDebt > 0, JSON.stringify(acme));
    const group = await transfer(friend, m, acmeDebt - 10, { group_transfer: true });
    assert.deepEqual(group.credited, {
      program_id: 'acme-points',
      points: acmeDebt - 10,
      debt_paid: acmeDebt - 10,
    });
    assert.equal((await api.available(m))['acme-points'], -10);
    await api.assertVerifyOk();
  });

  void it('a referral bonus pays the referrer’s debt first', async () => {
    const referrer = uid('mbr_referrer');
    const referred = uid('mbr_referred');
    const { stars } = await inDebt(referrer, 300_00); // 150 stars: 150 > 100, recorded
    assert.equal(stars.negative_balance, 150);
    const eid = uid('ref');
    await api.post('/v1/events', {
      event_id: eid,
      event_type: 'member_referred',
      member_id: referred,
      referrer_member_id: referrer,
      channel: 'online',
      store_id: 'web_northwind',
      transaction_id: `txn_${eid}`,
      transaction_ts: new Date(clock.now().getTime() - 120_000).toISOString(),
      currency: 'USD',
      idempotency_key: `key_${eid}`,
    });
    const paid = await api.buy(referred, 'northwind', 60_00);
    assert.deepEqual(paid.referral_bonus, {
      referrer_member_id: referrer,
      program_id: STARS,
      points: 500,
      debt_paid: 150,
    });
    assert.equal((await api.available(referrer))[STARS], 350);
    assertError(await redeemStars(referrer, 351), 409, 'INSUFFICIENT_POINTS');
    assert.equal((await redeemStars(referrer, 350)).statusCode, 201);
    const [review] = await reviewsOf(referrer, STARS);
    assert.equal(review!.detail.resolution, 'paid down by a referral bonus');
    await api.assertVerifyOk();
  });
});
