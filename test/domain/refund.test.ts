import * as assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as fc from 'fast-check';
import { compileGroup } from '../../src/domain/config/compile.ts';
import {
  calculateEarn,
  calculateRefund,
  calculateVoid,
  isRefundError,
  type EarnExplanation,
  type EarnLineItem,
  type EarnResult,
  type RefundError,
  type RefundResult,
  type ReturnedQuantities,
  type ReturnLine,
} from '../../src/domain/earn/index.ts';
import { wholePoints } from '../../src/domain/points.ts';
import { demoConfigDoc, demoGroup } from '../fixtures/config.ts';
import { earnInput, line, type PurchaseSpec } from '../fixtures/earn.ts';

const demo = demoGroup();
const earn = (spec: PurchaseSpec): EarnResult => calculateEarn(earnInput(demo, spec));

function ok(r: RefundResult | RefundError): RefundResult {
  if (isRefundError(r)) assert.fail(`unexpected refund error ${JSON.stringify(r)}`);
  return r;
}

function err(r: RefundResult | RefundError): RefundError {
  if (!isRefundError(r))
    assert.fail(
      `expected a refund error, got ${JSON.stringify(r, (_, v: unknown) => (typeof v === 'bigint' ? `${v}` : v))}`,
    );
  return r;
}

