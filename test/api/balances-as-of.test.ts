// GET /v1/members/{id}/balances at instants the audit found wrong (README "Balances"):
// - before any fx rate was in force: programs with nothing to value need no rate, and a program
//   that does is valued at its currency's first rate, flagged `in_force: false` (never a 500);
// - before 1970-01-01T00:00:00Z (year 0000 included): 400 naming the field, on every endpoint
//   that takes an instant;
// - lots past their expires_at are out of `available` (and group points) at once, as redemption
//   treats them, and shown as `expired_not_swept` until the expire job takes them; a future as_of
//   leaves out what will have expired by then; pending lots are not projected into available;
// - `expiring` lists only spendable points (not held ones);
// - `tier` is the tier in force at as_of.
// PGlite memory:// (or PostgreSQL with DATABASE_URL); a fresh service per test.

import { strict as assert } from 'node:assert';
import { afterEach, describe, it } from 'node:test';
import { demoConfigDoc } from '../fixtures/config.ts';
import type { TestService } from '../helpers/store.ts';
import { DAY_MS, serviceWithApi, shirt, uid, type Api, type Json } from './lifecycle-helpers.ts';

let t: TestService | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start(now: string, doc?: unknown): Promise<Api> {
  const s = await serviceWithApi(now, doc);
  t = s.t;
  return s.api;
}

const q = (iso: string) => encodeURIComponent(iso);

async function balancesAt(api: Api, m: string, as_of?: string): Promise<Json> {
  return api.get(`/v1/members/${m}/balances${as_of ? `?as_of=${q(as_of)}` : ''}`);
}

const program = (b: Json, id: string): Json => (b.programs as Json[]).find((p) => p.program_id === id)!;

void describe('balances before the first fx rate', () => {
  void it('answers for a member holding no points in a rated currency', async () => {
    const api = await start('2026-06-10T00:00:00.000Z');
    const m = uid('mbr');
    await api.purchase(m, 'store_atl_012', [shirt(10_000)]);
    for (const as_of of ['2025-12-31T00:00:00Z', '1970-01-01T00:00:00Z']) {
      const b = await balancesAt(api, m, as_of);
      assert.deepEqual(b.programs, [], as_of);
      assert.deepEqual(b.group, {
        points: 0,
        value: { amount_minor: 0, currency: 'USD' },
        fx_rates_used: [],
      });
    }
    // Now: only USD programs hold points, so no rate is used.
    const now = await balancesAt(api, m);
    assert.deepEqual(now.group.fx_rates_used, []);
  });

  void it('values points of a rated currency at its first rate, flagged as not in force', async () => {
    const api = await start('2025-12-20T00:00:00.000Z');
    const m = uid('mbr');
    await api.purchase(m, 'store_atl_012', [shirt(10_000)]); // USD: needs no rate
    await api.adjust({ member_id: m, program_id: 'harbor-rewards', points: 1000 });
    // 1000 harbor points × 0.005 EUR × 1.08 = 5.40 USD = 540 acme points (0.01 USD), + 10 acme
    // points + 50 northwind-stars (0.01 USD)
    const expected = {
      points: 600,
      value: { amount_minor: 600, currency: 'USD' },
      fx_rates_used: [
        { currency: 'EUR', rate: '1.08', effective_from: '2026-01-01T00:00:00.000Z', in_force: false },
      ],
    };
    const current = await balancesAt(api, m);
    assert.deepEqual(current.group, expected);
    api.clock.advance(DAY_MS);
    const past = await balancesAt(api, m, '2025-12-20T00:00:00.000Z');
    assert.deepEqual(past.group, expected);
    // Once the rate is in force it says so.
    const later = await balancesAt(api, m, '2026-01-02T00:00:00.000Z');
    assert.equal(later.group.fx_rates_used[0].in_force, true);
  });
});

