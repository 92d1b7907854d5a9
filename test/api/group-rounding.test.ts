// Group spends round the points taken from the last lot UP to its program's precision
// (src/domain/lots/group-plan.ts), shown through the HTTP API: a group redemption's breakdown
// lines add up to its value; the overpayment is reported and stays below one point of the program
// rounded; a group transfer credits exactly the points asked for and the sender pays at least
// their value; a request worth less than one point of the earliest-expiring lot takes that one
// point instead of being refused.
// app.inject() on PGlite memory:// (or a fresh PostgreSQL database with DATABASE_URL).
//
// The demo fixture with expiries chosen so FEFO is plain (values in USD, the common currency):
//   northwind-stars: 5 pts / 1000 cents, rolling 10 days, point 0.01
//   harbor-rewards:  1 pt / 100 EUR cents, accumulate, end of year, point 0.005 EUR × 1.08 = 0.0054
//   summit-miles:    2 pts / 100 GBP pence, nearest, end of year, point 0.02 GBP × 1.27 = 0.0254
//   acme-points:     the default program, 1 pt / 1000 USD cents, rolling 365 days, point 0.01

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { Api, uid, type Json } from './lifecycle-helpers.ts';

const NOW = '2026-06-10T00:00:00.000Z';
const clock = new ManualClock(NOW);
const api = Api.forTests(clock, {
  resetClockTo: NOW,
  doc: () => {
    const doc = demoConfigDoc();
    const p = (id: string) => doc.programs.find((x) => x.id === id)!;
    p('northwind-stars').expiry = { kind: 'rolling', days: 10 };
    p('harbor-rewards').expiry = { kind: 'end_of_period', period: 'year', after_days: 0 };
    p('summit-miles').expiry = { kind: 'end_of_period', period: 'year', after_days: 0 };
    return doc;
  },
});

/** One line of `cents` at the brand's store, at `ts`, with no order. */
const buy = (member: string, brand: string, cents: number, ts: string) =>
  api.buy(member, brand, cents, ts, { order: false });
const created = (url: string, body: Json) => api.post(url, { idempotency_key: uid('k'), ...body });
const avail = (member: string) => api.available(member, { omitZero: true });

/** Value of one point, in 1/10_000 USD. */
const UNIT_E4: Record<string, bigint> = {
  'northwind-stars': 100n,
  'harbor-rewards': 54n,
  'summit-miles': 254n,
  'acme-points': 100n,
};

/** points (a JSON number with at most 4 decimals) × its program's point value, in 1e-8 USD. */
const valueE8 = (program_id: string, points: number): bigint =>
  BigInt(Math.round(points * 1e4)) * UNIT_E4[program_id]!;

/** "n/d" (ratioToJson) as an exact count of 1e-8 USD; fails if it is not one. */
function ratioE8(s: string): bigint {
  const m = /^(-?\d+)(?:\/(\d+))?$/.exec(s);
  assert.ok(m, `not a ratio: ${s}`);
  const num = BigInt(m[1]!) * 100_000_000n;
  const den = BigInt(m[2] ?? '1');
  assert.equal(num % den, 0n, `${s} is not a whole number of 1e-8`);
  return num / den;
}

/**
 * m: 10 northwind-stars (0.10, expiring 06-18T09) and 2 acme (0.02, expiring 2027-06-08), then 10
 * summit-miles (0.254, expiring 2027-01-01, acme 0: 500 × 1.27 = 635 c). FEFO: stars, miles, acme.
 */
async function starsAndMiles(m: string): Promise<void> {
  await buy(m, 'northwind', 2000, '2026-06-08T09:00:00Z');
  await buy(m, 'summit', 500, '2026-06-08T10:00:00Z');
}

