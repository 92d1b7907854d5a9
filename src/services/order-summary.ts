import type { Group } from '../domain/config/group.ts';
import { pt4ToJson } from '../domain/points.ts';
import { AppError } from '../errors.ts';
import { requireGroup } from './config.ts';
import type { Ctx } from './context.ts';
import {
  conversionJson,
  conversionsOf,
  HELD,
  moneyOf,
  SPENT,
  totalValue,
  type AllocationRow,
} from './statements/conversions.ts';

// GET /v1/orders/{order_id}/loyalty: what one order earned (its purchase events' accruals, net of
// their voids and refunds) and what it redeemed (redemptions placed with that order_id), with
// each program's conversion spelled out, shaped for an order confirmation page or e-mail.

const MAX_EVENTS = 200;
const MAX_REDEMPTIONS = 100;
const EVENT_COLUMNS = [
  'event_id',
  'event_type',
  'member_id',
  'brand_id',
  'store_id',
  'channel',
  'transaction_ts',
  'reversal_of',
] as const;

interface ProgramPoints {
  program_id: string;
  points_pt4: bigint;
  pending_pt4: bigint;
}

export async function orderLoyalty(ctx: Ctx, order_id: string) {
  const group = await requireGroup(ctx);
  const purchases = await ctx.db
    .selectFrom('events')
    .select(EVENT_COLUMNS)
    .where('order_id', '=', order_id)
    .orderBy('transaction_ts')
    .orderBy('event_id')
    .limit(MAX_EVENTS)
    .execute();
  const purchaseIds = purchases.filter((e) => e.event_type === 'purchase_completed').map((e) => e.event_id);
  const reversals =
    purchaseIds.length === 0
      ? []
      : await ctx.db
          .selectFrom('events')
          .select(EVENT_COLUMNS)
          .where('reversal_of', 'in', purchaseIds)
          .orderBy('transaction_ts')
          .orderBy('event_id')
          .limit(MAX_EVENTS)
          .execute();
  const events = [...new Map([...purchases, ...reversals].map((e) => [e.event_id, e])).values()];
  const redemptions = await ctx.db
    .selectFrom('redemptions')
    .select([
      'id',
      'member_id',
      'brand_id',
      'status',
      'group_redemption',
      'program_id',
      'points_pt4',
      'created_at',
      'reward_id',
      'quantity',
    ])
    .where('order_id', '=', order_id)
    .orderBy('created_at')
    .orderBy('id')
    .limit(MAX_REDEMPTIONS)
    .execute();
  if (events.length === 0 && redemptions.length === 0)
    throw new AppError('ORDER_NOT_FOUND', `No loyalty activity for order ${order_id}`, { order_id });

  const earned = await pointsByEvent(
    ctx,
    events.map((e) => e.event_id),
  );
  const explanations = await rulesByEvent(ctx, purchaseIds);
  const eventView = (e: (typeof events)[number]) => ({
    event_id: e.event_id,
    event_type: e.event_type,
    member_id: e.member_id,
    brand_id: e.brand_id,
    store_id: e.store_id,
    channel: e.channel,
    transaction_ts: e.transaction_ts.toISOString(),
    ...(e.reversal_of ? { reversal_of: e.reversal_of } : {}),
    programs: (earned.get(e.event_id) ?? []).map((p) => ({
      program_id: p.program_id,
      points: pt4ToJson(p.points_pt4),
      ...(p.pending_pt4 !== 0n ? { pending: pt4ToJson(p.pending_pt4) } : {}),
      ...(explanations.get(e.event_id)?.get(p.program_id)
        ? { rules_applied: explanations.get(e.event_id)!.get(p.program_id)! }
        : {}),
    })),
  });
  const net = new Map<string, bigint>();
  for (const list of earned.values())
    for (const p of list) net.set(p.program_id, (net.get(p.program_id) ?? 0n) + p.points_pt4);

  const allocations = await redemptionAllocations(
    ctx,
    redemptions.map((r) => r.id),
  );
  const redeemed = redemptions.map((r) => {
    const conversions = conversionsOf(
      allocations.get(r.id) ?? [],
      r.brand_id,
      group.common_currency,
      r.status === 'held' ? HELD : SPENT,
    );
    const value = moneyOf(totalValue(conversions), group.common_currency);
    return {
      redemption_id: r.id,
      member_id: r.member_id,
      brand_id: r.brand_id,
      status: r.status,
      group_redemption: r.group_redemption,
      program_id: r.program_id,
      points: pt4ToJson(r.points_pt4),
      created_at: r.created_at.toISOString(),
      ...(r.reward_id ? { reward_id: r.reward_id, quantity: r.quantity } : {}),
      value: { amount_minor: Number(value.amount_minor), currency: value.currency },
      breakdown_by_program: conversions.map((c) => conversionJson(c, group.common_currency)),
      conversions,
    };
  });
  // What the order actually paid with points: captured redemptions (a held one is not paid yet).
  const redeemedValue = moneyOf(
    totalValue(redeemed.filter((r) => r.status === 'captured').flatMap((r) => r.conversions)),
    group.common_currency,
  );
  return {
    order_id,
    member_ids: [
      ...new Set([...events.map((e) => e.member_id), ...redemptions.map((r) => r.member_id)]),
    ].sort(),
    earned: events.filter((e) => e.event_type === 'purchase_completed').map(eventView),
    reversed: events.filter((e) => e.event_type !== 'purchase_completed').map(eventView),
    net_earned: [...net]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([program_id, p]) => ({ program_id, brand_id: brandOf(group, program_id), points: pt4ToJson(p) })),
    redeemed: redeemed.map(({ conversions: _c, ...r }) => r),
    redeemed_value: { amount_minor: Number(redeemedValue.amount_minor), currency: redeemedValue.currency },
  };
}

