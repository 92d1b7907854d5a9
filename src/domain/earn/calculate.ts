import type { CompiledRule } from '../config/group.ts';
import { add, cmp, div, fromInt, max, mul, ONE, ZERO, type Ratio } from '../decimal.ts';
import { pt4ToRatio, ratioToPt4, type Pt4 } from '../points.ts';
import { decimalToJson, quantityRatio } from './codec.ts';
import { explain } from './explain.ts';
import { distribute, floorToUnit, roundPoints, unitPt4 } from './rounding.ts';
import { activeRules, combineMultipliers, eventContext, lineContext } from './rules.ts';
import type { EarnBonus, EarnInput, EarnLine, EarnLineItem, EarnResult } from './types.ts';

// The earn calculation: base points on the eligible subtotal, spread over the eligible lines by
// value; rules in force at transaction_ts add multipliers (per line) and bonuses; the exact total
// is capped, rounded once by the program's mode, and the rounded total is split back over lines
// and bonuses so the explanation always adds up.

interface PreparedLine {
  readonly index: number;
  readonly item: EarnLineItem;
  readonly quantity: Ratio;
  readonly weight: Ratio; // unit price × quantity in event minor units; 0 for discount lines
  readonly eligible: boolean;
}

function prepareLines(items: readonly EarnLineItem[]): PreparedLine[] {
  return items.map((item, index) => {
    const quantity = quantityRatio(item.quantity);
    const value = mul(fromInt(item.unit_price_cents), quantity);
    const weight = max(value, ZERO);
    return { index, item, quantity, weight, eligible: item.eligible_for_points && cmp(weight, ZERO) > 0 };
  });
}

/** One earning part of the event: an eligible line, or the synthetic whole-event line. */
interface Earning {
  readonly line: PreparedLine | null;
  readonly amount: Ratio; // program minor units
  readonly base: Ratio; // points
  readonly multiplier: Ratio;
  readonly hits: readonly CompiledRule[]; // matched rules shaping this line, priority order
  readonly exact: Ratio; // base × multiplier, points
}

interface ExactBonus {
  readonly rule_id: string;
  readonly line_index: number | null;
  readonly exact: Ratio;
}

interface Matched {
  readonly earnings: readonly Earning[];
  readonly bonuses: readonly ExactBonus[];
  readonly rules_applied: readonly string[];
}

export function calculateEarn(input: EarnInput): EarnResult {
  const { program, event } = input;
  const at_ms = Date.parse(event.transaction_ts);
  if (Number.isNaN(at_ms)) throw new RangeError(`bad transaction_ts: ${event.transaction_ts}`);
  const lines = prepareLines(event.line_items);
  const eligibleMinor = max(mul(fromInt(event.eligible_subtotal_cents), input.fx_to_program), ZERO);
  const basePoints = div(mul(eligibleMinor, program.earn_points), fromInt(program.earn_per_amount_minor));
  // Nothing eligible earns nothing, bonuses included: a gift-card-only order must not collect
  // an event bonus that no refund of an eligible line could ever take back.
  const { earnings, bonuses, rules_applied } =
    cmp(eligibleMinor, ZERO) > 0
      ? matchRules(input, at_ms, lines, eligibleMinor, basePoints)
      : { earnings: [], bonuses: [], rules_applied: [] };

  const parts = [...earnings.map((e) => e.exact), ...bonuses.map((b) => b.exact)];
  const { total, capped } = roundedTotal(input, parts);
  const split = distribute(total, parts, unitPt4(program.rounding));
  const baseSplit = distribute(
    ratioToPt4(basePoints),
    earnings.length ? earnings.map((e) => e.base) : [],
    1n,
  );

  const earned = new Map<number | null, { e: Earning; points: Pt4; base: Pt4 }>();
  earnings.forEach((e, i) =>
    earned.set(e.line?.index ?? null, { e, points: split[i]!, base: baseSplit[i]! }),
  );
  const outLines: EarnLine[] = lines.map((l) => toLine(l, earned.get(l.index)));
  const synthetic = earned.get(null);
  if (synthetic) outLines.push(toLine(null, synthetic));
  const outBonuses: EarnBonus[] = bonuses.map((b, i) => ({
    rule_id: b.rule_id,
    line_index: b.line_index,
    points_pt4: split[earnings.length + i]!,
  }));
  const result = { points_pt4: total, lines: outLines, bonuses: outBonuses, rules_applied, capped };
  return { ...result, explanation: explain(input, result, eligibleMinor, ratioToPt4(basePoints), lines) };
}

