// Property (issue 4, "Must show"): random interleavings of accruals, redemptions (single-program
// and group, captured or held), captures (whole and partial), releases, hold timeouts, reversals
// and transfers for 2–3 members keep every invariant: GET /v1/ledger/verify is ok, no member
// account goes below zero, no request is a 5xx, and an independent model of each member's
// available and held points per program, fed only by what each response says moved, equals the
// API's balances. PGlite memory:// (or PostgreSQL with DATABASE_URL); one service, fresh members
// per run.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import * as fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import { ManualClock } from '../../src/clock.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

const NOW = '2026-06-10T00:00:00.000Z';
const clock = new ManualClock(NOW);
let t: TestService;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const BRANDS = ['northwind', 'harbor', 'summit'] as const;
type Brand = (typeof BRANDS)[number];
const STORE: Record<Brand, { store: string; channel: string; currency: string; program: string }> = {
  northwind: { store: 'store_atl_012', channel: 'in_store', currency: 'USD', program: 'northwind-stars' },
  harbor: { store: 'web_harbor', channel: 'online', currency: 'EUR', program: 'harbor-rewards' },
  summit: { store: 'store_lon_001', channel: 'in_store', currency: 'GBP', program: 'summit-miles' },
};

let seq = 0;
const uid = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;
const pt4 = (n: number): bigint => BigInt(Math.round(n * 1e4));

type Op =
  | { k: 'buy'; m: number; brand: Brand; cents: number }
  | { k: 'redeem'; m: number; brand: Brand; group: boolean; points: number; capture: boolean }
  | { k: 'capture'; i: number; part: number | null }
  | { k: 'release'; i: number }
  | { k: 'reverse'; i: number }
  | { k: 'transfer'; from: number; to: number; group: boolean; brand: Brand; points: number }
  | { k: 'advance'; minutes: number };

const brandArb = fc.constantFrom(...BRANDS);
const opArb = (members: number): fc.Arbitrary<Op> => {
  const m = fc.integer({ min: 0, max: members - 1 });
  return fc.oneof(
    {
      arbitrary: fc.record({
        k: fc.constant('buy' as const),
        m,
        brand: brandArb,
        cents: fc.integer({ min: 100, max: 20_000 }),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        k: fc.constant('redeem' as const),
        m,
        brand: brandArb,
        group: fc.boolean(),
        points: fc.integer({ min: 1, max: 40 }),
        capture: fc.boolean(),
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        k: fc.constant('capture' as const),
        i: fc.nat(),
        part: fc.option(fc.integer({ min: 1, max: 30 }), { nil: null }),
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ k: fc.constant('release' as const), i: fc.nat() }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('reverse' as const), i: fc.nat() }), weight: 2 },
    {
      arbitrary: fc.record({
        k: fc.constant('transfer' as const),
        from: m,
        to: m,
        group: fc.boolean(),
        brand: brandArb,
        points: fc.integer({ min: 1, max: 40 }),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({ k: fc.constant('advance' as const), minutes: fc.integer({ min: 1, max: 20 }) }),
      weight: 1,
    },
  );
};

/** The model: member → program → { available, held } in pt4, and each hold's points by program. */
class Model {
  readonly bal = new Map<string, Map<string, { available: bigint; held: bigint }>>();
  readonly holds = new Map<string, Map<string, bigint>>();
  at(member: string, program: string) {
    let m = this.bal.get(member);
    if (!m) this.bal.set(member, (m = new Map()));
    let b = m.get(program);
    if (!b) m.set(program, (b = { available: 0n, held: 0n }));
    return b;
  }
}

function byProgram(list: readonly Json[], field = 'points'): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const x of list) out.set(x.program_id, (out.get(x.program_id) ?? 0n) + pt4(x[field]));
  return out;
}

const post = (url: string, payload: Json): Promise<LightMyRequestResponse> =>
  t.app.inject({ method: 'POST', url, headers: t.adminHeaders, payload });

