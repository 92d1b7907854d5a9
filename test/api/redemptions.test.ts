// Redemption across brands through the HTTP API (issue 4, "Must show"): single-program and group
// redemption (FEFO across programs, conversion, the last lot rounded up), redeemable, insufficient
// balance, holds (capture, partial capture, release, timeout), reverse (original lots, expiry on
// restore, settlement trail), idempotency, brand scope, and "redemption does not earn".
// app.inject() on PGlite memory:// (or a fresh PostgreSQL database with DATABASE_URL).
//
// One service for the file; every test uses its own members. The clock is reset to NOW before
// each test. The config is the demo fixture with expiry policies chosen so FEFO is exact:
//   northwind-stars: 5 pts / 1000 cents, rolling 10 days, hold timeout 15 min, point 0.01 USD
//   harbor-rewards:  1 pt / 100 EUR cents, accumulate, end of year (after_days 0),
//                    point 0.005 EUR × 1.08 = 0.0054 USD
//   summit-miles:    2 pts / 100 GBP cents, nearest, end of year (after_days 0), window 365 d,
//                    point 0.02 GBP × 1.27 = 0.0254 USD, reimbursement 0.9
//   acme-points:     1 pt / 1000 USD cents (EUR/GBP converted first), floor, rolling 365 days,
//                    point 0.01 USD (the unit of group redemption)

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { sql } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import type { Config } from '../../src/domain/config/schema.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { Api, assertError, uid, type Json } from './lifecycle-helpers.ts';

const NOW = '2026-06-10T00:00:00.000Z';
const MIN_MS = 60_000;
const clock = new ManualClock(NOW);

type Headers = { authorization: string };

export function fefoConfig(): Config {
  const doc = demoConfigDoc();
  const p = (id: string) => doc.programs.find((x) => x.id === id)!;
  p('northwind-stars').expiry = { kind: 'rolling', days: 10 };
  p('northwind-stars').hold_timeout_minutes = 15;
  p('harbor-rewards').expiry = { kind: 'end_of_period', period: 'year', after_days: 0 };
  p('summit-miles').expiry = { kind: 'end_of_period', period: 'year', after_days: 0 };
  p('summit-miles').expiring_window_days = 365;
  return doc;
}

const api = Api.forTests(clock, { doc: fefoConfig, resetClockTo: NOW });

// ---------------------------------------------------------------------------------------------
// Helpers

const admin = (): Headers => api.t.adminHeaders;

const redeem = (body: Json, headers: Headers = admin()) => api.command('/v1/redemptions', body, headers);

async function redeemOk(body: Json, headers: Headers = admin()): Promise<Json> {
  const res = await redeem(body, headers);
  assert.equal(res.statusCode, 201, res.body);
  return res.json();
}

const post = (url: string, payload?: Json, headers: Headers = admin()) =>
  api.inject('POST', url, payload, headers);
const balances = (member: string) => api.get(`/v1/members/${member}/balances`);
/** program_id → { available, held, pending } */
const byProgram = (member: string) => api.balanceFields(member, 'available', 'held', 'pending');

/** The member's lots keyed "<source event>/<program>": remaining points (pt4 → number) and expiry. */
async function lots(
  member: string,
): Promise<Map<string, { remaining: number; held: number; expires_at: string | null; issuer: string }>> {
  const rows = await api.t.ctx.db
    .selectFrom('lots')
    .select(['source_event_id', 'program_id', 'remaining_pt4', 'held_pt4', 'expires_at', 'issuing_brand_id'])
    .where('member_id', '=', member)
    .orderBy('id')
    .execute();
  return new Map(
    rows.map((r) => [
      `${r.source_event_id}/${r.program_id}`,
      {
        remaining: Number(r.remaining_pt4) / 1e4,
        held: Number(r.held_pt4) / 1e4,
        expires_at: r.expires_at?.toISOString() ?? null,
        issuer: r.issuing_brand_id,
      },
    ]),
  );
}

/** "n/d" (ratioToJson) equals the decimal `expected` exactly. */
function assertRatio(actual: string, expected: string): void {
  const m = /^(-?\d+)(?:\/(\d+))?$/.exec(actual);
  assert.ok(m, `not a ratio: ${actual}`);
  const [int, frac = ''] = expected.split('.');
  const num = BigInt(int! + frac);
  const den = 10n ** BigInt(frac.length);
  assert.equal(BigInt(m[1]!) * den, num * BigInt(m[2] ?? '1'), `${actual} ≠ ${expected}`);
}

async function flowPoints(redemption_id: string): Promise<Record<string, number>> {
  const rows = await sql<{
    issuer: string;
    redeemer: string;
    points: string;
  }>`select issuer_brand_id as issuer, redeemer_brand_id as redeemer, sum(points_pt4)::text as points
    from settlement_flows where redemption_id = ${redemption_id} group by 1, 2 order by 1, 2`.execute(
    api.t.ctx.db,
  );
  return Object.fromEntries(rows.rows.map((r) => [`${r.issuer}->${r.redeemer}`, Number(r.points) / 1e4]));
}

async function lotCount(member: string): Promise<number> {
  return (await api.t.ctx.db.selectFrom('lots').select('id').where('member_id', '=', member).execute())
    .length;
}

/**
 * Four purchases giving lots in four programs, created in an order unlike their FEFO order:
 *   ev H2 harbor €10.01 @06-09T10 → harbor 10.01 (exp 2027-01-01), acme 1 (1001×1.08=1081 c, exp 2027-06-09T10)
 *   ev S1 summit £5.00  @06-08T10 → summit 10 (exp 2027-01-01), acme 0 (500×1.27=635 c)
 *   ev H1 harbor €7.77  @06-07T10 → harbor 7.77 (exp 2027-01-01), acme 0 (839 c)
 *   ev N1 northwind $20 @06-08T09 → northwind 10 (exp 06-18T09), acme 2 (exp 2027-06-08T09)
 * FEFO: N1, H1, S1, H2 (equal expiry → earliest awarded), acme-N1, acme-H2.
 */
