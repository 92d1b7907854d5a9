import type { CompiledRule } from '../config/group.ts';
import { add, cmp, div, formatRatio, fromInt, max, mul, ONE, ZERO, type Ratio } from '../decimal.ts';
import { pt4ToRatio, ratioToPt4, type Pt4 } from '../points.ts';
import { quantityRatio } from './codec.ts';
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

export function calculateEarn(input: EarnInput): EarnResult {
  const { program, event } = input;
  const at_ms = Date.parse(event.transaction_ts);
  if (Number.isNaN(at_ms)) throw new RangeError(`bad transaction_ts: ${event.transaction_ts}`);
  const lines = prepareLines(event.line_items);
  const eligibleMinor = max(mul(fromInt(event.eligible_subtotal_cents), input.fx_to_program), ZERO);
  const basePoints = div(mul(eligibleMinor, program.earn_points), fromInt(program.earn_per_amount_minor));
  // Nothing eligible earns nothing, bonuses included: a gift-card-only order must not collect
  // an event bonus that no refund of an eligible line could ever take back.
  const earns = cmp(eligibleMinor, ZERO) > 0;

  const rules = earns ? activeRules(program, at_ms) : [];
  const ctx = eventContext(input);
  const eventHits = rules.filter((r) => r.scope === 'event' && r.test(ctx));
  const lineRules = rules.filter((r) => r.scope === 'line');
  const rank = new Map(program.rules.map((r, i) => [r.id, i]));
  const inPriorityOrder = (rs: readonly CompiledRule[]): CompiledRule[] =>
    [...rs].sort((a, b) => (rank.get(a.id) ?? 0) - (rank.get(b.id) ?? 0));

  const makeEarning = (line: PreparedLine | null, share: Ratio, lineHits: readonly CompiledRule[]): Earning => {
    const shaping = inPriorityOrder([...eventHits.filter((r) => r.multiplier !== null), ...lineHits]);
    const multipliers = [...eventHits, ...lineHits].flatMap((r) => (r.multiplier ? [r.multiplier] : []));
    const multiplier = combineMultipliers(multipliers, program.stacking, program.max_multiplier);
    const base = mul(basePoints, share);
    return { line, amount: mul(eligibleMinor, share), base, multiplier, hits: shaping, exact: mul(base, multiplier) };
  };

  const pool = earns ? lines.filter((l) => l.eligible) : [];
  const poolWeight = pool.reduce((acc, l) => add(acc, l.weight), ZERO);
  const lineHitsOf = new Map<number, CompiledRule[]>();
  let earnings: Earning[];
  if (pool.length > 0) {
    earnings = pool.map((l) => {
      const hits = lineRules.filter((r) => r.test(lineContext(ctx, l.item)));
      lineHitsOf.set(l.index, hits);
      return makeEarning(l, div(l.weight, poolWeight), hits);
    });
  } else {
    // The till says something earns but flags no line: earn on the event as one line.
    earnings = earns ? [makeEarning(null, ONE, [])] : [];
  }

  const bonuses: ExactBonus[] = [
    ...eventHits.flatMap((r) => (r.bonus_pt4 === null ? [] : [{ rule_id: r.id, line_index: null, exact: pt4ToRatio(r.bonus_pt4) }])),
    ...pool.flatMap((l) =>
      (lineHitsOf.get(l.index) ?? []).flatMap((r) =>
        r.bonus_pt4 === null ? [] : [{ rule_id: r.id, line_index: l.index, exact: pt4ToRatio(r.bonus_pt4) }],
      ),
    ),
  ];

  const { total, capped } = roundedTotal(input, [...earnings.map((e) => e.exact), ...bonuses.map((b) => b.exact)]);
  const unit = unitPt4(program.rounding);
  const split = distribute(total, [...earnings.map((e) => e.exact), ...bonuses.map((b) => b.exact)], unit);
  const baseSplit = distribute(ratioToPt4(basePoints), earns ? earnings.map((e) => e.base) : [], 1n);

  const earned = new Map<number | null, { e: Earning; points: Pt4; base: Pt4 }>();
  earnings.forEach((e, i) => earned.set(e.line?.index ?? null, { e, points: split[i]!, base: baseSplit[i] ?? 0n }));
  const outLines: EarnLine[] = lines.map((l) => toLine(l, earned.get(l.index)));
  const synthetic = earned.get(null);
  if (synthetic) outLines.push(toLine(null, synthetic));
  const outBonuses: EarnBonus[] = bonuses.map((b, i) => ({
    rule_id: b.rule_id,
    line_index: b.line_index,
    points_pt4: split[earnings.length + i]!,
  }));

  const used = new Set([...eventHits, ...[...lineHitsOf.values()].flat()].map((r) => r.id));
  const rules_applied = program.rules.filter((r) => used.has(r.id)).map((r) => r.id);
  const result = { points_pt4: total, lines: outLines, bonuses: outBonuses, rules_applied, capped };
  return { ...result, explanation: explain(input, result, eligibleMinor, ratioToPt4(basePoints), lines) };
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
    multiplier: formatRatio(earned?.e.multiplier ?? ONE, 18),
    rules_applied: (earned?.e.hits ?? []).map((r) => r.id),
    points_pt4: earned?.points ?? 0n,
  };
}
