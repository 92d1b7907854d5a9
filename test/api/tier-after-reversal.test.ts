// A tier is kept for a whole qualification period once reached (the day an old purchase leaves
// the rolling window is no downgrade), but only a tier really reached: when the purchase that
// lifted the member is voided or refunded below the threshold, the tier goes with it at once
// (src/services/tiers.ts reviewTier). Before, a $500 purchase voided the same day left the member
// gold for a year, and every later purchase earned the gold bonus.
//
// From test/fixtures/config.ts: northwind-stars 5 per 1000 cents; gold from 50000 cents of spend
// over 365 days, gold-bonus ×1.2; silver is the base tier.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Api, DAY_MS, shirt, uid, type Json } from './lifecycle-helpers.ts';

const clock = new ManualClock('2026-03-10T12:00:00.000Z');
const api = Api.forTests(clock);
const STARS = 'northwind-stars';
const later = (days: number) => new Date(clock.now().getTime() + days * DAY_MS);

const starsAccrual = (p: Json): Json => (p.accruals as Json[]).find((a) => a.program_id === STARS)!;
async function tierOf(member_id: string): Promise<Json> {
  const t = await api.get(`/v1/members/${member_id}/tiers`);
  return (t.programs as Json[]).find((p) => p.program_id === STARS)!;
}

void describe('a tier reached by a purchase that is reversed', () => {
  void it('goes with the void at once, and later purchases earn at the base tier', async () => {
    const m = uid('mbr_void');
    const p = await api.purchase(m, 'store_atl_012', [shirt(500_00)]);
    assert.equal((await tierOf(m)).tier, 'gold');
    await api.reverse(p, 'purchase_voided');
    const t = await tierOf(m);
    assert.equal(t.tier, 'silver');
    assert.deepEqual(
      (t.history as Json[]).map((h) => [h.tier, h.reason]),
      [
        ['silver', 'downgrade'],
        ['gold', 'upgrade'],
      ],
    );
    clock.advance(2 * 60_000); // a purchase after the void (one before it is judged by the tier then)
    const next = await api.purchase(m, 'store_atl_012', [shirt(100_00)]);
    assert.deepEqual([starsAccrual(next).points, starsAccrual(next).tier], [50, 'silver']);
    // The tiers job finds nothing more to do.
    await api.runJob('tiers', later(1));
    assert.equal((await tierOf(m)).tier, 'silver');
    await api.assertVerifyOk();
  });

  void it('stays while what is left of the purchases that reached it still qualifies', async () => {
    const m = uid('mbr_refund');
    const big = { sku: 'COAT', category: 'misc', unit_price_cents: 550_00, quantity: 1 };
    const small = { sku: 'HAT', category: 'misc', unit_price_cents: 50_00, quantity: 1 };
    const p = await api.purchase(m, 'store_atl_012', [big, small]);
    assert.equal((await tierOf(m)).tier, 'gold');
    await api.refund(p, [small]); // 550.00 left: still gold
    assert.equal((await tierOf(m)).tier, 'gold');
    await api.runJob('tiers', later(30));
    assert.equal((await tierOf(m)).tier, 'gold');
    await api.refund(p, [big]); // nothing left
    assert.equal((await tierOf(m)).tier, 'silver');
    await api.assertVerifyOk();
  });

  void it('a tier reached and then left behind by the window is still kept for its period', async () => {
    const m = uid('mbr_kept');
    await api.purchase(m, 'store_atl_012', [shirt(600_00)]);
    assert.equal((await tierOf(m)).tier, 'gold');
    // A refund of a later, unrelated purchase does not touch the tier the first one reached.
    const other = await api.purchase(m, 'store_atl_012', [shirt(10_00)]);
    await api.reverse(other, 'purchase_voided');
    assert.equal((await tierOf(m)).tier, 'gold');
    await api.runJob('tiers', later(200));
    assert.equal((await tierOf(m)).tier, 'gold');
  });
});
