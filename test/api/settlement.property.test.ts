// Property (issue 6, "Must show"): for random streams of purchases, group redemptions (captured at
// once, or held then captured in whole or in part), reversals and period closes across three
// brands, the settlement positions equal, per (issuer, redeemer) pair and to the cent, the
// rounded exact sum of the cross-brand allocations still standing (value × issuer's
// reimbursement rate); nets sum to zero; every statement ties; and `verify` stays ok.
// app.inject() on PGlite memory:// (or a fresh PostgreSQL database with DATABASE_URL).

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.ts';
import { add, mul, parseDecimal, roundRatio, ZERO, type Ratio } from '../../src/domain/decimal.ts';
import { ratioFromJson } from '../../src/domain/earn/codec.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const clock = new ManualClock('2026-07-01T00:00:00.000Z');
let t: TestService;
before(async () => {
  t = await createTestService({ clock });
  await applyDemoConfig(t.app);
});
after(async () => {
  await t?.close();
});

const BRANDS = ['northwind', 'harbor', 'summit'] as const;
type Brand = (typeof BRANDS)[number];
const STORE: Record<Brand, { store_id: string; currency: string }> = {
  northwind: { store_id: 'store_atl_012', currency: 'USD' },
  harbor: { store_id: 'store_ber_001', currency: 'EUR' },
  summit: { store_id: 'store_lon_001', currency: 'GBP' },
};
// The fixture's reimbursement rates by issuing brand (its brand program's), × 100 cents per USD.
const RATE_MINOR: Record<string, Ratio> = {
  northwind: parseDecimal('100'),
  harbor: parseDecimal('100'),
  summit: parseDecimal('90'),
};

