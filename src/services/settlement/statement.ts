import { createHash } from 'node:crypto';
import { add, roundRatio, ZERO, type Ratio } from '../../domain/decimal.ts';
import { ratioFromJson, ratioToJson } from '../../domain/earn/codec.ts';
import { netPositions, type NetPosition } from '../../domain/settlement/settle.ts';
import type { Pt4 } from '../../domain/points.ts';

// Pure figures of a settlement statement (no I/O): pair totals, nets, variances, the canonical
// text a closed statement's hash is taken over.
//
// Rounding at the period level (the choice): each flow row already holds its exact amount
// (`value_common`, minor units as "num/den") and an `amount_minor` rounded half-to-even with the
// residual carried per pair *within its ledger entry* (settle.ts). Summing those rounded amounts
// over a period can drift from the exact period total by up to half a minor unit per entry. So a
// statement re-rounds once per pair and period: the pair's `amount_minor` is
// round_half_even(Σ exact of the pair's flows in the period), and the statement shows the
// allocations' own sum (`allocations_amount_minor`) and the difference as `residual_minor`, so
// that allocations_amount_minor + residual_minor = amount_minor holds exactly on every line.
// Residuals are not carried from one period into the next: each statement must stand alone as
// an accounting document (it is paid as such), and a carried residual would make a closed
// period's figures depend on the periods before it. The positions endpoint uses the same rule
// over its [from, to) range, so a period's statement and the positions over the same flows agree.

export interface FlowRow {
  readonly id: bigint;
  readonly entry_id: bigint;
  readonly redemption_id: string;
  readonly issuer_brand_id: string;
  readonly redeemer_brand_id: string;
  readonly program_id: string;
  readonly points_pt4: Pt4;
  /** Exact signed amount in minor units of the common currency, "num/den". */
  readonly value_common: string;
  readonly amount_minor: bigint;
  readonly at: Date;
}

export interface PairTotal {
  readonly issuer_brand_id: string;
  readonly redeemer_brand_id: string;
  /** Sum of the points spent, in each lot's own program units (as the contract's `points`). */
  readonly points_pt4: Pt4;
  readonly allocation_count: number;
  /** Σ of the flows' own rounded amounts. */
  readonly allocations_amount_minor: bigint;
  /** Σ of the flows' exact amounts, minor units. */
  readonly exact_minor: Ratio;
  /** round_half_even(exact_minor): what the issuer owes the redeemer for the period. */
  readonly amount_minor: bigint;
  /** amount_minor − allocations_amount_minor. */
  readonly residual_minor: bigint;
}

export interface PaymentRow {
  readonly issuer_brand_id: string;
  readonly redeemer_brand_id: string;
  readonly amount_minor: bigint;
}

export interface Variance {
  readonly issuer_brand_id: string;
  readonly redeemer_brand_id: string;
  readonly owed_minor: bigint;
  readonly paid_minor: bigint;
  /** paid − owed: positive means overpaid. */
  readonly variance_minor: bigint;
  readonly flagged: boolean;
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const pairKey = (issuer: string, redeemer: string): string => JSON.stringify([issuer, redeemer]);
const byPair = (
  a: { issuer_brand_id: string; redeemer_brand_id: string },
  b: { issuer_brand_id: string; redeemer_brand_id: string },
) => byText(a.issuer_brand_id, b.issuer_brand_id) || byText(a.redeemer_brand_id, b.redeemer_brand_id);

type FlowFigures = Pick<
  FlowRow,
  'issuer_brand_id' | 'redeemer_brand_id' | 'points_pt4' | 'value_common' | 'amount_minor'
>;

/** Folds flows into pair totals one at a time, so a long range is read page by page. */
export class PairAccumulator {
  readonly #acc = new Map<
    string,
    {
      issuer_brand_id: string;
      redeemer_brand_id: string;
      points_pt4: Pt4;
      n: number;
      rounded: bigint;
      exact: Ratio;
    }
  >();

  add(f: FlowFigures): void {
    if (f.issuer_brand_id === f.redeemer_brand_id) return; // a brand never owes itself
    const key = pairKey(f.issuer_brand_id, f.redeemer_brand_id);
    const t = this.#acc.get(key) ?? {
      issuer_brand_id: f.issuer_brand_id,
      redeemer_brand_id: f.redeemer_brand_id,
      points_pt4: 0n,
      n: 0,
      rounded: 0n,
      exact: ZERO,
    };
    t.points_pt4 += f.points_pt4;
    t.n += 1;
    t.rounded += f.amount_minor;
    t.exact = add(t.exact, ratioFromJson(f.value_common));
    this.#acc.set(key, t);
  }

