import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { ManualClock } from '../../src/clock.ts';
import { sharedEventStats } from '../../src/services/events/shared-accrual.ts';
import { applyDemoConfig, createTestService, isPostgres, type TestService } from '../helpers/store.ts';

// POST /v1/events sent concurrently: purchases that queue while another transaction is in flight
// share one bulk transaction (src/services/events/shared-accrual.ts). Its contract is that this
// changes nothing a caller can see: each event gets the answer it gets alone, the ledger ends as
// after the events one by one, every request keeps its own audit row, and a shared transaction
// that fails (here: a referred member's first purchase, whose bonus the bulk path does not pay)
// falls back to each event alone.

const NOW = '2026-11-20T12:00:00.000Z';
const STORES = [
  { id: 'store_atl_012', currency: 'USD' },
  { id: 'web_northwind', currency: 'USD' },
  { id: 'web_harbor', currency: 'EUR' },
  { id: 'store_lon_001', currency: 'GBP' },
] as const;

interface Spec {
  /** buy: a new member's purchase; again: another purchase of an earlier buyer; dup: a resend. */
  kind: 'buy' | 'again' | 'dup' | 'bad' | 'referred';
  store: number;
  cents: number;
  ref: number;
}

// At most $100 a purchase and few per member: no member reaches gold ($500 in a year), and every
// purchase earns with at least the base tier whichever of a member's purchases commits first
// (computeEarn), so the order in which concurrent purchases of one member commit cannot change
// what they earn or answer.
const spec = fc.record({
  kind: fc.constantFrom('buy', 'buy', 'buy', 'again', 'dup', 'bad', 'referred'),
  store: fc.integer({ min: 0, max: STORES.length - 1 }),
  cents: fc.integer({ min: 0, max: 10_000 }),
  ref: fc.nat(),
}) as fc.Arbitrary<Spec>;

interface Plan {
  /** Sent one by one to both services before the concurrent part (referral links). */
  readonly setup: Record<string, unknown>[];
  readonly events: Record<string, unknown>[];
  readonly members: string[];
}

function plan(specs: readonly Spec[], tag: string): Plan {
  const setup: Record<string, unknown>[] = [];
  const events: Record<string, unknown>[] = [];
  const members: string[] = [];
  const purchasesOf = new Map<string, number>();
  specs.forEach((s, i) => {
    const store = STORES[s.store]!;
    let member = `${tag}_m${i}`;
    if (s.kind === 'again' && members.length > 0) {
      const earlier = members[s.ref % members.length]!;
      if ((purchasesOf.get(earlier) ?? 0) < 3) member = earlier;
    }
    if (s.kind === 'dup' && events.length > 0) {
      events.push(events[s.ref % events.length]!);
      return;
    }
    if (!members.includes(member)) members.push(member);
    if (s.kind === 'referred') {
      const referrer = `${tag}_ref${i}`;
      members.push(referrer);
      setup.push({
        event_id: `${tag}_link${i}`,
        event_type: 'member_referred',
        member_id: member,
        referrer_member_id: referrer,
        channel: 'online',
        store_id: 'web_northwind',
        transaction_id: `${tag}_lt${i}`,
        transaction_ts: new Date(Date.parse(NOW) - 7_200_000).toISOString(),
        currency: 'USD',
        idempotency_key: `${tag}_lk${i}`,
      });
    }
    purchasesOf.set(member, (purchasesOf.get(member) ?? 0) + 1);
    // A referred member's purchase spends enough to pay the referral bonus.
    const cents = s.kind === 'referred' ? 6_000 + s.cents : s.cents;
    events.push({
      event_id: `${tag}_e${i}`,
      event_type: 'purchase_completed',
      member_id: member,
      channel: 'in_store',
      store_id: store.id,
      transaction_id: `${tag}_t${i}`,
      transaction_ts: new Date(Date.parse(NOW) - 3_600_000 + i * 1000).toISOString(),
      order_id: `${tag}_o${i}`,
      currency: store.currency,
      line_items: [
        {
          sku: 'SKU-1',
          category: 'outerwear',
          unit_price_cents: cents,
          quantity: 1,
          eligible_for_points: true,
        },
      ],
      subtotal_cents: s.kind === 'bad' ? -1 : cents,
      eligible_subtotal_cents: cents,
      idempotency_key: `${tag}_k${i}`,
    });
  });
  return { setup, events, members };
}

/** An answer without what legitimately differs between two stores (rejection ids). */
function comparable(status: number, body: string): unknown {
  return [status, JSON.parse(body, (k, v: unknown) => (k === 'rejection_id' ? undefined : v))];
}

const post = (t: TestService, payload: object, request_id: string) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/events',
    headers: { ...t.adminHeaders, 'x-request-id': request_id },
    payload,
  });

