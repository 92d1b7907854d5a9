// The group plan rounds the points taken from its last lot UP (audit F1/F2: rounding down let
// every small group spend give more value than it took). For random pools, unit values and
// requests: a covered request is always planned, the value taken is at least the request and
// less than one step of the last program above it, the lots are taken in FEFO order (every one
// whole but the last), and spending again and again never takes less value than it gives.
import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { add, cmp, ratio, sub, ZERO, type Ratio } from '../../src/domain/decimal.ts';
import { orderLotsForSpend, type SpendableLot } from '../../src/domain/lots/fefo.ts';
import {
  planGroupSpend,
  stepValue,
  valueOfPt4,
  type GroupSpendPlan,
  type PointPrecision,
  type ProgramUnit,
} from '../../src/domain/lots/group-plan.ts';

const RUNS = 400;
const IDS = ['p0', 'p1', 'p2'] as const;

const unitArb = fc
  .record({
    num: fc.bigInt({ min: 1n, max: 5_000n }),
    den: fc.constantFrom(100n, 1_000n, 10_000n, 100_000n, 7n, 3n),
    precision: fc.constantFrom<PointPrecision>('whole', 'pt4'),
  })
  .map(({ num, den, precision }): ProgramUnit => ({ unit_value: ratio(num, den), precision }));

const lotArb = fc.record({
  p: fc.integer({ min: 0, max: 2 }),
  whole: fc.bigInt({ min: 0n, max: 500n }),
  frac: fc.bigInt({ min: 0n, max: 9_999n }),
  expires_at_ms: fc.option(fc.integer({ min: 0, max: 4 }), { nil: null }),
  awarded_at_ms: fc.integer({ min: 0, max: 4 }),
});

const scenarioArb = fc.record({
  units: fc.array(unitArb, { minLength: 3, maxLength: 3 }),
  lots: fc.array(lotArb, { maxLength: 8 }),
  // Whole-point lots with a fraction (a rounded-up cut that would pass the lot's end) now and then.
  odd_fractions: fc.boolean(),
  request: fc.bigInt({ min: 1n, max: 3_000n }),
  repeat: fc.integer({ min: 1, max: 6 }),
});

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;

function build(s: Scenario) {
  const programs = new Map(s.units.map((u, i) => [IDS[i]!, u]));
  const lots: SpendableLot[] = s.lots.map((l, i) => {
    const whole = s.units[l.p]!.precision === 'whole';
    return {
      id: String(i + 1),
      program_id: IDS[l.p]!,
      issuing_brand_id: `b${l.p}`,
      spendable_pt4: l.whole * 10_000n + (whole && !s.odd_fractions ? 0n : l.frac),
      expires_at_ms: l.expires_at_ms,
      awarded_at_ms: l.awarded_at_ms,
    };
  });
  const def = programs.get('p0')!;
  const points_pt4 = def.precision === 'whole' ? s.request * 10_000n : s.request * 137n;
  return { programs, lots, points_pt4 };
}

const poolValue = (lots: readonly SpendableLot[], programs: ReadonlyMap<string, ProgramUnit>): Ratio =>
  lots.reduce((v, l) => add(v, valueOfPt4(l.spendable_pt4, programs.get(l.program_id)!.unit_value)), ZERO);

const taken = (p: GroupSpendPlan): Ratio => p.allocations.reduce<Ratio>((v, a) => add(v, a.value), ZERO);

/** The lots as the plan leaves them. */
function after(lots: readonly SpendableLot[], p: GroupSpendPlan): SpendableLot[] {
  const by = new Map(p.allocations.map((a) => [a.lot_id, a.points_pt4]));
  return lots.map((l) => ({ ...l, spendable_pt4: l.spendable_pt4 - (by.get(l.id) ?? 0n) }));
}

