import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import { add, cmp, mul, parseDecimal, ratio, sub, ZERO, type Ratio } from '../../src/domain/decimal.ts';
import { wholePoints } from '../../src/domain/points.ts';
import type { SpendableLot } from '../../src/domain/lots/fefo.ts';
import { orderLotsForSpend } from '../../src/domain/lots/fefo.ts';
import {
  planGroupSpend,
  planGroupSpendFromPrefix,
  poolInDefaultPoints,
  stepValue,
  type PointPrecision,
  type ProgramUnit,
} from '../../src/domain/lots/group-plan.ts';
import { conversionLine, unitValue, valueMinor } from '../../src/domain/lots/conversion.ts';

const D = parseDecimal;
const T = (iso: string): number => Date.parse(iso);

// USD 0.01/pt (default); EUR 0.005 at 1.08 → 0.0054 USD; GBP 0.02 at 1.27 → 0.0254 USD.
const programs = new Map<string, ProgramUnit>([
  ['acme-points', { unit_value: unitValue(D('0.01'), D('1')), precision: 'whole' }],
  ['harbor-rewards', { unit_value: unitValue(D('0.005'), D('1.08')), precision: 'pt4' }],
  ['thames-club', { unit_value: unitValue(D('0.02'), D('1.27')), precision: 'whole' }],
]);
const brandOf: Record<string, string> = {
  'acme-points': 'northwind',
  'harbor-rewards': 'harbor',
  'thames-club': 'thames',
};

const lot = (
  id: string,
  program_id: string,
  pts: number,
  expires: string | null,
  awarded: string,
): SpendableLot => ({
  id,
  program_id,
  issuing_brand_id: brandOf[program_id] ?? 'x',
  spendable_pt4: wholePoints(pts),
  expires_at_ms: expires === null ? null : T(expires),
  awarded_at_ms: T(awarded),
});

const lots: SpendableLot[] = [
  lot('5', 'harbor-rewards', 1000, null, '2026-01-01T00:00:00Z'),
  lot('4', 'thames-club', 40, '2026-05-01T00:00:00Z', '2026-01-01T00:00:00Z'),
  lot('3', 'acme-points', 50, '2026-04-01T00:00:00Z', '2026-01-03T00:00:00Z'),
  lot('2', 'thames-club', 100, '2026-04-01T00:00:00Z', '2026-01-02T00:00:00Z'),
  lot('1', 'harbor-rewards', 300, '2026-03-01T00:00:00Z', '2026-01-05T00:00:00Z'),
];

const plan = (points: number, ls: readonly SpendableLot[] = lots) =>
  planGroupSpend({ lots: ls, programs, default_program_id: 'acme-points', points_pt4: wholePoints(points) });

