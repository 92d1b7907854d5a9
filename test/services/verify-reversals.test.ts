import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { checksFailingAfter } from '../helpers/verify-rollback.ts';
import type { TestService } from '../helpers/store.ts';
import { serviceWithApi, shirt, uid, type AnyDb, type Api, type Json } from '../api/lifecycle-helpers.ts';

// DESIGN invariants 4, 5 and 7 as `verify` re-derives them from the stored rows: an order id is
// accepted as one purchase, a purchase's reversals never take back more points than it awarded
// nor return more of a sku than it sold (voided at most once), and no column holds a float. A
// ledger of refunds, voids and a BOPIS twin passes; each corruption, planted in a transaction
// that is rolled back, fails exactly the check that guards it.

const NOW = '2026-11-20T12:00:00.000Z';
const NEW_CHECKS = [
  'orders_accrued_once',
  'reversals_within_earned',
  'refunds_within_purchase',
  'no_float_columns',
];

void describe('verify: orders, reversals and refunds within their purchase, no floats', () => {
  let t: TestService, api: Api, db: AnyDb;
  let small: Json, big: Json, twinned: Json;
  before(async () => {
    ({ t, api, db } = await serviceWithApi(NOW));
    const member = uid('mbr_v');
    // $20 shirt × 2 and $80 jacket: refunded one shirt, then the other, then voided.
    big = await api.purchase(member, 'store_atl_012', [
      shirt(2000, 2),
      { sku: 'JACKET', category: 'coats', unit_price_cents: 8000, quantity: 1 },
    ]);
    await api.refund(big, [shirt(2000)]);
    await api.refund(big, [shirt(2000)]);
    await api.reverse(big, 'purchase_voided');
    small = await api.purchase(member, 'store_atl_012', [shirt(1000)]);
    // A web order the till sent again: the till's refund names its own (duplicate) event id.
    const order_id = uid('ord');
    twinned = await api.purchase(member, 'web_northwind', [shirt(3000, 2)], { order_id });
    const pos = api.purchaseEvent(member, 'store_atl_012', [shirt(3000, 2)], { order_id });
    assert.equal((await api.post('/v1/events', pos, 200)).duplicate_of, twinned.event_id);
    await api.refund({ event: pos }, [shirt(3000)]);
  });
  after(async () => t?.close());

  /** The failing checks after `corrupt`, rolled back, as "name: detail". */
  const failedAfter = async (corrupt: (trx: AnyDb) => Promise<void>) =>
    (await checksFailingAfter(db, corrupt)).map((c) => `${c.name}: ${c.detail}`);

  const names = (failed: string[]) => failed.map((f) => f.slice(0, f.indexOf(':')));

  void it('a ledger of refunds, voids and a refunded BOPIS twin passes every check', async () => {
    const report = await api.assertVerifyOk();
    const checked = (report.checks as Json[]).map((c) => c.name as string);
    for (const name of NEW_CHECKS) assert.ok(checked.includes(name), name);
  });

  void it('reversals_within_earned: reversals credited to a purchase that awarded less', async () => {
    // The big purchase's reversals, pinned on the small one (entries are append-only: the guard
    // trigger is set aside inside the rolled-back transaction, as an operator with DDL rights could).
    const failed = await failedAfter(async (trx) => {
      await sql`alter table entries disable trigger entries_append_only`.execute(trx);
      await sql`update entries set ref_id = ${small.event_id}
        where kind = 'reversal' and ref_type = 'event' and ref_id = ${big.event_id}`.execute(trx);
    });
    assert.deepEqual(names(failed), ['reversals_within_earned']);
    assert.match(failed[0]!, new RegExp(small.event_id as string));
  });

  void it('refunds_within_purchase: more of a sku returned than sold', async () => {
    const failed = await failedAfter(async (trx) => {
      await disableEventGuards(trx);
      // The twin's refund (of 1 of its 2 shirts) now returns 3.
      await sql`update events set payload = jsonb_set(payload::jsonb, '{line_items,0,quantity}', '3')::json
        where event_type = 'purchase_refunded' and reversal_of <> ${big.event_id}`.execute(trx);
    });
    assert.deepEqual(names(failed), ['refunds_within_purchase']);
    assert.match(failed[0]!, /sku SKU-SHIRT: 3 returned of 2 sold/);
    assert.match(failed[0]!, new RegExp(twinned.event_id as string));
  });

  void it('refunds_within_purchase: a purchase voided twice', async () => {
    const failed = await failedAfter(async (trx) => {
      await disableEventGuards(trx);
      await sql`update events set event_type = 'purchase_voided'
        where event_type = 'purchase_refunded' and reversal_of = ${big.event_id}`.execute(trx);
    });
    assert.deepEqual(names(failed), ['refunds_within_purchase']);
    assert.match(failed[0]!, /voided 3 times/);
  });

  void it('reports rather than fails on payloads it did not expect', async () => {
    // A purchase whose line_items is not an array sold nothing it can name; a refund line whose
    // quantity is not a number returns nothing. Neither stops verify.
    const failed = await failedAfter(async (trx) => {
      await disableEventGuards(trx);
      await sql`update events set payload = jsonb_set(payload::jsonb, '{line_items}', '{"0": 1}')::json
        where event_id = ${big.event_id}`.execute(trx);
      await sql`update events set payload = jsonb_set(payload::jsonb, '{line_items,0,quantity}', '"one"')::json
        where event_type = 'purchase_refunded' and reversal_of = ${twinned.event_id}`.execute(trx);
    });
    assert.deepEqual(names(failed), ['refunds_within_purchase']);
    assert.match(failed[0]!, /sku SKU-SHIRT: 2 returned of 0 sold/);
    assert.doesNotMatch(failed[0]!, new RegExp(twinned.event_id as string));
  });

  void it('orders_accrued_once: one order id accepted as two purchases', async () => {
    const failed = await failedAfter(async (trx) => {
      await sql`drop index events_purchase_order`.execute(trx);
      await disableEventGuards(trx);
      await sql`update events set order_id = ${twinned.event.order_id as string}
        where event_id = ${small.event_id}`.execute(trx);
    });
    assert.deepEqual(names(failed), ['orders_accrued_once']);
  });

  void it('no_float_columns: a double precision column anywhere in the store', async () => {
    const failed = await failedAfter(async (trx) => {
      await sql`alter table lots add column rate double precision`.execute(trx);
    });
    assert.deepEqual(names(failed), ['no_float_columns']);
    assert.match(failed[0]!, /"table_name":"lots","column_name":"rate"/);
  });

  /** Events rows may be guarded against updates: set the guards aside like an operator could. */
  async function disableEventGuards(trx: AnyDb): Promise<void> {
    const { rows } = await sql<{ tgname: string }>`
      select tgname from pg_trigger where tgrelid = 'events'::regclass and not tgisinternal`.execute(trx);
    for (const { tgname } of rows)
      await sql`alter table events disable trigger ${sql.id(tgname)}`.execute(trx);
  }
});
