// A spend reads only its member's first lots in spend order and each program's total
// (services/redemptions/spend-read.ts), and reads every lot when its walk needs more. Members
// here hold far more lots than that first read: a redemption must still take exactly the lots a
// plan over all of them takes, whether it runs alone or planned in a shared transaction, and
// however many redemptions of one member run at once, lots go strictly earliest expiry first.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { spendable } from '../../src/services/redemptions/spend-plan.ts';
import { PREFIX_LOTS } from '../../src/services/redemptions/spend-read.ts';
import { planGroupSpend } from '../../src/domain/lots/group-plan.ts';
import { orderLotsForSpend } from '../../src/domain/lots/fefo.ts';
import { programUnits } from '../../src/domain/valuation.ts';
import { requireGroup } from '../../src/services/config.ts';
import { statsOf } from '../../src/services/redemptions/shared.ts';
import type { OpenLot } from '../../src/ledger/read.ts';
import {
  HOUR_MS,
  pt4,
  serviceWithApi,
  shirt,
  uid,
  type AnyDb,
  type Api,
  type Json,
} from './lifecycle-helpers.ts';
import type { TestService } from '../helpers/store.ts';

const NOW = '2026-06-10T12:00:00.000Z';
const STORES = ['store_atl_012', 'web_harbor', 'store_lon_001'];

let t: TestService;
let api: Api;
let db: AnyDb;

before(async () => {
  ({ t, api, db } = await serviceWithApi(NOW));
});
after(async () => t.close());

/**
 * `n` purchases for a new member over a few distinct hours (so many lots tie on expiry and
 * award and fall back to id order), in batches: 2 lots each (the brand's program and the
 * group's).
 */
async function memberWithLots(n: number, stores = STORES): Promise<string> {
  const member_id = uid('many');
  const now = api.clock.now().getTime();
  const events = Array.from({ length: n }, (_, i) => {
    const ev = api.purchaseEvent(member_id, stores[i % stores.length]!, [shirt(1_000 + (i % 7) * 500)]);
    return { ...ev, transaction_ts: new Date(now - (1 + (i % 5)) * HOUR_MS).toISOString() };
  });
  for (let i = 0; i < events.length; i += 100) {
    const res = await api.post('/v1/events/batch', { events: events.slice(i, i + 100) }, 200);
    for (const r of res.results as Json[]) assert.equal(r.http_status, 201, JSON.stringify(r));
  }
  return member_id;
}

async function lotsOf(member_id: string): Promise<OpenLot[]> {
  return (await db
    .selectFrom('lots')
    .selectAll()
    .where('member_id', '=', member_id)
    .orderBy('id')
    .execute()) as OpenLot[];
}

/** Points taken from each lot between two reads of the member's lots. */
function taken(before: readonly OpenLot[], after: readonly OpenLot[]): Map<string, bigint> {
  const was = new Map(before.map((l) => [String(l.id), l.remaining_pt4]));
  const out = new Map<string, bigint>();
  for (const l of after) {
    const d = (was.get(String(l.id)) ?? 0n) - l.remaining_pt4;
    if (d !== 0n) out.set(String(l.id), d);
  }
  return out;
}

/**
 * What a plan over every lot takes from each: a group redemption of `points`, or a spend of
 * `points` from `program_id` alone.
 */
async function expectedTake(
  lots: readonly OpenLot[],
  points: number,
  program_id?: string,
): Promise<Map<string, bigint>> {
  const group = await requireGroup(t.ctx);
  const now = api.clock.now();
  const plan = planGroupSpend({
    lots: spendable(program_id ? lots.filter((l) => l.program_id === program_id) : lots, now),
    programs: programUnits(group, now.getTime()),
    default_program_id: program_id ?? group.default_program_id,
    points_pt4: pt4(points),
  });
  return new Map(plan.allocations.map((a) => [a.lot_id, a.points_pt4]));
}

