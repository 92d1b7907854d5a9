// Under an inactivity expiry policy every open lot of a member in a program expires `days` after
// the member's latest activity. A LATE purchase (dated before that activity, accepted within the
// late window) earns a lot that expires with the member's other lots, at their current deadline,
// not alone at its own transaction time + days (src/services/events/accrual-entry.ts lotExpiry),
// on the single-event path and the bulk batch path alike. Through the HTTP API, on PGlite (or
// PostgreSQL with DATABASE_URL). Fixture: summit-miles (store_lon_001, GBP) set to inactivity 30
// days, 2 miles per 100 pence, a 100-mile referral bonus; acme-points stays rolling 365 days.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

const NOW = '2026-03-10T12:00:00.000Z';
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
const MILES = 'summit-miles';
const clock = new ManualClock(NOW);
let t: TestService;

before(async () => {
  t = await createTestService({ clock });
  const doc = demoConfigDoc();
  const miles = doc.programs.find((p) => p.id === MILES)!;
  miles.expiry = { kind: 'inactivity', days: 30 };
  miles.referral = { bonus_points: '100', min_spend_minor: 1000 };
  await applyDemoConfig(t.app, doc);
});
after(async () => {
  await t?.close();
});

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ago = (hours: number): string => new Date(Date.parse(NOW) - hours * HOUR_MS).toISOString();
const plus = (iso: string, ms: number): string => new Date(Date.parse(iso) + ms).toISOString();
let seq = 0;
const uid = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;

/** A £30 purchase at summit: 60 miles (and 3 acme-points). */
function purchase(member_id: string, ts: string): Json {
  const event_id = uid('evt');
  return {
    event_id,
    event_type: 'purchase_completed',
    member_id,
    channel: 'in_store',
    store_id: 'store_lon_001',
    transaction_id: `txn_${event_id}`,
    transaction_ts: ts,
    currency: 'GBP',
    line_items: [
      {
        sku: 'SKU-SHIRT',
        category: 'shirts',
        unit_price_cents: 3000,
        quantity: 1,
        eligible_for_points: true,
      },
    ],
    subtotal_cents: 3000,
    eligible_subtotal_cents: 3000,
    idempotency_key: `key_${event_id}`,
  };
}

const accrual = (body: Json, program_id: string): Json => {
  const a = body.accruals.find((x: Json) => x.program_id === program_id);
  assert.ok(a, `no accrual in ${program_id}: ${JSON.stringify(body)}`);
  return a;
};

async function postOk(ev: Json): Promise<Json> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/events', headers: t.adminHeaders, payload: ev });
  assert.equal(res.statusCode, 201, res.body);
  return res.json<Json>();
}

async function batch(events: Json[]): Promise<Json[]> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/events/batch',
    headers: t.adminHeaders,
    payload: { events },
  });
  assert.equal(res.statusCode, 200, res.body);
  const results = res.json<Json>().results as Json[];
  for (const r of results) assert.equal(r.status, 'accepted', JSON.stringify(r));
  return results;
}

/** The stored expiry of each of the member's open lots in the program, sorted. */
async function lotExpiries(member_id: string, program_id: string): Promise<string[]> {
  const rows = await t.ctx.db
    .selectFrom('lots')
    .select('expires_at')
    .where('member_id', '=', member_id)
    .where('program_id', '=', program_id)
    .where('open', '=', true)
    .execute();
  return rows.map((r) => new Date(r.expires_at!).toISOString()).sort();
}

async function available(member_id: string, program_id: string): Promise<number> {
  const res = await t.app.inject({
    method: 'GET',
    url: `/v1/members/${member_id}/balances`,
    headers: t.adminHeaders,
  });
  assert.equal(res.statusCode, 200, res.body);
  return res.json<Json>().programs.find((p: Json) => p.program_id === program_id)?.available ?? 0;
}

async function assertVerifyOk(): Promise<void> {
  const res = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
  const v = res.json<Json>();
  assert.equal(v.ok, true, JSON.stringify(v.checks.filter((c: Json) => !c.ok)));
}

async function runExpire(as_of: string): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/jobs/expire/run',
    headers: t.adminHeaders,
    payload: { as_of },
  });
  assert.equal(res.statusCode, 200, res.body);
}

