// Property: buy, earn, redeem, refund, cancel never leaves a member ahead — nor behind. One
// member, random sequences of purchases, redemptions (single-program and group, captured or
// held), partial captures, voids, partial refunds, redemption reversals and hold releases, in
// any order: whatever a reversal could not take back because the points were spent or held (a
// write-off, a recorded debt) is settled when those points come back
// (services/redemptions/reclaim.ts). So once every redemption still standing is reversed and
// every hold released, the member holds, in each program, exactly what their purchases earned
// less what their reversals took back, as the answers said; nothing is held, and verify is ok.
// No expiry or transfers here: points that leave a lot by those ways do not come back.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { ManualClock } from '../../src/clock.ts';
import { Api, shirt, uid, type Json } from './lifecycle-helpers.ts';

const NOW = '2026-06-10T00:00:00.000Z';
const clock = new ManualClock(NOW);
const RUNS = Number(process.env.NEVER_AHEAD_RUNS ?? 20);

type Op =
  | { k: 'buy'; units: number; cents: number }
  | { k: 'redeem'; points: number; group: boolean; capture: boolean }
  | { k: 'void'; i: number }
  | { k: 'refund'; i: number }
  | { k: 'capture'; i: number; part: boolean }
  | { k: 'release'; i: number }
  | { k: 'reverse'; i: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      k: fc.constant('buy' as const),
      units: fc.integer({ min: 1, max: 3 }),
      cents: fc.integer({ min: 1_000, max: 20_000 }),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      k: fc.constant('redeem' as const),
      points: fc.integer({ min: 1, max: 120 }),
      group: fc.boolean(),
      capture: fc.boolean(),
    }),
    weight: 4,
  },
  { arbitrary: fc.record({ k: fc.constant('void' as const), i: fc.nat() }), weight: 2 },
  { arbitrary: fc.record({ k: fc.constant('refund' as const), i: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({ k: fc.constant('capture' as const), i: fc.nat(), part: fc.boolean() }),
    weight: 1,
  },
  { arbitrary: fc.record({ k: fc.constant('release' as const), i: fc.nat() }), weight: 1 },
  { arbitrary: fc.record({ k: fc.constant('reverse' as const), i: fc.nat() }), weight: 2 },
);

const opsArb: fc.Arbitrary<Op[]> = fc
  .tuple(
    fc.integer({ min: 2_000, max: 20_000 }),
    fc.integer({ min: 1, max: 10 }),
    fc.boolean(),
    fc.array(opArb, { minLength: 2, maxLength: 12 }),
  )
  .map(([cents, points, capture, rest]): Op[] => [
    { k: 'buy', units: 2, cents },
    { k: 'redeem', points, group: false, capture },
    ...rest,
  ]);

/** Any answer but a 5xx, for the steps where a refusal is a legitimate outcome. */
async function call(
  api: Api,
  method: 'GET' | 'POST',
  url: string,
  payload?: object,
): Promise<{ status: number; body: Json }> {
  const res = await api.inject(method, url, payload);
  assert.ok(res.statusCode < 500, `${method} ${url}: ${res.statusCode} ${res.body}`);
  return { status: res.statusCode, body: res.json<Json>() };
}

function expectOneOf(
  r: { status: number; body: Json },
  ok: number,
  codes: readonly string[],
  what: string,
): boolean {
  if (r.status === ok) return true;
  assert.ok(codes.includes(r.body.error?.code), `${what}: ${r.status} ${JSON.stringify(r.body)}`);
  return false;
}

/** One member's run: the service's answers, and what they say the member earned net of reversals. */
class Run {
  constructor(private readonly api: Api) {}
  readonly member = uid('mbr_ahead');
  readonly purchases: { ev: Json; units: number; refunded: number; voided: boolean }[] = [];
  readonly redemptions: string[] = [];
  /** Per program: what accruals awarded less what reversals took back, by the answers. */
  readonly net = new Map<string, number>();
  #minutes = 0;

  #add(program_id: string, points: number): void {
    this.net.set(program_id, (this.net.get(program_id) ?? 0) + points);
  }

  /** Events a minute apart, before the clock: every one on time, and in order. */
  #ts(): string {
    return new Date(Date.parse(NOW) - 24 * 3_600_000 + ++this.#minutes * 60_000).toISOString();
  }

  async run(op: Op): Promise<void> {
    switch (op.k) {
      case 'buy': {
        const ev = this.api.purchaseEvent(this.member, 'store_atl_012', [shirt(op.cents, op.units)], {
          ts: this.#ts(),
        });
        const body = await this.api.post('/v1/events', ev);
        for (const a of body.accruals as Json[]) this.#add(a.program_id, a.points);
        this.purchases.push({ ev, units: op.units, refunded: 0, voided: false });
        return;
      }
      case 'redeem': {
        const r = await call(this.api, 'POST', '/v1/redemptions', {
          member_id: this.member,
          brand_id: 'northwind',
          ...(op.group
            ? { group_redemption: true }
            : { group_redemption: false, program_id: 'northwind-stars' }),
          points: op.points,
          capture: op.capture,
          idempotency_key: uid('rdm'),
        });
        if (expectOneOf(r, 201, ['INSUFFICIENT_POINTS', 'MEMBER_NOT_FOUND'], 'redeem'))
          this.redemptions.push(r.body.redemption_id);
        return;
      }
      case 'void':
      case 'refund': {
        if (this.purchases.length === 0) return;
        const p = this.purchases[op.i % this.purchases.length]!;
        const r = await call(
          this.api,
          'POST',
          '/v1/events',
          op.k === 'void'
            ? this.api.reversalEvent(p.ev, 'purchase_voided', undefined, { ts: this.#ts() })
            : this.api.reversalEvent(
                p.ev,
                'purchase_refunded',
                [shirt(p.ev.line_items[0].unit_price_cents)],
                {
                  ts: this.#ts(),
                },
              ),
        );
        // A purchase voided, or refunded in full, takes no further reversal.
        if (!expectOneOf(r, 201, ['OVER_REFUND'], op.k)) {
          assert.ok(p.voided || p.refunded === p.units, `${op.k}: ${JSON.stringify(r.body)}`);
          return;
        }
        if (op.k === 'void') p.voided = true;
        else p.refunded += 1;
        for (const x of r.body.reversed as Json[]) this.#add(x.program_id, -x.points);
        return;
      }
      case 'capture':
      case 'release':
      case 'reverse': {
        if (this.redemptions.length === 0) return;
        const id = this.redemptions[op.i % this.redemptions.length]!;
        const payload = op.k === 'capture' && op.part ? { points: 1 } : {};
        const r = await call(this.api, 'POST', `/v1/redemptions/${id}/${op.k}`, payload);
        expectOneOf(r, 200, ['HOLD_ALREADY_RESOLVED', 'REDEMPTION_NOT_REVERSIBLE', 'INVALID_AMOUNT'], op.k);
        return;
      }
    }
  }

  /** Reverses every captured redemption and releases every hold: nothing is out any more. */
  async undoAll(): Promise<void> {
    for (const id of this.redemptions) {
      const { status } = await this.api.get(`/v1/redemptions/${id}`);
      if (status === 'captured') await this.api.post(`/v1/redemptions/${id}/reverse`, undefined, 200);
      if (status === 'held') await this.api.post(`/v1/redemptions/${id}/release`, undefined, 200);
    }
  }
}

void describe('reversals and returning points: never ahead, never behind', () => {
  const api = Api.forTests(clock);

  void it('once nothing is spent or held, a member holds what their purchases earned net of reversals', async (tc) => {
    let recovered = 0;
    await fc.assert(
      // Every run starts with a purchase and a redemption of part of it, so that most runs have
      // points out when a reversal comes (the case this is about); the rest is random.
      fc.asyncProperty(opsArb, async (ops) => {
        clock.set(NOW);
        const run = new Run(api);
        for (const op of ops) await run.run(op);
        await run.undoAll();
        const programs = Object.values(await api.balances(run.member));
        const held = Object.fromEntries(programs.map((p) => [p.program_id, p.held]));
        const have = Object.fromEntries(programs.map((p) => [p.program_id, p.available]));
        const want = Object.fromEntries(run.net);
        for (const p of new Set([...Object.keys(have), ...Object.keys(want)])) {
          assert.equal(
            have[p] ?? 0,
            want[p] ?? 0,
            `${p}: have ${JSON.stringify(have)}, want ${JSON.stringify(want)}`,
          );
          assert.equal(held[p] ?? 0, 0, `${p} still held`);
        }
        await api.assertVerifyOk();
        const rows = await api.t.ctx.db
          .selectFrom('lot_allocations as a')
          .innerJoin('lots as l', 'l.id', 'a.lot_id')
          .select((eb) => eb.fn.count<string>('a.id').as('n'))
          .where('l.member_id', '=', run.member)
          .where('a.kind', '=', 'writeoff_recovery')
          .executeTakeFirstOrThrow();
        recovered += Number(rows.n);
      }),
      { numRuns: RUNS },
    );
    tc.diagnostic(`write-off recoveries over ${RUNS} runs: ${recovered}`);
    // The runs reached the case this is about: points coming back to settle a write-off.
    assert.ok(recovered > 0, 'no run recovered a write-off');
  });
});
