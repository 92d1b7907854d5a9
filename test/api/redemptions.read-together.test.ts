// Redemptions of one member that share a transaction (src/services/redemptions/shared.ts) are
// planned against one read of the member's lots, each seeing the lots as the ones before it left
// them (readTogether in src/services/redemptions/redeem.ts). Property: whatever mix of sizes, holds
// and captures, replays and reused keys arrives at once, the answers are those of some one-by-one
// order: each success's balances line is the balance after the successes before it, the refused
// ones change nothing, a replay answers its original, and the ledger verifies. On PostgreSQL the
// test also checks the shared read was used at all. And when a shared transaction fails as a
// whole, each of its redemptions runs again alone and nothing of the failed attempt is kept.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { sql } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import { statsOf } from '../../src/services/redemptions/shared.ts';
import { applyDemoConfig, createTestService, isPostgres, type TestService } from '../helpers/store.ts';

const clock = new ManualClock('2026-06-10T00:00:00.000Z');
let t: TestService;

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function earn(member: string, n: number): Promise<void> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: t.adminHeaders,
    payload: {
      event_id: `rt_ev_${member}_${n}`,
      event_type: 'purchase_completed',
      member_id: member,
      channel: 'in_store',
      store_id: 'store_atl_012',
      transaction_id: `rt_tx_${member}_${n}`,
      transaction_ts: '2026-06-09T10:00:00Z',
      currency: 'USD',
      line_items: [
        { sku: 'SKU-1', category: 'misc', unit_price_cents: 10_000, quantity: 1, eligible_for_points: true },
      ],
      subtotal_cents: 10_000,
      eligible_subtotal_cents: 10_000,
      idempotency_key: `rt_k_${member}_${n}`,
    },
  });
  assert.equal(res.statusCode, 201, res.body);
}

async function stars(member: string): Promise<{ available: number; held: number }> {
  const res = await t.app.inject({
    method: 'GET',
    url: `/v1/members/${member}/balances`,
    headers: t.adminHeaders,
  });
  const p = (res.json<Json>().programs as Json[]).find((x) => x.program_id === 'northwind-stars')!;
  return { available: p.available as number, held: p.held as number };
}

interface Ask {
  points: number;
  capture: boolean;
  /** Resend an earlier round's request: as it was, or with another amount under its key. */
  again: 'no' | 'same' | 'other';
  ref: number;
}

const ask = fc.record({
  points: fc.integer({ min: 1, max: 60 }),
  capture: fc.boolean(),
  again: fc.constantFrom('no', 'no', 'no', 'same', 'other'),
  ref: fc.nat(),
}) as fc.Arbitrary<Ask>;

