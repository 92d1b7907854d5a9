// A query parameter a route does not take is refused with 400 INVALID_REQUEST naming it
// (`querystring.<name>`) and listing the ones the route takes, before anything is read or written:
// a mistyped `?asof=` would otherwise answer as of now. The parameters CONTRACT.md names still
// work; public routes (health, metrics) ignore the query; a caller without a key still gets 401.

import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { ManualClock } from '../../src/clock.ts';
import { Api, assertError, uid } from './lifecycle-helpers.ts';

const api = Api.forTests(new ManualClock('2026-11-20T12:00:00.000Z'));

void describe('query parameters a route does not take', () => {
  void it('are refused with the parameter named and the route’s own listed', async () => {
    const m = uid('mbr_q');
    await api.buy(m, 'northwind', 5_000);
    const typo = assertError(
      await api.inject('GET', `/v1/members/${m}/balances?asof=2026-01-01T00:00:00Z`),
      400,
      'INVALID_REQUEST',
    );
    assert.equal(typo.details.field, 'querystring.asof');
    assert.match(typo.message as string, /takes as_of\)/);
    const none = assertError(await api.inject('GET', '/v1/ledger/verify?fast=true'), 400, 'INVALID_REQUEST');
    assert.equal(none.details.field, 'querystring.fast');
    assert.match(none.message as string, /takes none/);
    // One unknown among known ones is enough.
    const mixed = assertError(
      await api.inject('GET', `/v1/members/${m}/activity?limit=5&page=2`),
      400,
      'INVALID_REQUEST',
    );
    assert.equal(mixed.details.field, 'querystring.page');
  });

  void it('refuse a write before it happens', async () => {
    const m = uid('mbr_q');
    await api.buy(m, 'northwind', 5_000);
    const before = await api.available(m);
    const ev = api.purchaseEvent(m, 'store_atl_012', [{ sku: 'X', unit_price_cents: 9_000, quantity: 1 }]);
    const res = await api.inject('POST', '/v1/events?dry_run=true', ev);
    assert.equal(assertError(res, 400, 'INVALID_REQUEST').details.field, 'querystring.dry_run');
    const redeem = await api.inject('POST', '/v1/redemptions?capture=false', {
      member_id: m,
      brand_id: 'northwind',
      points: 10,
      idempotency_key: uid('rdm'),
    });
    assert.equal(assertError(redeem, 400, 'INVALID_REQUEST').details.field, 'querystring.capture');
    assert.deepEqual(await api.available(m), before);
    // The same event without the parameter is new: the refused request recorded nothing.
    assert.equal((await api.post('/v1/events', ev)).status, 'accepted');
  });

  void it('leave the parameters CONTRACT.md names working, and public routes alone', async () => {
    const m = uid('mbr_q');
    await api.buy(m, 'northwind', 5_000);
    const asOf = encodeURIComponent(api.clock.now().toISOString());
    for (const url of [
      `/v1/members/${m}/balances?as_of=${asOf}`,
      `/v1/members/${m}/activity?limit=2`,
      `/v1/members/${m}/redeemable?points=5&brand_id=northwind&program_id=northwind-stars`,
      `/v1/members/${m}/redeemable?points=5&brand_id=northwind&group_redemption=true`,
      `/v1/settlement/positions?from=2026-11-01T00:00:00Z&to=${asOf}`,
    ]) {
      const res = await api.inject('GET', url);
      assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    }
    const health = await api.t.app.inject({ method: 'GET', url: '/healthz?probe=1' });
    assert.equal(health.statusCode, 200, health.body);
    // Without a key the answer is 401 whatever the query says.
    const anonymous = await api.t.app.inject({ method: 'GET', url: '/v1/ledger/verify?fast=true' });
    assertError(anonymous, 401, 'UNAUTHENTICATED');
  });
});
