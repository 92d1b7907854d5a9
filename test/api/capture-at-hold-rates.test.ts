// Part of a hold is taken at the conversion the hold was placed at (src/domain/lots/hold-units.ts),
// as a whole capture is. Valued at today's rates instead, a fall of the EUR rate between the hold
// and the capture left the held points worth less than the part asked for, and the whole hold
// was captured, charged and settled for part of it.
//
// From test/fixtures/config.ts: acme-points 0.01 USD a point, 1 per 1000 cents; harbor-rewards
// 0.005 EUR a point (accumulate: 4 decimals), 1 per 100 cents; EUR at 1.08 USD.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { applyDemoConfig } from '../helpers/store.ts';
import { Api, uid, type Json } from './lifecycle-helpers.ts';

const clock = new ManualClock('2026-03-10T12:00:00.000Z');
const api = Api.forTests(clock);
const UNIT_USD: Record<string, number> = { 'acme-points': 0.01, 'harbor-rewards': 0.005 * 1.08 };

const byProgram = (items: Json[]): Record<string, number> =>
  Object.fromEntries(items.map((i) => [i.program_id, i.points as number]));
const worthUsd = (points: Record<string, number>): number =>
  Object.entries(points).reduce((s, [p, n]) => s + n * UNIT_USD[p]!, 0);

void describe('a partial capture after a rate change', () => {
  void it('takes the part asked for at the hold’s rates and releases the rest', async () => {
    const m = uid('mbr_fx');
    await api.buy(m, 'harbor', 400_00); // 400 harbor-rewards, 40 acme-points
    const hold = await api.redeem({
      member_id: m,
      brand_id: 'northwind',
      group_redemption: true,
      points: 200,
      capture: false,
    });
    const held = byProgram(hold.breakdown_by_program);
    assert.ok(held['harbor-rewards']! > 0 && held['acme-points']! > 0, JSON.stringify(held));

    // The euro halves against the dollar before the capture.
    const doc = demoConfigDoc();
    doc.fx_rates!.push({ currency: 'EUR', rate: '0.54', effective_from: clock.now().toISOString() });
    await applyDemoConfig(api.t.app, doc);
    clock.advance(60_000);

    const res = await api.post(
      `/v1/redemptions/${hold.redemption_id as string}/capture`,
      { points: 150 },
      200,
    );
    const captured = byProgram(res.points_captured_by_program);
    const released = byProgram(res.points_released_by_program);
    for (const p of Object.keys(held))
      assert.ok(
        Math.abs((captured[p] ?? 0) + (released[p] ?? 0) - held[p]!) < 1e-9,
        `${p}: ${JSON.stringify(res)}`,
      );
    // 150 acme-points are 1.50 USD at the hold's rates: at least that is taken, less than one
    // point of the program rounded up above it, and the rest goes back.
    const worth = worthUsd(captured);
    assert.ok(worth >= 1.5 - 1e-9 && worth < 1.51, `captured worth ${worth} USD: ${JSON.stringify(res)}`);
    assert.ok(worthUsd(released) > 0.49, JSON.stringify(res));

    // Harbor issued every point taken: it owes Northwind the 1.50 USD, not the 2.00 held.
    const positions = await api.get(
      `/v1/settlement/positions?from=2026-01-01T00:00:00Z&to=${encodeURIComponent(new Date(clock.now().getTime() + 60_000).toISOString())}`,
    );
    const flow = (positions.flows as Json[]).find(
      (f) => f.issuer_brand_id === 'harbor' && f.redeemer_brand_id === 'northwind',
    );
    assert.ok(flow && flow.amount_minor >= 150 && flow.amount_minor <= 151, JSON.stringify(positions));
    await applyDemoConfig(api.t.app);
    await api.assertVerifyOk();
  });
});
