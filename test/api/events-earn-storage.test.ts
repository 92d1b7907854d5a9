import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { TestService } from '../helpers/store.ts';
import { serviceWithApi, type AnyDb, type Api, uid, type Json, type Line } from './lifecycle-helpers.ts';

// A purchase's earn explanation (per program, per line: what a refund or void takes back) is
// stored once: in its accrual entry's detail, with events.earn holding the entry's id; only a
// purchase that posted no entry (it earned nothing) keeps the explanation in events.earn. Rows
// written before kept it in both places; they must reverse exactly as the new ones do.

const NOW = '2026-11-20T12:00:00.000Z';
const line = (sku: string, cents: number, quantity: number, eligible = true): Line => ({
  sku,
  category: 'shirts',
  unit_price_cents: cents,
  quantity,
  eligible_for_points: eligible,
});

void describe("a purchase's earn explanation is stored once", () => {
  let t: TestService, api: Api, db: AnyDb;
  before(async () => ({ t, api, db } = await serviceWithApi(NOW)));
  after(async () => t?.close());

  const storedEarn = async (event_id: string) =>
    (await db.selectFrom('events').select('earn').where('event_id', '=', event_id).executeTakeFirstOrThrow())
      .earn as Json;

  void it('in the entry when the purchase posted one, in events.earn when it did not; on both paths', async () => {
    const one = await api.purchase(uid('es_one'), 'store_atl_012', [line('A', 2500, 2)]);
    const batched = [uid('es_batch'), uid('es_batch')].map((m) =>
      api.purchaseEvent(m, 'store_atl_012', [line('A', 2500, 2)]),
    );
    const res = await api.post('/v1/events/batch', { events: batched }, 200);
    assert.deepEqual(
      res.results.map((r: Json) => r.http_status),
      [201, 201],
    );
    for (const id of [one.event_id, batched[0]!.event_id]) {
      const earn = await storedEarn(id);
      assert.equal(earn.programs, undefined, `${id}: no copy in events.earn`);
      const entry = await db
        .selectFrom('entries')
        .select('detail')
        .where('id', '=', BigInt(earn.entry_id))
        .executeTakeFirstOrThrow();
      assert.deepEqual(Object.keys((entry.detail as Json).earn).sort(), ['acme-points', 'northwind-stars']);
    }
    const nothing = await api.purchase(uid('es_none'), 'store_atl_012', [line('X', 2500, 1, false)]);
    const earn = await storedEarn(nothing.event_id);
    assert.equal(earn.entry_id, null);
    assert.deepEqual(Object.keys(earn.programs).sort(), ['acme-points', 'northwind-stars']);
    // What earned nothing can still be voided (by its explanation here, not an entry's).
    assert.equal((await api.reverse(nothing, 'purchase_voided')).status, 'accepted');
  });

  void it('a purchase stored with the explanation in events.earn too (before) reverses as a new one does', async () => {
    const lines = [line('A', 2500, 2), line('B', 1999, 3)];
    const made = [
      await api.purchase(uid('es_new'), 'store_atl_012', lines),
      await api.purchase(uid('es_old'), 'store_atl_012', lines),
    ];
    // The old layout: events.earn carried the explanations beside the entry's id.
    await sql`
      update events e set earn = e.earn::jsonb || jsonb_build_object('programs', en.detail->'earn')
      from entries en where e.event_id = ${made[1]!.event_id} and en.id = (e.earn->>'entry_id')::int8`.execute(
      db,
    );
    assert.ok((await storedEarn(made[1]!.event_id)).programs);
    const answers = [];
    for (const p of made) {
      const refund = await api.refund(p, [line('B', 1999, 2)]);
      const voided = await api.reverse(p, 'purchase_voided');
      answers.push([refund.reversed, voided.reversed]);
    }
    assert.deepEqual(answers[1], answers[0]);
    assert.ok(
      answers[0]![0].some((r: Json) => r.points > 0),
      'the refund took points back',
    );
    const [a, b] = [await api.balances(made[0]!.member_id), await api.balances(made[1]!.member_id)];
    assert.ok(Object.keys(a).length > 0);
    assert.deepEqual(b, a);
    assert.equal((await api.verify()).ok, true);
  });
});
