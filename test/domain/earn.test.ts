import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { compileGroup } from '../../src/domain/config/compile.ts';
import type { ProgramConfig } from '../../src/domain/config/schema.ts';
import { calculateEarn, deserializeEarn, serializeEarn } from '../../src/domain/earn/index.ts';
import type { EarnResult } from '../../src/domain/earn/types.ts';
import { parseDecimal } from '../../src/domain/decimal.ts';
import { ratioToPt4, wholePoints, type Pt4 } from '../../src/domain/points.ts';
import { demoConfigDoc, demoGroup } from '../fixtures/config.ts';
import { earnInput, line, type PurchaseSpec } from '../fixtures/earn.ts';

const demo = demoGroup();
const earn = (spec: PurchaseSpec): EarnResult => calculateEarn(earnInput(demo, spec));

/** The demo group with northwind-stars replaced by `patch` applied to it. */
function groupWith(patch: Partial<ProgramConfig>) {
  const doc = demoConfigDoc();
  doc.programs[1] = { ...doc.programs[1]!, ...patch };
  return compileGroup(doc, 1);
}

const pt4 = (s: string): Pt4 => ratioToPt4(parseDecimal(s));
const sumParts = (r: EarnResult): Pt4 =>
  r.lines.reduce((a, l) => a + l.points_pt4, 0n) + r.bonuses.reduce((a, b) => a + b.points_pt4, 0n);

void describe('calculateEarn: rounding', () => {
  const cases = [
    ['floor', wholePoints(16)],
    ['nearest', wholePoints(17)],
    ['accumulate', pt4('16.8375')],
  ] as const;
  for (const [rounding, expected] of cases) {
    void it(`1.25 points per dollar on 13.47 gives ${expected} pt4 with ${rounding}`, () => {
      const g = groupWith({ earn: { points: '1.25', per_amount_minor: 100 }, rounding, rules: [] });
      const r = calculateEarn(earnInput(g, { program: 'northwind-stars', lines: [line('A', 1347n)] }));
      assert.equal(r.points_pt4, expected);
      assert.equal(sumParts(r), r.points_pt4);
    });
  }

  void it('nearest rounds half up', () => {
    const g = groupWith({ earn: { points: '1', per_amount_minor: 100 }, rounding: 'nearest', rules: [] });
    const r = calculateEarn(earnInput(g, { program: 'northwind-stars', lines: [line('A', 1250n)] }));
    assert.equal(r.points_pt4, wholePoints(13));
  });

  void it('rounds the total once, not each line', () => {
    // Three lines of 0.6 points each: per-line floor would give 0, the total gives 1.
    const g = groupWith({ earn: { points: '1', per_amount_minor: 100 }, rounding: 'floor', rules: [] });
    const r = calculateEarn(
      earnInput(g, { program: 'northwind-stars', lines: [line('A', 60n), line('B', 60n), line('C', 60n)] }),
    );
    assert.equal(r.points_pt4, wholePoints(1));
    assert.deepEqual(
      r.lines.map((l) => l.points_pt4),
      [wholePoints(1), 0n, 0n],
    );
  });
});

void describe('calculateEarn: eligibility', () => {
  void it('earns only on the eligible subtotal; ineligible lines earn nothing', () => {
    const r = earn({
      program: 'acme-points',
      lines: [
        line('SKU-40921', 8999n, 1, { category: 'outerwear' }),
        line('GIFT', 5000n, 1, { eligible_for_points: false }),
      ],
    });
    assert.equal(r.points_pt4, wholePoints(8)); // 1 per $10 on $89.99, floor
    assert.equal(r.lines[1]!.points_pt4, 0n);
    assert.equal(r.lines[1]!.eligible, false);
    assert.equal(r.lines[0]!.eligible, true);
  });

  void it("uses the till's eligible subtotal, spread over eligible lines by value", () => {
    // $20 of goods, $5 paid with points: only $15 earns, split 3:1 over the lines.
    const g = groupWith({ earn: { points: '1', per_amount_minor: 100 }, rules: [] });
    const r = calculateEarn(
      earnInput(g, {
        program: 'northwind-stars',
        lines: [line('A', 1500n), line('B', 500n)],
        eligible_subtotal_cents: 1500n,
      }),
    );
    assert.equal(r.points_pt4, wholePoints(15));
    assert.deepEqual(
      r.lines.map((l) => l.points_pt4),
      [pt4('11'), pt4('4')],
    );
  });

  void it('earns on the event as one synthetic line when no line is flagged eligible', () => {
    const r = earn({
      program: 'acme-points',
      lines: [line('X', 3000n, 1, { eligible_for_points: false })],
      eligible_subtotal_cents: 3000n,
    });
    assert.equal(r.points_pt4, wholePoints(3));
    const synthetic = r.lines.at(-1)!;
    assert.equal(synthetic.line_index, null);
    assert.equal(synthetic.points_pt4, wholePoints(3));
  });

  void it('earns nothing, bonuses included, when nothing is eligible', () => {
    const r = earn({
      program: 'northwind-stars',
      store: 'web_northwind',
      lines: [line('GIFT', 5000n, 1, { eligible_for_points: false })],
    });
    assert.equal(r.points_pt4, 0n);
    assert.deepEqual(r.bonuses, []);
    assert.deepEqual(r.rules_applied, []);
  });
});