async function fourLots(member: string) {
  const H2 = await api.buy(member, 'harbor', 1001, '2026-06-09T10:00:00Z');
  const S1 = await api.buy(member, 'summit', 500, '2026-06-08T10:00:00Z');
  const H1 = await api.buy(member, 'harbor', 777, '2026-06-07T10:00:00Z');
  const N1 = await api.buy(member, 'northwind', 2000, '2026-06-08T09:00:00Z');
  const pts = (e: Json, p: string) => e.accruals.find((a: Json) => a.program_id === p)?.points;
  assert.equal(pts(H2, 'harbor-rewards'), 10.01);
  assert.equal(pts(H2, 'acme-points'), 1);
  assert.equal(pts(S1, 'summit-miles'), 10);
  assert.equal(pts(H1, 'harbor-rewards'), 7.77);
  assert.equal(pts(N1, 'northwind-stars'), 10);
  assert.equal(pts(N1, 'acme-points'), 2);
  assert.equal(
    N1.accruals.find((a: Json) => a.program_id === 'northwind-stars').expires_at,
    '2026-06-18T09:00:00.000Z',
  );
  assert.equal(
    H1.accruals.find((a: Json) => a.program_id === 'harbor-rewards').expires_at,
    '2027-01-01T00:00:00.000Z',
  );
  assert.equal(
    S1.accruals.find((a: Json) => a.program_id === 'summit-miles').expires_at,
    '2027-01-01T00:00:00.000Z',
  );
  return {
    H2: H2.event_id as string,
    S1: S1.event_id as string,
    H1: H1.event_id as string,
    N1: N1.event_id as string,
  };
}

// ---------------------------------------------------------------------------------------------

