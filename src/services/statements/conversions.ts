import { currencyExponent } from '../../domain/config/fx.ts';
import { ratioFromJson } from '../../domain/earn/codec.ts';
import { div, mul, ZERO, add, type Ratio } from '../../domain/decimal.ts';
import { conversionLine, valueMinor } from '../../domain/lots/conversion.ts';
import { pt4ToJson, pt4ToRatio, type Pt4 } from '../../domain/points.ts';
import type { Allocation } from '../../ledger/lot-moves.ts';

// What a redemption took from each program and issuing brand, and the conversion it applied,
// read back from its lot allocations. Each spent allocation stores its exact common-currency
// value (value_common, "num/den" in major units), so the unit value the member was given is
// value ÷ points of that allocation: the rate at the time of the redemption, not today's.

/** A lot_allocations row, as the ledger writes it. */
export type AllocationRow = Allocation;

export interface Conversion {
  readonly program_id: string;
  readonly issuing_brand_id: string;
  /** Net points spent (spend + capture − restore). */
  readonly points_pt4: Pt4;
  /** Exact value in the common currency (major units). */
  readonly value: Ratio;
  /** Common-currency value of one point; null when no allocation carried a value. */
  readonly unit_value: Ratio | null;
  readonly cross_brand: boolean;
  /** "1 harbor-rewards point = 0.0054 USD" */
  readonly conversion: string | null;
}

/** Points spent: taken by spend or capture, given back by a reversal's restore. */
export const SPENT: Readonly<Record<string, bigint>> = { spend: 1n, capture: 1n, restore: -1n };
/** Points still held by an open hold. */
export const HELD: Readonly<Record<string, bigint>> = { hold: 1n, release: -1n, capture: -1n };

/** Groups the allocations of one redemption by (program, issuing brand), signed by `signs`. */
export function conversionsOf(
  rows: readonly AllocationRow[],
  redeemer_brand_id: string | null,
  common_currency: string,
  signs: Readonly<Record<string, bigint>> = SPENT,
  /** Rows to take unit values from when `rows` carry none (a reversal's restores): the redemption's other entries. */
  unitSource: readonly AllocationRow[] = [],
): Conversion[] {
  const groups = new Map<
    string,
    { program_id: string; issuing_brand_id: string; points_pt4: bigint; unit: Ratio | null }
  >();
  const units = unitValues([...rows, ...unitSource]);
  for (const r of rows) {
    const sign = signs[r.kind];
    if (sign === undefined) continue;
    const key = `${r.program_id}\u0000${r.issuing_brand_id}`;
    const g = groups.get(key) ?? {
      program_id: r.program_id,
      issuing_brand_id: r.issuing_brand_id,
      points_pt4: 0n,
      unit: null,
    };
    g.points_pt4 += sign * r.points_pt4;
    g.unit ??= units.get(key) ?? null;
    groups.set(key, g);
  }
  return [...groups.values()]
    .filter((g) => g.points_pt4 !== 0n)
    .sort(
      (a, b) =>
        a.program_id.localeCompare(b.program_id) || a.issuing_brand_id.localeCompare(b.issuing_brand_id),
    )
    .map((g) => ({
      program_id: g.program_id,
      issuing_brand_id: g.issuing_brand_id,
      points_pt4: g.points_pt4,
      value: g.unit ? mul(pt4ToRatio(g.points_pt4), g.unit) : ZERO,
      unit_value: g.unit,
      cross_brand: redeemer_brand_id !== null && g.issuing_brand_id !== redeemer_brand_id,
      conversion: g.unit ? conversionLine(g.program_id, g.unit, common_currency) : null,
    }));
}

/** Per (program, issuing brand): value ÷ points of the first allocation that carries a value. */
function unitValues(rows: readonly AllocationRow[]): Map<string, Ratio> {
  const out = new Map<string, Ratio>();
  for (const r of rows) {
    const key = `${r.program_id}\u0000${r.issuing_brand_id}`;
    if (!out.has(key) && r.value_common !== null && r.points_pt4 > 0n)
      out.set(key, div(ratioFromJson(r.value_common), pt4ToRatio(r.points_pt4)));
  }
  return out;
}

export const totalValue = (cs: readonly Conversion[]): Ratio =>
  cs.reduce((acc, c) => add(acc, c.value), ZERO);

export const moneyOf = (value: Ratio, currency: string): { amount_minor: bigint; currency: string } => ({
  amount_minor: valueMinor(value, currencyExponent(currency)),
  currency,
});

export function conversionJson(c: Conversion, common_currency: string) {
  const m = moneyOf(c.value, common_currency);
  return {
    program_id: c.program_id,
    issuing_brand_id: c.issuing_brand_id,
    points: pt4ToJson(c.points_pt4),
    value: { amount_minor: Number(m.amount_minor), currency: m.currency },
    conversion: c.conversion,
    cross_brand: c.cross_brand,
  };
}
