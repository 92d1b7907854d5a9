import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import type { TestService } from '../helpers/store.ts';
import { serviceWithApi, type AnyDb, type Api, shirt, uid, type Json } from './lifecycle-helpers.ts';

// An event sent again under its idempotency key answers 200 `duplicate`, `replayed: true`, with
// the first answer as `original`, whichever path answered it first (one by one, a batch's bulk
// transaction). An accepted event's key keeps what its claim wrote ({event_id}, status 0): the
// events row recorded under the key holds the answer, so the key row is written once. Any other
// answer (a duplicate's) is stored in the key itself.

const NOW = '2026-11-20T12:00:00.000Z';

void describe('replaying an event by its idempotency key', () => {
  let t: TestService, api: Api, db: AnyDb;
  before(async () => ({ t, api, db } = await serviceWithApi(NOW)));
  after(async () => t?.close());

  const key = async (k: string) =>
    db
      .selectFrom('idempotency_keys')
      .select(['status_code', 'response'])
      .where('scope', '=', 'event')
      .where('key', '=', k)
      .executeTakeFirstOrThrow();
  const replayOf = async (event: Json, first: Json) => {
    const again = await api.post('/v1/events', event, 200);
    assert.deepEqual(again, {
      status: 'duplicate',
      event_id: event.event_id,
      duplicate_of: first.duplicate_of ?? event.event_id,
      replayed: true,
      original: first,
    });
  };

  void it('an accepted event, one by one or in a batch: the replay answers its first answer', async () => {
    const one = api.purchaseEvent(uid('rp'), 'store_atl_012', [shirt(4200)]);
    const first = await api.post('/v1/events', one);
    assert.equal(first.status, 'accepted');
    assert.deepEqual(await key(one.idempotency_key), {
      status_code: 0,
      response: { event_id: one.event_id },
    });
    await replayOf(one, first);

    const batch = [uid('rp'), uid('rp')].map((m) => api.purchaseEvent(m, 'web_northwind', [shirt(3100)]));
    const answers = (await api.post('/v1/events/batch', { events: batch }, 200)).results as Json[];
    for (const [i, ev] of batch.entries()) {
      const { http_status, ...body } = answers[i]!;
      assert.equal(http_status, 201);
      assert.deepEqual(await key(ev.idempotency_key), {
        status_code: 0,
        response: { event_id: ev.event_id },
      });
      await replayOf(ev, body);
    }
    // A batch resend answers the same replays.
    const resent = (await api.post('/v1/events/batch', { events: batch }, 200)).results as Json[];
    for (const [i, r] of resent.entries()) {
      const { http_status, ...body } = answers[i]!;
      assert.equal(http_status, 201);
      assert.equal(r.http_status, 200);
      assert.deepEqual(r.original, body);
    }
  });

  void it('a duplicate (the same order again) keeps its own answer under its key', async () => {
    const order_id = uid('ord');
    const m = uid('rp');
    await api.post('/v1/events', api.purchaseEvent(m, 'store_atl_012', [shirt(2500)], { order_id }));
    const twin = api.purchaseEvent(m, 'store_atl_012', [shirt(2500)], { order_id });
    const first = await api.post('/v1/events', twin, 200);
    assert.equal(first.status, 'duplicate');
    assert.equal((await key(twin.idempotency_key)).status_code, 200);
    await replayOf(twin, first);
  });

  void it('the replay answers the outcome stored with the event, not the event recomputed', async () => {
    const ev = api.purchaseEvent(uid('rp'), 'store_atl_012', [shirt(5000)]);
    const first = await api.post('/v1/events', ev);
    await sql`
      update events set outcome = jsonb_build_object('status', 'accepted', 'stored', 'with the event')
      where event_id = ${ev.event_id}::text`.execute(db);
    const again = await api.post('/v1/events', ev, 200);
    assert.deepEqual(again.original, { status: 'accepted', stored: 'with the event' });
    assert.notDeepEqual(again.original, first);
  });

  void it('an answer written into the key (as before, or a duplicate) is the one replayed', async () => {
    // Stores written before keys were answered by their events hold the answer in the key.
    const ev = api.purchaseEvent(uid('rp'), 'store_atl_012', [shirt(5100)]);
    await api.post('/v1/events', ev);
    await sql`
      update idempotency_keys set status_code = 201, response = jsonb_build_object('event_id', ${ev.event_id}::text,
        'body', jsonb_build_object('status', 'accepted', 'stored', 'under the key'))
      where scope = 'event' and key = ${ev.idempotency_key}::text`.execute(db);
    const again = await api.post('/v1/events', ev, 200);
    assert.deepEqual(again.original, { status: 'accepted', stored: 'under the key' });
  });

  void it('verify finds an event key that neither holds an answer nor names a recorded event', async () => {
    const check = async () =>
      ((await api.verify()).checks as Json[]).find((c) => c.name === 'event_keys_answered')!;
    assert.equal((await check()).ok, true);
    const lost = uid('key');
    await sql`
      insert into idempotency_keys (scope, key, request_hash, status_code, response, created_at)
      values ('event', ${lost}, 'h', 0, jsonb_build_object('event_id', ${uid('ev')}::text), now())`.execute(
      db,
    );
    try {
      const c = await check();
      assert.equal(c.ok, false);
      assert.match(String(c.detail), new RegExp(lost));
    } finally {
      await sql`delete from idempotency_keys where scope = 'event' and key = ${lost}`.execute(db);
    }
    assert.equal((await check()).ok, true);
  });
});