void describe('group redemption across three programs (FEFO, conversion, last lot rounded up)', () => {
  void it('spends earliest expiry first across programs, shows the conversion and takes at least the exact equivalent, less than one point of the last program above it', async () => {
    const m = uid('mbr_fefo');
    const ev = await fourLots(m);
    // Pool: 0.10 + 7.77×0.0054 + 10×0.0254 + 10.01×0.0054 + 3×0.01 = 0.480012 USD → 48 points.
    const b0 = await balances(m);
    assert.equal(b0.group.points, 48);

    const q = await api.t.app.inject({
      method: 'GET',
      url: `/v1/members/${m}/redeemable?points=48&brand_id=harbor&group_redemption=true`,
      headers: admin(),
    });
    assert.equal(q.statusCode, 200, q.body);
    assert.deepEqual(
      { ...q.json<Json>(), member_id: undefined },
      {
        member_id: undefined,
        brand_id: 'harbor',
        program_id: 'acme-points',
        group_redemption: true,
        points: 48,
        redeemable: true,
        available: 48,
        shortfall: 0,
        value: { amount_minor: 48, currency: 'USD' },
      },
    );
    const q2 = await api.t.app.inject({
      method: 'GET',
      url: `/v1/members/${m}/redeemable?points=49&brand_id=harbor&group_redemption=true`,
      headers: admin(),
    });
    assert.equal(q2.json().redeemable, false);
    assert.equal(q2.json().available, 48);
    assert.equal(q2.json().shortfall, 1);
    assert.equal(q2.json().value.amount_minor, 49);

    // 30 points = 0.30 USD: N1 whole (0.10, left 0.20), H1 whole (0.041958, left 0.158042),
    // S1 0.158042 / 0.0254 = 6.22 → rounded up to 7 miles (0.1778): 0.1778 − 0.158042 = 0.019758
    // overpaid in summit-miles (less than one mile, 0.0254).
    // Breakdown lines: each line's part of the 0.30 (summit's is 0.1778 − 0.019758 = 0.158042),
    // 30 cents split by largest remainder: 4.1958, 10, 15.8042 → 4, 10, 15 (29) + 1 to the largest
    // remainder (summit, .8042) → 4, 10, 16 = 30.
    const r = await redeemOk({ member_id: m, brand_id: 'harbor', group_redemption: true, points: 30 });
    assert.equal(r.status, 'captured');
    assert.equal(r.points, 30);
    assert.deepEqual(r.value, { amount_minor: 30, currency: 'USD' });
    assert.deepEqual(r.breakdown_by_program, [
      {
        program_id: 'harbor-rewards',
        issuing_brand_id: 'harbor',
        points: 7.77,
        value: { amount_minor: 4, currency: 'USD' },
        conversion: '1 harbor-rewards point = 0.0054 USD',
      },
      {
        program_id: 'northwind-stars',
        issuing_brand_id: 'northwind',
        points: 10,
        value: { amount_minor: 10, currency: 'USD' },
        conversion: '1 northwind-stars point = 0.01 USD',
      },
      {
        program_id: 'summit-miles',
        issuing_brand_id: 'summit',
        points: 7,
        value: { amount_minor: 16, currency: 'USD' },
        conversion: '1 summit-miles point = 0.0254 USD',
      },
    ]);
    assert.equal(
      r.breakdown_by_program.reduce((s: number, b: Json) => s + (b.value.amount_minor as number), 0),
      r.value.amount_minor,
    );
    assert.equal(r.overpaid.program_id, 'summit-miles');
    assertRatio(r.overpaid.value_exact, '0.019758');
    // `absorbed` (old clients) is the negation: target − value taken.
    assert.equal(r.absorbed.program_id, 'summit-miles');
    assertRatio(r.absorbed.value_exact, '-0.019758');
    // Charged 0.319758 exactly: at least 0.30, less than 0.30 + one mile (0.0254).
    const charged = 0.1 + 7.77 * 0.0054 + 7 * 0.0254;
    assert.ok(charged >= 0.3 - 1e-12 && charged < 0.3 + 0.0254);

    // Exact lot effects, in FEFO order: N1, H1 empty; S1 7 of 10 taken; later lots untouched.
    const l = await lots(m);
    assert.equal(l.get(`${ev.N1}/northwind-stars`)!.remaining, 0);
    assert.equal(l.get(`${ev.H1}/harbor-rewards`)!.remaining, 0);
    assert.equal(l.get(`${ev.S1}/summit-miles`)!.remaining, 3);
    assert.equal(l.get(`${ev.H2}/harbor-rewards`)!.remaining, 10.01);
    assert.equal(l.get(`${ev.N1}/acme-points`)!.remaining, 2);
    assert.equal(l.get(`${ev.H2}/acme-points`)!.remaining, 1);
    assert.deepEqual(await byProgram(m), {
      'acme-points': { available: 3, held: 0, pending: 0 },
      'harbor-rewards': { available: 10.01, held: 0, pending: 0 },
      'northwind-stars': { available: 0, held: 0, pending: 0 },
      'summit-miles': { available: 3, held: 0, pending: 0 },
    });
    // The response's remaining balances say the same.
    assert.deepEqual(r.balances, [
      { program_id: 'acme-points', available: 3, held: 0 },
      { program_id: 'harbor-rewards', available: 10.01, held: 0 },
      { program_id: 'northwind-stars', available: 0, held: 0 },
      { program_id: 'summit-miles', available: 3, held: 0 },
    ]);
    // Settlement: cross-brand lots (northwind, summit) owe harbor; harbor's own lot does not.
    assert.deepEqual(await flowPoints(r.redemption_id), { 'northwind->harbor': 10, 'summit->harbor': 7 });

    // Pool left: 3×0.0254 + 10.01×0.0054 + 3×0.01 = 0.0762 + 0.054054 + 0.03 = 0.160254 → 16 points.
    assert.equal((await balances(m)).group.points, 16);
    // 16 points = 0.16 at northwind: S1 rest (3 miles, 0.0762, left 0.0838), H2 whole (0.054054,
    // left 0.029746), acme-N1 whole (0.02, left 0.009746), acme-H2's 1 point is worth 0.01 > left:
    // 0.9746 rounded up to 1 point (the whole lot), 0.01 − 0.009746 = 0.000254 overpaid in
    // acme-points. Lines (by program, then issuer) and their parts of 0.16: acme/harbor 0.009746,
    // acme/northwind 0.02, harbor 0.054054, summit 0.0762 → 0.9746, 2, 5.4054, 7.62 cents →
    // floors 0, 2, 5, 7 (14) + 1 each to the two largest remainders (.9746 acme/harbor, .62
    // summit) → 1, 2, 5, 8 = 16.
    const r2 = await redeemOk({ member_id: m, brand_id: 'northwind', group_redemption: true, points: 16 });
    assert.deepEqual(
      r2.breakdown_by_program.map((b: Json) => [
        b.program_id,
        b.issuing_brand_id,
        b.points,
        b.value.amount_minor,
      ]),
      [
        ['acme-points', 'harbor', 1, 1],
        ['acme-points', 'northwind', 2, 2],
        ['harbor-rewards', 'harbor', 10.01, 5],
        ['summit-miles', 'summit', 3, 8],
      ],
    );
    assert.equal(r2.overpaid.program_id, 'acme-points');
    assertRatio(r2.overpaid.value_exact, '0.000254');
    assertRatio(r2.absorbed.value_exact, '-0.000254');
    assert.deepEqual(r2.value, { amount_minor: 16, currency: 'USD' });
    const l2 = await lots(m);
    assert.equal(l2.get(`${ev.S1}/summit-miles`)!.remaining, 0);
    assert.equal(l2.get(`${ev.H2}/harbor-rewards`)!.remaining, 0);
    assert.equal(l2.get(`${ev.N1}/acme-points`)!.remaining, 0);
    assert.equal(l2.get(`${ev.H2}/acme-points`)!.remaining, 0);
    // At northwind: harbor issued harbor-rewards 10.01 and acme 1 (H2); summit issued 3 miles.
    assert.deepEqual(await flowPoints(r2.redemption_id), {
      'harbor->northwind': 11.01,
      'summit->northwind': 3,
    });
    await api.assertVerifyOk();
  });

  void it('single-program redemption spends only that program, FEFO within it, with its conversion line', async () => {
    const m = uid('mbr_single');
    // Created newest first so lot ids run against FEFO.
    const late = await api.buy(m, 'harbor', 1001, '2026-06-09T10:00:00Z');
    const early = await api.buy(m, 'harbor', 777, '2026-06-07T10:00:00Z');
    await api.buy(m, 'northwind', 2000, '2026-06-08T09:00:00Z');
    // 12.5 harbor points at harbor (default program of the brand): 7.77 from the earlier-awarded
    // lot (same year-end expiry), 4.73 from the later. Value 12.5 × 0.0054 = 0.0675 → 6 cents
    // (rounded down: what the member is given never exceeds what the points are worth).
    const r = await redeemOk({ member_id: m, brand_id: 'harbor', points: 12.5 });
    assert.equal(r.group_redemption, false);
    assert.deepEqual(r.value, { amount_minor: 6, currency: 'USD' });
    assert.deepEqual(r.breakdown_by_program, [
      {
        program_id: 'harbor-rewards',
        issuing_brand_id: 'harbor',
        points: 12.5,
        value: { amount_minor: 6, currency: 'USD' },
        conversion: '1 harbor-rewards point = 0.0054 USD',
      },
    ]);
    assert.equal(r.absorbed.program_id, null);
    assert.deepEqual(r.overpaid, { value_exact: '0', program_id: null });
    const l = await lots(m);
    assert.equal(l.get(`${early.event_id}/harbor-rewards`)!.remaining, 0);
    assert.equal(l.get(`${late.event_id}/harbor-rewards`)!.remaining, 5.28);
    // Other programs untouched, including northwind's lot that expires much sooner.
    assert.deepEqual(await byProgram(m), {
      'acme-points': { available: 3, held: 0, pending: 0 },
      'harbor-rewards': { available: 5.28, held: 0, pending: 0 },
      'northwind-stars': { available: 10, held: 0, pending: 0 },
    });
    // An explicit program at another brand: 3 northwind stars at summit = 0.03 USD, and
    // settlement records northwind owing summit for them.
    const r2 = await redeemOk({ member_id: m, brand_id: 'summit', program_id: 'northwind-stars', points: 3 });
    assert.deepEqual(r2.breakdown_by_program, [
      {
        program_id: 'northwind-stars',
        issuing_brand_id: 'northwind',
        points: 3,
        value: { amount_minor: 3, currency: 'USD' },
        conversion: '1 northwind-stars point = 0.01 USD',
      },
    ]);
    assert.deepEqual(await flowPoints(r2.redemption_id), { 'northwind->summit': 3 });
    // A single-program redeemable is in that program's points.
    const q = await api.t.app.inject({
      method: 'GET',
      url: `/v1/members/${m}/redeemable?points=6&brand_id=harbor&program_id=harbor-rewards`,
      headers: admin(),
    });
    assert.deepEqual(
      { r: q.json().redeemable, a: q.json().available, s: q.json().shortfall, v: q.json().value },
      { r: false, a: 5.28, s: 0.72, v: { amount_minor: 3, currency: 'USD' } },
    );
    // Whole-point programs refuse fractions; accumulate programs take 4 decimals.
    assertError(await redeem({ member_id: m, brand_id: 'northwind', points: 1.5 }), 422, 'INVALID_AMOUNT');
    await api.assertVerifyOk();
  });

  void it('summit miles worth 0.0254 USD: a group redemption rounds the miles taken up, never a mile more', async () => {
    const m = uid('mbr_conv');
    await api.buy(m, 'summit', 500, '2026-06-09T10:00:00Z'); // 10 miles = 0.254 USD → 25 points; acme 0
    // 2 default points (0.02) are worth less than one mile of the earliest-expiring (and only)
    // lot: 0.02 / 0.0254 = 0.79 → rounded up to 1 mile (0.0254), 0.0054 overpaid. Redeemable agrees.
    const small = await api.t.app.inject({
      method: 'GET',
      url: `/v1/members/${m}/redeemable?points=2&brand_id=summit&group_redemption=true`,
      headers: admin(),
    });
    assert.equal(small.json().redeemable, true, small.body);
    assert.equal(small.json().shortfall, 0);
    const r0 = await redeemOk({ member_id: m, brand_id: 'summit', group_redemption: true, points: 2 });
    assert.deepEqual(
      r0.breakdown_by_program.map((b: Json) => [b.program_id, b.points, b.value.amount_minor]),
      [['summit-miles', 1, 2]],
    );
    assertRatio(r0.overpaid.value_exact, '0.0054');
    assert.equal((await byProgram(m))['summit-miles']!.available, 9);
    // 10 default points = 0.10 USD → 0.10/0.0254 = 3.94 → 4 miles (0.1016), 0.0016 overpaid.
    const r = await redeemOk({ member_id: m, brand_id: 'summit', group_redemption: true, points: 10 });
    assert.deepEqual(
      r.breakdown_by_program.map((b: Json) => [b.program_id, b.points, b.value.amount_minor]),
      [['summit-miles', 4, 10]],
    );
    assert.equal(r.overpaid.program_id, 'summit-miles');
    assertRatio(r.overpaid.value_exact, '0.0016');
    assert.equal((await byProgram(m))['summit-miles']!.available, 5);
    // Pool 5 × 0.0254 = 0.127 → 12 points; 13 is a shortfall of 1.
    assertError(
      await redeem({ member_id: m, brand_id: 'summit', group_redemption: true, points: 13 }),
      409,
      'INSUFFICIENT_POINTS',
    );
    // 0.12/0.0254 = 4.72 → 5 miles, the last ones (0.127, 0.007 overpaid).
    const r2 = await redeemOk({ member_id: m, brand_id: 'summit', group_redemption: true, points: 12 });
    assertRatio(r2.overpaid.value_exact, '0.007');
    assert.equal((await byProgram(m))['summit-miles']!.available, 0);
    await api.assertVerifyOk();
  });
});

