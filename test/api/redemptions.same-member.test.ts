// Concurrent redemptions of one member share a transaction (src/services/redemptions/shared.ts):
// one lock, one commit, each redemption in its own savepoint. Whatever way they are grouped, every
// request must get the answer it would have got alone: exactly as many succeed as the balance
// allows, the refused ones change nothing, a replayed key answers its original, a reused key with
// another body is refused, every request has exactly one audit row with its own status, and the
// ledger verifies. On PostgreSQL the test also checks that sharing happened at all (the service's
// counters, also in /metrics), so it would notice the coalescing being switched off.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import { statsOf } from '../../src/services/redemptions/shared.ts';
import { applyDemoConfig, createTestService, isPostgres, type TestService } from '../helpers/store.ts';

const clock = new ManualClock('2026-06-10T00:00:00.000Z');
let t: TestService;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function earn(member: string, cents: number, n: number): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: t.adminHeaders,
    payload: {
      event_id: `ev_${member}_${n}`,
      event_type: 'purchase_completed',
      member_id: member,
      channel: 'in_store',
      store_id: 'store_atl_012',
      transaction_id: `tx_${member}_${n}`,
      transaction_ts: '2026-06-09T10:00:00Z',
      order_id: `ord_${member}_${n}`,
      currency: 'USD',
      line_items: [
        { sku: 'SKU-1', category: 'misc', unit_price_cents: cents, quantity: 1, eligible_for_points: true },
      ],
      subtotal_cents: cents,
      eligible_subtotal_cents: cents,
      idempotency_key: `k_${member}_${n}`,
    },
  });
  assert.equal(res.statusCode, 201, res.body);
}

const redeem = (payload: Json) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/redemptions',
    headers: { ...t.adminHeaders, 'x-request-id': `req_${String(payload.idempotency_key)}` },
    payload,
  });

const available = async (member: string): Promise<number> => {
  const res = await t.app.inject({
    method: 'GET',
    url: `/v1/members/${member}/balances`,
    headers: t.adminHeaders,
  });
  const p = res.json<Json>().programs as Json[];
  return p.find((x) => x.program_id === 'northwind-stars')?.available as number;
};

void describe('concurrent redemptions of one member share a transaction', () => {
  before(async () => {
    t = await createTestService({ clock, poolSize: 20 });
    await applyDemoConfig(t.app);
  });
  after(() => t.close());

  void it('each answers as if alone: exact successes, refusals change nothing, replays, audit rows, verify', async () => {
    const member = 'mbr_shared_1';
    await earn(member, 10_000, 1); // 50 northwind-stars
    await earn(member, 10_000, 2); // 100
    assert.equal(await available(member), 100);
    const base = { member_id: member, brand_id: 'northwind', points: 10, capture: true };
    const requests: Json[] = [];
    for (let i = 0; i < 16; i++) requests.push({ ...base, idempotency_key: `rk_${i}` });
    requests.push({ ...base, idempotency_key: 'rk_0' }); // a replay of the first
    requests.push({ ...base, points: 20, idempotency_key: 'rk_1' }); // key reused, other body
    requests.push({ ...base, points: 15, idempotency_key: 'rk_15' });
    const answers = await Promise.all(requests.map(redeem));

    const ok = answers.filter((a) => a.statusCode === 201);
    // 100 points: the 15-point one may or may not fit depending on its turn; points spent must
    // equal the successes exactly, never more than 100.
    const spent = ok.reduce((s, a) => s + (a.json<Json>().points as number), 0);
    assert.ok(spent <= 100, `spent ${spent}`);
    assert.equal(await available(member), 100 - spent);
    for (const a of answers) assert.ok([200, 201, 409].includes(a.statusCode), a.body);
    const refused = answers.filter((a) => a.statusCode === 409);
    const codes = new Set(refused.map((a) => a.json<Json>().error.code as string));
    for (const c of codes) assert.ok(['INSUFFICIENT_POINTS', 'IDEMPOTENCY_KEY_REUSED'].includes(c), c);
    // One key, two bodies, sent at once: they have no order, so either may go first; the one that
    // runs second is refused as a reused key unless the first was refused too (then it is
    // judged on its own). Never both.
    const [a, b] = [answers[1]!, answers[17]!];
    assert.ok(a.statusCode !== 201 || b.statusCode !== 201, `${a.body} ${b.body}`);
    if (a.statusCode === 201) assert.equal(b.json<Json>().error.code, 'IDEMPOTENCY_KEY_REUSED');
    if (b.statusCode === 201) assert.equal(a.json<Json>().error.code, 'IDEMPOTENCY_KEY_REUSED');
    // The replay answers 200 with the original.
    if (answers[0]!.statusCode === 201) {
      assert.equal(answers[16]!.statusCode, 200, answers[16]!.body);
      assert.equal(answers[16]!.json<Json>().redemption_id, answers[0]!.json<Json>().redemption_id);
    }
    // Each successful answer's own balances line matches what it spent in sequence: the last
    // one committed leaves the final balance.
    const finals = ok.map(
      (a) => (a.json<Json>().balances as Json[]).find((b) => b.program_id === 'northwind-stars')!.available,
    );
    assert.ok(finals.includes(100 - spent), `${JSON.stringify(finals)} should include ${100 - spent}`);

    // One audit row per request, with that request's own status.
    const rows = await sql<{ request_id: string; status_code: number | null }>`
      select request_id, status_code from audit_log where path = '/v1/redemptions'`.execute(t.ctx.db);
    assert.equal(rows.rows.length, requests.length);
    for (const [i, a] of answers.entries()) {
      const row = rows.rows.filter((r) => r.request_id === `req_${String(requests[i]!.idempotency_key)}`);
      assert.ok(
        row.some((r) => r.status_code === a.statusCode),
        `${i}: ${JSON.stringify(row)} vs ${a.statusCode}`,
      );
    }

    // Sharing happened, and /metrics says so. On PGlite the requests already wait for its one
    // connection before they reach the redemption, so they rarely overlap there.
    const stats = statsOf(t.ctx);
    if (isPostgres())
      assert.ok(stats.transactions >= 1 && stats.redemptions > stats.transactions, JSON.stringify(stats));
    assert.equal(stats.fallbacks, 0);
    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    assert.match(metrics.body, new RegExp(`pointpool_redemptions_shared ${stats.redemptions}\\b`));

    const verify = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
    assert.equal(verify.json<Json>().ok, true, verify.body);
  });
});
