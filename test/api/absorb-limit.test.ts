// The program's absorb limit (negative_balance.absorb_up_to: what a brand writes off of a
// reversal shortfall instead of recording a debt) counts per accrual over all its reversals:
// a purchase's refunds and void together, a referral bonus's clawbacks together. Counted per
// reversal, ten one-line refunds of a purchase whose points were spent were each under the limit
// and wrote off 450 points that one void would have recorded as a debt; and a referrer could
// spend a bonus, have the purchase voided, collect the bonus again from the next purchase and so
// on, 100 points written off each time.
//
// Expected points from test/fixtures/config.ts: northwind-stars 5 per 1000 cents, floor,
// absorb_up_to 100, referral bonus 500 from 5000 cents; acme-points 1 per 1000 cents.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Api, uid, type Json } from './lifecycle-helpers.ts';

const clock = new ManualClock('2026-03-10T12:00:00.000Z');
const api = Api.forTests(clock);
const STARS = 'northwind-stars';

const starsOf = (items: Json[]): Json => items.find((r) => r.program_id === STARS)!;
const spendStars = (member_id: string, points: number) =>
  api.redeem({ member_id, brand_id: 'northwind', program_id: STARS, points });

void describe('the absorb limit counts per accrual, over all its reversals', () => {
  void it('refunding a spent purchase line by line writes off no more than the limit', async () => {
    const m = uid('mbr_split');
    const unit = { sku: 'SKU-1', category: 'misc', unit_price_cents: 30_00 };
    const p = await api.purchase(m, 'store_atl_012', [{ ...unit, quantity: 10 }]); // 150 stars
    await spendStars(m, 150);
    const views: Json[] = [];
    for (let i = 0; i < 10; i++)
      views.push(starsOf((await api.refund(p, [{ ...unit, quantity: 1 }])).reversed));
    // 15 stars a line: six fit in the limit of 100 (90), the seventh would pass it.
    assert.deepEqual(
      views.map((v) => [v.points, v.written_off, v.negative_balance]),
      [...Array(6).fill([15, 15, 0]), ...Array(4).fill([15, 0, 15])],
    );
    assert.equal((await api.available(m))[STARS], -60);
    const reviews = await api.get(`/v1/reviews?member_id=${m}&program_id=${STARS}&limit=20`);
    assert.equal(reviews.data.length, 4);
    await api.assertVerifyOk();
  });

  void it('a referral bonus spent and clawed back again and again is written off once', async () => {
    const referrer = uid('mbr_referrer');
    const referred = uid('mbr_referred');
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
    const clawed: Json[] = [];
    for (let round = 0; round < 3; round++) {
      const p = await api.buy(referred, 'northwind', 60_00);
      assert.equal(p.referral_bonus?.points, 500, `round ${round}: ${JSON.stringify(p)}`);
      await spendStars(referrer, 100);
      clawed.push((await api.reverse(p, 'purchase_voided')).referral_bonus_reversed);
    }
    // The 100 spent of each bonus is the shortfall: written off the first time, a recorded debt
    // after that. The third bonus paid the second's debt (100) first: 300 of it was left to take.
    assert.deepEqual(
      clawed.map((c) => [c.points, c.from_available, c.written_off, c.negative_balance]),
      [
        [500, 400, 100, 0],
        [500, 400, 0, 100],
        [500, 300, 0, 200],
      ],
    );
    assert.equal((await api.available(referrer))[STARS], -200);
    await api.assertVerifyOk();
  });
});