void describe('insufficient balance', () => {
  void it('409 INSUFFICIENT_POINTS with the available amount, and nothing changes', async () => {
    const m = uid('mbr_insuf');
    await api.buy(m, 'northwind', 2000, '2026-06-09T10:00:00Z'); // northwind 10, acme 2
    await api.buy(m, 'harbor', 1001, '2026-06-09T11:00:00Z'); // harbor 10.01, acme 1
    const before = await byProgram(m);
    const lotsBefore = [...(await lots(m)).values()];
    const e1 = assertError(
      await redeem({ member_id: m, brand_id: 'northwind', points: 11 }),
      409,
      'INSUFFICIENT_POINTS',
    );
    assert.equal(e1.details.available, 10);
    // 10×0.01 + 10.01×0.0054 + 3×0.01 = 0.184054 → 18 points in the pool.
    const e2 = assertError(
      await redeem({ member_id: m, brand_id: 'harbor', group_redemption: true, points: 19 }),
      409,
      'INSUFFICIENT_POINTS',
    );
    assert.equal(e2.details.available, 18);
    assertError(await redeem({ member_id: m, brand_id: 'harbor', points: 10.00001 }), 422, 'INVALID_AMOUNT'); // 5 decimals
    // What the redemption refuses, redeemable refuses the same way: fractions of a whole-point program.
    assertError(await redeem({ member_id: m, brand_id: 'northwind', points: 1.5 }), 422, 'INVALID_AMOUNT');
    const frac = assertError(
      await api.t.app.inject({
        method: 'GET',
        url: `/v1/members/${m}/redeemable?points=1.5&brand_id=northwind`,
        headers: admin(),
      }),
      422,
      'INVALID_AMOUNT',
    );
    assert.equal(frac.details.field, 'points');
    const e4 = assertError(
      await redeem({ member_id: m, brand_id: 'harbor', points: 10.02 }),
      409,
      'INSUFFICIENT_POINTS',
    );
    assert.equal(e4.details.available, 10.01);
    // A hold is refused the same way.
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', points: 11, capture: false }),
      409,
      'INSUFFICIENT_POINTS',
    );
    assert.deepEqual(await byProgram(m), before);
    assert.deepEqual([...(await lots(m)).values()], lotsBefore);
    const n = await api.t.ctx.db.selectFrom('redemptions').select('id').where('member_id', '=', m).execute();
    assert.equal(n.length, 0);
    assertError(
      await redeem({ member_id: uid('mbr_nobody'), brand_id: 'harbor', points: 1 }),
      404,
      'MEMBER_NOT_FOUND',
    );
    await api.assertVerifyOk();
  });
});