function expectOneOf(
  res: LightMyRequestResponse,
  ok: readonly number[],
  codes: readonly string[],
  what: string,
): boolean {
  if (ok.includes(res.statusCode)) return true;
  assert.ok(res.statusCode < 500, `${what}: ${res.statusCode} ${res.body}`);
  const code = res.json<Json>().error?.code as string;
  assert.ok(codes.includes(code), `${what}: unexpected ${res.statusCode} ${res.body}`);
  return false;
}

/** Successful operations by kind, over all runs: the runs must have exercised the API. */
const done = new Map<string, number>();
const count = (k: string) => done.set(k, (done.get(k) ?? 0) + 1);

async function runOps(members: readonly string[], ops: readonly Op[]): Promise<void> {
  const model = new Model();
  const redemptions: { id: string; member: string }[] = [];
  const apply = (member: string, moved: Map<string, bigint>, field: 'available' | 'held', sign: 1n | -1n) => {
    for (const [p, v] of moved) model.at(member, p)[field] += sign * v;
  };
  const buy = async (member: string, brand: Brand, cents: number) => {
    const s = STORE[brand];
    const id = uid('ev');
    const res = await post('/v1/events', {
      event_id: id,
      event_type: 'purchase_completed',
      member_id: member,
      channel: s.channel,
      store_id: s.store,
      transaction_id: `tx_${id}`,
      transaction_ts: new Date(clock.now().getTime() - 3_600_000).toISOString(),
      order_id: `ord_${id}`,
      currency: s.currency,
      line_items: [
        { sku: 'SKU-1', category: 'misc', unit_price_cents: cents, quantity: 1, eligible_for_points: true },
      ],
      subtotal_cents: cents,
      eligible_subtotal_cents: cents,
      idempotency_key: `k_${id}`,
    });
    assert.equal(res.statusCode, 201, res.body);
    apply(member, byProgram(res.json<Json>().accruals.filter((a: Json) => a.points > 0)), 'available', 1n);
  };
  for (const m of members) {
    await buy(m, 'northwind', 20_000);
    await buy(m, 'harbor', 5_000);
  }

  for (const op of ops) {
    switch (op.k) {
      case 'buy':
        await buy(members[op.m]!, op.brand, op.cents);
        break;
      case 'advance':
        clock.advance(op.minutes * 60_000);
        break;
      case 'redeem': {
        const member = members[op.m]!;
        const res = await post('/v1/redemptions', {
          member_id: member,
          brand_id: op.brand,
          group_redemption: op.group,
          points: op.points,
          capture: op.capture,
          idempotency_key: uid('rk'),
        });
        if (!expectOneOf(res, [201], ['INSUFFICIENT_POINTS', 'INVALID_AMOUNT'], 'redeem')) break;
        const body = res.json<Json>();
        const moved = byProgram(body.breakdown_by_program);
        apply(member, moved, 'available', -1n);
        if (!op.capture) {
          apply(member, moved, 'held', 1n);
          model.holds.set(body.redemption_id, moved);
        }
        redemptions.push({ id: body.redemption_id, member });
        count(op.capture ? 'redeem' : 'hold');
        break;
      }
      case 'capture':
      case 'release': {
        if (redemptions.length === 0) break;
        const r = redemptions[op.i % redemptions.length]!;
        const payload = op.k === 'capture' && op.part !== null ? { points: op.part } : {};
        const res = await post(`/v1/redemptions/${r.id}/${op.k}`, payload);
        if (!expectOneOf(res, [200], ['HOLD_ALREADY_RESOLVED', 'INVALID_AMOUNT'], op.k)) {
          const err = res.json<Json>().error;
          // A capture past the timeout releases the hold, then refuses.
          if (
            err.code === 'HOLD_ALREADY_RESOLVED' &&
            err.details.status === 'expired' &&
            model.holds.has(r.id)
          ) {
            const held = model.holds.get(r.id)!;
            apply(r.member, held, 'held', -1n);
            apply(r.member, held, 'available', 1n);
            model.holds.delete(r.id);
          }
          break;
        }
        const body = res.json<Json>();
        const captured = byProgram(body.points_captured_by_program);
        const released = byProgram(body.points_released_by_program);
        apply(r.member, captured, 'held', -1n);
        apply(r.member, released, 'held', -1n);
        apply(r.member, released, 'available', 1n);
        // Whatever the hold had is now resolved: captured + released = held.
        const held = model.holds.get(r.id)!;
        for (const [p, v] of held)
          assert.equal((captured.get(p) ?? 0n) + (released.get(p) ?? 0n), v, `hold ${r.id} in ${p}`);
        model.holds.delete(r.id);
        count(op.k);
        break;
      }
      case 'reverse': {
        if (redemptions.length === 0) break;
        const r = redemptions[op.i % redemptions.length]!;
        const res = await post(`/v1/redemptions/${r.id}/reverse`, {});
        if (!expectOneOf(res, [200], ['REDEMPTION_NOT_REVERSIBLE'], 'reverse')) break;
        const restored = res.json<Json>().restored as Json[];
        apply(r.member, byProgram(restored), 'available', 1n);
        apply(r.member, byProgram(restored, 'expired_on_restore'), 'available', -1n);
        count('reverse');
        break;
      }
      case 'transfer': {
        if (op.from === op.to) break;
        const from = members[op.from]!;
        const to = members[op.to]!;
        const res = await post('/v1/transfers', {
          from_member_id: from,
          to_member_id: to,
          points: op.points,
          ...(op.group ? { group_transfer: true } : { program_id: STORE[op.brand].program }),
          idempotency_key: uid('tk'),
        });
        if (!expectOneOf(res, [201], ['INSUFFICIENT_POINTS', 'INVALID_AMOUNT'], 'transfer')) break;
        const body = res.json<Json>();
        apply(from, byProgram(body.debited_by_program), 'available', -1n);
        apply(to, byProgram([body.credited]), 'available', 1n);
        count('transfer');
        break;
      }
    }
  }

  for (const m of members) {
    const res = await t.app.inject({
      method: 'GET',
      url: `/v1/members/${m}/balances`,
      headers: t.adminHeaders,
    });
    assert.equal(res.statusCode, 200, res.body);
    const api = new Map<string, { available: bigint; held: bigint }>();
    for (const p of res.json<Json>().programs) {
      assert.equal(p.pending, 0);
      if (p.available !== 0 || p.held !== 0)
        api.set(p.program_id, { available: pt4(p.available), held: pt4(p.held) });
      assert.ok(p.available >= 0 && p.held >= 0, `${m} ${p.program_id}: ${p.available}/${p.held}`);
    }
    const mine = new Map(
      [...(model.bal.get(m) ?? new Map<string, { available: bigint; held: bigint }>())].filter(
        ([, b]) => b.available !== 0n || b.held !== 0n,
      ),
    );
    assert.deepEqual(new Map([...api].sort()), new Map([...mine].sort()), `member ${m}`);
  }
  const v = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
  assert.equal(v.json<Json>().ok, true, JSON.stringify(v.json<Json>().checks.filter((c: Json) => !c.ok)));
}

void describe('redemption property: random interleavings keep every invariant', () => {
  before(async () => {
    t = await createTestService({ clock });
    await applyDemoConfig(t.app);
  });
  after(async () => {
    await t?.close();
  });

  void it('model balances equal API balances and verify is ok after every run', async (tc) => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 2, max: 3 })
          .chain((n) => fc.tuple(fc.constant(n), fc.array(opArb(n), { minLength: 5, maxLength: 30 }))),
        async ([n, ops]) => {
          clock.set(NOW);
          const members = Array.from({ length: n }, () => uid('mbr_prop'));
          await runOps(members, ops);
        },
      ),
      { numRuns: 10 },
    );
    tc.diagnostic(JSON.stringify(Object.fromEntries(done)));
    assert.ok(
      (done.get('redeem') ?? 0) + (done.get('hold') ?? 0) > 0,
      JSON.stringify(Object.fromEntries(done)),
    );
  });
});