  /** Re-rounded once per pair; sorted by issuer then redeemer. */
  totals(): PairTotal[] {
    return [...this.#acc.values()]
      .map((t) => {
        const amount_minor = roundRatio(t.exact, 'half_even');
        return {
          issuer_brand_id: t.issuer_brand_id,
          redeemer_brand_id: t.redeemer_brand_id,
          points_pt4: t.points_pt4,
          allocation_count: t.n,
          allocations_amount_minor: t.rounded,
          exact_minor: t.exact,
          amount_minor,
          residual_minor: amount_minor - t.rounded,
        };
      })
      .sort(byPair);
  }
}

/** Per (issuer, redeemer) totals of a list of flows (see PairAccumulator). */
export function pairTotals(flows: readonly FlowFigures[]): PairTotal[] {
  const acc = new PairAccumulator();
  for (const f of flows) acc.add(f);
  return acc.totals();
}

/** Multilateral net per brand from the re-rounded pair totals: sums to zero by construction. */
export const netOf = (pairs: readonly PairTotal[]): NetPosition[] => netPositions(pairs);

/**
 * A variance is flagged when it is over half a minor unit: |variance_minor| × 2 > 1. Amounts are
 * whole minor units, so in a 2-decimal currency this flags any variance of a cent or more (the
 * issue's "over 0.5 cents"), and it reads the same in any currency exponent.
 */
export const isFlagged = (variance_minor: bigint): boolean =>
  (variance_minor < 0n ? -variance_minor : variance_minor) * 2n > 1n;

/** paid − owed per pair: every pair owed something or paid something; sorted by pair. */
export function variances(pairs: readonly PairTotal[], payments: readonly PaymentRow[]): Variance[] {
  const out = new Map<
    string,
    { issuer_brand_id: string; redeemer_brand_id: string; owed_minor: bigint; paid_minor: bigint }
  >();
  const at = (issuer: string, redeemer: string) => {
    const key = pairKey(issuer, redeemer);
    const v = out.get(key) ?? {
      issuer_brand_id: issuer,
      redeemer_brand_id: redeemer,
      owed_minor: 0n,
      paid_minor: 0n,
    };
    out.set(key, v);
    return v;
  };
  for (const p of pairs) at(p.issuer_brand_id, p.redeemer_brand_id).owed_minor += p.amount_minor;
  for (const p of payments) at(p.issuer_brand_id, p.redeemer_brand_id).paid_minor += p.amount_minor;
  return [...out.values()]
    .map((v) => ({
      ...v,
      variance_minor: v.paid_minor - v.owed_minor,
      flagged: isFlagged(v.paid_minor - v.owed_minor),
    }))
    .sort(byPair);
}

// ---------------------------------------------------------------------------------------------
// Frozen lines and the hash

export interface StoredLines {
  readonly pairs: {
    issuer_brand_id: string;
    redeemer_brand_id: string;
    points_pt4: string;
    allocation_count: number;
    allocations_amount_minor: string;
    exact_minor: string;
    amount_minor: string;
    residual_minor: string;
  }[];
  readonly net: { brand_id: string; amount_minor: string }[];
}

/** The statement's figures as stored at close (bigints as strings: JSON has no bigint). */
export function toStoredLines(pairs: readonly PairTotal[]): StoredLines {
  return {
    pairs: pairs.map((p) => ({
      issuer_brand_id: p.issuer_brand_id,
      redeemer_brand_id: p.redeemer_brand_id,
      points_pt4: p.points_pt4.toString(),
      allocation_count: p.allocation_count,
      allocations_amount_minor: p.allocations_amount_minor.toString(),
      exact_minor: ratioToJson(p.exact_minor),
      amount_minor: p.amount_minor.toString(),
      residual_minor: p.residual_minor.toString(),
    })),
    net: netOf(pairs).map((n) => ({ brand_id: n.brand_id, amount_minor: n.amount_minor.toString() })),
  };
}

export interface PeriodHeader {
  readonly id: bigint;
  readonly from: Date | null;
  readonly to: Date;
  readonly currency: string;
}

const flowRecord = (f: FlowRow): string =>
  [
    'flow',
    f.id,
    f.entry_id,
    f.redemption_id,
    f.issuer_brand_id,
    f.redeemer_brand_id,
    f.program_id,
    f.points_pt4,
    f.value_common,
    f.amount_minor,
    f.at.toISOString(),
  ].join('|');

/**
 * The hash of a statement over its canonical text: a header, every flow in id order with every
 * stored field, then the frozen lines; one record per line, fields separated by '|' (ids never
 * contain '|' or a newline: the config schema restricts them). Versioned so the format can
 * evolve. Flows are fed in id order as they are read, page by page.
 */
export class StatementHasher {
  readonly #hash = createHash('sha256');
  #last: bigint | null = null;

  constructor(h: PeriodHeader) {
    this.#line(
      `pointpool-statement-v1|${h.id}|${h.from?.toISOString() ?? ''}|${h.to.toISOString()}|${h.currency}`,
    );
  }

  flow(f: FlowRow): void {
    if (this.#last !== null && f.id <= this.#last)
      throw new Error('StatementHasher: flows must come in increasing id order');
    this.#last = f.id;
    this.#line(flowRecord(f));
  }

  finish(lines: StoredLines): string {
    for (const p of lines.pairs) {
      this.#line(
        [
          'pair',
          p.issuer_brand_id,
          p.redeemer_brand_id,
          p.points_pt4,
          p.allocation_count,
          p.allocations_amount_minor,
          p.exact_minor,
          p.amount_minor,
          p.residual_minor,
        ].join('|'),
      );
    }
    for (const n of lines.net) this.#line(['net', n.brand_id, n.amount_minor].join('|'));
    return `sha256:${this.#hash.digest('hex')}`;
  }

  #line(text: string): void {
    this.#hash.update(text + '\n');
  }
}