/** Evaluates the rules in force and yields each earning part with its multiplier, and the bonuses. */
function matchRules(
  input: EarnInput,
  at_ms: number,
  lines: readonly PreparedLine[],
  eligibleMinor: Ratio,
  basePoints: Ratio,
): Matched {
  const { program } = input;
  const rules = activeRules(program, at_ms); // priority order
  const ctx = eventContext(input);
  const eventHits = rules.filter((r) => r.scope === 'event' && r.test(ctx));
  const lineRules = rules.filter((r) => r.scope === 'line');

  const earning = (line: PreparedLine | null, share: Ratio, lineHits: readonly CompiledRule[]): Earning => {
    const shaping = new Set([...eventHits.filter((r) => r.multiplier !== null), ...lineHits]);
    const multipliers = [...shaping].flatMap((r) => (r.multiplier ? [r.multiplier] : []));
    const multiplier = combineMultipliers(multipliers, program.stacking, program.max_multiplier);
    const base = mul(basePoints, share);
    const hits = rules.filter((r) => shaping.has(r));
    return { line, amount: mul(eligibleMinor, share), base, multiplier, hits, exact: mul(base, multiplier) };
  };
  const bonusOf = (r: CompiledRule, line_index: number | null): ExactBonus[] =>
    r.bonus_pt4 === null ? [] : [{ rule_id: r.id, line_index, exact: pt4ToRatio(r.bonus_pt4) }];

  const pool = lines.filter((l) => l.eligible);
  const poolWeight = pool.reduce((acc, l) => add(acc, l.weight), ZERO);
  const earnings: Earning[] = [];
  const bonuses: ExactBonus[] = eventHits.flatMap((r) => bonusOf(r, null));
  const used = new Set(eventHits);
  for (const l of pool) {
    const hits = lineRules.filter((r) => r.test(lineContext(ctx, l.item)));
    earnings.push(earning(l, div(l.weight, poolWeight), hits));
    bonuses.push(...hits.flatMap((r) => bonusOf(r, l.index)));
    for (const r of hits) used.add(r);
  }
  // The till says something earns but flags no line: earn on the event as one line.
  if (pool.length === 0) earnings.push(earning(null, ONE, []));
  return { earnings, bonuses, rules_applied: rules.filter((r) => used.has(r)).map((r) => r.id) };
}

/** Caps the exact total, rounds it once, and keeps the rounded total within the cap too. */
function roundedTotal(input: EarnInput, parts: readonly Ratio[]): { total: Pt4; capped: boolean } {
  const { program } = input;
  const exact = parts.reduce(add, ZERO);
  const capPt4 = program.max_points_per_event_pt4;
  const capped = capPt4 !== null && cmp(exact, pt4ToRatio(capPt4)) > 0;
  let total = roundPoints(capped ? pt4ToRatio(capPt4) : exact, program.rounding);
  // Half-up of a fractional cap could step over it; the cap is a hard bound.
  if (capPt4 !== null && total > capPt4) total = floorToUnit(capPt4, unitPt4(program.rounding));
  return { total, capped };
}

function toLine(
  l: PreparedLine | null,
  earned: { e: Earning; points: Pt4; base: Pt4 } | undefined,
): EarnLine {
  return {
    line_index: l?.index ?? null,
    sku: l?.item.sku ?? null,
    eligible: earned !== undefined, // took part in earning (the synthetic line always does)
    amount_minor: earned?.e.amount ?? ZERO,
    base_pt4: earned?.base ?? 0n,
    multiplier: decimalToJson(earned?.e.multiplier ?? ONE),
    rules_applied: (earned?.e.hits ?? []).map((r) => r.id),
    points_pt4: earned?.points ?? 0n,
  };
}
