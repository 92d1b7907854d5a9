// A referral bonus stands only while the purchase that paid it still qualifies: voiding or
// refunding that purchase below the referral's min_spend_minor takes the bonus back from the
// referrer in the same transaction (src/services/events/referral-clawback.ts), by the ledger's
// reversal rules (own lot first, then other points, then absorb_up_to or a reviewed negative
// balance), and the referral is unpaid again. Through the HTTP API, on PGlite (or PostgreSQL with
// DATABASE_URL). Fixture: northwind-stars pays 500 on a purchase with eligible spend >= 5000
// cents, earns 5 stars per 1000 cents, absorb_up_to 100.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Api, HOUR_MS, shirt, uid, type Json, type Line } from './lifecycle-helpers.ts';

const NOW = '2026-03-10T12:00:00.000Z';
const clock = new ManualClock(NOW);
const api = Api.forTests(clock);

const STARS = 'northwind-stars';
const ago = (hours: number): string => new Date(clock.now().getTime() - hours * HOUR_MS).toISOString();

/** A purchase of shirts at northwind's store under its own order, `ts` (2 h ago by default). */
const purchase = (member_id: string, lines: Line[], ts = ago(2)): Json =>
  api.purchaseEvent(member_id, 'store_atl_012', lines, { order_id: uid('ord'), ts });

/** The void, or the refund of these lines, of purchase event `p`, half an hour ago. */
const reversal = (p: Json, type: 'purchase_voided' | 'purchase_refunded', lines: Line[] = []): Json =>
  api.reversalEvent(p, type, type === 'purchase_refunded' ? lines : undefined, { ts: ago(0.5) });

function referral(referred: string, referrer: string): Json {
  const event_id = uid('ref');
  return {
    event_id,
    event_type: 'member_referred',
    member_id: referred,
    referrer_member_id: referrer,
    channel: 'online',
    store_id: 'web_northwind',
    transaction_id: `txn_${event_id}`,
    transaction_ts: ago(3),
    currency: 'USD',
    idempotency_key: `key_${event_id}`,
  };
}

const post = (ev: Json) => api.inject('POST', '/v1/events', ev);
const postOk = (ev: Json) => api.post('/v1/events', ev);
const stars = async (member_id: string): Promise<number> => (await api.available(member_id))[STARS] ?? 0;
const redeem = (member_id: string, points: number) =>
  api.redeem({ member_id, brand_id: 'northwind', program_id: STARS, group_redemption: false, points });

/** A linked pair whose referred member's purchase (`lines`) paid the 500 bonus. */
async function paidPair(lines: Line[]): Promise<{ referrer: string; referred: string; p: Json }> {
  const referrer = uid('mbr_referrer');
  const referred = uid('mbr_referred');
  await postOk(referral(referred, referrer));
  const p = purchase(referred, lines);
  const body = await postOk(p);
  assert.deepEqual(body.referral_bonus, {
    referrer_member_id: referrer,
    program_id: STARS,
    points: 500,
    debt_paid: 0,
  });
  assert.equal(await stars(referrer), 500);
  return { referrer, referred, p };
}