void describe('holds', () => {
  void it('hold → capture; a second capture or a release is refused', async () => {
    const m = uid('mbr_hold');
    await api.buy(m, 'northwind', 10000, '2026-06-09T10:00:00Z'); // northwind 50, acme 10
    const h = await redeemOk({ member_id: m, brand_id: 'northwind', points: 20, capture: false });
    assert.equal(h.status, 'held');
    assert.equal(h.hold_expires_at, new Date(Date.parse(NOW) + 15 * MIN_MS).toISOString());
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 30, held: 20, pending: 0 });
    // Held points are not redeemable.
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', points: 31 }),
      409,
      'INSUFFICIENT_POINTS',
    );
    const c = await post(`/v1/redemptions/${h.redemption_id}/capture`);
    assert.equal(c.statusCode, 200, c.body);
    assert.equal(c.json().status, 'captured');
    assert.equal(c.json().captured, 20);
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 30, held: 0, pending: 0 });
    assertError(await post(`/v1/redemptions/${h.redemption_id}/capture`), 409, 'HOLD_ALREADY_RESOLVED');
    assertError(await post(`/v1/redemptions/${h.redemption_id}/release`), 409, 'HOLD_ALREADY_RESOLVED');
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 30, held: 0, pending: 0 });
    const g = await api.t.app.inject({
      method: 'GET',
      url: `/v1/redemptions/${h.redemption_id}`,
      headers: admin(),
    });
    assert.equal(g.json().status, 'captured');
    await api.assertVerifyOk();
  });

  void it('hold → partial capture: the rest is released', async () => {
    const m = uid('mbr_partial');
    await api.buy(m, 'northwind', 10000, '2026-06-09T10:00:00Z');
    const h = await redeemOk({ member_id: m, brand_id: 'northwind', points: 10, capture: false });
    const c = await post(`/v1/redemptions/${h.redemption_id}/capture`, { points: 4 });
    assert.equal(c.statusCode, 200, c.body);
    assert.deepEqual(c.json().points_captured_by_program, [{ program_id: 'northwind-stars', points: 4 }]);
    assert.deepEqual(c.json().points_released_by_program, [
      { program_id: 'northwind-stars', points: 6, write_off_recovered: 0, debt_paid: 0 },
    ]);
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 46, held: 0, pending: 0 });
    // The redemption says what became of its points.
    const g = await api.t.app.inject({
      method: 'GET',
      url: `/v1/redemptions/${h.redemption_id}`,
      headers: admin(),
    });
    assert.deepEqual(
      {
        status: g.json().status,
        points: g.json().points,
        captured: g.json().captured,
        released: g.json().released,
      },
      { status: 'captured', points: 10, captured: 4, released: 6 },
    );
    // More than held is refused (on a fresh hold), and leaves the hold as it was.
    const h2 = await redeemOk({ member_id: m, brand_id: 'northwind', points: 5, capture: false });
    assertError(
      await post(`/v1/redemptions/${h2.redemption_id}/capture`, { points: 6 }),
      422,
      'INVALID_AMOUNT',
    );
    // A part in fractions of a whole-point program is refused the same way.
    const frac = assertError(
      await post(`/v1/redemptions/${h2.redemption_id}/capture`, { points: 1.5 }),
      422,
      'INVALID_AMOUNT',
    );
    assert.equal(frac.details.field, 'points');
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 41, held: 5, pending: 0 });
    const g2 = (
      await api.t.app.inject({ method: 'GET', url: `/v1/redemptions/${h2.redemption_id}`, headers: admin() })
    ).json();
    assert.deepEqual([g2.status, g2.captured, g2.released], ['held', 0, 0]);
    await post(`/v1/redemptions/${h2.redemption_id}/release`);
    const g3 = (
      await api.t.app.inject({ method: 'GET', url: `/v1/redemptions/${h2.redemption_id}`, headers: admin() })
    ).json();
    assert.deepEqual([g3.status, g3.captured, g3.released], ['released', 0, 5]);
    await api.assertVerifyOk();
  });

  void it('group hold → partial capture rounds the captured miles up, like a spend', async () => {
    const m = uid('mbr_gpartial');
    await api.buy(m, 'summit', 500, '2026-06-09T10:00:00Z'); // 10 miles
    // Hold 10 points = 0.10 USD: 0.10/0.0254 = 3.94 → 4 miles (0.1016) held, 0.0016 overpaid.
    const h = await redeemOk({
      member_id: m,
      brand_id: 'summit',
      group_redemption: true,
      points: 10,
      capture: false,
    });
    assert.deepEqual((await byProgram(m))['summit-miles'], { available: 6, held: 4, pending: 0 });
    // Capture 9 points = 0.09 USD: 0.09/0.0254 = 3.54 → 4 miles, all that is held, none released.
    const c = await post(`/v1/redemptions/${h.redemption_id}/capture`, { points: 9 });
    assert.equal(c.statusCode, 200, c.body);
    assert.deepEqual(c.json().points_captured_by_program, [{ program_id: 'summit-miles', points: 4 }]);
    assert.deepEqual(c.json().points_released_by_program, []);
    assert.deepEqual((await byProgram(m))['summit-miles'], { available: 6, held: 0, pending: 0 });
    assert.deepEqual(await flowPoints(h.redemption_id), {});
    // Capture 5 of a 10-point hold (4 miles held): 0.05/0.0254 = 1.97 → 2 miles captured (0.0508,
    // 0.0008 over 0.05), 2 released.
    const h2 = await redeemOk({
      member_id: m,
      brand_id: 'northwind',
      group_redemption: true,
      points: 10,
      capture: false,
    });
    assert.deepEqual((await byProgram(m))['summit-miles'], { available: 2, held: 4, pending: 0 });
    const c2 = await post(`/v1/redemptions/${h2.redemption_id}/capture`, { points: 5 });
    assert.equal(c2.statusCode, 200, c2.body);
    assert.deepEqual(c2.json().points_captured_by_program, [{ program_id: 'summit-miles', points: 2 }]);
    assert.deepEqual(c2.json().points_released_by_program, [
      { program_id: 'summit-miles', points: 2, write_off_recovered: 0, debt_paid: 0 },
    ]);
    assert.deepEqual((await byProgram(m))['summit-miles'], { available: 4, held: 0, pending: 0 });
    assert.deepEqual(await flowPoints(h2.redemption_id), { 'summit->northwind': 2 });
    // The capture's entry records its rounding.
    const e = await api.t.ctx.db
      .selectFrom('entries')
      .select('detail')
      .where('ref_type', '=', 'redemption')
      .where('ref_id', '=', h2.redemption_id)
      .orderBy('id', 'desc')
      .executeTakeFirstOrThrow();
    const d = (typeof e.detail === 'string' ? JSON.parse(e.detail) : e.detail) as Json;
    assert.equal(d.rounding_program_id, 'summit-miles');
    assertRatio(d.overpaid_value, '0.0008');
    await api.assertVerifyOk();
  });

  void it('hold → release; a second release or a capture is refused', async () => {
    const m = uid('mbr_release');
    await api.buy(m, 'northwind', 10000, '2026-06-09T10:00:00Z');
    const h = await redeemOk({ member_id: m, brand_id: 'northwind', points: 5, capture: false });
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 45, held: 5, pending: 0 });
    const r = await post(`/v1/redemptions/${h.redemption_id}/release`);
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().status, 'released');
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 50, held: 0, pending: 0 });
    assertError(await post(`/v1/redemptions/${h.redemption_id}/release`), 409, 'HOLD_ALREADY_RESOLVED');
    assertError(await post(`/v1/redemptions/${h.redemption_id}/capture`), 409, 'HOLD_ALREADY_RESOLVED');
    assertError(await post(`/v1/redemptions/rdm_doesnotexist/release`), 404, 'REDEMPTION_NOT_FOUND');
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 50, held: 0, pending: 0 });
    await api.assertVerifyOk();
  });

  void it('hold → timeout: a capture after hold_timeout_minutes is refused and the points are available again', async () => {
    const m = uid('mbr_timeout');
    await api.buy(m, 'northwind', 10000, '2026-06-09T10:00:00Z');
    const h = await redeemOk({ member_id: m, brand_id: 'northwind', points: 6, capture: false });
    clock.advance(15 * MIN_MS - 1000); // still inside the 15-minute timeout
    const h2 = await redeemOk({ member_id: m, brand_id: 'northwind', points: 7, capture: false });
    clock.advance(2000); // the first hold is now past its timeout, the second is not
    const e = assertError(
      await post(`/v1/redemptions/${h.redemption_id}/capture`),
      409,
      'HOLD_ALREADY_RESOLVED',
    );
    assert.equal(e.details.status, 'expired');
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 43, held: 7, pending: 0 });
    const g = await api.t.app.inject({
      method: 'GET',
      url: `/v1/redemptions/${h.redemption_id}`,
      headers: admin(),
    });
    assert.equal(g.json().status, 'expired');
    assertError(await post(`/v1/redemptions/${h.redemption_id}/capture`), 409, 'HOLD_ALREADY_RESOLVED');
    // The second hold times out untouched; the release-holds job releases it exactly once.
    clock.advance(15 * MIN_MS);
    const j = await post('/v1/jobs/release-holds/run', {});
    assert.equal(j.statusCode, 200, j.body);
    assert.ok(j.json().holds_released >= 1, j.body);
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 50, held: 0, pending: 0 });
    const j2 = await post('/v1/jobs/release-holds/run', {});
    assert.equal(j2.json().holds_released, 0, j2.body);
    assertError(await post(`/v1/redemptions/${h2.redemption_id}/capture`), 409, 'HOLD_ALREADY_RESOLVED');
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 50, held: 0, pending: 0 });
    await api.assertVerifyOk();
  });
});