type Op =
  | { kind: 'earn'; member: number; brand: Brand; cents: number }
  | { kind: 'redeem'; member: number; brand: Brand; points: number; capture: 'now' | 'whole' | 'part' }
  | { kind: 'reverse'; pick: number }
  | { kind: 'close' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('earn' as const),
      member: fc.nat(1),
      brand: fc.constantFrom(...BRANDS),
      cents: fc.integer({ min: 100, max: 5_000 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('redeem' as const),
      member: fc.nat(1),
      brand: fc.constantFrom(...BRANDS),
      points: fc.integer({ min: 1, max: 30 }),
      capture: fc.constantFrom('now' as const, 'whole' as const, 'part' as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reverse' as const), pick: fc.nat(20) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const) }) },
);

let run = 0;
let seq = 0;
const post = (url: string, payload: object) =>
  t.app.inject({ method: 'POST', url, headers: t.adminHeaders, payload });
const get = async (url: string): Promise<Json> => {
  const res = await t.app.inject({ method: 'GET', url, headers: t.adminHeaders });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Json>();
};

/** Plays the stream; returns the redemptions that were captured (and whether reversed since). */
async function play(ops: readonly Op[], prefix: string): Promise<Map<string, boolean>> {
  const captured = new Map<string, boolean>();
  for (const op of ops) {
    clock.advance(60_000);
    if (op.kind === 'earn') {
      const { store_id, currency } = STORE[op.brand];
      const id = `${prefix}_e${++seq}`;
      const res = await post('/v1/events', {
        event_id: id,
        event_type: 'purchase_completed',
        member_id: `${prefix}_m${op.member}`,
        channel: 'in_store',
        store_id,
        transaction_id: `txn_${id}`,
        transaction_ts: clock.now().toISOString(),
        currency,
        line_items: [{ sku: 'SKU-1', unit_price_cents: op.cents, quantity: 1, eligible_for_points: true }],
        subtotal_cents: op.cents,
        eligible_subtotal_cents: op.cents,
        idempotency_key: `key_${id}`,
      });
      assert.equal(res.statusCode, 201, res.body);
    } else if (op.kind === 'redeem') {
      const res = await post('/v1/redemptions', {
        member_id: `${prefix}_m${op.member}`,
        brand_id: op.brand,
        group_redemption: true,
        points: op.points,
        capture: op.capture === 'now',
        idempotency_key: `${prefix}_r${++seq}`,
      });
      // Not enough points (409) or no member yet (404). A request worth less than one point of the
      // earliest-expiring lot takes that point (the last lot is rounded up): never a 422.
      if ([404, 409].includes(res.statusCode)) continue;
      assert.equal(res.statusCode, 201, res.body);
      const id = res.json<Json>().redemption_id as string;
      if (op.capture !== 'now') {
        const points = op.capture === 'whole' ? op.points : Math.max(1, Math.floor(op.points / 2));
        // A part of the hold is rounded up like a spend: at least one point of the held lots.
        const cap = await post(`/v1/redemptions/${id}/capture`, { points });
        assert.equal(cap.statusCode, 200, cap.body);
      }
      captured.set(id, false);
    } else if (op.kind === 'reverse') {
      const open = [...captured].filter(([, reversed]) => !reversed).map(([id]) => id);
      if (open.length === 0) continue;
      const id = open[op.pick % open.length]!;
      const res = await post(`/v1/redemptions/${id}/reverse`, {});
      assert.equal(res.statusCode, 200, res.body);
      captured.set(id, true);
    } else {
      const res = await post('/v1/settlement/periods', { to: clock.now().toISOString() });
      assert.equal(res.statusCode, 201, res.body);
    }
  }
  return captured;
}

/** Per pair, the exact sum (minor units) of the standing redemptions' cross-brand allocations. */
async function expectedFromAllocations(redemptions: Map<string, boolean>): Promise<Map<string, Ratio>> {
  const standing = [...redemptions].filter(([, reversed]) => !reversed).map(([id]) => id);
  const out = new Map<string, Ratio>();
  if (standing.length === 0) return out;
  const rows = await t.ctx.db
    .selectFrom('lot_allocations as la')
    .innerJoin('entries as e', 'e.id', 'la.entry_id')
    .innerJoin('redemptions as r', 'r.id', 'e.ref_id')
    .select(['la.issuing_brand_id', 'r.brand_id', 'la.value_common'])
    .where('e.ref_type', '=', 'redemption')
    .where('e.ref_id', 'in', standing)
    .where('la.kind', 'in', ['spend', 'capture'])
    .execute();
  for (const a of rows) {
    if (a.issuing_brand_id === a.brand_id) continue;
    const key = `${a.issuing_brand_id}>${a.brand_id}`;
    out.set(
      key,
      add(out.get(key) ?? ZERO, mul(ratioFromJson(a.value_common!), RATE_MINOR[a.issuing_brand_id]!)),
    );
  }
  return out;
}

void describe('settlement property', () => {
  void it('positions equal the standing allocations to the cent, nets sum to zero, statements tie', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 4, maxLength: 12 }), async (ops) => {
        const prefix = `p${++run}`;
        clock.advance(3_600_000);
        const from = clock.now().toISOString();
        // Both members earn at harbor and summit first: their points are worth fractions of a cent
        // (0.0054 USD, and 0.0254 USD at a 0.9 rate), so the streams exercise the rounding.
        const seed: Op[] = [0, 1].flatMap((member): Op[] => [
          { kind: 'earn', member, brand: 'harbor', cents: 1_234 },
          { kind: 'earn', member, brand: 'summit', cents: 1_001 },
        ]);
        const stream: Op[] = [...seed, ...ops];
        const redemptions = await play(stream, prefix);
        clock.advance(60_000);
        const to = clock.now().toISOString();

        const positions = await get(
          `/v1/settlement/positions?from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`,
        );
        const expected = await expectedFromAllocations(redemptions);
        const got = new Map<string, number>(
          positions.flows.map((f: Json) => [`${f.issuer_brand_id}>${f.redeemer_brand_id}`, f.amount_minor]),
        );
        for (const key of new Set([...expected.keys(), ...got.keys()])) {
          assert.equal(
            BigInt(got.get(key) ?? 0),
            roundRatio(expected.get(key) ?? ZERO, 'half_even'),
            `pair ${key}`,
          );
        }
        assert.equal(
          positions.net.reduce((s: number, n: Json) => s + n.amount_minor, 0),
          0,
        );
      }),
      { numRuns: 12 },
    );
    // Every statement ties line by line, and its net sums to zero.
    const periods = await get('/v1/settlement/periods?limit=500');
    assert.ok(periods.data.length > 0, 'the streams closed some periods');
    for (const p of periods.data) {
      const st = await get(`/v1/settlement/periods/${p.id}`);
      for (const f of st.flows) {
        assert.equal(f.allocations_amount_minor + f.residual_minor, f.amount_minor);
        assert.equal(BigInt(f.amount_minor), roundRatio(parseDecimal(f.exact_minor), 'half_even'));
      }
      assert.equal(
        st.net.reduce((s: number, n: Json) => s + n.amount_minor, 0),
        0,
      );
    }
    const v = await get('/v1/ledger/verify');
    assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c: Json) => !c.ok)));
  });
});