void describe('instants before 1970-01-01T00:00:00Z', () => {
  const EARLY = ['0000-01-01T00:00:00Z', '1969-12-31T23:59:59.999Z', '1970-01-01T00:30:00+01:00'];

  void it('are refused with 400 naming the field, on every endpoint that takes one', async () => {
    const api = await start('2026-06-10T00:00:00.000Z');
    const m = uid('mbr');
    await api.purchase(m, 'store_atl_012', [shirt(10_000)]);
    for (const early of EARLY) {
      const gets: [string, string][] = [
        [`/v1/members/${m}/balances?as_of=${q(early)}`, 'querystring.as_of'],
        [`/v1/members/${m}/tiers?as_of=${q(early)}`, 'querystring.as_of'],
        [`/v1/members/${m}/statement?from=${q(early)}`, 'querystring.from'],
        [`/v1/members/${m}/statement?to=${q(early)}`, 'querystring.to'],
        [`/v1/settlement/positions?from=${q(early)}`, 'querystring.from'],
        [`/v1/settlement/positions?to=${q(early)}`, 'querystring.to'],
        [`/v1/reports/liability?as_of=${q(early)}`, 'querystring.as_of'],
        [`/v1/audit?from=${q(early)}`, 'querystring.from'],
        [`/v1/rejections?to=${q(early)}`, 'querystring.to'],
      ];
      for (const [url, field] of gets) {
        const res = await api.inject('GET', url);
        assert.equal(res.statusCode, 400, `${url}: ${res.body}`);
        assert.equal(res.json<Json>().error.code, 'INVALID_REQUEST');
        assert.equal(res.json<Json>().error.details.field, field, url);
      }
      for (const job of ['expire', 'mature', 'release-holds', 'tiers']) {
        const res = await api.inject('POST', `/v1/jobs/${job}/run`, { as_of: early });
        assert.equal(res.statusCode, 400, `${job} ${early}: ${res.body}`);
        assert.equal(res.json<Json>().error.details.field, 'body.as_of');
      }
      const close = await api.inject('POST', '/v1/settlement/periods', { to: early });
      assert.equal(close.statusCode, 400, close.body);
      assert.equal(close.json<Json>().error.details.field, 'body.to');
    }
  });

  void it('the bound itself is accepted everywhere', async () => {
    const api = await start('2026-06-10T00:00:00.000Z');
    const m = uid('mbr');
    await api.purchase(m, 'store_atl_012', [shirt(10_000)]);
    const epoch = '1970-01-01T00:00:00Z';
    await api.get(`/v1/members/${m}/balances?as_of=${q(epoch)}`);
    await api.get(`/v1/members/${m}/tiers?as_of=${q(epoch)}`);
    await api.get(`/v1/settlement/positions?from=${q(epoch)}`);
    await api.get(`/v1/reports/liability?as_of=${q(epoch)}`);
    for (const job of ['expire', 'mature', 'release-holds', 'tiers'])
      await api.post(`/v1/jobs/${job}/run`, { as_of: epoch }, 200);
    // and a far future one
    await api.get(`/v1/members/${m}/balances?as_of=${q('9999-12-31T23:59:59Z')}`);
  });
});

