import type { Pt4 } from '../points.ts';

// FEFO ("first expiring, first out"): spending consumes the lot that dies soonest, so the member
// loses as little as possible to expiry. Ties fall back to the oldest award, then to the lot id,
// so the same lots always produce the same allocation (a reversal must restore exactly these).

export interface SpendableLot {
  readonly id: string;
  readonly program_id: string;
  readonly issuing_brand_id: string;
  readonly spendable_pt4: Pt4;
  /** null = never expires: such lots are spent last. */
  readonly expires_at_ms: number | null;
  readonly awarded_at_ms: number;
}

export interface LotAllocation {
  readonly lot_id: string;
  readonly points_pt4: Pt4;
}

export interface FefoResult {
  readonly allocations: readonly LotAllocation[];
  readonly shortfall_pt4: Pt4;
}

const NUMERIC_ID = /^\d+$/;

/**
 * Ids are bigint-like strings from the database; compared as text "10" would sort before "9".
 * Numeric ids come before non-numeric ones so the order stays total when both kinds are mixed.
 */
export function compareLotIds(a: string, b: string): number {
  const an = NUMERIC_ID.test(a);
  const bn = NUMERIC_ID.test(b);
  if (an && bn) {
    const x = BigInt(a);
    const y = BigInt(b);
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (an !== bn) return an ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

export function compareLotsForSpend(a: SpendableLot, b: SpendableLot): number {
  if (a.expires_at_ms !== b.expires_at_ms) {
    if (a.expires_at_ms === null) return 1;
    if (b.expires_at_ms === null) return -1;
    return a.expires_at_ms - b.expires_at_ms;
  }
  if (a.awarded_at_ms !== b.awarded_at_ms) return a.awarded_at_ms - b.awarded_at_ms;
  return compareLotIds(a.id, b.id);
}

/** A new array in spend order; the input is left untouched. */
export function orderLotsForSpend<T extends SpendableLot>(lots: readonly T[]): T[] {
  return [...lots].sort(compareLotsForSpend);
}

/**
 * Takes whole lots in FEFO order until the last, which is taken in part. Lots with nothing
 * spendable are skipped. On a shortfall the allocations still cover everything available: the
 * caller decides whether a partial spend is acceptable (a redemption rejects it).
 */
export function allocateFefo(lots: readonly SpendableLot[], amount_pt4: Pt4): FefoResult {
  if (amount_pt4 < 0n) throw new RangeError('allocateFefo: negative amount');
  const allocations: LotAllocation[] = [];
  let remaining = amount_pt4;
  for (const lot of orderLotsForSpend(lots)) {
    if (remaining === 0n) break;
    if (lot.spendable_pt4 <= 0n) continue;
    const take = lot.spendable_pt4 < remaining ? lot.spendable_pt4 : remaining;
    allocations.push({ lot_id: lot.id, points_pt4: take });
    remaining -= take;
  }
  return { allocations, shortfall_pt4: remaining };
}