void describe('calculateEarn: rules', () => {
  const basket = [
    line('COAT', 9000n, 1, { category: 'outerwear' }),
    line('TEE', 1500n, 2, { category: 'tops' }),
  ];
  const inWindow = '2026-02-15T12:00:00Z';

  void it('line-scoped category multiplier vs event multiplier, stacking highest', () => {
    const r = earn({ program: 'northwind-stars', lines: basket, tier: 'gold', ts: inWindow });
    // base 5 per $10: coat 45, tees 15. Coat: max(1.2, 3) = 3 → 135. Tees: 1.2 → 18.
    assert.equal(r.points_pt4, wholePoints(153));
    assert.deepEqual(
      r.lines.map((l) => l.multiplier),
      ['3', '1.2'],
    );
    assert.deepEqual(r.lines[0]!.rules_applied, ['gold-bonus', 'outerwear-x3']);
    assert.deepEqual(r.rules_applied, ['gold-bonus', 'outerwear-x3']);
  });

  void it('line-scoped category multiplier vs event multiplier, stacking additive', () => {
    const g = groupWith({ stacking: 'additive' });
    const r = calculateEarn(
      earnInput(g, { program: 'northwind-stars', lines: basket, tier: 'gold', ts: inWindow }),
    );
    // Coat: 1 + 0.2 + 2 = 3.2 → 144. Tees: 1.2 → 18.
    assert.equal(r.points_pt4, wholePoints(162));
    assert.deepEqual(
      r.lines.map((l) => l.multiplier),
      ['3.2', '1.2'],
    );
  });

  void it('clamps the combined multiplier to caps.max_multiplier', () => {
    const g = groupWith({ caps: { max_multiplier: '2' } });
    const r = calculateEarn(earnInput(g, { program: 'northwind-stars', lines: basket, ts: inWindow }));
    assert.equal(r.lines[0]!.multiplier, '2');
    assert.equal(r.points_pt4, wholePoints(90 + 15));
  });

  void it('caps the points of an event and keeps the parts summing to it', () => {
    const g = groupWith({ caps: { max_points_per_event: '100' } });
    const r = calculateEarn(
      earnInput(g, {
        program: 'northwind-stars',
        store: 'web_northwind',
        lines: basket,
        tier: 'gold',
        ts: inWindow,
      }),
    );
    assert.equal(r.capped, true);
    assert.equal(r.points_pt4, wholePoints(100));
    assert.equal(sumParts(r), wholePoints(100));
    const uncapped = earn({ program: 'northwind-stars', lines: basket, ts: inWindow });
    assert.equal(uncapped.capped, false);
  });

  const boundaries = [
    ['2025-12-31T23:59:59.999Z', false],
    ['2026-01-01T00:00:00.000Z', true],
    ['2026-03-31T23:59:59.999Z', true],
    ['2026-04-01T00:00:00.000Z', false],
  ] as const;
  for (const [ts, applies] of boundaries) {
    void it(`outerwear-x3 ${applies ? 'applies' : 'does not apply'} at ${ts}`, () => {
      const r = earn({ program: 'northwind-stars', lines: [basket[0]!], ts });
      assert.equal(r.rules_applied.includes('outerwear-x3'), applies);
      assert.equal(r.points_pt4, wholePoints(applies ? 135 : 45));
    });
  }

  void it("applies the tier rule only to a member in that tier (member.tier == 'gold')", () => {
    const lines = [line('TEE', 1000n, 1)];
    assert.equal(earn({ program: 'northwind-stars', lines, tier: 'gold' }).points_pt4, wholePoints(6));
    assert.equal(earn({ program: 'northwind-stars', lines, tier: 'silver' }).points_pt4, wholePoints(5));
    assert.equal(earn({ program: 'northwind-stars', lines, tier: null }).points_pt4, wholePoints(5));
  });

  void it("applies the channel rule only online (event.channel == 'online'), once per event", () => {
    const lines = [line('TEE', 1000n, 1), line('CAP', 1000n, 1)];
    const online = earn({ program: 'northwind-stars', store: 'web_northwind', lines });
    assert.equal(online.points_pt4, wholePoints(10 + 50));
    assert.deepEqual(online.bonuses, [
      { rule_id: 'web-bonus', line_index: null, points_pt4: wholePoints(50) },
    ]);
    assert.equal(earn({ program: 'northwind-stars', lines }).points_pt4, wholePoints(10));
  });

  void it('gives a line-scoped bonus once per matching line', () => {
    const g = groupWith({
      rules: [{ id: 'multi-buy', scope: 'line', when: 'item.quantity > 1', bonus_points: '7' }],
    });
    const r = calculateEarn(
      earnInput(g, {
        program: 'northwind-stars',
        lines: [line('A', 100n, 2), line('B', 100n, 1), line('C', 100n, 3)],
      }),
    );
    assert.deepEqual(
      r.bonuses.map((b) => [b.line_index, b.points_pt4]),
      [
        [0, wholePoints(7)],
        [2, wholePoints(7)],
      ],
    );
    assert.equal(r.points_pt4, wholePoints(3 + 14)); // base: 5 per $10 on $6.00
  });

  void it('sees integer line fields as CEL ints, so arithmetic on them works', () => {
    const g = groupWith({
      rules: [
        {
          id: 'big-line',
          scope: 'line',
          when: 'item.unit_price_cents * item.quantity >= 10000',
          multiplier: '2',
        },
      ],
    });
    const r = calculateEarn(
      earnInput(g, { program: 'northwind-stars', lines: [line('A', 5000n, 2), line('B', 5000n, 1)] }),
    );
    assert.deepEqual(
      r.lines.map((l) => l.multiplier),
      ['2', '1'],
    );
  });
});