void describe('referral bonus clawback', () => {
  void it('a void of the qualifying purchase takes the bonus back and says so', async () => {
    const { referrer, referred, p } = await paidPair([shirt(6000)]);
    const v = await postOk(reversal(p, 'purchase_voided'));
    assert.deepEqual(v.referral_bonus_reversed, {
      program_id: STARS,
      points: 500,
      from_pending: 0,
      from_available: 500,
      written_off: 0,
      negative_balance: 0,
      referrer_member_id: referrer,
      purchase_event_id: p.event_id,
    });
    // The member's own reversal is unchanged.
    assert.equal(v.reversed.find((r: Json) => r.program_id === STARS).points, 30);
    assert.equal(await stars(referrer), 0);
    assert.equal(await stars(referred), 0);
    // The order's loyalty summary nets the member's own points only: the referrer's bonus and
    // its reversal share the events but are not the order's.
    const order = await api.get(`/v1/orders/${p.order_id}/loyalty`);
    assert.deepEqual(
      order.net_earned.map((n: Json) => [n.program_id, n.points]),
      [
        ['acme-points', 0],
        [STARS, 0],
      ],
    );
    // The referrer's activity shows the bonus and its reversal.
    const activity = (await api.get(`/v1/members/${referrer}/activity`)).data as Json[];
    assert.deepEqual(
      activity.map((a) => a.kind),
      ['reversal', 'referral_bonus'],
    );
    await api.assertVerifyOk();
  });

  void it('a partial refund that leaves the purchase qualifying keeps the bonus; the next one below takes it', async () => {
    const { referrer, p } = await paidPair([shirt(3000, 3)]); // 9000 eligible
    const r1 = await postOk(reversal(p, 'purchase_refunded', [shirt(3000)])); // 6000 left >= 5000
    assert.equal(r1.referral_bonus_reversed, undefined);
    assert.equal(await stars(referrer), 500);
    const r2 = await postOk(reversal(p, 'purchase_refunded', [shirt(3000)])); // 3000 left < 5000
    assert.equal(r2.referral_bonus_reversed?.points, 500);
    assert.equal(await stars(referrer), 0);
    // The last line back: nothing more to take from the referrer.
    const r3 = await postOk(reversal(p, 'purchase_refunded', [shirt(3000)]));
    assert.equal(r3.referral_bonus_reversed, undefined);
    assert.equal(await stars(referrer), 0);
    await api.assertVerifyOk();
  });

  void it('a single partial refund that leaves the purchase below the minimum takes the bonus', async () => {
    const { referrer, p } = await paidPair([shirt(4000, 2)]); // 8000 eligible
    const r = await postOk(reversal(p, 'purchase_refunded', [shirt(4000)])); // 4000 left
    assert.equal(r.referral_bonus_reversed?.points, 500);
    assert.equal(r.referral_bonus_reversed?.from_available, 500);
    assert.equal(await stars(referrer), 0);
    await api.assertVerifyOk();
  });

  void it('a bonus the referrer spent follows the reversal-shortfall rule: other points, absorb, then review', async () => {
    // Spent 150 of it, earned 50 since: 350 from the bonus lot, 50 from the other, 100 written off.
    const a = await paidPair([shirt(6000)]);
    await redeem(a.referrer, 150);
    await postOk(purchase(a.referrer, [shirt(10000)], ago(1)));
    assert.equal(await stars(a.referrer), 400);
    const va = await postOk(reversal(a.p, 'purchase_voided'));
    assert.equal(va.referral_bonus_reversed.from_available, 400);
    assert.equal(va.referral_bonus_reversed.written_off, 100);
    assert.equal(va.referral_bonus_reversed.negative_balance, 0);
    assert.equal(await stars(a.referrer), 0);
    assert.deepEqual((await api.get(`/v1/reviews?member_id=${a.referrer}&status=open`)).data, []);

    // Spent 120 and nothing else: 380 from the bonus lot, 120 > absorb_up_to 100 is a recorded
    // negative balance with an open review.
    const b = await paidPair([shirt(6000)]);
    await redeem(b.referrer, 120);
    const vb = await postOk(reversal(b.p, 'purchase_voided'));
    assert.equal(vb.referral_bonus_reversed.from_available, 380);
    assert.equal(vb.referral_bonus_reversed.written_off, 0);
    assert.equal(vb.referral_bonus_reversed.negative_balance, 120);
    assert.equal(await stars(b.referrer), -120);
    const open = (await api.get(`/v1/reviews?member_id=${b.referrer}&status=open`)).data as Json[];
    assert.equal(open.length, 1);
    assert.equal(open[0]!.points, 120);
    assert.equal(open[0]!.event_id, vb.event_id);
    await api.assertVerifyOk();
  });

  void it('the referral can be earned again by the next qualifying purchase, once', async () => {
    const { referrer, referred, p } = await paidPair([shirt(4000, 2)]);
    const r = await postOk(reversal(p, 'purchase_refunded', [shirt(4000)]));
    assert.equal(r.referral_bonus_reversed?.points, 500);
    assert.equal(await stars(referrer), 0);

    const small = await postOk(purchase(referred, [shirt(3000)], ago(1.5)));
    assert.equal(small.referral_bonus, undefined);
    const next = purchase(referred, [shirt(6000)], ago(1));
    const paid = await postOk(next);
    assert.deepEqual(paid.referral_bonus, {
      referrer_member_id: referrer,
      program_id: STARS,
      points: 500,
      debt_paid: 0,
    });
    assert.equal(await stars(referrer), 500);
    const later = await postOk(purchase(referred, [shirt(7000)], ago(0.75)));
    assert.equal(later.referral_bonus, undefined);

    // Returning the rest of the first purchase leaves the bonus the second one paid alone.
    const rest = await postOk(reversal(p, 'purchase_refunded', [shirt(4000)]));
    assert.equal(rest.referral_bonus_reversed, undefined);
    assert.equal(await stars(referrer), 500);
    // Voiding the purchase that paid it now takes it.
    const v = await postOk(reversal(next, 'purchase_voided'));
    assert.equal(v.referral_bonus_reversed?.purchase_event_id, next.event_id);
    assert.equal(await stars(referrer), 0);
    await api.assertVerifyOk();
  });

  void it('a replayed reversal takes the bonus once', async () => {
    const { referrer, p } = await paidPair([shirt(6000)]);
    const v = reversal(p, 'purchase_voided');
    const first = await postOk(v);
    assert.equal(first.referral_bonus_reversed?.points, 500);
    const again = await post(v);
    assert.equal(again.statusCode, 200, again.body);
    const body = again.json<Json>();
    assert.equal(body.status, 'duplicate');
    assert.equal(body.original.referral_bonus_reversed.points, 500);
    // The same reversal under a new key is the same event: a duplicate, nothing taken.
    const retry = await post({ ...v, idempotency_key: uid('key') });
    assert.equal(retry.json<Json>().status, 'duplicate', retry.body);
    assert.equal(await stars(referrer), 0);
    await api.assertVerifyOk();
  });

  void it("in a batch, the referrer's later purchase follows the reversal that took the bonus, as one by one", async () => {
    // Spent 120: the void leaves -120 (over absorb_up_to), then the referrer's purchase (50) pays
    // 50 of it down. Run the other way round the void would take the 50 too and write off 70.
    const { referrer, p } = await paidPair([shirt(6000)]);
    await redeem(referrer, 120);
    const other = uid('mbr_other');
    const res = await api.t.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: api.t.adminHeaders,
      payload: {
        events: [
          reversal(p, 'purchase_voided'),
          purchase(referrer, [shirt(10000)], ago(0.25)),
          purchase(other, [shirt(10000)], ago(0.25)),
        ],
      },
    });
    assert.equal(res.statusCode, 200, res.body);
    const [v, bought] = res.json<Json>().results as Json[];
    assert.equal(v!.referral_bonus_reversed?.negative_balance, 120, JSON.stringify(v));
    assert.equal(bought!.status, 'accepted');
    assert.equal(await stars(referrer), -70);
    await api.assertVerifyOk();
  });
});