void describe('reverse', () => {
  void it('restores the original lots with their original expiry and reverses the settlement trail', async () => {
    const m = uid('mbr_rev');
    const S = await api.buy(m, 'summit', 500, '2026-06-09T10:00:00Z'); // 10 miles, exp 2027-01-01
    const N = await api.buy(m, 'northwind', 2000, '2026-06-08T09:00:00Z'); // 10 stars exp 06-18T09, acme 2
    const expiringBefore = (await balances(m)).programs.map((p: Json) => [p.program_id, p.expiring]);
    // 20 points at harbor: N whole (0.10), then 0.10/0.0254 = 3.94 → 4 miles (rounded up).
    const r = await redeemOk({ member_id: m, brand_id: 'harbor', group_redemption: true, points: 20 });
    assert.deepEqual(
      r.breakdown_by_program.map((b: Json) => [b.program_id, b.points]),
      [
        ['northwind-stars', 10],
        ['summit-miles', 4],
      ],
    );
    assert.deepEqual(await flowPoints(r.redemption_id), { 'northwind->harbor': 10, 'summit->harbor': 4 });
    const rev = await post(`/v1/redemptions/${r.redemption_id}/reverse`);
    assert.equal(rev.statusCode, 200, rev.body);
    assert.deepEqual(rev.json().restored, [
      {
        program_id: 'northwind-stars',
        points: 10,
        expired_on_restore: 0,
        write_off_recovered: 0,
        debt_paid: 0,
      },
      { program_id: 'summit-miles', points: 4, expired_on_restore: 0, write_off_recovered: 0, debt_paid: 0 },
    ]);
    // Same lots, same remaining, same expiry as before the redemption.
    assert.deepEqual(
      (await balances(m)).programs.map((p: Json) => [p.program_id, p.expiring]),
      expiringBefore,
    );
    assert.deepEqual(expiringBefore.find((x: Json) => x[0] === 'northwind-stars')[1], [
      { points: 10, expires_at: '2026-06-18T09:00:00.000Z' },
    ]);
    assert.deepEqual(expiringBefore.find((x: Json) => x[0] === 'summit-miles')[1], [
      { points: 10, expires_at: '2027-01-01T00:00:00.000Z' },
    ]);
    const l = await lots(m);
    assert.equal(l.get(`${N.event_id}/northwind-stars`)!.remaining, 10);
    assert.equal(l.get(`${S.event_id}/summit-miles`)!.remaining, 10);
    // The settlement flows net to zero per pair.
    assert.deepEqual(await flowPoints(r.redemption_id), { 'northwind->harbor': 0, 'summit->harbor': 0 });
    const amounts = await sql<{
      total: string;
    }>`select coalesce(sum(amount_minor), 0)::text as total from settlement_flows where redemption_id = ${r.redemption_id}`.execute(
      api.t.ctx.db,
    );
    assert.equal(amounts.rows[0]!.total, '0');
    const v = await api.assertVerifyOk();
    assert.ok(v.checks.some((c: Json) => c.name === 'settlement_equals_cross_brand_redemptions' && c.ok));
    // Twice → refused.
    assertError(await post(`/v1/redemptions/${r.redemption_id}/reverse`), 409, 'REDEMPTION_NOT_REVERSIBLE');
    assert.deepEqual((await byProgram(m))['northwind-stars'], { available: 10, held: 0, pending: 0 });
    // A hold is not reversible (release it instead).
    const h = await redeemOk({ member_id: m, brand_id: 'northwind', points: 1, capture: false });
    assertError(await post(`/v1/redemptions/${h.redemption_id}/reverse`), 409, 'REDEMPTION_NOT_REVERSIBLE');
  });

  void it('a lot whose expiry passed meanwhile expires at once, to breakage of its issuer', async () => {
    const m = uid('mbr_rev_exp');
    const S = await api.buy(m, 'summit', 500, '2026-06-09T10:00:00Z');
    const N = await api.buy(m, 'northwind', 2000, '2026-06-08T09:00:00Z');
    const breakage = async () => {
      const res = await sql<{
        total: string;
      }>`select coalesce(sum(p.amount_pt4), 0)::text as total from postings p join accounts a on a.id = p.account_id
        where a.program_id = 'northwind-stars' and a.kind = 'breakage' and a.owner_id = 'northwind'
          and p.entry_id in (select id from entries where member_id = ${m})`.execute(api.t.ctx.db);
      return Number(res.rows[0]!.total) / 1e4;
    };
    const r = await redeemOk({ member_id: m, brand_id: 'harbor', group_redemption: true, points: 20 });
    clock.set('2026-06-19T00:00:00Z'); // northwind lot expired 2026-06-18T09
    const rev = await post(`/v1/redemptions/${r.redemption_id}/reverse`);
    assert.equal(rev.statusCode, 200, rev.body);
    assert.deepEqual(rev.json().restored, [
      {
        program_id: 'northwind-stars',
        points: 10,
        expired_on_restore: 10,
        write_off_recovered: 0,
        debt_paid: 0,
      },
      { program_id: 'summit-miles', points: 4, expired_on_restore: 0, write_off_recovered: 0, debt_paid: 0 },
    ]);
    assert.equal(await breakage(), 10);
    const bp = await byProgram(m);
    assert.deepEqual(bp['northwind-stars'], { available: 0, held: 0, pending: 0 });
    assert.deepEqual(bp['summit-miles'], { available: 10, held: 0, pending: 0 });
    const l = await lots(m);
    assert.equal(l.get(`${N.event_id}/northwind-stars`)!.remaining, 0);
    assert.equal(l.get(`${S.event_id}/summit-miles`)!.remaining, 10);
    assert.equal(l.get(`${S.event_id}/summit-miles`)!.expires_at, '2027-01-01T00:00:00.000Z');
    await api.assertVerifyOk();
  });
});

