// Property: the two paths of GET /v1/members/{id}/balances agree. A current read (no as_of, or
// as_of = now) comes from one statement over the running balances and the lots' running
// remaining, rendered in SQL (src/services/balances-current.ts); a read as of a past instant is
// rebuilt from postings and allocations and rendered in JavaScript. After random activity
// (accruals in whole-point and 4-decimal programs, pending lots, holds, captures, releases,
// refunds, expiry and maturing jobs, the clock moving by minutes or months), the answer read now
// must equal, byte for byte, the answer read one millisecond later as of that same instant.
// PGlite memory:// (or PostgreSQL with DATABASE_URL); one service, fresh members per run.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { ManualClock } from '../../src/clock.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { Api, DAY_MS, uid, type Json } from './lifecycle-helpers.ts';

const clock = new ManualClock('2026-06-10T00:00:00.000Z');
// Harbor lots wait 3 days as pending; Northwind shows expiring lots a whole lot-life ahead, so
// the lists are non-empty from the first purchase on.
const api = Api.forTests(clock, {
  doc: () => {
    const doc = demoConfigDoc();
    for (const p of doc.programs) {
      if (p.id === 'harbor-rewards') p.pending_days = 3;
      if (p.id === 'northwind-stars') p.expiring_window_days = 400;
    }
    return doc;
  },
});

const BRANDS = ['northwind', 'harbor', 'summit'] as const;
type Brand = (typeof BRANDS)[number];

type Op =
  | { k: 'buy'; m: number; brand: Brand; cents: number }
  | { k: 'redeem'; m: number; brand: Brand; group: boolean; points: number; capture: boolean }
  | { k: 'resolve'; i: number; capture: boolean }
  | { k: 'refund'; i: number }
  | { k: 'job'; name: 'expire' | 'mature' | 'release-holds' }
  | { k: 'advance'; ms: number };