/** Checks one plan against its pool; true when it spent. */
function checkPlan(
  lots: readonly SpendableLot[],
  programs: ReadonlyMap<string, ProgramUnit>,
  points_pt4: bigint,
  p: GroupSpendPlan,
): boolean {
  if (cmp(poolValue(lots, programs), p.target_value) < 0) {
    assert.deepEqual(p.allocations, [], 'a pool worth less than the request is refused whole');
    return false;
  }
  // Covered in value: the rounded-up plan is always feasible (no "covered but too small").
  assert.ok(points_pt4 === 0n || p.allocations.length > 0, 'a covered request is planned');
  const value = taken(p);
  assert.ok(cmp(value, p.target_value) >= 0, 'value taken >= target');
  assert.deepEqual(p.overpaid_value, sub(value, p.target_value));
  const last = p.allocations.at(-1)!;
  const step = stepValue(programs.get(last.program_id)!);
  assert.ok(cmp(value, add(p.target_value, step)) < 0, 'value taken < target + one step of the last program');
  if (p.overpaid_value.num > 0n) assert.equal(p.rounding_program_id, last.program_id);
  else assert.equal(p.rounding_program_id, null);

  // FEFO: the lots taken are the first ones in spend order, each whole but the last.
  const ordered = orderLotsForSpend(lots.filter((l) => l.spendable_pt4 > 0n));
  assert.deepEqual(
    p.allocations.map((a) => a.lot_id),
    ordered.slice(0, p.allocations.length).map((l) => l.id),
  );
  p.allocations.forEach((a, i) => {
    const l = ordered[i]!;
    assert.ok(a.points_pt4 > 0n && a.points_pt4 <= l.spendable_pt4, 'within the lot');
    if (i < p.allocations.length - 1) assert.equal(a.points_pt4, l.spendable_pt4, 'earlier lots whole');
    const u = programs.get(a.program_id)!;
    if (a.points_pt4 < l.spendable_pt4 && u.precision === 'whole')
      assert.equal(a.points_pt4 % 10_000n, 0n, 'a cut lot gives whole points');
  });
  return true;
}

void describe('group plan rounds the last lot up', () => {
  void it('value taken is within [target, target + one step), FEFO kept, repeated spends never gain value', () => {
    fc.assert(
      fc.property(scenarioArb, (s) => {
        const { programs, lots: start, points_pt4 } = build(s);
        let lots = start;
        for (let i = 0; i < s.repeat; i += 1) {
          const before = poolValue(lots, programs);
          const p = planGroupSpend({ lots, programs, default_program_id: 'p0', points_pt4 });
          if (!checkPlan(lots, programs, points_pt4, p)) return;
          lots = after(lots, p);
          // F1: the pool drops by at least the value redeemed, on every call.
          assert.ok(
            cmp(sub(before, poolValue(lots, programs)), p.target_value) >= 0,
            'pool drops by >= target',
          );
        }
      }),
      { numRuns: RUNS },
    );
  });

  void it('the audit case: 5 points against summit miles take 2 miles, three times 6 miles', () => {
    const programs = new Map<string, ProgramUnit>([
      ['acme-points', { unit_value: ratio(1n, 100n), precision: 'whole' }],
      ['summit-miles', { unit_value: ratio(254n, 10_000n), precision: 'whole' }],
    ]);
    let lots: SpendableLot[] = [
      {
        id: '1',
        program_id: 'summit-miles',
        issuing_brand_id: 'summit',
        spendable_pt4: 100n * 10_000n,
        expires_at_ms: 1,
        awarded_at_ms: 0,
      },
    ];
    for (let i = 0; i < 3; i += 1) {
      const p = planGroupSpend({ lots, programs, default_program_id: 'acme-points', points_pt4: 50_000n });
      assert.deepEqual(
        p.allocations.map((a) => a.points_pt4),
        [20_000n],
      );
      assert.deepEqual(p.overpaid_value, ratio(8n, 10_000n)); // 0.0508 − 0.05
      lots = after(lots, p);
    }
    assert.equal(lots[0]!.spendable_pt4, 94n * 10_000n);
  });
});
