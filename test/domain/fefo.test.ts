import { describe, it } from 'node:test';
import { strict as assert } from 'node:assert';
import fc from 'fast-check';
import {
  allocateFefo,
  compareLotIds,
  orderLotsForSpend,
  type SpendableLot,
} from '../../src/domain/lots/fefo.ts';
import { wholePoints } from '../../src/domain/points.ts';

const T = (iso: string): number => Date.parse(iso);
const lot = (id: string, pts: number, expires: string | null, awarded: string): SpendableLot => ({
  id,
  program_id: 'p',
  issuing_brand_id: 'b',
  spendable_pt4: wholePoints(pts),
  expires_at_ms: expires === null ? null : T(expires),
  awarded_at_ms: T(awarded),
});

void describe('FEFO order', () => {
  void it('orders by expiry, then award, then numeric id; never-expiring last', () => {
    const lots = [
      lot('1', 10, null, '2026-01-01T00:00:00Z'),
      lot('10', 10, '2026-06-01T00:00:00Z', '2026-01-02T00:00:00Z'),
      lot('9', 10, '2026-06-01T00:00:00Z', '2026-01-02T00:00:00Z'), // tie on both: 9 < 10 numerically
      lot('2', 10, '2026-06-01T00:00:00Z', '2026-01-01T00:00:00Z'), // same expiry, awarded earlier
      lot('3', 10, '2026-03-01T00:00:00Z', '2026-02-01T00:00:00Z'),
      lot('4', 10, null, '2025-12-01T00:00:00Z'),
    ];
    assert.deepEqual(
      orderLotsForSpend(lots).map((l) => l.id),
      ['3', '2', '9', '10', '4', '1'],
    );
    assert.equal(lots[0]?.id, '1', 'input not reordered');
  });

  void it('compares numeric ids as integers and keeps a total order with text ids', () => {
    assert.ok(compareLotIds('9', '10') < 0);
    assert.ok(compareLotIds('123456789012345678901', '99') > 0);
    assert.ok(compareLotIds('10', 'a') < 0);
    assert.ok(compareLotIds('lot_b', 'lot_a') > 0);
    assert.equal(compareLotIds('7', '7'), 0);
  });

  void it('takes whole lots, then part of the last', () => {
    const lots = [
      lot('1', 100, '2026-09-01T00:00:00Z', '2026-01-01T00:00:00Z'),
      lot('2', 50, '2026-05-01T00:00:00Z', '2026-01-01T00:00:00Z'),
      lot('3', 0, '2026-04-01T00:00:00Z', '2026-01-01T00:00:00Z'),
    ];
    assert.deepEqual(allocateFefo(lots, wholePoints(80)), {
      allocations: [
        { lot_id: '2', points_pt4: wholePoints(50) },
        { lot_id: '1', points_pt4: wholePoints(30) },
      ],
      shortfall_pt4: 0n,
    });
    assert.deepEqual(allocateFefo(lots, 0n), { allocations: [], shortfall_pt4: 0n });
    assert.equal(allocateFefo(lots, wholePoints(151)).shortfall_pt4, wholePoints(1));
  });
});

const lotArb = fc.record({
  id: fc.bigInt({ min: 1n, max: 10_000n }).map(String),
  program_id: fc.constant('p'),
  issuing_brand_id: fc.constantFrom('a', 'b'),
  spendable_pt4: fc.bigInt({ min: 0n, max: 5_000_000n }),
  expires_at_ms: fc.option(fc.integer({ min: 0, max: 20 }), { nil: null }),
  awarded_at_ms: fc.integer({ min: 0, max: 20 }),
});

void describe('FEFO properties', () => {
  void it('never over-allocates a lot; sums to min(amount, total); only the last is partial', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(lotArb, { selector: (l) => l.id, maxLength: 12 }),
        fc.bigInt({ min: 0n, max: 40_000_000n }),
        (lots, amount) => {
          const { allocations, shortfall_pt4 } = allocateFefo(lots, amount);
          const byId = new Map(lots.map((l) => [l.id, l]));
          const total = lots.reduce((s, l) => s + l.spendable_pt4, 0n);
          const sum = allocations.reduce((s, a) => s + a.points_pt4, 0n);
          assert.equal(sum, amount < total ? amount : total);
          assert.equal(shortfall_pt4, amount - sum);
          allocations.forEach((a, i) => {
            const l = byId.get(a.lot_id);
            assert.ok(l && a.points_pt4 > 0n && a.points_pt4 <= l.spendable_pt4);
            if (i < allocations.length - 1) assert.equal(a.points_pt4, l.spendable_pt4);
          });
          const order = orderLotsForSpend(lots.filter((l) => l.spendable_pt4 > 0n)).map((l) => l.id);
          assert.deepEqual(
            allocations.map((a) => a.lot_id),
            order.slice(0, allocations.length),
          );
        },
      ),
    );
  });
});