void describe('inactivity expiry of a late event', () => {
  void it("a late purchase's lot expires at the member's current deadline, not alone before it", async () => {
    const m = uid('mbr_late');
    const onTime = await postOk(purchase(m, ago(1)));
    const deadline = plus(ago(1), 30 * DAY_MS);
    assert.equal(accrual(onTime, MILES).expires_at, deadline);

    const late = await postOk(purchase(m, ago(48)));
    assert.equal(accrual(late, MILES).expires_at, deadline);
    assert.deepEqual(await lotExpiries(m, MILES), [deadline, deadline]);
    // The default program's rolling policy is its own: the late lot keeps its own expiry.
    assert.equal(accrual(late, 'acme-points').expires_at, plus(ago(48), 365 * DAY_MS));

    // At the late event's own ts + 30 days nothing expires: the member was active since.
    await runExpire(plus(ago(48), 30 * DAY_MS));
    assert.equal(await available(m, MILES), 120);
    await runExpire(deadline);
    assert.equal(await available(m, MILES), 0);
    await assertVerifyOk();
  });

  for (const path of ['single', 'batch'] as const)
    void it(`a lot that expired between a late event and its arrival stays expired, swept or not (${path})`, async () => {
      const m = uid('mbr_expired');
      clock.set(ago(30 * 24)); // 30 days before NOW
      await postOk(purchase(m, ago(30 * 24 + 1)));
      const first = ago(1); // its lot expired an hour before NOW and is not swept
      clock.set(NOW);
      // Dated an hour before that lot expired, arriving after: it cannot bring the lot back.
      const lateTs = ago(2);
      const late =
        path === 'single'
          ? await postOk(purchase(m, lateTs))
          : // Two members, so the bulk path takes the round.
            (await batch([purchase(m, lateTs), purchase(uid('mbr_other'), ago(1))]))[0]!;
      assert.equal(accrual(late, MILES).expires_at, plus(lateTs, 30 * DAY_MS));
      assert.deepEqual(await lotExpiries(m, MILES), [first, plus(lateTs, 30 * DAY_MS)].sort());
      assert.equal(await available(m, MILES), 60);
      await runExpire(NOW);
      assert.equal(await available(m, MILES), 60);
      await assertVerifyOk();
    });

  void it('an event later than the latest activity moves everything out to its own deadline, never in', async () => {
    const m = uid('mbr_ontime');
    await postOk(purchase(m, ago(60)));
    const b = await postOk(purchase(m, ago(48)));
    const deadline = plus(ago(48), 30 * DAY_MS);
    assert.equal(accrual(b, MILES).expires_at, deadline);
    assert.deepEqual(await lotExpiries(m, MILES), [deadline, deadline]);
    await assertVerifyOk();
  });

  void it("a referral bonus paid by a late purchase joins the referrer's lots at their deadline", async () => {
    const [referrer, referred] = [uid('mbr_referrer'), uid('mbr_referred')];
    await postOk(purchase(referrer, ago(1)));
    const event_id = uid('ref');
    await postOk({
      event_id,
      event_type: 'member_referred',
      member_id: referred,
      referrer_member_id: referrer,
      channel: 'in_store',
      store_id: 'store_lon_001',
      transaction_id: `txn_${event_id}`,
      transaction_ts: ago(60),
      currency: 'GBP',
      idempotency_key: `key_${event_id}`,
    });
    const paid = await postOk(purchase(referred, ago(48)));
    assert.equal(paid.referral_bonus?.points, 100, JSON.stringify(paid));
    const deadline = plus(ago(1), 30 * DAY_MS);
    assert.deepEqual(await lotExpiries(referrer, MILES), [deadline, deadline]);
    await assertVerifyOk();
  });

  void it('the bulk batch path gives the late lot the same deadline as the events one by one', async () => {
    const [m1, m2, s1] = [uid('mbr_batch'), uid('mbr_batch'), uid('mbr_single')];
    // Two members, each with an on-time and a late purchase: two bulk rounds of two.
    const results = await batch([
      purchase(m1, ago(1)),
      purchase(m2, ago(2)),
      purchase(m1, ago(50)),
      purchase(m2, ago(40)),
    ]);
    assert.equal(accrual(results[2]!, MILES).expires_at, plus(ago(1), 30 * DAY_MS));
    assert.equal(accrual(results[3]!, MILES).expires_at, plus(ago(2), 30 * DAY_MS));
    assert.deepEqual(await lotExpiries(m1, MILES), [plus(ago(1), 30 * DAY_MS), plus(ago(1), 30 * DAY_MS)]);
    assert.deepEqual(await lotExpiries(m2, MILES), [plus(ago(2), 30 * DAY_MS), plus(ago(2), 30 * DAY_MS)]);

    // The same events one by one.
    await postOk(purchase(s1, ago(1)));
    const single = await postOk(purchase(s1, ago(50)));
    assert.equal(accrual(single, MILES).expires_at, accrual(results[2]!, MILES).expires_at);
    assert.deepEqual(await lotExpiries(s1, MILES), await lotExpiries(m1, MILES));
    await assertVerifyOk();
  });
});