void describe('expired lots the expire job has not swept', () => {
  void it('are out of available, group points and value, as redemption sees them', async () => {
    const api = await start('2026-06-10T00:00:00.000Z');
    const m = uid('mbr');
    await api.purchase(m, 'store_atl_012', [shirt(10_000)]); // 50 northwind-stars, 10 acme-points
    const before = await balancesAt(api, m);
    assert.equal(program(before, 'northwind-stars').available, 50);
    assert.equal(before.group.points, 60);

    // A future as_of past the rolling 365 days: everything will have expired by then.
    const future = await balancesAt(api, m, '2027-07-01T00:00:00.000Z');
    assert.equal(program(future, 'northwind-stars').available, 0);
    assert.equal(program(future, 'northwind-stars').expired_not_swept, 50);
    assert.equal(program(future, 'acme-points').available, 0);
    assert.deepEqual(future.group, {
      points: 0,
      value: { amount_minor: 0, currency: 'USD' },
      fx_rates_used: [],
    });

    api.clock.advance(400 * DAY_MS); // past expiry; the expire job has not run
    const now = await balancesAt(api, m);
    const nw = program(now, 'northwind-stars');
    assert.equal(nw.available, 0);
    assert.equal(nw.expired_not_swept, 50);
    assert.deepEqual(nw.value, { amount_minor: 0, currency: 'USD' });
    assert.equal(now.group.points, 0);
    const redeemable = await api.get(
      `/v1/members/${m}/redeemable?points=1&brand_id=northwind&program_id=northwind-stars`,
    );
    assert.equal(redeemable.available, nw.available);

    // As of a past instant after expiry (the historical path) the same.
    api.clock.advance(DAY_MS);
    const past = await balancesAt(api, m, new Date(api.clock.now().getTime() - DAY_MS).toISOString());
    assert.equal(program(past, 'northwind-stars').available, 0);
    assert.equal(program(past, 'northwind-stars').expired_not_swept, 50);
    assert.equal(past.group.points, 0);

    // Swept: the points are gone from the account too, and nothing is left to sweep.
    await api.runJob('expire', api.clock.now());
    const swept = program(await balancesAt(api, m), 'northwind-stars');
    assert.equal(swept.available, 0);
    assert.equal(swept.expired_not_swept, 0);
  });

  void it('a future as_of does not make pending lots available', async () => {
    const doc = demoConfigDoc() as Json;
    (doc.programs as Json[]).find((p) => p.id === 'northwind-stars')!.pending_days = 14;
    const api = await start('2026-06-10T00:00:00.000Z', doc);
    const m = uid('mbr');
    await api.purchase(m, 'store_atl_012', [shirt(10_000)]);
    const future = program(await balancesAt(api, m, '2026-07-10T00:00:00.000Z'), 'northwind-stars');
    assert.equal(future.available, 0);
    assert.equal(future.pending, 50);
  });
});

void describe('expiring', () => {
  void it('lists only the points the member can spend, not held ones', async () => {
    const api = await start('2026-06-10T00:00:00.000Z');
    const m = uid('mbr');
    await api.purchase(m, 'store_atl_012', [shirt(18_000)]); // 90 northwind-stars in one lot
    await api.redeem({
      member_id: m,
      brand_id: 'northwind',
      program_id: 'northwind-stars',
      group_redemption: false,
      points: 70,
      capture: false,
    });
    api.clock.advance(300 * DAY_MS); // inside the 90-day window before the lot's expiry
    const now = program(await balancesAt(api, m), 'northwind-stars');
    assert.equal(now.available, 20);
    assert.equal(now.held, 70);
    assert.deepEqual(
      (now.expiring as Json[]).map((e) => e.points),
      [20],
    );
    api.clock.advance(60_000);
    const past = program(
      await balancesAt(api, m, new Date(api.clock.now().getTime() - 60_000).toISOString()),
      'northwind-stars',
    );
    assert.deepEqual(past.expiring, now.expiring);
  });
});

void describe('tier as of', () => {
  void it('is the tier in force then, not the current one', async () => {
    const api = await start('2026-06-10T00:00:00.000Z');
    const m = uid('mbr');
    await api.purchase(m, 'store_atl_012', [shirt(1_000)]);
    const silverAt = api.clock.now().toISOString();
    api.clock.advance(DAY_MS);
    await api.purchase(m, 'store_atl_012', [shirt(60_000)]); // qualifies for gold at once
    assert.equal(program(await balancesAt(api, m), 'northwind-stars').tier, 'gold');
    assert.equal(program(await balancesAt(api, m, silverAt), 'northwind-stars').tier, 'silver');
  });
});
