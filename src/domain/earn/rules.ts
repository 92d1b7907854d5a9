import { toCelValue } from '../config/compile.ts';
import type { CompiledProgram, CompiledRule, RuleContext } from '../config/group.ts';
import { add, cmp, max, ONE, sub, ZERO, type Ratio } from '../decimal.ts';
import type { EarnInput, EarnLineItem } from './types.ts';

// Which rules hold for an event and how their multipliers combine.

/** Rules in force at the instant: valid_from inclusive, valid_to exclusive. */
export const activeRules = (program: CompiledProgram, at_ms: number): CompiledRule[] =>
  program.rules.filter(
    (r) =>
      (r.valid_from_ms === null || r.valid_from_ms <= at_ms) &&
      (r.valid_to_ms === null || at_ms < r.valid_to_ms),
  );

/** The CEL context shared by every rule of one event; line rules add `item`. Built once per event. */
export function eventContext(input: EarnInput): RuleContext {
  const e = input.event;
  const typed = {
    event_id: e.event_id,
    channel: e.channel,
    store_id: e.store_id,
    transaction_ts: e.transaction_ts,
    currency: e.currency,
    subtotal_cents: e.subtotal_cents,
    eligible_subtotal_cents: e.eligible_subtotal_cents,
  };
  return {
    event: toCelValue({ ...e.raw, ...typed }) as Record<string, unknown>,
    member: { id: input.member.id, tier: input.member.tier },
    store: { id: input.store.id, brand: input.store.brand, channel: input.store.channel },
  };
}

export const lineContext = (base: RuleContext, item: EarnLineItem): RuleContext => ({
  ...base,
  item: toCelValue({ ...item }) as Record<string, unknown>,
});

/**
 * Combines matching multipliers: `highest` takes the largest, `additive` adds their uplifts
 * (1 + Σ(m − 1)). The result is clamped to [0, max_multiplier]: additive sub-1 multipliers could
 * otherwise go negative, and points are never negative. No matching multiplier means 1.
 */
export function combineMultipliers(
  multipliers: readonly Ratio[],
  stacking: CompiledProgram['stacking'],
  cap: Ratio | null,
): Ratio {
  if (multipliers.length === 0) return ONE;
  const combined =
    stacking === 'highest'
      ? multipliers.reduce(max)
      : multipliers.reduce((acc, m) => add(acc, sub(m, ONE)), ONE);
  const floored = max(combined, ZERO);
  return cap && cmp(floored, cap) > 0 ? cap : floored;
}
