import { add, cmp, div, fromInt, min, mul, roundRatio, sub, ZERO, type Ratio } from '../decimal.ts';
import type { Pt4 } from '../points.ts';
import { quantityRatio, quantityToNumber, ratioFromJson } from './codec.ts';
import { distribute, unitPt4 } from './rounding.ts';
import type { EarnExplanation, EarnResult } from './types.ts';

// Takes back what returned lines earned, from the purchase's stored explanation alone.
// Everything is computed cumulatively: "what the lines returned so far earned" minus "what the
// earlier refunds took back", each floored to the program's unit. That function only grows with
// the returned quantities and equals the purchase's total when everything is back, so partial
// refunds in any order never take back more than the purchase earned and a full set of them
// takes back exactly that.

/** Original line_index → quantity returned by earlier refunds (cumulative). */
export type ReturnedQuantities = Readonly<Record<number, number>>;

export interface ReturnLine {
  readonly sku: string;
  readonly quantity: number;
  /** The returned unit's price, when the refund says it: it picks among lines of the same sku. */
  readonly unit_price_cents?: bigint;
}

export interface RefundLine {
  readonly return_index: number; // index into returning_now
  readonly line_index: number; // original line it was matched to
  readonly sku: string;
  readonly quantity: number;
  readonly points_pt4: Pt4; // includes this line's share of event-level bonuses
}

export interface RefundResult {
  readonly points_pt4: Pt4;
  readonly lines: readonly RefundLine[];
  /** Cumulative returned quantities including this refund: store it for the next one. */
  readonly returned_after: Record<number, number>;
}

export interface RefundError {
  readonly error: 'OVER_REFUND' | 'UNKNOWN_LINE' | 'INVALID_QUANTITY';
  readonly field: string; // request path, e.g. line_items[2].quantity
  readonly message: string;
}

interface OriginalLine {
  readonly line_index: number;
  readonly sku: string;
  readonly quantity: Ratio;
  readonly unitPrice: Ratio; // minor units of the event currency
  readonly own: Ratio; // pt4 earned by the line itself plus its line bonuses
  readonly poolWeight: Ratio; // weight in the event-level proration; 0 outside the pool
}

interface Original {
  readonly total: Pt4;
  readonly unit: Pt4;
  readonly lines: readonly OriginalLine[];
  readonly eventLevel: Ratio; // pt4 of event bonuses and the synthetic line
  readonly poolTotal: Ratio;
}

const asExplanation = (o: EarnResult | EarnExplanation): EarnExplanation =>
  'explanation' in o ? o.explanation : o;

function readOriginal(source: EarnResult | EarnExplanation): Original {
  const x = asExplanation(source);
  const lineBonus = new Map<number, bigint>();
  let eventLevel = 0n;
  for (const b of x.bonuses) {
    if (b.line_index === null) eventLevel += BigInt(b.points_pt4);
    else lineBonus.set(b.line_index, (lineBonus.get(b.line_index) ?? 0n) + BigInt(b.points_pt4));
  }
  const synthetic = x.lines.some((l) => l.line_index === null);
  const lines: OriginalLine[] = [];
  for (const l of x.lines) {
    if (l.line_index === null) {
      eventLevel += BigInt(l.points_pt4);
      continue;
    }
    // With a synthetic line no line was flagged eligible, so every line's value carries it.
    const inPool = synthetic || l.eligible;
    const quantity = ratioFromJson(l.quantity);
    lines.push({
      line_index: l.line_index,
      sku: l.sku ?? '',
      quantity,
      unitPrice: cmp(quantity, ZERO) === 0 ? ZERO : div(ratioFromJson(l.weight_minor), quantity),
      own: fromInt(BigInt(l.points_pt4) + (lineBonus.get(l.line_index) ?? 0n)),
      poolWeight: inPool ? ratioFromJson(l.weight_minor) : ZERO,
    });
  }
  return {
    total: BigInt(x.points_pt4),
    unit: unitPt4(x.rounding),
    lines,
    eventLevel: fromInt(eventLevel),
    poolTotal: lines.reduce((acc, l) => add(acc, l.poolWeight), ZERO),
  };
}

/** Exact pt4 that returning `returned` of line `l` accounts for. */
function lineShare(o: Original, l: OriginalLine, returned: Ratio): Ratio {
  if (cmp(l.quantity, ZERO) === 0) return ZERO;
  const fraction = div(min(returned, l.quantity), l.quantity);
  const own = mul(l.own, fraction);
  if (cmp(o.poolTotal, ZERO) === 0) return own;
  return add(own, mul(o.eventLevel, div(mul(l.poolWeight, fraction), o.poolTotal)));
}

