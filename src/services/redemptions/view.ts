import { currencyExponent } from '../../domain/config/fx.ts';
import type { Group } from '../../domain/config/group.ts';
import { sub, ZERO } from '../../domain/decimal.ts';
import { ratioToJson } from '../../domain/earn/codec.ts';
import { distribute } from '../../domain/earn/rounding.ts';
import { conversionLine, REDEEMED_VALUE_ROUNDING, valueMinor } from '../../domain/lots/conversion.ts';
import { targetParts } from '../../domain/lots/group-plan.ts';
import { pt4ToJson, type Pt4 } from '../../domain/points.ts';
import { programUnits } from '../../domain/valuation.ts';
import type { SpendPlan } from './spend-plan.ts';

// The member-facing shape of a redemption: what was spent from which program and brand, what it
// was worth in the common currency, and the conversion rate spelled out.

export interface RedemptionView {
  redemption_id: string;
  status: string;
  group_redemption: boolean;
  points: number;
  value: { amount_minor: number; currency: string };
  breakdown_by_program: {
    program_id: string;
    issuing_brand_id: string;
    points: number;
    value: { amount_minor: number; currency: string };
    conversion: string;
  }[];
  /** target − value taken: ≤ 0 since the last lot's points are rounded up (kept for old clients). */
  absorbed: { value_exact: string; program_id: string | null };
  /** Value taken − target, ≥ 0 and below one step of `program_id` (group-plan.ts). */
  overpaid: { value_exact: string; program_id: string | null };
  reward?: { reward_id: string; name: string; quantity: number };
}

export function redemptionView(
  group: Group,
  spend: SpendPlan,
  r: {
    id: string;
    status: string;
    group_redemption: boolean;
    points_pt4: Pt4;
    now: Date;
    reward: { reward_id: string; name: string; quantity: number } | null;
  },
): RedemptionView {
  const exp = currencyExponent(group.common_currency);
  const units = programUnits(group, r.now.getTime());
  const money = (v: Parameters<typeof valueMinor>[0]) => ({
    amount_minor: Number(valueMinor(v, exp, REDEEMED_VALUE_ROUNDING)),
    currency: group.common_currency,
  });
  // The lines are the total split by largest remainder over each line's part of it (targetParts),
  // so they add up to `value`; each rounded on its own they did not (audit F10). The overpayment
  // is not part of the value redeemed: it is shown as `overpaid`. Settlement uses the exact values.
  const lines_minor = distribute(
    valueMinor(spend.plan.target_value, exp, REDEEMED_VALUE_ROUNDING),
    targetParts(spend.plan),
    1n,
  );
  return {
    redemption_id: r.id,
    status: r.status,
    group_redemption: r.group_redemption,
    points: pt4ToJson(r.points_pt4),
    value: money(spend.plan.target_value),
    breakdown_by_program: spend.plan.by_program_brand.map((b, i) => ({
      program_id: b.program_id,
      issuing_brand_id: b.issuing_brand_id,
      points: pt4ToJson(b.points_pt4),
      value: { amount_minor: Number(lines_minor[i]!), currency: group.common_currency },
      conversion: conversionLine(b.program_id, units.get(b.program_id)!.unit_value, group.common_currency),
    })),
    absorbed: {
      value_exact: ratioToJson(sub(ZERO, spend.plan.overpaid_value)),
      program_id: spend.plan.rounding_program_id,
    },
    overpaid: {
      value_exact: ratioToJson(spend.plan.overpaid_value),
      program_id: spend.plan.rounding_program_id,
    },
    // Only the public fields: the caller's reward record also carries its bigint price.
    ...(r.reward
      ? { reward: { reward_id: r.reward.reward_id, name: r.reward.name, quantity: r.reward.quantity } }
      : {}),
  };
}