void describe('group plan, three programs', () => {
  void it('500 default points = 5.00 USD, broken down by hand', () => {
    const p = plan(500);
    // 300 × 0.0054 = 1.62 (left 3.38); 100 × 0.0254 = 2.54 (left 0.84); 50 × 0.01 = 0.50
    // (left 0.34); lot 4 is worth 1.016 > 0.34: ceil(0.34 / 0.0254 = 13.38…) = 14 points =
    // 0.3556, overpaying 0.0156 in thames-club (less than one of its points, 0.0254).
    assert.deepEqual(p.target_value, D('5'));
    assert.deepEqual(
      p.allocations.map((a) => [a.lot_id, a.program_id, a.issuing_brand_id, a.points_pt4, a.value]),
      [
        ['1', 'harbor-rewards', 'harbor', wholePoints(300), D('1.62')],
        ['2', 'thames-club', 'thames', wholePoints(100), D('2.54')],
        ['3', 'acme-points', 'northwind', wholePoints(50), D('0.5')],
        ['4', 'thames-club', 'thames', wholePoints(14), D('0.3556')],
      ],
    );
    assert.deepEqual(p.by_program, [
      { program_id: 'acme-points', points_pt4: wholePoints(50), value: D('0.5') },
      { program_id: 'harbor-rewards', points_pt4: wholePoints(300), value: D('1.62') },
      { program_id: 'thames-club', points_pt4: wholePoints(114), value: D('2.8956') },
    ]);
    assert.deepEqual(p.overpaid_value, D('0.0156'));
    assert.equal(p.rounding_program_id, 'thames-club');
    assert.deepEqual(p.shortfall_value, ZERO);
    // 1.62 + 2.54 + 0.50 + 1.016 + 5.40 = 11.076 → 1107.6 default points, floored to 1107.
    assert.deepEqual(p.available_value, D('11.076'));
    assert.equal(p.available_default_pt4, wholePoints(1107));
  });

  void it('an accumulate program is cut at the 4th decimal, rounded up', () => {
    const p = plan(100);
    // 1.00 / 0.0054 = 185.185185… → 185.1852 points = 1.00000008 USD; 0.00000008 overpaid.
    assert.deepEqual(
      p.allocations.map((a) => [a.lot_id, a.points_pt4, a.value]),
      [['1', 1_851_852n, D('1.00000008')]],
    );
    assert.deepEqual(p.overpaid_value, D('0.00000008'));
    assert.equal(p.rounding_program_id, 'harbor-rewards');
  });

  void it('takes one whole point from a lot whose one point is worth more than what is left', () => {
    const ls = [
      lot('1', 'acme-points', 99, '2026-03-01T00:00:00Z', '2026-01-01T00:00:00Z'),
      lot('2', 'thames-club', 10, '2026-04-01T00:00:00Z', '2026-01-01T00:00:00Z'),
    ];
    const p = plan(100, ls);
    assert.deepEqual(
      p.allocations.map((a) => [a.lot_id, a.points_pt4]),
      [
        ['1', wholePoints(99)],
        ['2', wholePoints(1)],
      ],
    );
    assert.deepEqual(p.overpaid_value, D('0.0154'));
    assert.equal(p.rounding_program_id, 'thames-club');
  });

  void it('an exact cover overpays nothing', () => {
    const p = plan(162, lots);
    assert.deepEqual(
      p.allocations.map((a) => a.lot_id),
      ['1'],
    );
    assert.deepEqual(p.overpaid_value, ZERO);
    assert.equal(p.rounding_program_id, null);
  });

  void it('a shortfall allocates nothing and leaves the lots untouched', () => {
    const before = structuredClone(lots);
    const p = plan(1108);
    assert.deepEqual(p.allocations, []);
    assert.deepEqual(p.by_program, []);
    assert.deepEqual(p.shortfall_value, D('0.004'));
    assert.equal(p.available_default_pt4, wholePoints(1107));
    assert.deepEqual(lots, before);
    assert.equal(plan(1107).shortfall_value.num, 0n);
  });

  void it('poolInDefaultPoints matches the plan', () => {
    const balances = new Map([
      ['harbor-rewards', wholePoints(1300)],
      ['thames-club', wholePoints(140)],
      ['acme-points', wholePoints(50)],
      ['gone', -wholePoints(7)], // a recorded debt counts as zero
    ]);
    const uv = new Map([...programs].map(([id, u]) => [id, u.unit_value] as const));
    assert.equal(poolInDefaultPoints(balances, uv, D('0.01'), 'whole'), wholePoints(1107));
    assert.equal(poolInDefaultPoints(balances, uv, D('0.01'), 'pt4'), 11_076_000n);
  });

  void it('renders conversions and money', () => {
    const h = programs.get('harbor-rewards');
    assert.ok(h);
    assert.equal(
      conversionLine('harbor-rewards', h.unit_value, 'USD'),
      '1 harbor-rewards point = 0.0054 USD',
    );
    assert.equal(conversionLine('x', ratio(1n, 3n), 'USD'), '1 x point = 0.3333333333 USD');
    assert.equal(conversionLine('x', D('0.00000000000123'), 'USD'), '1 x point = 0.00000000000123 USD');
    assert.equal(valueMinor(D('16.875'), 2), 1688n);
    assert.equal(valueMinor(D('16.865'), 2), 1686n);
    assert.equal(valueMinor(D('-16.865'), 2), -1686n);
    assert.equal(valueMinor(D('0.3302'), 2, 'floor'), 33n);
    assert.equal(valueMinor(D('1234'), 0), 1234n);
  });
});

const unitArb = fc
  .record({
    num: fc.bigInt({ min: 1n, max: 5_000n }),
    den: fc.constantFrom(1_000n, 10_000n, 100_000n, 7n),
    precision: fc.constantFrom<PointPrecision>('whole', 'pt4'),
  })
  .map(({ num, den, precision }): ProgramUnit => ({ unit_value: ratio(num, den), precision }));

const scenarioArb = fc
  .record({ units: fc.array(unitArb, { minLength: 3, maxLength: 3 }) })
  .chain(({ units }) =>
    fc.record({
      units: fc.constant(units),
      lots: fc.uniqueArray(
        fc.record({
          id: fc.bigInt({ min: 1n, max: 1_000n }).map(String),
          p: fc.integer({ min: 0, max: 2 }),
          whole: fc.bigInt({ min: 0n, max: 3_000n }),
          frac: fc.bigInt({ min: 0n, max: 9_999n }),
          expires_at_ms: fc.option(fc.integer({ min: 0, max: 5 }), { nil: null }),
          awarded_at_ms: fc.integer({ min: 0, max: 5 }),
        }),
        { selector: (l) => l.id, maxLength: 10 },
      ),
      request: fc.bigInt({ min: 0n, max: 20_000n }),
    }),
  );

