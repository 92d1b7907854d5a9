// The pure figures of a settlement statement (src/services/settlement/statement.ts and csv.ts):
// period re-rounding with a residual line, variances and their flag, the statement hash, CSV.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { add, ratio, roundRatio, ZERO } from '../../src/domain/decimal.ts';
import { ratioFromJson, ratioToJson } from '../../src/domain/earn/codec.ts';
import { settlementAmounts } from '../../src/domain/settlement/settle.ts';
import { minorToMajor, statementCsv } from '../../src/services/settlement/csv.ts';
import type { Statement } from '../../src/services/settlement/periods.ts';
import {
  isFlagged,
  pairTotals,
  StatementHasher,
  toStoredLines,
  variances,
  type FlowRow,
} from '../../src/services/settlement/statement.ts';

const flow = (
  id: number,
  issuer: string,
  redeemer: string,
  exact: string,
  amount: bigint,
  points = 10_000n,
): FlowRow => ({
  id: BigInt(id),
  entry_id: BigInt(id),
  redemption_id: `r${id}`,
  issuer_brand_id: issuer,
  redeemer_brand_id: redeemer,
  program_id: 'p',
  points_pt4: points,
  value_common: exact,
  amount_minor: amount,
  at: new Date('2026-05-01T00:00:00Z'),
});

void describe('pairTotals', () => {
  void it('re-rounds each pair once and shows the residual against the allocations', () => {
    // Two redemptions (two entries), each exact 11.43 → 11: allocations 22; period exact 22.86 → 23.
    const pairs = pairTotals([
      flow(1, 'summit', 'harbor', '1143/100', 11n),
      flow(2, 'summit', 'harbor', '1143/100', 11n),
      flow(3, 'harbor', 'summit', '9/10', 1n),
    ]);
    assert.deepEqual(
      pairs.map((p) => [
        p.issuer_brand_id,
        p.redeemer_brand_id,
        p.allocation_count,
        p.allocations_amount_minor,
        ratioToJson(p.exact_minor),
        p.amount_minor,
        p.residual_minor,
      ]),
      [
        ['harbor', 'summit', 1, 1n, '9/10', 1n, 0n],
        ['summit', 'harbor', 2, 22n, '1143/50', 23n, 1n],
      ],
    );
    assert.deepEqual(toStoredLines(pairs).net, [
      { brand_id: 'harbor', amount_minor: '22' },
      { brand_id: 'summit', amount_minor: '-22' },
    ]);
  });

  void it('property: pair total = round(Σ exact), allocations + residual = total, nets sum to zero', () => {
    const brand = fc.constantFrom('a', 'b', 'c');
    const entry = fc.array(
      fc.record({
        issuer: brand,
        redeemer: brand,
        n: fc.bigInt({ min: -100_000n, max: 100_000n }),
        d: fc.constantFrom(1n, 3n, 8n, 100n, 10_000n),
      }),
      { minLength: 1, maxLength: 5 },
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 12 }), (entries) => {
        // Each entry rounds with settle.ts's carried rule, as recordSettlement does.
        const rows: FlowRow[] = [];
        for (const e of entries) {
          const amounts = settlementAmounts(
            e.map((a) => ({
              issuer_brand_id: a.issuer,
              redeemer_brand_id: a.redeemer,
              value: ratio(a.n < 0n ? -a.n : a.n, a.d),
              reimbursement_rate: ratio(1n),
              sign: a.n < 0n ? (-1 as const) : (1 as const),
            })),
            0,
          );
          for (const f of amounts)
            rows.push(
              flow(
                rows.length + 1,
                f.issuer_brand_id,
                f.redeemer_brand_id,
                ratioToJson(f.exact_minor),
                f.amount_minor,
              ),
            );
        }
        const pairs = pairTotals(rows);
        for (const p of pairs) {
          const exact = rows
            .filter(
              (r) => r.issuer_brand_id === p.issuer_brand_id && r.redeemer_brand_id === p.redeemer_brand_id,
            )
            .reduce((s, r) => add(s, ratioFromJson(r.value_common)), ZERO);
          assert.equal(p.amount_minor, roundRatio(exact, 'half_even'));
          assert.equal(p.allocations_amount_minor + p.residual_minor, p.amount_minor);
        }
        assert.equal(
          toStoredLines(pairs).net.reduce((s, n) => s + BigInt(n.amount_minor), 0n),
          0n,
        );
      }),
      { numRuns: 300 },
    );
  });
});

