import { add, mul, ratio, roundRatio, ZERO, type Ratio } from '../decimal.ts';
import type { Pt4 } from '../points.ts';

// Intercompany settlement: when points issued by brand A are spent at brand B, A owes B the
// points' value × A's reimbursement rate, in minor units of the common currency.
//
// Rounding scheme (cumulative rounding per pair): for each (issuer, redeemer) pair, in input
// order, keep the exact running sum S_k of the pair's amounts in minor units, and give
// allocation k the amount round(S_k) − round(S_(k−1)), rounding half-to-even. The amounts of a
// pair then telescope to round(S_n): the pair's total is exactly the rounded exact total, and no
// allocation is off from its own exact amount by more than one minor unit. The carry (S_k −
// round(S_k)) lives per pair, so pairs do not leak cents into each other, and the result depends
// only on the input order, which callers keep deterministic (allocation order of the plan).
// Half-even is symmetric (round(−x) = −round(x)), so reversing a redemption with the same
// allocations and sign −1 yields exactly the negated amounts.

export interface SettlementInput {
  readonly issuer_brand_id: string;
  readonly redeemer_brand_id: string;
  /** Common currency, major units, always >= 0: `sign` carries the direction. */
  readonly value: Ratio;
  readonly reimbursement_rate: Ratio;
  /** 1 for a redemption, −1 for its reversal. */
  readonly sign: 1 | -1;
  /** Unsigned, like value; carried through for gross flows. */
  readonly points_pt4?: Pt4;
}

export interface SettlementFlow {
  /** Index of the allocation in the input this flow comes from. */
  readonly allocation_index: number;
  readonly issuer_brand_id: string;
  readonly redeemer_brand_id: string;
  /** Signed, like amount_minor. */
  readonly points_pt4: Pt4;
  readonly amount_minor: bigint;
  /** The exact signed amount in minor units, before rounding. */
  readonly exact_minor: Ratio;
}

export interface NetPosition {
  readonly brand_id: string;
  /** Positive: the brand receives. */
  readonly amount_minor: bigint;
}

export interface GrossFlow {
  readonly issuer_brand_id: string;
  readonly redeemer_brand_id: string;
  readonly points_pt4: Pt4;
  readonly amount_minor: bigint;
}

const pairKey = (issuer: string, redeemer: string): string => JSON.stringify([issuer, redeemer]);
const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Only cross-brand allocations record a flow; a brand never owes itself. */
export function settlementAmounts(
  allocations: readonly SettlementInput[],
  currency_exponent: number,
): SettlementFlow[] {
  if (!Number.isInteger(currency_exponent) || currency_exponent < 0) {
    throw new RangeError('settlementAmounts: bad currency exponent');
  }
  const scale = ratio(10n ** BigInt(currency_exponent));
  const running = new Map<string, Ratio>();
  const flows: SettlementFlow[] = [];
  allocations.forEach((a, allocation_index) => {
    if (a.issuer_brand_id === a.redeemer_brand_id) return;
    if (a.value.num < 0n || a.reimbursement_rate.num < 0n) {
      throw new RangeError('settlementAmounts: value and rate must be >= 0 (sign carries direction)');
    }
    const key = pairKey(a.issuer_brand_id, a.redeemer_brand_id);
    const unsigned = mul(mul(a.value, a.reimbursement_rate), scale);
    const exact_minor = a.sign === 1 ? unsigned : ratio(-unsigned.num, unsigned.den);
    const before = running.get(key) ?? ZERO;
    const after = add(before, exact_minor);
    running.set(key, after);
    flows.push({
      allocation_index,
      issuer_brand_id: a.issuer_brand_id,
      redeemer_brand_id: a.redeemer_brand_id,
      points_pt4: BigInt(a.sign) * (a.points_pt4 ?? 0n),
      amount_minor: roundRatio(after, 'half_even') - roundRatio(before, 'half_even'),
      exact_minor,
    });
  });
  return flows;
}

/** The issuer pays (−), the redeemer receives (+). Sums to zero; sorted by brand id. */
export function netPositions(
  flows: readonly { issuer_brand_id: string; redeemer_brand_id: string; amount_minor: bigint }[],
): NetPosition[] {
  const net = new Map<string, bigint>();
  for (const f of flows) {
    if (f.issuer_brand_id === f.redeemer_brand_id) continue;
    net.set(f.issuer_brand_id, (net.get(f.issuer_brand_id) ?? 0n) - f.amount_minor);
    net.set(f.redeemer_brand_id, (net.get(f.redeemer_brand_id) ?? 0n) + f.amount_minor);
  }
  return [...net.entries()]
    .sort(([a], [b]) => byText(a, b))
    .map(([brand_id, amount_minor]) => ({ brand_id, amount_minor }));
}

/**
 * Per (issuer, redeemer) totals, reversals netted in; sorted by issuer then redeemer. A pair
 * whose redemptions were all reversed stays listed with zeros, so a statement shows it happened.
 */
export function grossFlows(
  flows: readonly {
    issuer_brand_id: string;
    redeemer_brand_id: string;
    amount_minor: bigint;
    points_pt4?: Pt4;
  }[],
): GrossFlow[] {
  const pairs = new Map<string, GrossFlow>();
  for (const f of flows) {
    if (f.issuer_brand_id === f.redeemer_brand_id) continue;
    const key = pairKey(f.issuer_brand_id, f.redeemer_brand_id);
    const t = pairs.get(key);
    pairs.set(key, {
      issuer_brand_id: f.issuer_brand_id,
      redeemer_brand_id: f.redeemer_brand_id,
      points_pt4: (t?.points_pt4 ?? 0n) + (f.points_pt4 ?? 0n),
      amount_minor: (t?.amount_minor ?? 0n) + f.amount_minor,
    });
  }
  return [...pairs.values()].sort(
    (a, b) =>
      byText(a.issuer_brand_id, b.issuer_brand_id) || byText(a.redeemer_brand_id, b.redeemer_brand_id),
  );
}
