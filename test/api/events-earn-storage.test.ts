import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

// A purchase's earn explanation (per program, per line: what a refund or void takes back) is
// stored once: in its accrual entry's detail, with events.earn holding the entry's id; only a
// purchase that posted no entry (it earned nothing) keeps the explanation in events.earn. Rows
// written before kept it in both places; they must reverse exactly as the new ones do.

const NOW = '2026-11-20T12:00:00.000Z';
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const line = (sku: string, cents: number, quantity: number, eligible = true) => ({
  sku,
  category: 'shirts',
  unit_price_cents: cents,
  quantity,
  eligible_for_points: eligible,
});

function purchase(member: string, key: string, lines: ReturnType<typeof line>[]) {
  const total = lines.reduce((n, l) => n + l.unit_price_cents * l.quantity, 0);
  return {
    event_id: `ev_${key}`,
    event_type: 'purchase_completed',
    member_id: member,
    channel: 'in_store',
    store_id: 'store_atl_012',
    transaction_id: `tx_${key}`,
    transaction_ts: new Date(Date.parse(NOW) - 3_600_000).toISOString(),
    order_id: `ord_${key}`,
    currency: 'USD',
    line_items: lines,
    subtotal_cents: total,
    eligible_subtotal_cents: lines
      .filter((l) => l.eligible_for_points)
      .reduce((n, l) => n + l.unit_price_cents * l.quantity, 0),
    idempotency_key: `idem_${key}`,
  };
}

function reversal(
  p: Json,
  key: string,
  type: 'purchase_refunded' | 'purchase_voided',
  lines?: ReturnType<typeof line>[],
) {
  return {
    event_id: `ev_${key}`,
    event_type: type,
    member_id: p.member_id,
    channel: p.channel,
    store_id: p.store_id,
    transaction_id: `tx_${key}`,
    transaction_ts: new Date(Date.parse(NOW) - 60_000).toISOString(),
    currency: p.currency,
    reversal_of: p.event_id,
    ...(lines ? { line_items: lines } : {}),
    idempotency_key: `idem_${key}`,
  };
}

void describe("a purchase's earn explanation is stored once", () => {
  let t: TestService;
  let db: Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  before(async () => {
    t = await createTestService({ clock: new ManualClock(NOW) });
    await applyDemoConfig(t.app);
    db = t.ctx.db as Kysely<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  });
  after(async () => t?.close());

  const post = async (event: object, url = '/v1/events') => {
    const res = await t.app.inject({ method: 'POST', url, headers: t.adminHeaders, payload: event });
    assert.ok(res.statusCode < 300, res.body);
    return res.json<Json>();
  };
  const storedEarn = async (event_id: string) =>
    (await db.selectFrom('events').select('earn').where('event_id', '=', event_id).executeTakeFirstOrThrow())
      .earn as Json;
  const balances = async (member: string) =>
    (
      await t.app.inject({ method: 'GET', url: `/v1/members/${member}/balances`, headers: t.adminHeaders })
    ).json<Json>();

  void it('in the entry when the purchase posted one, in events.earn when it did not; on both paths', async () => {
    const one = purchase('es_one', 'es_one', [line('A', 2500, 2)]);
    await post(one);
    const batched = purchase('es_batch', 'es_batch', [line('A', 2500, 2)]);
    const other = purchase('es_batch2', 'es_batch2', [line('B', 1200, 1)]);
    await post({ events: [batched, other] }, '/v1/events/batch');
    for (const id of [one.event_id, batched.event_id]) {
      const earn = await storedEarn(id);
      assert.equal(earn.programs, undefined, `${id}: no copy in events.earn`);
      const entry = await db
        .selectFrom('entries')
        .select('detail')
        .where('id', '=', BigInt(earn.entry_id))
        .executeTakeFirstOrThrow();
      assert.deepEqual(Object.keys((entry.detail as Json).earn).sort(), ['acme-points', 'northwind-stars']);
    }
    const nothing = purchase('es_none', 'es_none', [line('X', 2500, 1, false)]);
    await post(nothing);
    const earn = await storedEarn(nothing.event_id);
    assert.equal(earn.entry_id, null);
    assert.deepEqual(Object.keys(earn.programs).sort(), ['acme-points', 'northwind-stars']);
    // What earned nothing can still be voided (by its explanation here, not an entry's).
    const v = await post(reversal(nothing, 'es_none_void', 'purchase_voided'));
    assert.equal(v.status, 'accepted');
  });

  void it('a purchase stored with the explanation in events.earn too (before) reverses as a new one does', async () => {
    const lines = [line('A', 2500, 2), line('B', 1999, 3)];
    const made = ['es_new', 'es_old'].map((m) => purchase(m, m, lines));
    for (const p of made) await post(p);
    // The old layout: events.earn carried the explanations beside the entry's id.
    await sql`
      update events e set earn = e.earn || jsonb_build_object('programs', en.detail->'earn')
      from entries en where e.event_id = ${made[1]!.event_id} and en.id = (e.earn->>'entry_id')::int8`.execute(
      db,
    );
    assert.ok((await storedEarn(made[1]!.event_id)).programs);
    const answers = [];
    for (const [i, p] of made.entries()) {
      const refund = await post(reversal(p, `${p.member_id}_r`, 'purchase_refunded', [line('B', 1999, 2)]));
      const voided = await post(reversal(p, `${p.member_id}_v`, 'purchase_voided'));
      answers.push([refund.reversed, voided.reversed]);
      assert.equal(voided.status, 'accepted', `purchase ${i}`);
    }
    assert.deepEqual(answers[1], answers[0]);
    assert.ok(
      answers[0]![0].some((r: Json) => r.points > 0),
      'the refund took points back',
    );
    const [a, b] = [await balances('es_new'), await balances('es_old')];
    assert.ok(a.programs.length > 0);
    assert.deepEqual(b.programs, a.programs);
    const verify = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
    assert.equal(verify.json<Json>().ok, true, verify.body);
  });
});
