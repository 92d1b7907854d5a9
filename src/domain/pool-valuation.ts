import type { FxSource } from './config/fx.ts';
import type { Group } from './config/group.ts';
import { ONE, type Ratio } from './decimal.ts';
import { unitValue } from './lots/conversion.ts';
import type { ProgramUnit } from './lots/group-plan.ts';
import { precisionOf } from './valuation.ts';

// The rates a balance view values a member's pool with. Only the programs that hold available
// points are valued (and the default program, the unit of `group.points`): a program with nothing
// to value needs no rate, so a member without EUR points never depends on the EUR rate.
//
// A rate is the one in force at the instant asked about. Before a currency's first rate there is
// none in force; the view then values with that first rate and says so (`in_force: false`) rather
// than refusing the whole balance: the points are facts of the ledger, the money value is a
// derived figure, and finance reads the flag to know it is an estimate at a later rate, not a
// rate of that day. Configuration validation guarantees every program currency has some rate.

export interface ValuationRate {
  readonly currency: string;
  /** Units of the common currency per unit of `currency`. */
  readonly rate: Ratio;
  readonly effective_from_ms: number;
  /** False when the instant is before the currency's first rate and this first rate stands in. */
  readonly in_force: boolean;
}

/** The rate for `currency` at `at_ms` under the rule above; null for the common currency itself. */
export function valuationRate(group: FxSource, currency: string, at_ms: number): ValuationRate | null {
  if (currency === group.common_currency) return null;
  const rates = group.fx.get(currency) ?? [];
  let found: (typeof rates)[number] | undefined;
  for (const r of rates) if (r.effective_from_ms <= at_ms) found = r; // ascending: the last one in force wins
  const used = found ?? rates[0];
  if (!used) throw new RangeError(`valuationRate: the configuration has no rate for ${currency}`);
  return {
    currency,
    rate: used.rate,
    effective_from_ms: used.effective_from_ms,
    in_force: found !== undefined,
  };
}

/**
 * Unit values (common currency per point) of the given programs and the default program at
 * `at_ms`, and the distinct rates they used, by currency.
 */
export function poolUnits(
  group: Group,
  program_ids: Iterable<string>,
  at_ms: number,
): { readonly units: Map<string, ProgramUnit>; readonly rates: readonly ValuationRate[] } {
  const units = new Map<string, ProgramUnit>();
  const rates = new Map<string, ValuationRate>();
  for (const id of new Set([group.default_program_id, ...program_ids])) {
    const program = group.programs.get(id);
    if (!program) continue;
    const rate = valuationRate(group, program.currency, at_ms);
    if (rate) rates.set(rate.currency, rate);
    units.set(id, {
      unit_value: unitValue(program.point_value, rate ? rate.rate : ONE),
      precision: precisionOf(program),
    });
  }
  return { units, rates: [...rates.values()].sort((a, b) => a.currency.localeCompare(b.currency)) };
}