const brandOf = (group: Group, program_id: string): string | null =>
  group.programs.get(program_id)?.brand_id ?? null;

/** Per event: the points its accrual or reversal entries moved on the member's accounts, per program. */
async function pointsByEvent(ctx: Ctx, event_ids: readonly string[]): Promise<Map<string, ProgramPoints[]>> {
  const out = new Map<string, ProgramPoints[]>();
  if (event_ids.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('entries as e')
    .innerJoin('events as ev', 'ev.event_id', 'e.event_id')
    .innerJoin('postings as p', 'p.entry_id', 'e.id')
    .innerJoin('accounts as a', 'a.id', 'p.account_id')
    .select(['e.event_id', 'p.program_id', 'a.kind', 'p.amount_pt4'])
    .where('e.event_id', 'in', event_ids)
    .where('e.kind', 'in', ['accrual', 'reversal'])
    // The event's own member: a referral bonus shares the event id but pays someone else, and a
    // reversal that takes that bonus back is a 'reversal' entry of the referrer's.
    .whereRef('a.owner_id', '=', 'ev.member_id')
    .where('a.kind', 'like', 'member_%')
    .orderBy('p.program_id')
    .execute();
  for (const r of rows) {
    if (!r.event_id) continue;
    const list = out.get(r.event_id) ?? [];
    let p = list.find((x) => x.program_id === r.program_id);
    if (!p) list.push((p = { program_id: r.program_id, points_pt4: 0n, pending_pt4: 0n }));
    p.points_pt4 += r.amount_pt4;
    if (r.kind === 'member_pending') p.pending_pt4 += r.amount_pt4;
    out.set(r.event_id, list);
  }
  return out;
}

/** Per purchase event and program: the rules that applied (from the accrual's explanation). */
async function rulesByEvent(
  ctx: Ctx,
  event_ids: readonly string[],
): Promise<Map<string, Map<string, string[]>>> {
  const out = new Map<string, Map<string, string[]>>();
  if (event_ids.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('entries')
    .select(['event_id', 'detail'])
    .where('event_id', 'in', event_ids)
    .where('kind', '=', 'accrual')
    .execute();
  for (const r of rows) {
    const earn = (r.detail.earn ?? {}) as Record<string, { rules_applied?: string[] }>;
    out.set(r.event_id!, new Map(Object.entries(earn).map(([p, e]) => [p, [...(e.rules_applied ?? [])]])));
  }
  return out;
}

async function redemptionAllocations(
  ctx: Ctx,
  ids: readonly string[],
): Promise<Map<string, AllocationRow[]>> {
  const out = new Map<string, AllocationRow[]>();
  if (ids.length === 0) return out;
  const rows = await ctx.db
    .selectFrom('lot_allocations as la')
    .innerJoin('entries as e', 'e.id', 'la.entry_id')
    .select([
      'e.ref_id',
      'la.entry_id',
      'la.lot_id',
      'la.program_id',
      'la.issuing_brand_id',
      'la.kind',
      'la.points_pt4',
      'la.value_common',
    ])
    .where('e.ref_type', '=', 'redemption')
    .where('e.ref_id', 'in', ids)
    .orderBy('la.id')
    .execute();
  for (const r of rows) {
    const list = out.get(r.ref_id!) ?? [];
    list.push(r);
    out.set(r.ref_id!, list);
  }
  return out;
}