void describe('variances', () => {
  void it('paid − owed per pair, flagged over half a minor unit', () => {
    const pairs = pairTotals([flow(1, 'a', 'b', '500', 500n), flow(2, 'b', 'c', '7', 7n)]);
    assert.deepEqual(
      variances(pairs, [
        { issuer_brand_id: 'a', redeemer_brand_id: 'b', amount_minor: 499n },
        { issuer_brand_id: 'b', redeemer_brand_id: 'c', amount_minor: 7n },
        { issuer_brand_id: 'c', redeemer_brand_id: 'a', amount_minor: 3n },
      ]),
      [
        {
          issuer_brand_id: 'a',
          redeemer_brand_id: 'b',
          owed_minor: 500n,
          paid_minor: 499n,
          variance_minor: -1n,
          flagged: true,
        },
        {
          issuer_brand_id: 'b',
          redeemer_brand_id: 'c',
          owed_minor: 7n,
          paid_minor: 7n,
          variance_minor: 0n,
          flagged: false,
        },
        {
          issuer_brand_id: 'c',
          redeemer_brand_id: 'a',
          owed_minor: 0n,
          paid_minor: 3n,
          variance_minor: 3n,
          flagged: true,
        },
      ],
    );
    assert.deepEqual([-2n, -1n, 0n, 1n].map(isFlagged), [true, true, false, true]);
  });
});

void describe('StatementHasher', () => {
  const header = { id: 1n, from: null, to: new Date('2026-06-01T00:00:00Z'), currency: 'USD' };
  const hash = (rows: FlowRow[]) => {
    const h = new StatementHasher(header);
    for (const r of rows) h.flow(r);
    return h.finish(toStoredLines(pairTotals(rows)));
  };

  void it('is deterministic and changes with any stored field', () => {
    const rows = [flow(1, 'a', 'b', '1143/100', 11n), flow(2, 'a', 'b', '9/10', 1n)];
    assert.equal(hash(rows), hash(rows));
    assert.match(hash(rows), /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(hash([rows[0]!, { ...rows[1]!, amount_minor: 2n }]), hash(rows));
    assert.notEqual(hash([rows[0]!, { ...rows[1]!, at: new Date('2026-05-02T00:00:00Z') }]), hash(rows));
  });

  void it('takes flows in increasing id order only', () => {
    const h = new StatementHasher(header);
    h.flow(flow(2, 'a', 'b', '1', 1n));
    assert.throws(() => h.flow(flow(1, 'a', 'b', '1', 1n)), /increasing id order/);
  });
});

void describe('CSV', () => {
  void it('formats minor units as fixed-point major units', () => {
    assert.deepEqual(
      [
        minorToMajor(-1205n, 2),
        minorToMajor(1200n, 2),
        minorToMajor(5n, 2),
        minorToMajor(-5n, 3),
        minorToMajor(42n, 0),
      ],
      ['-12.05', '12.00', '0.05', '-0.005', '42'],
    );
  });

  void it('quotes fields and defuses spreadsheet formulas in text fields', () => {
    const st: Statement = {
      id: 4,
      from: '2026-05-01T00:00:00.000Z',
      to: '2026-06-01T00:00:00.000Z',
      closed_at: '2026-06-01T00:00:00.000Z',
      currency: 'JPY',
      flow_count: 1,
      hash: 'sha256:x',
      late_flow_count: 0,
      flows: [
        {
          issuer_brand_id: '=evil',
          redeemer_brand_id: 'a,b',
          points: 1.5,
          allocation_count: 1,
          allocations_amount_minor: -3,
          residual_minor: 0,
          amount_minor: -3,
          exact_minor: '-3',
        },
      ],
      net: [
        { brand_id: '=evil', amount_minor: 3 },
        { brand_id: 'a,b', amount_minor: -3 },
      ],
      payments: [],
      variances: [],
    };
    assert.deepEqual(statementCsv(st).split('\r\n').slice(1), [
      `flow,4,2026-05-01T00:00:00.000Z,2026-06-01T00:00:00.000Z,JPY,'=evil,"a,b",,1.5,-3,0,-3,-3`,
      `net,4,2026-05-01T00:00:00.000Z,2026-06-01T00:00:00.000Z,JPY,,,'=evil,,,,3,3`,
      `net,4,2026-05-01T00:00:00.000Z,2026-06-01T00:00:00.000Z,JPY,,,"a,b",,,,-3,-3`,
      '',
    ]);
  });
});