void describe('idempotency', () => {
  void it('same key and body replays (200, debited once); same key, other body is 409', async () => {
    const m = uid('mbr_idem');
    await api.buy(m, 'northwind', 10000, '2026-06-09T10:00:00Z');
    const body = {
      member_id: m,
      brand_id: 'northwind',
      points: 12,
      idempotency_key: uid('idem'),
      order_id: 'ord_1',
    };
    const first = await redeem(body);
    assert.equal(first.statusCode, 201, first.body);
    const again = await redeem(body);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().replayed, true);
    assert.equal(again.json().redemption_id, first.json().redemption_id);
    assert.deepEqual(again.json().breakdown_by_program, first.json().breakdown_by_program);
    assert.equal((await byProgram(m))['northwind-stars']!.available, 38);
    assertError(await redeem({ ...body, points: 13 }), 409, 'IDEMPOTENCY_KEY_REUSED');
    assertError(await redeem({ ...body, order_id: 'ord_2' }), 409, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal((await byProgram(m))['northwind-stars']!.available, 38);
    // A refused request does not burn its key: once the points are there it goes through.
    const big = { member_id: m, brand_id: 'northwind', points: 60, idempotency_key: uid('idem') };
    assertError(await redeem(big), 409, 'INSUFFICIENT_POINTS');
    await api.buy(m, 'northwind', 10000, '2026-06-09T11:00:00Z');
    const later = await redeem(big);
    assert.equal(later.statusCode, 201, later.body);
    assert.equal((await byProgram(m))['northwind-stars']!.available, 28);
  });
});

