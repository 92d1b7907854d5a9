// An event that would earn more points than a ledger account can hold (a configuration with an
// exact but absurd earn rate) is refused as INVALID_EVENT on subtotal_cents and kept at
// /v1/rejections, on the single-event path and in a batch; nothing is posted and verify stays ok.
// PGlite memory:// (or PostgreSQL with DATABASE_URL).

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { demoConfigDoc } from '../fixtures/config.ts';
import type { TestService } from '../helpers/store.ts';
import { serviceWithApi, shirt, uid, type Api, type Json } from './lifecycle-helpers.ts';

let t: TestService | undefined;
let api: Api;

before(async () => {
  const doc = demoConfigDoc() as Json;
  // 10^29 points per 100 cents: valid as a decimal, beyond any account for any real purchase.
  const stars = (doc.programs as Json[]).find((p) => p.id === 'northwind-stars')!;
  stars.earn.points = `1${'0'.repeat(29)}`;
  delete stars.caps; // no per-event cap to save it
  const s = await serviceWithApi('2026-06-10T00:00:00.000Z', doc);
  t = s.t;
  api = s.api;
});
after(async () => {
  await t?.close();
});

async function listed(event_id: string): Promise<Json | undefined> {
  const page = await api.get('/v1/rejections?code=INVALID_EVENT&limit=500');
  return (page.data as Json[]).find((r) => r.event_id === event_id);
}

void describe('an event that would earn more than an account can hold', () => {
  void it('is refused with 422 INVALID_EVENT on subtotal_cents, kept, and changes nothing', async () => {
    const m = uid('mbr');
    const ev = api.purchaseEvent(m, 'store_atl_012', [shirt(10_000)]);
    const res = await api.inject('POST', '/v1/events', ev);
    assert.equal(res.statusCode, 422, res.body);
    const err = res.json<Json>().error;
    assert.equal(err.code, 'INVALID_EVENT');
    assert.equal(err.details.field, 'subtotal_cents');
    assert.match(err.message, /northwind-stars/);
    assert.ok(err.details.rejection_id);
    const kept = await listed(ev.event_id as string);
    assert.equal(kept?.field, 'subtotal_cents');
    const member = await api.inject('GET', `/v1/members/${m}/balances`);
    assert.equal(member.statusCode, 404, member.body);
  });

  void it('in a batch: that event is refused and kept, the others are accepted', async () => {
    const m = uid('mbr');
    const huge = api.purchaseEvent(m, 'store_atl_012', [shirt(10_000)]);
    const fine = api.purchaseEvent(m, 'store_ber_001', [shirt(10_000)]);
    const res = await api.inject('POST', '/v1/events/batch', { events: [huge, fine] });
    assert.equal(res.statusCode, 200, res.body);
    const [a, b] = res.json<{ results: Json[] }>().results;
    assert.equal(a!.http_status ?? a!.status, 422, JSON.stringify(a));
    assert.equal(b!.status, 'accepted', JSON.stringify(b));
    assert.equal((await listed(huge.event_id as string))?.field, 'subtotal_cents');
    assert.equal((await api.verify()).ok, true);
  });
});