void describe('alike redemptions of one member planned against one read', () => {
  before(async () => {
    t = await createTestService({ clock, poolSize: 20 });
    await applyDemoConfig(t.app);
  });
  after(() => t.close());

  void it('answer as in some one-by-one order', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(ask, { minLength: 2, maxLength: 24 }), { minLength: 1, maxLength: 3 }),
        async (rounds) => {
          const member = `rt_m${run++}`;
          for (let n = 0; n < 4; n++) await earn(member, n); // 4 × 50 northwind-stars
          const sent: { body: Json; answer: { status: number; json: Json } }[] = [];
          for (const [r, asks] of rounds.entries()) {
            const before = await stars(member);
            const keys = new Set<string>();
            const bodies = asks.map((a, i) => {
              const earlier = sent.length > 0 ? sent[a.ref % sent.length]! : null;
              let body: Json = {
                member_id: member,
                brand_id: 'northwind',
                points: a.points,
                capture: a.capture,
                idempotency_key: `rt_${member}_${r}_${i}`,
              };
              if (a.again === 'same' && earlier) body = earlier.body;
              if (a.again === 'other' && earlier)
                body = { ...earlier.body, points: (earlier.body.points as number) + 1 };
              // One key once per round: the shared read serves batches of distinct keys.
              if (keys.has(body.idempotency_key as string))
                body = { ...body, idempotency_key: `rt_${member}_${r}_${i}_x` };
              keys.add(body.idempotency_key as string);
              return body;
            });
            const answers = await Promise.all(
              bodies.map(async (body) => {
                const res = await t.app.inject({
                  method: 'POST',
                  url: '/v1/redemptions',
                  headers: t.adminHeaders,
                  payload: body,
                });
                return { status: res.statusCode, json: res.json<Json>() };
              }),
            );
            const firstOf = (key: string) =>
              sent.find((s) => s.body.idempotency_key === key && s.answer.status === 201);
            for (const [i, a] of answers.entries()) {
              const body = bodies[i]!;
              const original = firstOf(body.idempotency_key as string);
              if (original && original.body.points === body.points) {
                // A replay of a committed redemption: 200 with the original.
                assert.equal(a.status, 200, JSON.stringify(a.json));
                assert.equal(a.json.redemption_id, original.answer.json.redemption_id);
              } else if (original) {
                assert.equal(a.status, 409);
                assert.equal(a.json.error.code, 'IDEMPOTENCY_KEY_REUSED');
              } else if (a.status !== 201) {
                assert.equal(a.status, 409, JSON.stringify(a.json));
                assert.equal(a.json.error.code, 'INSUFFICIENT_POINTS');
              }
            }
            // The successes in the order their balances lines tell: each line is the balance after
            // it and every success before it.
            const ok = answers
              .map((a, i) => ({ a, body: bodies[i]! }))
              .filter((x) => x.a.status === 201)
              .map((x) => ({
                ...x,
                line: (x.a.json.balances as Json[]).find((b) => b.program_id === 'northwind-stars')!,
              }))
              .sort((x, y) => (y.line.available as number) - (x.line.available as number));
            let available = before.available;
            let held = before.held;
            for (const x of ok) {
              available -= x.body.points as number;
              if (x.body.capture === false) held += x.body.points as number;
              assert.deepEqual([x.line.available, x.line.held], [available, held], JSON.stringify(x.body));
            }
            // A refusal is right only if the request did not fit when it ran: at the least, it did
            // not fit what was left at the end.
            for (const [i, a] of answers.entries())
              if (a.status === 409 && a.json.error.code === 'INSUFFICIENT_POINTS')
                assert.ok((bodies[i]!.points as number) > available, JSON.stringify(bodies[i]));
            assert.deepEqual(await stars(member), { available, held });
            answers.forEach((answer, i) => sent.push({ body: bodies[i]!, answer }));
          }
        },
      ),
      { numRuns: 15 },
    );
    const verify = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
    assert.equal(verify.json<Json>().ok, true, verify.body);
    const stats = statsOf(t.ctx);
    assert.equal(stats.fallbacks, 0, JSON.stringify(stats));
    // PGlite rarely lets requests overlap (a transaction runs without yielding to the next one).
    if (isPostgres()) assert.ok(stats.read_together > 0, JSON.stringify(stats));
  });

  void it('several members in one transaction: each member as one by one, an unknown member refused, cross-brand spends settled', async () => {
    let run = 0;
    const before = statsOf(t.ctx).read_together;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(
            fc.record({
              points: fc.integer({ min: 1, max: 80 }),
              // northwind-stars at northwind; the whole pool (alone: a program has inactivity
              // expiry); acme-points at harbor, from lots northwind issued (settlement flows).
              kind: fc.constantFrom('stars', 'stars', 'group', 'acme_at_harbor'),
            }),
            {
              minLength: 1,
              maxLength: 8,
            },
          ),
          {
            minLength: 2,
            maxLength: 6,
          },
        ),
        async (perMember) => {
          const members = perMember.map((_, m) => `rt_x${run}_${m}`);
          run++;
          for (const m of members) for (let n = 0; n < 2; n++) await earn(m, n); // 100 northwind-stars each
          const starts = new Map<string, { available: number; held: number }>();
          for (const m of members) starts.set(m, await stars(m));
          const bodies = perMember.flatMap((asks, m) =>
            asks.map((a, i) => ({
              member_id: members[m]!,
              brand_id: a.kind === 'acme_at_harbor' ? 'harbor' : 'northwind',
              points: a.kind === 'acme_at_harbor' ? Math.ceil(a.points / 5) : a.points,
              ...(a.kind === 'group' ? { group_redemption: true } : {}),
              ...(a.kind === 'acme_at_harbor' ? { program_id: 'acme-points' } : {}),
              idempotency_key: `rt_x_${members[m]}_${i}`,
            })),
          );
          const nobody = {
            member_id: `rt_nobody_${run}`,
            brand_id: 'northwind',
            points: 1,
            idempotency_key: `rt_nb_${run}`,
          };
          // Interleaved, so one transaction carries several members.
          const order = [...bodies.keys()].sort((a, b) => (a % 3) - (b % 3) || a - b);
          const answers = new Map<number, { status: number; json: Json }>();
          await Promise.all([
            ...order.map(async (i) => {
              const res = await t.app.inject({
                method: 'POST',
                url: '/v1/redemptions',
                headers: t.adminHeaders,
                payload: bodies[i]!,
              });
              answers.set(i, { status: res.statusCode, json: res.json<Json>() });
            }),
            (async () => {
              const res = await t.app.inject({
                method: 'POST',
                url: '/v1/redemptions',
                headers: t.adminHeaders,
                payload: nobody,
              });
              assert.equal(res.statusCode, 404, res.body);
              assert.equal(res.json<Json>().error.code, 'MEMBER_NOT_FOUND');
            })(),
          ]);
          for (const [m, member] of members.entries()) {
            const mine = bodies
              .map((b, i) => ({ b, a: answers.get(i)! }))
              .filter((x) => x.b.member_id === member);
            for (const { a } of mine)
              assert.ok(
                a.status === 201 || (a.status === 409 && a.json.error.code === 'INSUFFICIENT_POINTS'),
                JSON.stringify(a.json),
              );
            // Group redemptions may pay from any program the member holds; plain ones only from
            // their program: the northwind-stars line of each success, in order, is the balance
            // after it when the member spent nothing else.
            if (perMember[m]!.some((a) => a.kind !== 'stars')) continue;
            const ok = mine
              .filter((x) => x.a.status === 201)
              .map((x) => ({
                points: x.b.points,
                line: (x.a.json.balances as Json[]).find((l) => l.program_id === 'northwind-stars')!,
              }))
              .sort((x, y) => (y.line.available as number) - (x.line.available as number));
            let available = starts.get(member)!.available;
            for (const x of ok) {
              available -= x.points;
              assert.equal(x.line.available, available);
            }
            assert.equal((await stars(member)).available, available);
          }
        },
      ),
      { numRuns: 10 },
    );
    const verify = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
    assert.equal(verify.json<Json>().ok, true, verify.body);
    assert.equal(statsOf(t.ctx).fallbacks, 0);
    if (isPostgres()) assert.ok(statsOf(t.ctx).read_together > before, JSON.stringify(statsOf(t.ctx)));
  });
  void it('a shared transaction that fails as a whole: each redemption runs again alone, nothing of it kept', async () => {
    // A statement-level trigger refuses any insert of several redemption rows at once: the
    // planned writes of a shared transaction fail (as a concurrent key claim or a stale plan
    // would make them), the one-row inserts of redemptions alone pass.
    await sql
      .raw(
        `create function test_refuse_shared() returns trigger language plpgsql as $$
         begin
           if (select count(*) from new_rows) > 1 then raise exception 'test: several redemptions at once'; end if;
           return null;
         end $$`,
      )
      .execute(t.ctx.db);
    await sql
      .raw(
        `create trigger test_refuse_shared after insert on redemptions referencing new table as new_rows
           for each statement execute function test_refuse_shared()`,
      )
      .execute(t.ctx.db);
    try {
      const member = 'rt_fallback';
      for (let n = 0; n < 2; n++) await earn(member, n); // 100 northwind-stars
      const before = { ...statsOf(t.ctx) };
      const bodies = Array.from({ length: 12 }, (_, i) => ({
        member_id: member,
        brand_id: 'northwind',
        points: 10,
        idempotency_key: `rt_fb_${i}`,
      }));
      const answers = await Promise.all(
        bodies.map((payload) =>
          t.app.inject({
            method: 'POST',
            url: '/v1/redemptions',
            headers: { ...t.adminHeaders, 'x-request-id': `req_${payload.idempotency_key}` },
            payload,
          }),
        ),
      );
      const statuses = answers.map((a) => a.statusCode).sort();
      assert.deepEqual(statuses, [...Array(10).fill(201), 409, 409], answers.map((a) => a.body).join('\n'));
      for (const a of answers.filter((x) => x.statusCode === 409))
        assert.equal(a.json<Json>().error.code, 'INSUFFICIENT_POINTS');
      assert.equal((await stars(member)).available, 0);
      // Exactly the successes are recorded: one redemption row and one answered key each.
      const rows = await sql<{ n: string }>`
        select count(*)::text as n from redemptions where member_id = ${member}`.execute(t.ctx.db);
      assert.equal(rows.rows[0]!.n, '10');
      const keys = await sql<{ status_code: number }>`
        select status_code from idempotency_keys where scope = 'redemption' and key like 'rt_fb_%'`.execute(
        t.ctx.db,
      );
      assert.deepEqual(
        keys.rows.map((k) => k.status_code),
        Array(10).fill(201),
      );
      // One audit row per request, with its own status.
      const audit = await sql<{ request_id: string; status_code: number | null }>`
        select request_id, status_code from audit_log where request_id like 'req_rt_fb_%'`.execute(t.ctx.db);
      assert.equal(audit.rows.length, bodies.length);
      for (const [i, a] of answers.entries())
        assert.equal(audit.rows.find((r) => r.request_id === `req_rt_fb_${i}`)?.status_code, a.statusCode);
      // On PostgreSQL the eleven that arrive while the first is in flight share a transaction,
      // which fails; PGlite runs each alone (see above).
      if (isPostgres())
        assert.ok(statsOf(t.ctx).fallbacks > before.fallbacks, JSON.stringify(statsOf(t.ctx)));
      const verify = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
      assert.equal(verify.json<Json>().ok, true, verify.body);
    } finally {
      await sql.raw('drop trigger test_refuse_shared on redemptions').execute(t.ctx.db);
      await sql.raw('drop function test_refuse_shared()').execute(t.ctx.db);
    }
  });
});