void describe('redemptions of members with many lots', () => {
  void it('one that needs lots past the first read takes what a plan over all of them takes', async () => {
    const member_id = await memberWithLots(120);
    const lots = await lotsOf(member_id);
    assert.ok(lots.length > 2 * PREFIX_LOTS, `${lots.length} lots`);
    const pool = (await api.get(`/v1/members/${member_id}/balances`)).group.points as number;
    // Small (the first lots), then most of the pool (far past the first read).
    for (const points of [3, Math.floor(pool * 0.8)]) {
      const before = await lotsOf(member_id);
      const want = await expectedTake(before, points);
      const res = await api.redeem({ member_id, brand_id: 'northwind', group_redemption: true, points });
      assert.equal(res.status, 'captured');
      assert.deepEqual(taken(before, await lotsOf(member_id)), want);
      if (points > 3) assert.ok(want.size > PREFIX_LOTS, `${want.size} lots taken`);
    }
    assert.equal((await api.verify()).ok, true);
  });

  void it('a transfer and a single-program redemption past the first read take what a plan over all takes', async () => {
    const member_id = await memberWithLots(240, ['store_atl_012', 'web_northwind']);
    const northwind = (await lotsOf(member_id)).filter((l) => l.program_id === 'northwind-stars');
    assert.ok(northwind.length > 2 * PREFIX_LOTS, `${northwind.length} lots`);
    const to = uid('to');
    await api.purchase(to, 'store_atl_012', [shirt(1_000)]);
    // Half the program by transfer, then most of the rest by redemption: each far past 64 lots.
    const spends = [
      (points: number) =>
        api.post('/v1/transfers', {
          from_member_id: member_id,
          to_member_id: to,
          program_id: 'northwind-stars',
          points,
          idempotency_key: uid('trf'),
        }),
      (points: number) => api.redeem({ member_id, brand_id: 'northwind', points }),
    ];
    for (const [i, spend] of spends.entries()) {
      const available = (await api.balances(member_id))['northwind-stars']!.available as number;
      const points = Math.floor(available * (i === 0 ? 0.5 : 0.8));
      const before = await lotsOf(member_id);
      const want = await expectedTake(before, points, 'northwind-stars');
      await spend(points);
      assert.deepEqual(taken(before, await lotsOf(member_id)), want);
      assert.ok(want.size > PREFIX_LOTS, `${want.size} lots taken`);
    }
    assert.equal((await api.verify()).ok, true);
  });

  void it('many at once on one member, some past the first read: lots go strictly earliest expiry first', async () => {
    // northwind-stars expires on a rolling basis, so its redemptions share transactions (a spend
    // in an inactivity-expiry program moves its lots' expiry, and runs alone).
    const member_id = await memberWithLots(150, ['store_atl_012', 'web_northwind']);
    const before = await lotsOf(member_id);
    const available = (await api.balances(member_id))['northwind-stars']!.available as number;
    const shared = { ...statsOf(t.ctx) };
    // Mostly small, a few large enough to need lots past any first read; together under the pool.
    const asks = Array.from({ length: 24 }, (_, i) =>
      i % 6 === 5 ? Math.floor(available / 5) : 1 + (i % 4),
    );
    const answers = await Promise.all(
      asks.map((points) =>
        api.inject('POST', '/v1/redemptions', {
          member_id,
          brand_id: 'northwind',
          points,
          capture: true,
          idempotency_key: uid('many'),
        }),
      ),
    );
    for (const a of answers) assert.equal(a.statusCode, 201, a.body);
    // On PostgreSQL they arrive together; PGlite serves one request at a time.
    if (process.env.DATABASE_URL) assert.ok(statsOf(t.ctx).redemptions > shared.redemptions, 'shared');
    const got = taken(before, await lotsOf(member_id));
    // In spend order: lots emptied, then at most one lot taken in part, then untouched ones.
    const order = orderLotsForSpend(
      spendable(
        before.filter((l) => l.program_id === 'northwind-stars'),
        api.clock.now(),
      ),
    );
    let state: 'emptied' | 'untouched' = 'emptied';
    for (const l of order) {
      const x = got.get(l.id) ?? 0n;
      if (state === 'emptied' && x === l.spendable_pt4) continue;
      if (state === 'untouched') assert.equal(x, 0n, `lot ${l.id} touched after a lot left with points`);
      state = 'untouched';
    }
    assert.ok(got.size > PREFIX_LOTS, `${got.size} lots taken`);
    const debited = [...got.values()].reduce((s, x) => s + x, 0n);
    assert.equal(debited, pt4(asks.reduce((s, x) => s + x, 0)));
    assert.equal((await api.verify()).ok, true);
  });
});
