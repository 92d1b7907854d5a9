// POST /v1/transfers through the HTTP API (issue 4): program transfer (same program, the
// receiver's lot keeps issuer and expiry), group transfer (lands in the receiver's default
// program), insufficient balance, the per-program daily limit, idempotency, verify.
// app.inject() on PGlite memory:// (or a fresh PostgreSQL database with DATABASE_URL).
//
// Config: the demo fixture with northwind-stars expiring rolling 10 days and a daily transfer
// limit of 100 points; acme-points (the default program) rolling 365 days, no limit.
//   northwind-stars: 5 pts / 1000 cents, point 0.01 USD; acme-points: 1 pt / 1000 cents, 0.01 USD
//   harbor-rewards: 1 pt / 100 EUR cents, accumulate, point 0.0054 USD, end of year (demo: after 365 d)

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { Api, assertError, DAY_MS, uid, type Json } from './lifecycle-helpers.ts';

const NOW = '2026-06-10T00:00:00.000Z';
const clock = new ManualClock(NOW);
const api = Api.forTests(clock, {
  resetClockTo: NOW,
  doc: () => {
    const doc = demoConfigDoc();
    const nw = doc.programs.find((p) => p.id === 'northwind-stars')!;
    nw.expiry = { kind: 'rolling', days: 10 };
    nw.transfer = { daily_limit_points: '100' };
    return doc;
  },
});

const transfer = (body: Json, headers: Record<string, string> = {}) =>
  api.command('/v1/transfers', body, headers);
const balances = (member: string) => api.get(`/v1/members/${member}/balances`);
const avail = (member: string) => api.available(member);

async function lotsOf(member: string, program_id: string) {
  return api.t.ctx.db
    .selectFrom('lots')
    .select(['issuing_brand_id', 'points_pt4', 'remaining_pt4', 'awarded_at', 'expires_at'])
    .where('member_id', '=', member)
    .where('program_id', '=', program_id)
    .orderBy('id')
    .execute();
}

