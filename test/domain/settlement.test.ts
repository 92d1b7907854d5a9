import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  add,
  cmp,
  fromInt,
  ONE,
  parseDecimal,
  ratio,
  roundRatio,
  sub,
  ZERO,
  type Ratio,
} from '../../src/domain/decimal.ts';
import {
  grossFlows,
  netPositions,
  settlementAmounts,
  type SettlementInput,
} from '../../src/domain/settlement/settle.ts';

const D = parseDecimal;
const alloc = (
  issuer: string,
  redeemer: string,
  value: string,
  rate = '1',
  sign: 1 | -1 = 1,
  points_pt4 = 0n,
): SettlementInput => ({
  issuer_brand_id: issuer,
  redeemer_brand_id: redeemer,
  value: D(value),
  reimbursement_rate: D(rate),
  sign,
  points_pt4,
});

void describe('settlementAmounts', () => {
  void it('records only cross-brand allocations, value × rate in minor units', () => {
    const flows = settlementAmounts(
      [alloc('harbor', 'harbor', '1.62'), alloc('harbor', 'northwind', '1.62', '0.9', 1, 3_000_000n)],
      2,
    );
    assert.equal(flows.length, 1);
    // 1.62 × 0.9 = 1.458 USD = 145.8 cents → 146
    assert.deepEqual(flows[0], {
      allocation_index: 1,
      issuer_brand_id: 'harbor',
      redeemer_brand_id: 'northwind',
      points_pt4: 3_000_000n,
      amount_minor: 146n,
      exact_minor: D('145.8'),
    });
  });

  void it('carries the residual per pair so the pair total is the rounded exact total', () => {
    // Three allocations of 0.005 USD: exact 0.5, 1.0, 1.5 cents cumulative → 0, 1, 2 (half-even)
    // → amounts 0, 1, 1; total 2 = round(1.5). Rounding each alone would give 0+0+0 = 0.
    const flows = settlementAmounts(
      [
        alloc('a', 'b', '0.005'),
        alloc('c', 'b', '0.004'),
        alloc('a', 'b', '0.005'),
        alloc('a', 'b', '0.005'),
      ],
      2,
    );
    assert.deepEqual(
      flows.map((f) => [f.issuer_brand_id, f.amount_minor]),
      [
        ['a', 0n],
        ['c', 0n],
        ['a', 1n],
        ['a', 1n],
      ],
    );
  });

  void it('a reversal with the same allocations and sign −1 cancels exactly', () => {
    const redemption = [
      alloc('a', 'b', '0.3302', '0.95'),
      alloc('a', 'b', '1.62', '0.95'),
      alloc('c', 'b', '0.5'),
    ];
    const forward = settlementAmounts(redemption, 2);
    const reversal = settlementAmounts(
      redemption.map((a) => ({ ...a, sign: -1 as const })),
      2,
    );
    assert.deepEqual(
      reversal.map((f) => f.amount_minor),
      forward.map((f) => -f.amount_minor),
    );
    const both = [...forward, ...reversal];
    assert.ok(netPositions(both).every((n) => n.amount_minor === 0n));
    assert.ok(grossFlows(both).every((g) => g.amount_minor === 0n));
    // and within one run: the pair returns to zero too
    const inline = settlementAmounts(
      [...redemption, ...redemption.map((a) => ({ ...a, sign: -1 as const }))],
      2,
    );
    assert.ok(grossFlows(inline).every((g) => g.amount_minor === 0n));
  });

  void it('nets and gross flows', () => {
    const flows = [
      { issuer_brand_id: 'harbor', redeemer_brand_id: 'northwind', amount_minor: 500n, points_pt4: 10n },
      { issuer_brand_id: 'northwind', redeemer_brand_id: 'harbor', amount_minor: 200n, points_pt4: 20n },
      { issuer_brand_id: 'harbor', redeemer_brand_id: 'northwind', amount_minor: 50n, points_pt4: 1n },
      { issuer_brand_id: 'thames', redeemer_brand_id: 'harbor', amount_minor: 70n },
      { issuer_brand_id: 'same', redeemer_brand_id: 'same', amount_minor: 999n },
    ];
    assert.deepEqual(netPositions(flows), [
      { brand_id: 'harbor', amount_minor: -280n },
      { brand_id: 'northwind', amount_minor: 350n },
      { brand_id: 'thames', amount_minor: -70n },
    ]);
    assert.deepEqual(grossFlows(flows), [
      { issuer_brand_id: 'harbor', redeemer_brand_id: 'northwind', points_pt4: 11n, amount_minor: 550n },
      { issuer_brand_id: 'northwind', redeemer_brand_id: 'harbor', points_pt4: 20n, amount_minor: 200n },
      { issuer_brand_id: 'thames', redeemer_brand_id: 'harbor', points_pt4: 0n, amount_minor: 70n },
    ]);
  });
});

const allocArb: fc.Arbitrary<SettlementInput> = fc.record({
  issuer_brand_id: fc.constantFrom('a', 'b', 'c'),
  redeemer_brand_id: fc.constantFrom('a', 'b', 'c'),
  value: fc
    .record({
      n: fc.bigInt({ min: 0n, max: 10_000_000n }),
      d: fc.constantFrom(1n, 100n, 10_000n, 1_000_000n, 3n),
    })
    .map(({ n, d }) => ratio(n, d)),
  reimbursement_rate: fc.constantFrom(D('1'), D('0.9'), D('0.875'), D('1.05')),
  sign: fc.constantFrom<1 | -1>(1, 1, 1, -1),
});

void describe('settlement properties', () => {
  void it('nets sum to zero; pair totals equal the rounded exact sums; same brand records nothing', () => {
    fc.assert(
      fc.property(fc.array(allocArb, { maxLength: 30 }), fc.constantFrom(0, 2, 3), (allocs, exp) => {
        const flows = settlementAmounts(allocs, exp);
        assert.ok(flows.every((f) => f.issuer_brand_id !== f.redeemer_brand_id));
        assert.equal(flows.length, allocs.filter((a) => a.issuer_brand_id !== a.redeemer_brand_id).length);
        assert.equal(
          netPositions(flows).reduce((s, n) => s + n.amount_minor, 0n),
          0n,
        );
        const exact = new Map<string, Ratio>();
        for (const f of flows) {
          const k = `${f.issuer_brand_id}>${f.redeemer_brand_id}`;
          exact.set(k, add(exact.get(k) ?? ZERO, f.exact_minor));
          const off = sub(fromInt(f.amount_minor), f.exact_minor);
          assert.ok(
            cmp(off, ONE) <= 0 && cmp(off, fromInt(-1)) >= 0,
            'each amount within 1 minor unit of its exact value',
          );
        }
        for (const g of grossFlows(flows)) {
          const e = exact.get(`${g.issuer_brand_id}>${g.redeemer_brand_id}`) ?? ZERO;
          assert.equal(g.amount_minor, roundRatio(e, 'half_even'));
        }
      }),
      { numRuns: 300 },
    );
  });

  void it('reversing every allocation in a second run negates every amount', () => {
    fc.assert(
      fc.property(fc.array(allocArb, { maxLength: 20 }), (allocs) => {
        const fwd = settlementAmounts(allocs, 2);
        const rev = settlementAmounts(
          allocs.map((a) => ({ ...a, sign: a.sign === 1 ? (-1 as const) : (1 as const) })),
          2,
        );
        assert.deepEqual(
          rev.map((f) => f.amount_minor),
          fwd.map((f) => -f.amount_minor),
        );
      }),
    );
  });
});
