import type { Ratio } from '../decimal.ts';
import type { Pt4 } from '../points.ts';
import { quantityToJson, ratioFromJson, ratioToJson } from './codec.ts';
import type { EarnExplanation, EarnInput, EarnResult, ExplainedLine } from './types.ts';

// Builds the JSON explanation stored on the ledger entry. It holds every figure a refund needs
// (quantities, line weights, per-line and bonus points), so a reversal never re-runs rules.

interface LineFacts {
  readonly index: number;
  readonly quantity: Ratio;
  readonly weight: Ratio;
}

export function explain(
  input: EarnInput,
  result: Omit<EarnResult, 'explanation'>,
  eligibleMinor: Ratio,
  base_pt4: Pt4,
  facts: readonly LineFacts[],
): EarnExplanation {
  const { program, event } = input;
  const lines: ExplainedLine[] = result.lines.map((l) => {
    const f = l.line_index === null ? undefined : facts[l.line_index];
    return {
      line_index: l.line_index,
      sku: l.sku,
      quantity: f ? quantityToJson(f.quantity) : '1',
      weight_minor: f ? ratioToJson(f.weight) : '0',
      eligible: l.eligible,
      amount_minor: ratioToJson(l.amount_minor),
      base_pt4: `${l.base_pt4}`,
      multiplier: l.multiplier,
      rules_applied: [...l.rules_applied],
      points_pt4: `${l.points_pt4}`,
    };
  });
  return {
    version: 1,
    program_id: program.id,
    rounding: program.rounding,
    stacking: program.stacking,
    event_currency: event.currency,
    program_currency: program.currency,
    fx_to_program: ratioToJson(input.fx_to_program),
    eligible_amount_minor: ratioToJson(eligibleMinor),
    base_pt4: `${base_pt4}`,
    points_pt4: `${result.points_pt4}`,
    capped: result.capped,
    rules_applied: [...result.rules_applied],
    lines,
    bonuses: result.bonuses.map((b) => ({
      rule_id: b.rule_id,
      line_index: b.line_index,
      points_pt4: `${b.points_pt4}`,
    })),
  };
}

/** The JSON to store on the ledger entry (bigints and ratios are already strings in it). */
export const serializeEarn = (result: EarnResult): EarnExplanation => result.explanation;

/** Rebuilds the typed result from a stored explanation, e.g. to show an old accrual's lines. */
export function deserializeEarn(x: EarnExplanation): EarnResult {
  return {
    points_pt4: BigInt(x.points_pt4),
    lines: x.lines.map((l) => ({
      line_index: l.line_index,
      sku: l.sku,
      eligible: l.eligible,
      amount_minor: ratioFromJson(l.amount_minor),
      base_pt4: BigInt(l.base_pt4),
      multiplier: l.multiplier,
      rules_applied: l.rules_applied,
      points_pt4: BigInt(l.points_pt4),
    })),
    bonuses: x.bonuses.map((b) => ({
      rule_id: b.rule_id,
      line_index: b.line_index,
      points_pt4: BigInt(b.points_pt4),
    })),
    rules_applied: x.rules_applied,
    capped: x.capped,
    explanation: x,
  };
}