void describe('transfers', () => {
  void it('program transfer: same program, the receiver’s lot keeps issuer, award time and expiry, FEFO from the sender', async () => {
    const a = uid('mbr_a');
    const b = uid('mbr_b');
    await api.buy(a, 'northwind', 4000, '2026-06-09T10:00:00Z'); // 20 stars exp 06-19T10, acme 4
    await api.buy(a, 'northwind', 6000, '2026-06-08T10:00:00Z'); // 30 stars exp 06-18T10 (earlier), acme 6
    await api.buy(b, 'harbor', 1000, '2026-06-09T12:00:00Z'); // 10 harbor, acme 1 (1000×1.08 = 1080 c)
    // 35 stars: the 30 expiring 06-18 first, then 5 of the 20 expiring 06-19.
    const res = await transfer({
      from_member_id: a,
      to_member_id: b,
      points: 35,
      program_id: 'northwind-stars',
    });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().debited_by_program, [{ program_id: 'northwind-stars', points: 35 }]);
    assert.deepEqual(res.json().credited, { program_id: 'northwind-stars', points: 35, debt_paid: 0 });
    assert.deepEqual(await avail(a), { 'acme-points': 10, 'northwind-stars': 15 });
    assert.deepEqual(await avail(b), { 'acme-points': 1, 'harbor-rewards': 10, 'northwind-stars': 35 });
    const bl = await lotsOf(b, 'northwind-stars');
    assert.deepEqual(
      bl.map((l) => [
        l.issuing_brand_id,
        Number(l.remaining_pt4) / 1e4,
        l.awarded_at.toISOString(),
        l.expires_at?.toISOString(),
      ]),
      [
        ['northwind', 30, '2026-06-08T10:00:00.000Z', '2026-06-18T10:00:00.000Z'],
        ['northwind', 5, '2026-06-09T10:00:00.000Z', '2026-06-19T10:00:00.000Z'],
      ],
    );
    const nw = (await balances(b)).programs.find((p: Json) => p.program_id === 'northwind-stars');
    assert.deepEqual(nw.expiring, [
      { points: 30, expires_at: '2026-06-18T10:00:00.000Z' },
      { points: 5, expires_at: '2026-06-19T10:00:00.000Z' },
    ]);
    const al = await lotsOf(a, 'northwind-stars');
    assert.deepEqual(
      al.map((l) => Number(l.remaining_pt4) / 1e4),
      [15, 0],
    );
    await api.assertVerifyOk();
  });

  void it('group transfer: spends the sender’s pool earliest expiry first and lands in the receiver’s default program', async () => {
    const a = uid('mbr_ga');
    const b = uid('mbr_gb');
    await api.buy(a, 'northwind', 2000, '2026-06-09T10:00:00Z'); // 10 stars (0.10) exp 06-19T10, acme 2
    await api.buy(a, 'harbor', 2500, '2026-06-09T11:00:00Z'); // 25 harbor (0.135) exp 2028-01-01, acme 2 (2700 c)
    await api.buy(b, 'northwind', 1000, '2026-06-09T12:00:00Z'); // 5 stars, acme 1
    // Pool: 0.10 + 0.135 + 0.04 = 0.275 → 27 points. 12 points = 0.12: stars 10 (0.10) first,
    // then acme (exp 2027-06-09T10, before harbor's 2028): 2 points (0.02).
    assert.equal((await balances(a)).group.points, 27);
    const res = await transfer({ from_member_id: a, to_member_id: b, points: 12, group_transfer: true });
    assert.equal(res.statusCode, 201, res.body);
    assert.deepEqual(res.json().debited_by_program, [
      { program_id: 'acme-points', points: 2 },
      { program_id: 'northwind-stars', points: 10 },
    ]);
    assert.deepEqual(res.json().credited, { program_id: 'acme-points', points: 12, debt_paid: 0 });
    assert.deepEqual(await avail(a), { 'acme-points': 2, 'harbor-rewards': 25, 'northwind-stars': 0 });
    assert.deepEqual(await avail(b), { 'acme-points': 13, 'northwind-stars': 5 });
    // The receiver's new default-program lots carry the issuers and expiries of what was spent.
    const bl = await lotsOf(b, 'acme-points');
    assert.deepEqual(
      bl
        .slice(1)
        .map((l) => [l.issuing_brand_id, Number(l.points_pt4) / 1e4, l.expires_at?.toISOString()])
        .sort(),
      [
        ['northwind', 10, '2026-06-19T10:00:00.000Z'],
        ['northwind', 2, '2027-06-09T10:00:00.000Z'],
      ].sort(),
    );
    // 2 acme + 25 harbor (0.135) = 0.155 → 15; 16 is short.
    const e = assertError(
      await transfer({ from_member_id: a, to_member_id: b, points: 16, group_transfer: true }),
      409,
      'INSUFFICIENT_POINTS',
    );
    assert.equal(e.details.available, 15);
    await api.assertVerifyOk();
  });

  void it('insufficient, unknown member, self and bad shapes change nothing', async () => {
    const a = uid('mbr_ia');
    const b = uid('mbr_ib');
    await api.buy(a, 'northwind', 2000, '2026-06-09T10:00:00Z'); // 10 stars, 2 acme
    await api.buy(b, 'northwind', 2000, '2026-06-09T10:00:00Z');
    const e = assertError(
      await transfer({ from_member_id: a, to_member_id: b, points: 11, program_id: 'northwind-stars' }),
      409,
      'INSUFFICIENT_POINTS',
    );
    assert.equal(e.details.available, 10);
    assertError(
      await transfer({
        from_member_id: a,
        to_member_id: uid('mbr_nobody'),
        points: 1,
        program_id: 'northwind-stars',
      }),
      404,
      'MEMBER_NOT_FOUND',
    );
    assertError(
      await transfer({ from_member_id: a, to_member_id: a, points: 1, program_id: 'northwind-stars' }),
      400,
      'INVALID_REQUEST',
    );
    assertError(await transfer({ from_member_id: a, to_member_id: b, points: 1 }), 400, 'INVALID_REQUEST');
    assertError(
      await transfer({ from_member_id: a, to_member_id: b, points: 1.5, program_id: 'northwind-stars' }),
      422,
      'INVALID_AMOUNT',
    );
    const brandKey = await api.t.app.inject({
      method: 'POST',
      url: '/v1/api-keys',
      headers: api.t.adminHeaders,
      payload: { name: uid('k'), scope: 'brand:northwind' },
    });
    assertError(
      await transfer(
        { from_member_id: a, to_member_id: b, points: 1, program_id: 'northwind-stars' },
        { authorization: `Bearer ${brandKey.json().secret as string}` },
      ),
      403,
      'FORBIDDEN',
    );
    assert.deepEqual(await avail(a), { 'acme-points': 2, 'northwind-stars': 10 });
    assert.deepEqual(await avail(b), { 'acme-points': 2, 'northwind-stars': 10 });
    await api.assertVerifyOk();
  });

  void it('daily limit per program: 409 TRANSFER_LIMIT_EXCEEDED past 100 points a UTC day', async () => {
    const a = uid('mbr_la');
    const b = uid('mbr_lb');
    await api.buy(a, 'northwind', 40000, '2026-06-09T10:00:00Z'); // 200 stars, 40 acme
    await api.buy(b, 'northwind', 1000, '2026-06-09T10:00:00Z');
    const ok = (points: number) =>
      transfer({ from_member_id: a, to_member_id: b, points, program_id: 'northwind-stars' });
    assert.equal((await ok(60)).statusCode, 201);
    const e = assertError(await ok(50), 409, 'TRANSFER_LIMIT_EXCEEDED');
    assert.equal(e.details.limit, 100);
    assert.equal(e.details.used_today, 60);
    assert.equal((await ok(40)).statusCode, 201); // exactly 100 today
    assertError(await ok(1), 409, 'TRANSFER_LIMIT_EXCEEDED');
    // The limit is per program: the default program has none.
    assert.equal(
      (
        await transfer({
          from_member_id: a,
          to_member_id: b,
          points: 30,
          group_transfer: false,
          program_id: 'acme-points',
        })
      ).statusCode,
      201,
    );
    assert.deepEqual(await avail(a), { 'acme-points': 10, 'northwind-stars': 100 });
    clock.set('2026-06-10T23:59:59.999Z');
    assertError(await ok(1), 409, 'TRANSFER_LIMIT_EXCEEDED');
    clock.set('2026-06-11T00:00:00.000Z'); // a new UTC day
    assert.equal((await ok(100)).statusCode, 201);
    assert.deepEqual(await avail(a), { 'acme-points': 10, 'northwind-stars': 0 });
    assert.equal((await avail(b))['northwind-stars'], 205);
    await api.assertVerifyOk();
  });

  void it('idempotent: same key and body replays (debited once), another body is 409', async () => {
    const a = uid('mbr_da');
    const b = uid('mbr_db');
    await api.buy(a, 'northwind', 2000, '2026-06-09T10:00:00Z');
    await api.buy(b, 'northwind', 2000, '2026-06-09T10:00:00Z');
    const body = {
      from_member_id: a,
      to_member_id: b,
      points: 4,
      program_id: 'northwind-stars',
      idempotency_key: uid('tk'),
    };
    const first = await transfer(body);
    assert.equal(first.statusCode, 201, first.body);
    const again = await transfer(body);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().replayed, true);
    assert.equal(again.json().transfer_id, first.json().transfer_id);
    assertError(await transfer({ ...body, points: 5 }), 409, 'IDEMPOTENCY_KEY_REUSED');
    assert.deepEqual(await avail(a), { 'acme-points': 2, 'northwind-stars': 6 });
    assert.deepEqual(await avail(b), { 'acme-points': 2, 'northwind-stars': 14 });
    await api.assertVerifyOk();
  });

  void it('transferred points are spent by the receiver like their own (FEFO by the kept expiry)', async () => {
    const a = uid('mbr_sa');
    const b = uid('mbr_sb');
    await api.buy(a, 'northwind', 2000, '2026-06-07T10:00:00Z'); // 10 stars exp 06-17T10
    await api.buy(b, 'northwind', 2000, '2026-06-09T10:00:00Z'); // 10 stars exp 06-19T10
    assert.equal(
      (await transfer({ from_member_id: a, to_member_id: b, points: 10, program_id: 'northwind-stars' }))
        .statusCode,
      201,
    );
    // b spends 10: the received lot expires first (06-17) and goes first.
    const r = await api.t.app.inject({
      method: 'POST',
      url: '/v1/redemptions',
      headers: api.t.adminHeaders,
      payload: { member_id: b, brand_id: 'northwind', points: 10, idempotency_key: uid('rk') },
    });
    assert.equal(r.statusCode, 201, r.body);
    const bl = await lotsOf(b, 'northwind-stars');
    assert.deepEqual(
      bl.map((l) => [l.expires_at?.toISOString(), Number(l.remaining_pt4) / 1e4]),
      [
        ['2026-06-19T10:00:00.000Z', 10],
        ['2026-06-17T10:00:00.000Z', 0],
      ],
    );
    clock.advance(DAY_MS);
    await api.assertVerifyOk();
  });
});