void describe('group rounding over HTTP: the last lot is rounded up', () => {
  void it('a group redemption: breakdown lines add up to the value; the overpayment is reported and below one point of the program rounded', async () => {
    const m = uid('mbr_lines');
    // harbor 7.77 (0.041958, exp 2027-01-01, awarded 06-07), stars 10 (0.10, exp 06-18), miles 10
    // (exp 2027-01-01, awarded 06-08), acme 2. FEFO: stars, harbor, miles, acme.
    await buy(m, 'harbor', 777, '2026-06-07T10:00:00Z');
    await starsAndMiles(m);
    assert.deepEqual(await avail(m), {
      'acme-points': 2,
      'harbor-rewards': 7.77,
      'northwind-stars': 10,
      'summit-miles': 10,
    });
    // 30 points = 0.30: stars whole (0.10, left 0.20), harbor whole (0.041958, left 0.158042),
    // miles 0.158042 / 0.0254 = 6.22 → 7 (0.1778), overpaid 0.1778 − 0.158042 = 0.019758.
    const r = await created('/v1/redemptions', {
      member_id: m,
      brand_id: 'northwind',
      group_redemption: true,
      points: 30,
    });
    assert.deepEqual(r.value, { amount_minor: 30, currency: 'USD' });
    assert.deepEqual(
      r.breakdown_by_program.map((b: Json) => [b.program_id, b.points, b.value.amount_minor]),
      // The lines are the 30 cents split by largest remainder over each line's part of 0.30 (the
      // miles' part is 0.1778 − 0.019758 = 0.158042): 4.1958, 10, 15.8042 → 4 + 10 + 15 = 29, the
      // last cent to the largest remainder (summit, .8042) → 4, 10, 16. Each line's value taken
      // rounded on its own would be 4 + 10 + 18 (17.78) = 32.
      [
        ['harbor-rewards', 7.77, 4],
        ['northwind-stars', 10, 10],
        ['summit-miles', 7, 16],
      ],
    );
    const lines = r.breakdown_by_program.reduce(
      (s: number, b: Json) => s + (b.value.amount_minor as number),
      0,
    );
    assert.equal(lines, r.value.amount_minor, 'the breakdown lines add up to the value');

    // (b) The overpayment: value taken − value redeemed, exactly, in the program rounded.
    const taken = r.breakdown_by_program.reduce(
      (s: bigint, b: Json) => s + valueE8(b.program_id, b.points),
      0n,
    );
    assert.equal(taken, 31_975_800n); // 0.041958 + 0.10 + 0.1778 = 0.319758
    const overpaid = ratioE8(r.overpaid.value_exact);
    assert.equal(overpaid, taken - 30_000_000n); // 0.019758
    assert.equal(r.overpaid.program_id, 'summit-miles');
    assert.ok(overpaid > 0n && overpaid < valueE8('summit-miles', 1), 'overpaid below one mile (0.0254)');
    assert.equal(ratioE8(r.absorbed.value_exact), -overpaid, '`absorbed` (old clients) is its negation');
    // The entry records it too.
    const e = await api.t.ctx.db
      .selectFrom('entries')
      .select('detail')
      .where('ref_type', '=', 'redemption')
      .where('ref_id', '=', r.redemption_id)
      .executeTakeFirstOrThrow();
    const d = (typeof e.detail === 'string' ? JSON.parse(e.detail) : e.detail) as Json;
    assert.equal(ratioE8(d.overpaid_value as string), overpaid);
    assert.equal(d.rounding_program_id, 'summit-miles');
    assert.deepEqual(await avail(m), { 'acme-points': 2, 'summit-miles': 3 });
    await api.assertVerifyOk();
  });

  void it('breakdown lines add up to the value where each line’s part rounded on its own would not', async () => {
    const m = uid('mbr_lines2');
    // H1 harbor 7.77 (awarded 06-07), S1 10 miles (06-08), H2 harbor 18.52 (06-09; 1852 × 1.08 =
    // 2000.16 c → 2 acme, issuer harbor, exp 2027-06-09). Harbor and miles expire 2027-01-01, so
    // FEFO is H1, S1, H2 (earliest awarded first), then the acme lot.
    await buy(m, 'harbor', 777, '2026-06-07T10:00:00Z');
    await buy(m, 'summit', 500, '2026-06-08T10:00:00Z');
    await buy(m, 'harbor', 1852, '2026-06-09T10:00:00Z');
    assert.deepEqual(await avail(m), { 'acme-points': 2, 'harbor-rewards': 26.29, 'summit-miles': 10 });
    // Pool: 26.29 × 0.0054 = 0.141966, + 10 × 0.0254 = 0.254, + 0.02 = 0.415966 → 41 points.
    // 41 points = 0.41: harbor 7.77 + miles 10 + harbor 18.52 whole (0.395966, left 0.014034),
    // acme 1.4034 → 2 points (0.02, the whole lot), overpaid 0.005966.
    const r = await created('/v1/redemptions', {
      member_id: m,
      brand_id: 'summit',
      group_redemption: true,
      points: 41,
    });
    // Parts of 0.41 in cents: acme/harbor 1.4034, harbor 14.1966, summit 25.4 (sum 41). Each
    // rounded on its own: 1 + 14 + 25 = 40. By largest remainder: 40, the last cent to acme (.4034
    // over .4 and .1966) → 2, 14, 25 = 41.
    assert.deepEqual(
      r.breakdown_by_program.map((b: Json) => [
        b.program_id,
        b.issuing_brand_id,
        b.points,
        b.value.amount_minor,
      ]),
      [
        ['acme-points', 'harbor', 2, 2],
        ['harbor-rewards', 'harbor', 26.29, 14],
        ['summit-miles', 'summit', 10, 25],
      ],
    );
    assert.deepEqual(r.value, { amount_minor: 41, currency: 'USD' });
    assert.equal(ratioE8(r.overpaid.value_exact), 596_600n); // 0.005966
    assert.equal(r.overpaid.program_id, 'acme-points');
    assert.ok(596_600n < valueE8('acme-points', 1), 'overpaid below one acme point');
    assert.deepEqual(await avail(m), {});
    await api.assertVerifyOk();
  });

  void it('a group transfer credits exactly the points asked for; the sender pays at least their value', async () => {
    const a = uid('mbr_gta');
    const b = uid('mbr_gtb');
    await starsAndMiles(a);
    await buy(b, 'northwind', 1000, '2026-06-09T12:00:00Z'); // 5 stars, 1 acme
    assert.deepEqual(await avail(a), { 'acme-points': 2, 'northwind-stars': 10, 'summit-miles': 10 });
    // 15 points = 0.15: stars whole (0.10, left 0.05), miles 0.05 / 0.0254 = 1.97 → 2 (0.0508).
    const res = await created('/v1/transfers', {
      from_member_id: a,
      to_member_id: b,
      points: 15,
      group_transfer: true,
    });
    assert.deepEqual(res.credited, { program_id: 'acme-points', points: 15, debt_paid: 0 });
    assert.deepEqual(res.debited_by_program, [
      { program_id: 'northwind-stars', points: 10 },
      { program_id: 'summit-miles', points: 2 },
    ]);
    const debited = res.debited_by_program.reduce(
      (s: bigint, x: Json) => s + valueE8(x.program_id, x.points),
      0n,
    );
    const credited = valueE8('acme-points', res.credited.points);
    assert.equal(debited, 15_080_000n); // 0.10 + 0.0508
    assert.equal(credited, 15_000_000n); // 0.15
    assert.ok(debited >= credited, 'the sender pays at least what the receiver gets');
    assert.equal(ratioE8(res.overpaid.value_exact), debited - credited); // 0.0008
    assert.equal(res.overpaid.program_id, 'summit-miles');
    assert.deepEqual(await avail(a), { 'acme-points': 2, 'summit-miles': 8 });
    assert.deepEqual(await avail(b), { 'acme-points': 16, 'northwind-stars': 5 });
    // The 15 are split over the sender's lots by value by largest remainder: 15 × 0.10 / 0.1508
    // = 9.947, 15 × 0.0508 / 0.1508 = 5.053 → 9 + 5, the last to the stars' lot (.947): 10 + 5,
    // each keeping its issuer and expiry.
    const lots = await api.t.ctx.db
      .selectFrom('lots')
      .select(['issuing_brand_id', 'points_pt4', 'expires_at'])
      .where('member_id', '=', b)
      .where('program_id', '=', 'acme-points')
      .orderBy('id')
      .execute();
    assert.deepEqual(
      lots.slice(1).map((l) => [l.issuing_brand_id, Number(l.points_pt4) / 1e4, l.expires_at?.toISOString()]),
      [
        ['northwind', 10, '2026-06-18T09:00:00.000Z'],
        ['summit', 5, '2027-01-01T00:00:00.000Z'],
      ],
    );
    await api.assertVerifyOk();
  });

  void it('a request worth less than one point of the earliest-expiring lot takes that one point', async () => {
    const m = uid('mbr_tiny');
    const to = uid('mbr_tiny_to');
    await buy(m, 'summit', 500, '2026-06-09T10:00:00Z'); // 10 miles (0.254) → 25 default points; acme 0
    await buy(to, 'northwind', 1000, '2026-06-09T12:00:00Z'); // 5 stars, 1 acme
    const q = await api.get(`/v1/members/${m}/redeemable?points=1&brand_id=summit&group_redemption=true`);
    assert.equal(q.redeemable, true, JSON.stringify(q));
    // 1 point = 0.01: 0.01 / 0.0254 = 0.39 → 1 mile (0.0254), 0.0154 overpaid (below one mile).
    const r = await created('/v1/redemptions', {
      member_id: m,
      brand_id: 'summit',
      group_redemption: true,
      points: 1,
    });
    assert.deepEqual(r.value, { amount_minor: 1, currency: 'USD' });
    assert.deepEqual(
      r.breakdown_by_program.map((b: Json) => [b.program_id, b.points, b.value.amount_minor]),
      [['summit-miles', 1, 1]],
    );
    assert.equal(ratioE8(r.overpaid.value_exact), 1_540_000n);
    assert.equal(r.overpaid.program_id, 'summit-miles');
    assert.deepEqual(await avail(m), { 'summit-miles': 9 });
    // A group transfer of 1 point likewise: 1 mile debited, exactly 1 point credited.
    const tr = await created('/v1/transfers', {
      from_member_id: m,
      to_member_id: to,
      points: 1,
      group_transfer: true,
    });
    assert.deepEqual(tr.debited_by_program, [{ program_id: 'summit-miles', points: 1 }]);
    assert.deepEqual(tr.credited, { program_id: 'acme-points', points: 1, debt_paid: 0 });
    assert.deepEqual(await avail(m), { 'summit-miles': 8 });
    assert.deepEqual(await avail(to), { 'acme-points': 2, 'northwind-stars': 5 });
    await api.assertVerifyOk();
  });
});