void describe('calculateRefund', () => {
  // Northwind: 5 points per $10, floor. Tees: 3 × $10 → 15 points; coat $90 → 45.
  const purchase = earn({
    program: 'northwind-stars',
    lines: [line('TEE', 1000n, 3), line('COAT', 9000n, 1)],
  });

  void it('takes back what a fully returned line earned', () => {
    const r = ok(calculateRefund(purchase, {}, [{ sku: 'COAT', quantity: 1 }]));
    assert.equal(r.points_pt4, wholePoints(45));
    assert.deepEqual(r.lines, [
      { return_index: 0, line_index: 1, sku: 'COAT', quantity: 1, points_pt4: wholePoints(45) },
    ]);
    assert.deepEqual(r.returned_after, { 1: 1 });
  });

  void it('returns the same-sku line sold at the returned price first', () => {
    // Two lines of one sku: $100 (50 points) and $20 on sale (10 points).
    const p = earn({ program: 'northwind-stars', lines: [line('TEE', 10000n, 1), line('TEE', 2000n, 1)] });
    const sale = ok(calculateRefund(p, {}, [{ sku: 'TEE', quantity: 1, unit_price_cents: 2000n }]));
    assert.equal(sale.points_pt4, wholePoints(10));
    assert.deepEqual(sale.returned_after, { 1: 1 });
    // Then the full-price one, whatever price the return names: only it is left.
    const full = ok(
      calculateRefund(p, sale.returned_after, [{ sku: 'TEE', quantity: 1, unit_price_cents: 2000n }]),
    );
    assert.equal(full.points_pt4, wholePoints(50));
    // No price, or one no line was sold at: lines in order, as before.
    for (const r of [
      { sku: 'TEE', quantity: 1 },
      { sku: 'TEE', quantity: 1, unit_price_cents: 999n },
    ])
      assert.deepEqual(ok(calculateRefund(p, {}, [r])).returned_after, { 0: 1 });
  });

  void it('prorates a partially returned line by quantity, cumulatively', () => {
    const first = ok(calculateRefund(purchase, {}, [{ sku: 'TEE', quantity: 1 }]));
    assert.equal(first.points_pt4, wholePoints(5));
    const second = ok(calculateRefund(purchase, first.returned_after, [{ sku: 'TEE', quantity: 2 }]));
    assert.equal(second.points_pt4, wholePoints(10));
  });

  void it('floors each refund to whole points and catches up later, never over-taking', () => {
    const p = earn({ program: 'northwind-stars', lines: [line('SOCK', 700n, 3)] }); // 10.5 → 10 points
    assert.equal(p.points_pt4, wholePoints(10));
    const r1 = ok(calculateRefund(p, {}, [{ sku: 'SOCK', quantity: 1 }])); // 3.33 → 3
    const r2 = ok(calculateRefund(p, r1.returned_after, [{ sku: 'SOCK', quantity: 1 }])); // 6.67 → 6, so 3
    const r3 = ok(calculateRefund(p, r2.returned_after, [{ sku: 'SOCK', quantity: 1 }])); // 10 → 4
    assert.deepEqual(
      [r1.points_pt4, r2.points_pt4, r3.points_pt4],
      [wholePoints(3), wholePoints(3), wholePoints(4)],
    );
  });

  void it("prorates an event bonus by the returned lines' share of the eligible amount", () => {
    const p = earn({
      program: 'northwind-stars',
      store: 'web_northwind',
      lines: [line('A', 2000n), line('B', 6000n)],
    });
    assert.equal(p.points_pt4, wholePoints(40 + 50)); // 5 per $10 on $80, plus the web bonus
    const r = ok(calculateRefund(p, {}, [{ sku: 'A', quantity: 1 }]));
    // A earned 10 points and carries a quarter of the 50-point bonus: 10 + 12.5 → 22.
    assert.equal(r.points_pt4, wholePoints(22));
    const rest = ok(calculateRefund(p, r.returned_after, [{ sku: 'B', quantity: 1 }]));
    assert.equal(r.points_pt4 + rest.points_pt4, p.points_pt4);
  });

  void it('prorates a line bonus by quantity', () => {
    const doc = demoConfigDoc();
    doc.programs[1]!.rules = [{ id: 'multi', scope: 'line', when: 'item.quantity > 1', bonus_points: '20' }];
    const g = compileGroup(doc, 1);
    const p = calculateEarn(earnInput(g, { program: 'northwind-stars', lines: [line('TEE', 1000n, 4)] }));
    assert.equal(p.points_pt4, wholePoints(20 + 20));
    const r = ok(calculateRefund(p, {}, [{ sku: 'TEE', quantity: 1 }]));
    assert.equal(r.points_pt4, wholePoints(10)); // 5 + 20/4
  });

  void it('accepts a returned ineligible line and takes back nothing for it', () => {
    const p = earn({
      program: 'northwind-stars',
      lines: [line('TEE', 1000n, 1), line('GIFT', 5000n, 1, { eligible_for_points: false })],
    });
    const r = ok(calculateRefund(p, {}, [{ sku: 'GIFT', quantity: 1 }]));
    assert.equal(r.points_pt4, 0n);
    assert.equal(r.lines[0]!.line_index, 1);
  });

  void it('fills several original lines of one sku in order', () => {
    const p = earn({ program: 'northwind-stars', lines: [line('TEE', 1000n, 1), line('TEE', 3000n, 2)] });
    const r = ok(calculateRefund(p, {}, [{ sku: 'TEE', quantity: 2 }]));
    assert.deepEqual(
      r.lines.map((l) => [l.line_index, l.quantity]),
      [
        [0, 1],
        [1, 1],
      ],
    );
    assert.equal(r.points_pt4, wholePoints(5 + 15));
  });

  void it('rejects returning more than was bought, naming the field', () => {
    const e = err(
      calculateRefund(purchase, {}, [
        { sku: 'COAT', quantity: 1 },
        { sku: 'TEE', quantity: 4 },
      ]),
    );
    assert.equal(e.error, 'OVER_REFUND');
    assert.equal(e.field, 'line_items[1].quantity');
    const again = err(calculateRefund(purchase, { 1: 1 }, [{ sku: 'COAT', quantity: 1 }]));
    assert.equal(again.error, 'OVER_REFUND');
    assert.equal(again.field, 'line_items[0].quantity');
  });

  void it('rejects an sku the purchase did not have', () => {
    const e = err(calculateRefund(purchase, {}, [{ sku: 'HAT', quantity: 1 }]));
    assert.deepEqual([e.error, e.field], ['UNKNOWN_LINE', 'line_items[0].sku']);
  });

  void it('rejects a non-positive quantity', () => {
    const e = err(calculateRefund(purchase, {}, [{ sku: 'TEE', quantity: 0 }]));
    assert.deepEqual([e.error, e.field], ['INVALID_QUANTITY', 'line_items[0].quantity']);
  });

  void it('works from the stored JSON explanation alone', () => {
    const stored = JSON.parse(JSON.stringify(purchase.explanation)) as EarnExplanation;
    const r = ok(calculateRefund(stored, {}, [{ sku: 'COAT', quantity: 1 }]));
    assert.equal(r.points_pt4, wholePoints(45));
  });

  void it('takes back an accumulate program to the fourth decimal', () => {
    const p = earn({ program: 'harbor-rewards', store: 'web_harbor', lines: [line('MILK', 133n, 3)] }); // 3.99
    const r = ok(calculateRefund(p, {}, [{ sku: 'MILK', quantity: 1 }]));
    assert.equal(r.points_pt4, 13_300n);
  });

  void it('prorates a synthetic event-level line by returned value', () => {
    const p = earn({
      program: 'acme-points',
      lines: [
        line('X', 4000n, 1, { eligible_for_points: false }),
        line('Y', 4000n, 1, { eligible_for_points: false }),
      ],
      eligible_subtotal_cents: 8000n,
    });
    assert.equal(p.points_pt4, wholePoints(8));
    const r = ok(calculateRefund(p, {}, [{ sku: 'X', quantity: 1 }]));
    assert.equal(r.points_pt4, wholePoints(4));
  });
});

void describe('calculateVoid', () => {
  const purchase = earn({
    program: 'northwind-stars',
    store: 'web_northwind',
    lines: [line('TEE', 1000n, 3), line('COAT', 9000n, 1)],
  });

  void it('takes back everything when nothing was refunded', () => {
    assert.equal(calculateVoid(purchase, {}).points_pt4, purchase.points_pt4);
  });

  void it('takes back only what earlier refunds did not', () => {
    const r = ok(calculateRefund(purchase, {}, [{ sku: 'TEE', quantity: 2 }]));
    assert.equal(r.points_pt4 + calculateVoid(purchase, r.returned_after).points_pt4, purchase.points_pt4);
  });
});