/** pt4 taken back once `returned` (cumulative) is back, floored to the program's unit. */
function takenBack(o: Original, returned: ReadonlyMap<number, Ratio>): Pt4 {
  const exact = o.lines.reduce(
    (acc, l) => add(acc, lineShare(o, l, returned.get(l.line_index) ?? ZERO)),
    ZERO,
  );
  const taken = (roundRatio(exact, 'floor') / o.unit) * o.unit;
  return taken > o.total ? o.total : taken; // exact ≤ total by construction; belt and braces
}

function readReturned(o: Original, before: ReturnedQuantities): Map<number, Ratio> {
  const out = new Map<number, Ratio>();
  for (const l of o.lines) {
    const q = before[l.line_index];
    if (q !== undefined && q > 0) out.set(l.line_index, min(quantityRatio(q), l.quantity));
  }
  return out;
}

interface Allocation {
  readonly return_index: number;
  readonly line: OriginalLine;
  readonly quantity: Ratio;
}

/**
 * Matches returned lines to original lines by sku, filling same-sku lines in order; lines sold at
 * the returned unit's price first, so returning the discounted one of two same-sku lines takes
 * back what the discounted one earned.
 */
function allocate(
  o: Original,
  returned: Map<number, Ratio>,
  now: readonly ReturnLine[],
): Allocation[] | RefundError {
  const out: Allocation[] = [];
  for (const [i, r] of now.entries()) {
    let want: Ratio;
    try {
      want = quantityRatio(r.quantity);
    } catch {
      want = ZERO;
    }
    if (cmp(want, ZERO) <= 0) {
      return {
        error: 'INVALID_QUANTITY',
        field: `line_items[${i}].quantity`,
        message: 'quantity must be a positive number',
      };
    }
    const sameSku = o.lines.filter((l) => l.sku === r.sku);
    const price = r.unit_price_cents === undefined ? null : fromInt(r.unit_price_cents);
    const atPrice = (l: OriginalLine) => price !== null && cmp(l.unitPrice, price) === 0;
    const candidates = [...sameSku.filter(atPrice), ...sameSku.filter((l) => !atPrice(l))];
    if (candidates.length === 0) {
      return {
        error: 'UNKNOWN_LINE',
        field: `line_items[${i}].sku`,
        message: `sku ${r.sku} is not in the original purchase`,
      };
    }
    const left = (l: OriginalLine): Ratio => sub(l.quantity, returned.get(l.line_index) ?? ZERO);
    const available = candidates.reduce((acc, l) => add(acc, left(l)), ZERO);
    if (cmp(want, available) > 0) {
      return {
        error: 'OVER_REFUND',
        field: `line_items[${i}].quantity`,
        message: `returning ${r.quantity} of sku ${r.sku} but only ${quantityToNumber(available)} remain returnable`,
      };
    }
    for (const l of candidates) {
      const take = min(want, left(l));
      if (cmp(take, ZERO) <= 0) continue;
      out.push({ return_index: i, line: l, quantity: take });
      returned.set(l.line_index, add(returned.get(l.line_index) ?? ZERO, take));
      want = sub(want, take);
      if (cmp(want, ZERO) === 0) break;
    }
  }
  return out;
}

export function calculateRefund(
  original: EarnResult | EarnExplanation,
  returned_before: ReturnedQuantities,
  returning_now: readonly ReturnLine[],
): RefundResult | RefundError {
  const o = readOriginal(original);
  const before = readReturned(o, returned_before);
  const after = new Map(before);
  const allocations = allocate(o, after, returning_now);
  if (!Array.isArray(allocations)) return allocations;
  const points_pt4 = takenBack(o, after) - takenBack(o, before);
  // Split the refund over the returned lines by what each one's returned part earned.
  const deltas = allocations.map((a) => {
    const prior = before.get(a.line.line_index) ?? ZERO;
    return sub(lineShare(o, a.line, add(prior, a.quantity)), lineShare(o, a.line, prior));
  });
  const shares = points_pt4 === 0n ? deltas.map(() => 0n) : distribute(points_pt4, deltas, o.unit);
  const lines = allocations.map((a, i) => ({
    return_index: a.return_index,
    line_index: a.line.line_index,
    sku: a.line.sku,
    quantity: quantityToNumber(a.quantity),
    points_pt4: shares[i]!,
  }));
  const returned_after: Record<number, number> = {};
  for (const [k, v] of after) returned_after[k] = quantityToNumber(v);
  return { points_pt4, lines, returned_after };
}

/** A void takes back everything the purchase earned that earlier refunds have not. */
export function calculateVoid(
  original: EarnResult | EarnExplanation,
  returned_before: ReturnedQuantities,
): { readonly points_pt4: Pt4 } {
  const o = readOriginal(original);
  return { points_pt4: o.total - takenBack(o, readReturned(o, returned_before)) };
}

export const isRefundError = (r: RefundResult | RefundError): r is RefundError => 'error' in r;
