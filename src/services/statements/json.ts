import { pt4ToJson } from '../../domain/points.ts';
import { conversionJson, moneyOf } from './conversions.ts';
import type { Balance, Statement } from './statement.ts';

// The statement as the contract's JSON: points as JSON numbers (signed: + into the member's
// balance, − out of it), money as integer minor units with a currency, times in RFC 3339.

const balanceJson = (b: Balance) => ({
  balance: pt4ToJson(b.total_pt4),
  available: pt4ToJson(b.available_pt4),
  pending: pt4ToJson(b.pending_pt4),
  held: pt4ToJson(b.held_pt4),
  expired_not_swept: pt4ToJson(b.expired_not_swept_pt4),
});
const money = (m: { amount_minor: bigint; currency: string }) => ({
  amount_minor: Number(m.amount_minor),
  currency: m.currency,
});

export function statementJson(s: Statement) {
  const base = (i: { entry_id: bigint; at: Date; entry_kind: string; points_pt4: bigint }) => ({
    entry_id: String(i.entry_id),
    at: i.at.toISOString(),
    kind: i.entry_kind,
    points: pt4ToJson(i.points_pt4),
  });
  return {
    member_id: s.member_id,
    from: s.from.toISOString(),
    to: s.to.toISOString(),
    generated_at: s.generated_at.toISOString(),
    currency: s.common_currency,
    programs: s.programs.map((p) => ({
      program_id: p.program_id,
      brand_id: p.brand_id,
      opening: balanceJson(p.opening),
      closing: { ...balanceJson(p.closing), value: p.closing_value ? money(p.closing_value) : null },
      earned: {
        points: pt4ToJson(p.earned.points_pt4),
        items: p.earned.items.map((i) => ({
          ...base(i),
          event_id: i.event_id,
          store_id: i.store_id,
          brand_id: i.brand_id,
          rules_applied: i.rules_applied,
          base_points: i.base_pt4 === null ? null : pt4ToJson(i.base_pt4),
          multipliers: i.multipliers,
          bonuses: i.bonuses.map((b) => ({ rule_id: b.rule_id, points: pt4ToJson(b.points_pt4) })),
          capped: i.capped,
        })),
      },
      redeemed: {
        points: pt4ToJson(p.redeemed.points_pt4),
        value: money(moneyOf(p.redeemed.value, s.common_currency)),
        items: p.redeemed.items.map((i) => ({
          ...base(i),
          redemption_id: i.redemption_id,
          brand_id: i.brand_id,
          conversions: i.conversions.map((c) => conversionJson(c, s.common_currency)),
        })),
      },
      transferred: {
        points: pt4ToJson(p.transferred.points_pt4),
        items: p.transferred.items.map((i) => ({
          ...base(i),
          transfer_id: i.transfer_id,
          direction: i.direction,
          counterparty_member_id: i.counterparty_member_id,
        })),
      },
      reversed: {
        points: pt4ToJson(p.reversed.points_pt4),
        items: p.reversed.items.map((i) => ({
          ...base(i),
          event_id: i.event_id,
          reversal_of: i.reversal_of,
        })),
      },
      expired: {
        points: pt4ToJson(p.expired.points_pt4),
        items: p.expired.items.map((i) => ({
          ...base(i),
          by_brand: i.by_brand.map((b) => ({
            issuing_brand_id: b.issuing_brand_id,
            points: pt4ToJson(b.points_pt4),
          })),
        })),
      },
      adjusted: {
        points: pt4ToJson(p.adjusted.points_pt4),
        items: p.adjusted.items.map((i) => ({
          ...base(i),
          adjustment_id: i.adjustment_id,
          reason_code: i.reason_code,
          note: i.note,
        })),
      },
      other: { points: pt4ToJson(p.other.points_pt4) },
      movements: pt4ToJson(p.movements_pt4),
      ties: p.opening.total_pt4 + p.movements_pt4 === p.closing.total_pt4,
      expiring_soon: {
        window_days: p.expiring_soon.window_days,
        until: p.expiring_soon.until.toISOString(),
        points: pt4ToJson(p.expiring_soon.points_pt4),
        lots: p.expiring_soon.lots.map((l) => ({
          lot_id: String(l.lot_id),
          issuing_brand_id: l.issuing_brand_id,
          points: pt4ToJson(l.points_pt4),
          expires_at: l.expires_at.toISOString(),
        })),
      },
    })),
  };
}