void describe('POST /v1/events under concurrency equals the same events one by one', () => {
  let shared: TestService;
  let single: TestService;
  before(async () => {
    shared = await createTestService({ clock: new ManualClock(NOW) });
    single = await createTestService({ clock: new ManualClock(NOW) });
    await applyDemoConfig(shared.app);
    await applyDemoConfig(single.app);
  });
  after(async () => {
    await shared?.close();
    await single?.close();
  });

  void it('answers each event as alone, ends with the same balances, audits each request', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(spec, { minLength: 2, maxLength: 40 }), async (specs) => {
        const tag = `s${run++}`;
        const { setup, events, members } = plan(specs, tag);
        for (const ev of setup)
          for (const t of [shared, single]) assert.equal((await post(t, ev, `${tag}_setup`)).statusCode, 201);

        const together = await Promise.all(events.map((ev, i) => post(shared, ev, `${tag}_r${i}`)));
        const oneByOne = [];
        for (const [i, ev] of events.entries()) oneByOne.push(await post(single, ev, `${tag}_r${i}`));

        // Resends of one key: which copy commits first depends on timing, so compare each key's
        // answers as a set; every other event's answer is the same as alone.
        const byKey = (answers: typeof together) => {
          const m = new Map<unknown, unknown[]>();
          answers.forEach((a, i) => {
            const key = events[i]!.idempotency_key;
            m.set(key, [...(m.get(key) ?? []), JSON.stringify(comparable(a.statusCode, a.body))]);
          });
          return new Map([...m].map(([k, v]) => [k, v.sort()]));
        };
        assert.deepEqual(byKey(together), byKey(oneByOne));

        for (const m of members) {
          const url = `/v1/members/${m}/balances`;
          const a = await shared.app.inject({ method: 'GET', url, headers: shared.adminHeaders });
          const b = await single.app.inject({ method: 'GET', url, headers: single.adminHeaders });
          assert.equal(a.statusCode, b.statusCode, url);
          assert.deepEqual(a.json(), b.json(), url);
        }

        // One audit row per request, with the status it answered.
        const rows = await shared.ctx.db
          .selectFrom('audit_log')
          .select(['request_id', 'status_code'])
          .where('request_id', 'like', `${tag}\\_r%`)
          .execute();
        assert.deepEqual(
          rows.map((r) => `${r.request_id}:${r.status_code}`).sort(),
          together.map((a, i) => `${tag}_r${i}:${a.statusCode}`).sort(),
        );
      }),
      // Timing decides what fails here: shrinking would rerun it for minutes without a smaller case.
      { numRuns: 8, endOnFailure: true },
    );
    const v = await shared.app.inject({
      method: 'GET',
      url: '/v1/ledger/verify',
      headers: shared.adminHeaders,
    });
    assert.equal(v.json<{ ok: boolean }>().ok, true, v.body);
    // The shared path was taken. Only on PostgreSQL:
    // PGlite runs a whole transaction on this thread without yielding to the next request, so
    // requests reach the queue one at a time and each runs alone.
    if (!isPostgres()) return;
    // Concurrent events reached the shared path: committed there, or fallen back from it. (A
    // shared transaction of resends answers none of its events, and one carrying a referred
    // member's purchase fails: how many of each is up to timing.)
    const stats = sharedEventStats(shared.ctx);
    assert.ok(stats.transactions + stats.fallbacks > 0, JSON.stringify(stats));
  });

  void it('falls back to each event alone when the shared transaction fails', async () => {
    // A referred member's first purchase pays the referrer a bonus, which the bulk transaction
    // leaves to the single-event path: a shared transaction carrying it fails as a whole.
    const tag = 'fb';
    const { setup, events } = plan(
      Array.from({ length: 20 }, (_, i) => ({
        kind: i === 5 ? 'referred' : 'buy',
        store: 0,
        cents: 9_000,
        ref: 0,
      })),
      tag,
    );
    for (const ev of setup) assert.equal((await post(shared, ev, `${tag}_setup`)).statusCode, 201);
    const before = { ...sharedEventStats(shared.ctx) };
    const answers = await Promise.all(events.map((ev, i) => post(shared, ev, `${tag}_r${i}`)));
    assert.deepEqual(
      answers.map((a) => a.statusCode),
      events.map(() => 201),
    );
    assert.ok(answers[5]!.json<{ referral_bonus?: unknown }>().referral_bonus, answers[5]!.body);
    // On PostgreSQL the nineteen that arrive while the first is in flight queue, so the referred
    // one shares a transaction and fails it; PGlite runs each alone (see above).
    if (isPostgres()) assert.ok(sharedEventStats(shared.ctx).fallbacks > before.fallbacks);
    const v = await shared.app.inject({
      method: 'GET',
      url: '/v1/ledger/verify',
      headers: shared.adminHeaders,
    });
    assert.equal(v.json<{ ok: boolean }>().ok, true, v.body);
  });
});
