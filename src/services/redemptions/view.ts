import { currencyExponent } from '../../domain/config/fx.ts';
import type { Group } from '../../domain/config/group.ts';
import { ratioToJson } from '../../domain/earn/codec.ts';
import { conversionLine, valueMinor } from '../../domain/lots/conversion.ts';
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
  absorbed: { value_exact: string; program_id: string | null };
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
    amount_minor: Number(valueMinor(v, exp)),
    currency: group.common_currency,
  });
  return {
    redemption_id: r.id,
    status: r.status,
    group_redemption: r.group_redemption,
    points: pt4ToJson(r.points_pt4),
    value: money(spend.plan.target_value),
    breakdown_by_program: spend.plan.by_program_brand.map((b) => ({
      program_id: b.program_id,
      issuing_brand_id: b.issuing_brand_id,
      points: pt4ToJson(b.points_pt4),
      value: money(b.value),
      conversion: conversionLine(b.program_id, units.get(b.program_id)!.unit_value, group.common_currency),
    })),
    absorbed: {
      value_exact: ratioToJson(spend.plan.absorbed_value),
      program_id: spend.plan.absorbing_program_id,
    },
    // Only the public fields: the caller's reward record also carries its bigint price.
    ...(r.reward
      ? { reward: { reward_id: r.reward.reward_id, name: r.reward.name, quantity: r.reward.quantity } }
      : {}),
  };
}