type Scenario = typeof scenarioArb extends fc.Arbitrary<infer S> ? S : never;

/** The scenario's programs p0…p2, its lots and the request in pt4. */
function scenario(units: Scenario['units'], raw: Scenario['lots'], request: bigint) {
  const ids = ['p0', 'p1', 'p2'];
  const progs = new Map(units.map((u, i) => [ids[i] ?? '', u]));
  const lots: SpendableLot[] = raw.map((l) => {
    const precision = units[l.p]?.precision;
    return {
      id: l.id,
      program_id: ids[l.p] ?? '',
      issuing_brand_id: `b${l.p}`,
      spendable_pt4: l.whole * 10_000n + (precision === 'pt4' ? l.frac : 0n),
      expires_at_ms: l.expires_at_ms,
      awarded_at_ms: l.awarded_at_ms,
    };
  });
  const def = progs.get('p0');
  assert.ok(def);
  const points_pt4 = def.precision === 'whole' ? request * 10_000n : request * 1_000n + 7n;
  return { progs, lots, points_pt4 };
}

void describe('group plan properties', () => {
  void it('never gives more value than it takes, overpays less than one step, never over-allocates, shortfall is all or nothing', () => {
    fc.assert(
      fc.property(scenarioArb, ({ units, lots: raw, request }) => {
        const { progs, lots: ls, points_pt4 } = scenario(units, raw, request);
        const p = planGroupSpend({ lots: ls, programs: progs, default_program_id: 'p0', points_pt4 });
        const byId = new Map(ls.map((l) => [l.id, l]));
        const spent = p.allocations.reduce<Ratio>((s, a) => add(s, a.value), ZERO);

        if (cmp(p.available_value, p.target_value) < 0) {
          assert.deepEqual(p.allocations, []);
          assert.deepEqual(p.shortfall_value, sub(p.target_value, p.available_value));
          assert.ok(p.available_default_pt4 < points_pt4);
          return;
        }
        assert.ok(p.available_default_pt4 >= points_pt4, 'a covered request is within the pool');
        assert.equal(p.shortfall_value.num, 0n);
        assert.ok(cmp(spent, p.target_value) >= 0, 'Σ value >= target');
        assert.deepEqual(p.overpaid_value, sub(spent, p.target_value));
        if (p.overpaid_value.num > 0n) {
          const u = progs.get(p.rounding_program_id ?? '');
          assert.ok(u, 'the rounded program is named');
          assert.ok(cmp(p.overpaid_value, stepValue(u)) < 0, 'overpaid < one step of that program');
        } else assert.equal(p.rounding_program_id, null);
        for (const a of p.allocations) {
          const l = byId.get(a.lot_id);
          assert.ok(l && a.points_pt4 > 0n && a.points_pt4 <= l.spendable_pt4);
          const u = progs.get(a.program_id);
          assert.ok(u);
          assert.deepEqual(a.value, mul(ratio(a.points_pt4, 10_000n), u.unit_value));
        }
        const pts = p.by_program.reduce((s, t) => s + t.points_pt4, 0n);
        assert.equal(
          pts,
          p.allocations.reduce((s, a) => s + a.points_pt4, 0n),
        );
      }),
      { numRuns: 300 },
    );
  });

  void it('a plan over the first lots in spend order and the totals is the plan over all, or null when it needs more', () => {
    fc.assert(
      fc.property(scenarioArb, fc.nat({ max: 12 }), ({ units, lots: raw, request }, k) => {
        const { progs, lots, points_pt4 } = scenario(units, raw, request);
        const full = planGroupSpend({ lots, programs: progs, default_program_id: 'p0', points_pt4 });
        const ordered = orderLotsForSpend(lots.filter((l) => l.spendable_pt4 > 0n));
        const totals = new Map<string, bigint>();
        for (const l of ordered) totals.set(l.program_id, (totals.get(l.program_id) ?? 0n) + l.spendable_pt4);
        const prefix = ordered.slice(0, k);
        const complete = k >= ordered.length;
        const plan = planGroupSpendFromPrefix({
          lots: [...prefix].reverse(), // the order it is given in does not matter
          totals,
          complete,
          programs: progs,
          default_program_id: 'p0',
          points_pt4,
        });
        if (plan) return assert.deepEqual(plan, full);
        assert.ok(!complete, 'the whole pool always plans');
        // Null only when the plan over all takes every lot of the prefix whole and goes on to
        // take a later lot.
        const taken = new Map(full.allocations.map((a) => [a.lot_id, a.points_pt4]));
        for (const l of prefix) assert.equal(taken.get(l.id), l.spendable_pt4);
        assert.ok(full.allocations.length > prefix.length);
      }),
      { numRuns: 500 },
    );
  });
});
