// Synthetic history for the demo group: members buying across brands and channels over the
// last few days, some returns, and group redemptions, all through the same paths the API uses
// (the batch intake and the redemption service), so the demo's ledger is a real one.

import type { Service } from '../service.ts';
import { submitBatch } from '../services/events/batch.ts';
import { redeem } from '../services/redemptions/redeem.ts';
import { wholePoints } from '../domain/points.ts';
import { CLI_ACTOR } from './context.ts';
import type { DemoStep } from './demo.ts';

const MEMBERS = 500;
const PURCHASES = 4_000;
const BATCH = 500;
const HOURS_BACK = 60; // inside every demo program's 72-hour late-event window

const STORES = [
  { id: 'store_atl_012', currency: 'USD', channel: 'in_store' },
  { id: 'web_northwind', currency: 'USD', channel: 'online' },
  { id: 'app_northwind', currency: 'USD', channel: 'app' },
  { id: 'bopis_atl_012', currency: 'USD', channel: 'bopis' },
  { id: 'web_harbor', currency: 'EUR', channel: 'online' },
  { id: 'store_ber_001', currency: 'EUR', channel: 'in_store' },
  { id: 'store_lon_001', currency: 'GBP', channel: 'in_store' },
  { id: 'app_summit', currency: 'GBP', channel: 'app' },
] as const;
const CATEGORIES = ['outerwear', 'footwear', 'grocery', 'camping', 'accessories', 'gift_card'] as const;

/** A small seeded generator: the same demo every time. */
function rng(seed: number) {
  let s = seed >>> 0;
  return (n: number) => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % n;
  };
}

function purchase(i: number, now: number, r: (n: number) => number) {
  const store = STORES[r(STORES.length)]!;
  const lines = Array.from({ length: 1 + r(3) }, (_, j) => {
    const category = CATEGORIES[r(CATEGORIES.length)]!;
    return {
      sku: `SKU-${category.slice(0, 3).toUpperCase()}-${r(500)}`,
      category,
      unit_price_cents: 500 + r(20_000),
      quantity: 1 + r(2),
      eligible_for_points: category !== 'gift_card',
      line: j,
    };
  });
  const subtotal = lines.reduce((s, l) => s + l.unit_price_cents * l.quantity, 0);
  const eligible = lines
    .filter((l) => l.eligible_for_points)
    .reduce((s, l) => s + l.unit_price_cents * l.quantity, 0);
  const ts = new Date(now - (HOURS_BACK * 3_600_000 * (PURCHASES - i)) / PURCHASES).toISOString();
  return {
    event_id: `demo_evt_${i}`,
    event_type: 'purchase_completed',
    member_id: `demo_mbr_${String(r(MEMBERS)).padStart(4, '0')}`,
    channel: store.channel,
    store_id: store.id,
    transaction_id: `demo_txn_${i}`,
    transaction_ts: ts,
    order_id: `demo_ord_${i}`,
    currency: store.currency,
    line_items: lines.map(({ line: _l, ...l }) => l),
    subtotal_cents: subtotal,
    eligible_subtotal_cents: eligible,
    idempotency_key: `demo_key_${i}`,
  };
}

export const historyStep: DemoStep = {
  name: 'history',
  async run(service: Service, _state, tick) {
    const now = service.ctx.clock.now().getTime();
    const r = rng(20261123);
    const events = Array.from({ length: PURCHASES }, (_, i) => purchase(i, now, r));
    const refunds = events
      .filter((_, i) => i % 25 === 0)
      .map((p, k) => ({
        ...p,
        event_id: `demo_ref_${k}`,
        event_type: 'purchase_refunded',
        reversal_of: p.event_id,
        order_id: undefined,
        line_items: [{ ...p.line_items[0]!, quantity: 1 }],
        idempotency_key: `demo_ref_key_${k}`,
        transaction_ts: new Date(now - 60_000).toISOString(),
      }));
    const all = [...events, ...refunds];
    const redemptions = 100;
    const total = all.length + redemptions;
    for (let i = 0; i < all.length; i += BATCH) {
      await submitBatch(service.ctx, all.slice(i, i + BATCH), CLI_ACTOR, () => undefined);
      tick(Math.min(i + BATCH, all.length), total);
    }
    const brands = ['northwind', 'harbor', 'summit'];
    for (let k = 0; k < redemptions; k++) {
      const member_id = `demo_mbr_${String(r(MEMBERS)).padStart(4, '0')}`;
      await redeem(
        service.ctx,
        {
          member_id,
          brand_id: brands[k % 3]!,
          group_redemption: true,
          points_pt4: wholePoints(10 + r(40)),
          idempotency_key: `demo_rdm_${k}`,
          capture: true,
        },
        CLI_ACTOR,
      ).catch((e: unknown) => {
        // A member with too few points is part of a realistic history, not a failure of the demo.
        if (!(e instanceof Error && 'code' in e && e.code === 'INSUFFICIENT_POINTS')) throw e;
      });
      tick(all.length + k + 1, total);
    }
  },
};