void describe('calculateEarn: currencies', () => {
  void it('converts a EUR purchase into the USD default program', () => {
    // €95.00 at 1.08 = $102.60 → 10 acme points (would be 9 without conversion).
    const r = earn({ program: 'acme-points', store: 'web_harbor', lines: [line('MILK', 9500n)] });
    assert.equal(r.points_pt4, wholePoints(10));
    assert.equal(r.explanation.fx_to_program, '27/25');
    assert.equal(r.explanation.eligible_amount_minor, '10260');
  });

  void it('earns in the brand program in its own currency, accumulating decimals', () => {
    const r = earn({ program: 'harbor-rewards', store: 'web_harbor', lines: [line('MILK', 1347n)] });
    assert.equal(r.points_pt4, pt4('13.47'));
  });

  void it('converts a GBP purchase at a GBP brand with nearest rounding', () => {
    const r = earn({ program: 'summit-miles', store: 'store_lon_001', lines: [line('ROPE', 1234n)] });
    assert.equal(r.points_pt4, wholePoints(25)); // 2 per £1 on £12.34 = 24.68 → 25
  });
});

void describe('calculateEarn: explanation', () => {
  void it('is plain JSON and survives a round trip', () => {
    const r = earn({
      program: 'northwind-stars',
      store: 'web_northwind',
      tier: 'gold',
      lines: [line('COAT', 9000n, 1, { category: 'outerwear' })],
    });
    const json = JSON.stringify(r.explanation);
    assert.deepEqual(JSON.parse(json), r.explanation);
    assert.equal(r.explanation.points_pt4, `${r.points_pt4}`);
    const back = deserializeEarn(JSON.parse(JSON.stringify(serializeEarn(r))) as typeof r.explanation);
    assert.deepEqual({ ...back, explanation: null }, { ...r, explanation: null });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const arbLine = fc.record({
  sku: fc.constantFrom('A', 'B', 'C', 'D'),
  unit_price_cents: fc.bigInt({ min: 0n, max: 500_000n }),
  quantity: fc.integer({ min: 0, max: 12 }),
  eligible_for_points: fc.boolean(),
  category: fc.constantFrom('outerwear', 'tops', 'food'),
});

type ProgramSpec = {
  rounding: 'floor' | 'nearest' | 'accumulate';
  stacking: 'highest' | 'additive';
  points: string;
  per: number;
  gold: string;
  outerwear: string;
  bonus: string;
  cap: string | undefined;
  maxMult: string | undefined;
};

const arbProgram: fc.Arbitrary<ProgramSpec> = fc.record({
  rounding: fc.constantFrom('floor', 'nearest', 'accumulate' as const),
  stacking: fc.constantFrom('highest', 'additive' as const),
  points: fc.constantFrom('0', '1', '1.25', '5', '0.333'),
  per: fc.integer({ min: 1, max: 2000 }),
  gold: fc.constantFrom('0.5', '1.2', '2', '10'),
  outerwear: fc.constantFrom('0.25', '3', '1.05'),
  bonus: fc.constantFrom('0', '50', '0.0001', '12.5'),
  cap: fc.option(fc.constantFrom('1', '99.5', '1000'), { nil: undefined }),
  maxMult: fc.option(fc.constantFrom('0.5', '2', '5'), { nil: undefined }),
});

function programFrom(p: ProgramSpec) {
  return groupWith({
    rounding: p.rounding,
    stacking: p.stacking,
    earn: { points: p.points, per_amount_minor: p.per },
    rules: [
      { id: 'gold', when: "member.tier == 'gold'", multiplier: p.gold },
      {
        id: 'outer',
        scope: 'line',
        when: "item.category == 'outerwear'",
        multiplier: p.outerwear,
        bonus_points: p.bonus,
      },
      { id: 'web', when: "event.channel == 'online'", bonus_points: p.bonus },
    ],
    caps: {
      ...(p.cap ? { max_points_per_event: p.cap } : {}),
      ...(p.maxMult ? { max_multiplier: p.maxMult } : {}),
    },
  });
}

void describe('calculateEarn: properties', () => {
  void it('per-line points and bonuses always sum exactly to the total, never negative, within the cap', () => {
    fc.assert(
      fc.property(
        arbProgram,
        fc.array(arbLine, { maxLength: 8 }),
        fc.boolean(),
        fc.boolean(),
        (p, lines, gold, online) => {
          const g = programFrom(p);
          const r = calculateEarn(
            earnInput(g, {
              program: 'northwind-stars',
              lines,
              tier: gold ? 'gold' : null,
              store: online ? 'web_northwind' : 'store_atl_012',
            }),
          );
          assert.equal(sumParts(r), r.points_pt4);
          assert.ok(r.points_pt4 >= 0n);
          for (const l of r.lines) assert.ok(l.points_pt4 >= 0n);
          for (const b of r.bonuses) assert.ok(b.points_pt4 >= 0n);
          const cap = g.programs.get('northwind-stars')!.max_points_per_event_pt4;
          if (cap !== null) assert.ok(r.points_pt4 <= cap);
          if (p.rounding !== 'accumulate') assert.equal(r.points_pt4 % 10_000n, 0n);
        },
      ),
      { numRuns: 200 },
    );
  });

  void it('is monotone non-decreasing in the eligible subtotal for a rule-free program', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('floor', 'nearest', 'accumulate' as const),
        fc.constantFrom('1', '1.25', '0.333', '7'),
        fc.integer({ min: 1, max: 5000 }),
        fc.bigInt({ min: 0n, max: 10n ** 9n }),
        fc.bigInt({ min: 0n, max: 10n ** 6n }),
        (rounding, points, per, a, delta) => {
          const g = groupWith({ rounding, earn: { points, per_amount_minor: per }, rules: [], caps: {} });
          const at = (cents: bigint) =>
            calculateEarn(earnInput(g, { program: 'northwind-stars', lines: [line('A', cents)] })).points_pt4;
          assert.ok(at(a) <= at(a + delta));
        },
      ),
      { numRuns: 200 },
    );
  });
});
