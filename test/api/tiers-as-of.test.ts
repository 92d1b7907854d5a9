// The tiers view at a past as_of shows the tier held then (tier, tier_since, benefits, the next
// tier, the current flags), not the member's tier now, and agrees with the balances view at the
// same instant: both read it from tier history (services/tier-at.ts).
// PGlite memory:// (or PostgreSQL with DATABASE_URL).

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import type { TestService } from '../helpers/store.ts';
import { serviceWithApi, shirt, tieredDemoDoc, uid, type Api, type Json } from './lifecycle-helpers.ts';

let t: TestService | undefined;
let api: Api;

before(async () => {
  // The demo configuration, its northwind tiers with benefits (as lifecycle.test.ts).
  const s = await serviceWithApi('2026-03-10T12:00:00.000Z', tieredDemoDoc());
  t = s.t;
  api = s.api;
});
after(async () => {
  await t?.close();
});

const q = (at: string) => `?as_of=${encodeURIComponent(at)}`;

async function tiersView(member: string, at?: string): Promise<Record<string, Json>> {
  const body = await api.get(`/v1/members/${member}/tiers${at ? q(at) : ''}`);
  return Object.fromEntries((body.programs as Json[]).map((p) => [p.program_id, p]));
}

/** program_id → tier, as each view answers at `at`. */
async function tiersBothWays(member: string, at: string): Promise<[Json, Json]> {
  const balances = await api.balances(member, at);
  const tiers = await tiersView(member, at);
  const only = (r: Record<string, Json>) =>
    Object.fromEntries(
      Object.values(r)
        .filter((p) => p.tier !== null)
        .map((p) => [p.program_id, p.tier]),
    );
  return [only(balances), only(tiers)];
}

void describe('GET /v1/members/{id}/tiers?as_of', () => {
  void it('shows the tier held at as_of, as the balances view does', async () => {
    const m = uid('mbr_tier_at');
    await api.purchase(m, 'store_atl_012', [shirt(1000)]); // enrolled silver
    api.clock.set('2026-04-10T12:00:00.000Z');
    await api.purchase(m, 'store_atl_012', [shirt(60000)]); // gold from 11:59 that day
    api.clock.set('2026-05-01T00:00:00.000Z');

    const now = (await tiersView(m))['northwind-stars']!;
    assert.equal(now.tier, 'gold');
    assert.equal(now.tier_since, '2026-04-10T11:59:00.000Z');

    const at = '2026-03-20T00:00:00.000Z';
    const then = (await tiersView(m, at))['northwind-stars']!;
    assert.equal(then.tier, 'silver');
    assert.ok(
      then.tier_since === null || Date.parse(then.tier_since as string) <= Date.parse(at),
      `tier_since ${then.tier_since} is not after ${at}`,
    );
    assert.deepEqual(then.benefits, ['free returns']);
    assert.deepEqual(
      (then.tiers as Json[]).map((x) => [x.tier, x.current]),
      [
        ['silver', true],
        ['gold', false],
      ],
    );
    assert.equal(then.next_tier?.tier, 'gold');
    assert.deepEqual(then.next_tier.remaining, { amount_minor: 49000, currency: 'USD' });
    assert.equal((await api.balances(m, at))['northwind-stars']!.tier, 'silver');
    // Its history is what was known then: the later upgrade is not in it.
    assert.ok(
      (then.history as Json[]).every((h) => Date.parse(h.recorded_at as string) <= Date.parse(at)),
      JSON.stringify(then.history),
    );
    assert.ok((now.history as Json[]).some((h) => h.tier === 'gold'));

    // After the upgrade, still in the past: gold, since the upgrade.
    const gold = (await tiersView(m, '2026-04-20T00:00:00.000Z'))['northwind-stars']!;
    assert.equal(gold.tier, 'gold');
    assert.equal(gold.tier_since, '2026-04-10T11:59:00.000Z');
    assert.deepEqual(gold.benefits, ['free shipping', 'early access']);
    assert.equal(gold.next_tier, null);

    for (const instant of [
      '2026-03-09T00:00:00.000Z', // before enrollment: neither view has the program
      '2026-03-10T11:59:30.000Z', // after the first purchase's time, before it was booked
      '2026-03-10T12:00:00.000Z',
      at,
      '2026-04-10T11:59:30.000Z', // after the upgrade's time, before it was booked
      '2026-04-10T12:00:00.000Z',
      '2026-04-20T00:00:00.000Z',
      '2026-04-30T23:59:59.999Z',
    ]) {
      const [balances, tiers] = await tiersBothWays(m, instant);
      assert.deepEqual(tiers, balances, `at ${instant}`);
    }
  });

  void it('a member who never changed tier keeps it at any instant since enrollment', async () => {
    api.clock.set('2026-06-01T12:00:00.000Z');
    const m = uid('mbr_tier_base');
    await api.purchase(m, 'store_atl_012', [shirt(1000)]);
    api.clock.set('2026-06-10T00:00:00.000Z');
    const now = (await tiersView(m))['northwind-stars']!;
    const then = (await tiersView(m, '2026-06-05T00:00:00.000Z'))['northwind-stars']!;
    assert.equal(then.tier, 'silver');
    assert.equal(then.tier, now.tier);
    assert.equal(then.tier_since, now.tier_since);
  });
});