void describe('redemption does not earn, and brand keys redeem only at their brand', () => {
  void it('a redemption adds no lot and no default-program points', async () => {
    const m = uid('mbr_noearn');
    await api.buy(m, 'northwind', 10000, '2026-06-09T10:00:00Z'); // 50 stars, 10 acme
    const n0 = await lotCount(m);
    await redeemOk({ member_id: m, brand_id: 'northwind', points: 40 });
    const h = await redeemOk({ member_id: m, brand_id: 'northwind', points: 5, capture: false });
    assert.equal((await post(`/v1/redemptions/${h.redemption_id}/capture`)).statusCode, 200);
    const bp = await byProgram(m);
    assert.deepEqual(bp['acme-points'], { available: 10, held: 0, pending: 0 });
    assert.deepEqual(bp['northwind-stars'], { available: 5, held: 0, pending: 0 });
    assert.equal(await lotCount(m), n0);
    assert.equal((await balances(m)).group.points, 15);
  });

  void it('brand key: 201 at its own brand, 403 at another, and cannot resolve another brand’s hold', async () => {
    const m = uid('mbr_scope');
    await api.buy(m, 'northwind', 10000, '2026-06-09T10:00:00Z');
    const mk = async (scope: string) => {
      const res = await post('/v1/api-keys', { name: uid('key'), scope });
      assert.equal(res.statusCode, 201, res.body);
      return { authorization: `Bearer ${res.json().secret as string}` };
    };
    const harborKey = await mk('brand:harbor');
    const northwindKey = await mk('brand:northwind');
    const readKey = await mk('read');
    const ok = await redeemOk(
      { member_id: m, brand_id: 'harbor', group_redemption: true, points: 3 },
      harborKey,
    );
    assert.equal(ok.status, 'captured');
    assertError(
      await redeem({ member_id: m, brand_id: 'northwind', points: 3 }, harborKey),
      403,
      'FORBIDDEN',
    );
    assertError(await redeem({ member_id: m, brand_id: 'northwind', points: 3 }, readKey), 403, 'FORBIDDEN');
    const h = await redeemOk(
      { member_id: m, brand_id: 'northwind', points: 2, capture: false },
      northwindKey,
    );
    assertError(
      await post(`/v1/redemptions/${h.redemption_id}/capture`, undefined, harborKey),
      403,
      'FORBIDDEN',
    );
    assertError(
      await post(`/v1/redemptions/${ok.redemption_id}/reverse`, undefined, northwindKey),
      403,
      'FORBIDDEN',
    );
    assert.equal(
      (await post(`/v1/redemptions/${h.redemption_id}/capture`, undefined, northwindKey)).statusCode,
      200,
    );
    const noKey = await api.t.app.inject({
      method: 'POST',
      url: '/v1/redemptions',
      payload: { member_id: m, brand_id: 'northwind', points: 1, idempotency_key: 'x' },
    });
    assertError(noKey, 401, 'UNAUTHENTICATED');
    // Only 3 default points (0.03 USD → 3 stars, the earliest-expiring lot) and 2 stars were spent.
    assert.equal((await byProgram(m))['northwind-stars']!.available, 45);
    await api.assertVerifyOk();
  });
});

void describe('the value a redemption shows', () => {
  void it('rounds down, so redeeming one point at a time gains nothing', async () => {
    const m = uid('mbr_value');
    await api.buy(m, 'summit', 10_00); // 20 summit miles; one is 0.02 GBP × 1.27 = 2.54 US cents
    const one = await api.get(`/v1/members/${m}/redeemable?points=1&brand_id=summit`);
    assert.deepEqual(one.value, { amount_minor: 2, currency: 'USD' });
    const singles: number[] = [];
    for (let i = 0; i < 10; i++)
      singles.push((await redeemOk({ member_id: m, brand_id: 'summit', points: 1 })).value.amount_minor);
    const ten = await redeemOk({ member_id: m, brand_id: 'summit', points: 10 });
    // Ten single miles show 10 × 2 cents, ten at once 25 (25.4): never more than they are worth.
    assert.deepEqual([singles.reduce((s, v) => s + v, 0), ten.value.amount_minor], [20, 25]);
    await api.assertVerifyOk();
  });
});