const MEMBERS = 2;
const opArb: fc.Arbitrary<Op> = (() => {
  const m = fc.integer({ min: 0, max: MEMBERS - 1 });
  const brand = fc.constantFrom(...BRANDS);
  return fc.oneof(
    {
      arbitrary: fc.record({
        k: fc.constant('buy' as const),
        m,
        brand,
        cents: fc.integer({ min: 50, max: 30_000 }),
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        k: fc.constant('redeem' as const),
        m,
        brand,
        group: fc.boolean(),
        points: fc.integer({ min: 1, max: 60 }),
        capture: fc.boolean(),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({ k: fc.constant('resolve' as const), i: fc.nat(), capture: fc.boolean() }),
      weight: 1,
    },
    { arbitrary: fc.record({ k: fc.constant('refund' as const), i: fc.nat() }), weight: 1 },
    {
      arbitrary: fc.record({
        k: fc.constant('job' as const),
        name: fc.constantFrom('expire', 'mature', 'release-holds'),
      }),
      weight: 1,
    },
    {
      // minutes (a hold times out after 30), days (pending lots mature), months (lots enter
      // their expiring window, then expire)
      arbitrary: fc.record({
        k: fc.constant('advance' as const),
        ms: fc.oneof(
          fc.integer({ min: 1, max: 40 }).map((n) => n * 60_000),
          fc.integer({ min: 1, max: 5 }).map((n) => n * DAY_MS),
          fc.integer({ min: 60, max: 200 }).map((n) => n * DAY_MS),
        ),
      }),
      weight: 2,
    },
  );
})();

const inject = (method: 'GET' | 'POST', url: string, payload?: Json): Promise<LightMyRequestResponse> =>
  api.t.app.inject({ method, url, headers: api.t.adminHeaders, ...(payload ? { payload } : {}) });

async function ok(method: 'GET' | 'POST', url: string, payload?: Json): Promise<Json> {
  const res = await inject(method, url, payload);
  assert.ok(res.statusCode < 300, `${method} ${url}: ${res.statusCode} ${res.body}`);
  return res.json<Json>();
}

/** What the compared answers contained, over all runs: the property must have seen each. */
const seen = { expiring: 0, pending_lots: 0, held: 0, fractional: 0, group: 0 };

/** Reads `member` now, then as of that same instant from the ledger, and requires equal answers. */
async function compare(member: string): Promise<void> {
  const at = clock.now().toISOString();
  const now = await inject('GET', `/v1/members/${member}/balances`);
  const atNow = await inject('GET', `/v1/members/${member}/balances?as_of=${encodeURIComponent(at)}`);
  clock.advance(1);
  const past = await inject('GET', `/v1/members/${member}/balances?as_of=${encodeURIComponent(at)}`);
  assert.equal(now.statusCode, 200, now.body);
  assert.equal(now.json<Json>().as_of, at);
  assert.equal(atNow.body, now.body, 'as_of = now must be the current read');
  assert.equal(past.body, now.body, `current read ≠ read rebuilt from the ledger at ${at}`);
  const b = now.json<Json>();
  for (const p of b.programs as Json[]) {
    if (p.expiring.length > 0) seen.expiring++;
    if (p.pending_lots.length > 0) seen.pending_lots++;
    if (p.held > 0) seen.held++;
    const points = [p.available, p.pending, ...[...p.expiring, ...p.pending_lots].map((x: Json) => x.points)];
    if (points.some((n) => !Number.isInteger(n))) seen.fractional++;
  }
  if (b.group.points > 0) seen.group++;
}

async function run(ops: readonly Op[]): Promise<void> {
  const members = Array.from({ length: MEMBERS }, () => uid('mbr'));
  const purchases: Json[] = [];
  const holds: string[] = [];
  const buy = async (member: string, brand: Brand, cents: number) => {
    purchases.push((await api.buy(member, brand, cents)).event as Json);
  };
  for (const m of members) {
    await buy(m, 'northwind', 20_000);
    await buy(m, 'harbor', 4_321);
  }
  for (const m of members) await compare(m);

  for (const op of ops) {
    switch (op.k) {
      case 'buy':
        await buy(members[op.m]!, op.brand, op.cents);
        break;
      case 'redeem': {
        const res = await inject('POST', '/v1/redemptions', {
          member_id: members[op.m]!,
          brand_id: op.brand,
          group_redemption: op.group,
          points: op.points,
          capture: op.capture,
          idempotency_key: uid('rk'),
        });
        if (res.statusCode === 201 && !op.capture) holds.push(res.json<Json>().redemption_id as string);
        else assert.ok([201, 409, 422].includes(res.statusCode), res.body);
        break;
      }
      case 'resolve': {
        if (holds.length === 0) break;
        const id = holds.splice(op.i % holds.length, 1)[0]!;
        const res = await inject('POST', `/v1/redemptions/${id}/${op.capture ? 'capture' : 'release'}`, {});
        assert.ok(res.statusCode < 500, res.body); // a hold may have timed out meanwhile
        break;
      }
      case 'refund': {
        if (purchases.length === 0) break;
        const p = purchases[op.i % purchases.length]!;
        const id = uid('rf');
        const res = await inject('POST', '/v1/events', {
          event_id: id,
          event_type: 'purchase_refunded',
          member_id: p.member_id,
          channel: p.channel,
          store_id: p.store_id,
          transaction_id: `tx_${id}`,
          transaction_ts: new Date(clock.now().getTime() - 30_000).toISOString(),
          currency: p.currency,
          reversal_of: p.event_id,
          line_items: p.line_items,
          idempotency_key: `k_${id}`,
        });
        assert.ok(res.statusCode < 500, res.body); // refused when outside the lookback, or twice
        break;
      }
      case 'job':
        await ok('POST', `/v1/jobs/${op.name}/run`, { as_of: clock.now().toISOString() });
        break;
      case 'advance':
        clock.advance(op.ms);
        break;
    }
    for (const m of members) await compare(m);
  }
}

void describe('balances: the current read equals the ledger rebuilt as of the same instant', () => {
  void it('for random activity', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 4, maxLength: 18 }), (ops) => run(ops)),
      { numRuns: 12 },
    );
    for (const [what, n] of Object.entries(seen)) assert.ok(n > 0, `no compared answer had ${what}`);
  });

  void it('at the edges of the expiring window, to the millisecond', async () => {
    // One purchase: its acme-points lot (window 90 days) and northwind-stars lot (window 400
    // days, so the lot's expires_at can be read at once) share the rolling expiry.
    const member = uid('mbr');
    await ok('POST', '/v1/events', {
      event_id: uid('ev'),
      event_type: 'purchase_completed',
      member_id: member,
      channel: 'in_store',
      store_id: 'store_atl_012',
      transaction_id: uid('tx'),
      transaction_ts: new Date(clock.now().getTime() - 60_000).toISOString(),
      currency: 'USD',
      line_items: [
        { sku: 'SKU-1', category: 'misc', unit_price_cents: 12_345, quantity: 1, eligible_for_points: true },
      ],
      subtotal_cents: 12_345,
      eligible_subtotal_cents: 12_345,
      idempotency_key: uid('k'),
    });
    const first = await ok('GET', `/v1/members/${member}/balances`);
    const stars = (first.programs as Json[]).find((p) => p.program_id === 'northwind-stars')!;
    const expires = Date.parse(stars.expiring[0].expires_at as string);
    const acmeExpiring = async (at_ms: number): Promise<number> => {
      clock.set(new Date(at_ms));
      await compare(member);
      const b = await ok('GET', `/v1/members/${member}/balances?as_of=${new Date(at_ms).toISOString()}`);
      return ((b.programs as Json[]).find((p) => p.program_id === 'acme-points')!.expiring as Json[]).length;
    };
    const windowStart = expires - 90 * DAY_MS;
    assert.equal(await acmeExpiring(windowStart - 1), 0, 'not yet in the 90-day window');
    assert.equal(await acmeExpiring(windowStart), 1, 'in the window from its first instant');
    assert.equal(await acmeExpiring(expires - 1), 1, 'still expiring the instant before');
    assert.equal(await acmeExpiring(expires), 0, 'expired at expires_at');
  });

  void it('an unknown member is MEMBER_NOT_FOUND on both paths', async () => {
    const past = new Date(clock.now().getTime() - DAY_MS).toISOString();
    for (const q of ['', `?as_of=${encodeURIComponent(past)}`]) {
      const res = await inject('GET', `/v1/members/nobody_${process.pid}/balances${q}`);
      assert.equal(res.statusCode, 404, res.body);
      assert.equal(res.json<Json>().error.code, 'MEMBER_NOT_FOUND');
    }
  });
});