// ---------------------------------------------------------------------------------------------
// Properties

const arbLines = fc.array(
  fc.record({
    sku: fc.constantFrom('A', 'B', 'C'),
    unit_price_cents: fc.bigInt({ min: 1n, max: 100_000n }),
    quantity: fc.integer({ min: 1, max: 6 }),
    eligible_for_points: fc.boolean(),
    category: fc.constantFrom('outerwear', 'tops'),
  }),
  { minLength: 1, maxLength: 6 },
);

const arbPurchase = fc
  .record({
    program: fc.constantFrom('northwind-stars', 'harbor-rewards', 'summit-miles', 'acme-points'),
    lines: arbLines,
    online: fc.boolean(),
    gold: fc.boolean(),
  })
  .map(({ program, lines, online, gold }) => {
    const store = {
      'northwind-stars': online ? 'web_northwind' : 'store_atl_012',
      'harbor-rewards': 'web_harbor',
      'summit-miles': 'store_lon_001',
      'acme-points': 'web_harbor',
    }[program];
    return {
      program,
      lines: lines satisfies EarnLineItem[],
      store,
      tier: gold ? 'gold' : null,
      ts: '2026-02-01T00:00:00Z',
    };
  });

/** Every unit of every line, as single-unit returns, in a shuffled order cut into refunds. */
const arbRefundPlan = (lines: readonly EarnLineItem[]) => {
  const units = lines.flatMap((l) => Array.from({ length: l.quantity }, () => l.sku));
  return fc.tuple(
    fc.shuffledSubarray(units, { minLength: units.length, maxLength: units.length }),
    fc.array(fc.integer({ min: 1, max: 4 }), { minLength: units.length, maxLength: units.length }),
  );
};

function runRefunds(
  p: EarnResult,
  batches: readonly ReturnLine[][],
): { taken: bigint[]; returned: ReturnedQuantities } {
  let returned: ReturnedQuantities = {};
  const taken: bigint[] = [];
  for (const batch of batches) {
    const r = ok(calculateRefund(p.explanation, returned, batch));
    taken.push(r.points_pt4);
    assert.equal(
      r.lines.reduce((a, l) => a + l.points_pt4, 0n),
      r.points_pt4,
    );
    returned = r.returned_after;
  }
  return { taken, returned };
}

function cut(order: readonly string[], sizes: readonly number[]): ReturnLine[][] {
  const batches: ReturnLine[][] = [];
  let i = 0;
  for (const size of sizes) {
    if (i >= order.length) break;
    batches.push(order.slice(i, i + size).map((sku) => ({ sku, quantity: 1 })));
    i += size;
  }
  return batches;
}

void describe('refund properties', () => {
  void it('a full sequence of partial refunds takes back exactly the total; no prefix takes more', () => {
    fc.assert(
      fc.property(
        arbPurchase.chain((spec) => fc.tuple(fc.constant(spec), arbRefundPlan(spec.lines))),
        ([spec, [order, sizes]]) => {
          const p = earn(spec);
          const { taken } = runRefunds(p, cut(order, sizes));
          let cumulative = 0n;
          for (const t of taken) {
            assert.ok(t >= 0n, 'a refund never gives points');
            cumulative += t;
            assert.ok(cumulative <= p.points_pt4, 'never more than earned');
          }
          assert.equal(cumulative, p.points_pt4);
        },
      ),
      { numRuns: 200 },
    );
  });

  void it('any prefix of refunds followed by a void takes back exactly the total', () => {
    fc.assert(
      fc.property(
        arbPurchase.chain((spec) => fc.tuple(fc.constant(spec), arbRefundPlan(spec.lines), fc.nat())),
        ([spec, [order, sizes], keep]) => {
          const p = earn(spec);
          const batches = cut(order, sizes);
          const { taken, returned } = runRefunds(p, batches.slice(0, keep % (batches.length + 1)));
          const voided = calculateVoid(p.explanation, returned).points_pt4;
          assert.ok(voided >= 0n);
          assert.equal(taken.reduce((a, b) => a + b, 0n) + voided, p.points_pt4);
        },
      ),
      { numRuns: 200 },
    );
  });

  void it('returning more than remains is always OVER_REFUND and changes nothing', () => {
    fc.assert(
      fc.property(arbPurchase, (spec) => {
        const p = earn(spec);
        const sku = spec.lines[0]!.sku;
        const bought = spec.lines.filter((l) => l.sku === sku).reduce((a, l) => a + l.quantity, 0);
        const e = err(calculateRefund(p, {}, [{ sku, quantity: bought + 1 }]));
        assert.equal(e.error, 'OVER_REFUND');
      }),
    );
  });
});
