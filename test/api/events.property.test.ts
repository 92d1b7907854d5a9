// Property: exactly-once accrual is independent of delivery. A random stream of purchases,
// partial refunds and voids for a few members is submitted cleanly (each event once, in order)
// to one service, and the same stream with random duplicates, retries, BOPIS twins from other
// channels, refunds that arrive before their purchase (rejected, then retried), and reordering of
// independent events (a reversal always after its purchase and after the earlier reversals of
// that purchase) to a second service, partly through /v1/events/batch. The final balances must be
// equal, equal the sum of what the clean pass accrued and reversed, and `verify` stays ok.
//
// Two services for the whole property (creating one costs seconds on PGlite); every run uses its
// own member ids, order ids and keys, so runs do not see each other. The config is the demo one
// with the gold threshold out of reach: tier upgrades make earn depend on the order of a
// member's purchases, which this property does not hold constant (the example tests cover tiers).

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import * as fc from 'fast-check';
import { ManualClock } from '../../src/clock.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NOW = '2026-03-10T12:00:00.000Z'; // inside the fixture's outerwear-x3 campaign
const MIN_MS = 60_000;
const clock = new ManualClock(NOW);
let clean: TestService;
let noisy: TestService;

function propertyConfig() {
  const doc = demoConfigDoc();
  for (const p of doc.programs) {
    if (p.id === 'northwind-stars')
      p.tiers = [
        { id: 'silver' },
        { id: 'gold', qualify: { metric: 'spend_minor', at_least: 1e12, window_days: 365 } },
      ];
    if (p.id === 'summit-miles') p.pending_days = 2; // some lots stay pending: reversals cancel those first
  }
  return doc;
}

before(async () => {
  // One after the other: two PGlite instances starting at once can starve Fastify's plugin timeout.
  clean = await createTestService({ clock });
  noisy = await createTestService({ clock });
  await applyDemoConfig(clean.app, propertyConfig());
  await applyDemoConfig(noisy.app, propertyConfig());
});
after(async () => {
  await Promise.all([clean?.close(), noisy?.close()]);
});

// ---------------------------------------------------------------------------------------------
// The stream

const STORES = [
  { id: 'store_atl_012', channel: 'in_store', brand: 'northwind', currency: 'USD' },
  { id: 'web_northwind', channel: 'online', brand: 'northwind', currency: 'USD' },
  { id: 'app_northwind', channel: 'app', brand: 'northwind', currency: 'USD' },
  { id: 'bopis_atl_012', channel: 'bopis', brand: 'northwind', currency: 'USD' },
  { id: 'web_harbor', channel: 'online', brand: 'harbor', currency: 'EUR' },
  { id: 'store_ber_001', channel: 'in_store', brand: 'harbor', currency: 'EUR' },
  { id: 'store_lon_001', channel: 'in_store', brand: 'summit', currency: 'GBP' },
  { id: 'web_summit', channel: 'online', brand: 'summit', currency: 'GBP' },
] as const;
const SKUS = ['SKU-A', 'SKU-B', 'SKU-C', 'SKU-D'] as const;

const lineArb = fc.record({
  sku: fc.constantFrom(...SKUS),
  category: fc.constantFrom('outerwear', 'tops', 'gift_card'),
  unit_price_cents: fc.integer({ min: 1, max: 4000 }),
  quantity: fc.integer({ min: 1, max: 3 }),
  eligible_for_points: fc.integer({ min: 0, max: 4 }).map((n) => n > 0), // mostly eligible
});

const chainArb = fc.record({
  member: fc.integer({ min: 0, max: 2 }),
  store: fc.integer({ min: 0, max: STORES.length - 1 }),
  lines: fc.uniqueArray(lineArb, { selector: (l) => l.sku, minLength: 1, maxLength: 3 }),
  withOrder: fc.boolean(),
  refunds: fc.array(fc.record({ line: fc.nat(), quantity: fc.integer({ min: 1, max: 3 }) }), {
    maxLength: 3,
  }),
  voidAfter: fc.boolean(),
  // Noise for this chain in the second pass.
  bopisTwin: fc.boolean(),
  earlyRefund: fc.boolean(),
});

const noiseArb = fc.record({
  picks: fc.array(fc.nat(), { minLength: 1, maxLength: 60 }),
  dups: fc.array(fc.record({ src: fc.nat(), gap: fc.nat() }), { maxLength: 8 }),
  batches: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 20 }),
});

type Chain = typeof chainArb extends fc.Arbitrary<infer T> ? T : never;
type Noise = typeof noiseArb extends fc.Arbitrary<infer T> ? T : never;

interface Built {
  members: string[];
  chains: Json[][]; // per chain: the purchase, then its reversals in order
  twins: Map<number, Json>; // chain index → a BOPIS twin of its purchase
  early: Map<number, Json>; // chain index → a reversal sent before its purchase
}

let runNo = 0;

function build(spec: readonly Chain[]): Built {
  const run = `r${process.pid}_${++runNo}`;
  const members = [0, 1, 2].map((i) => `mbr_${run}_${i}`);
  const base = Date.parse(NOW) - 48 * 60 * MIN_MS;
  const chains: Json[][] = [];
  const twins = new Map<number, Json>();
  const early = new Map<number, Json>();
  spec.forEach((c, i) => {
    const store = STORES[c.store]!;
    const ts = base + i * 20 * MIN_MS;
    const id = `${run}_p${i}`;
    const lines = c.lines.map((l) => ({ ...l }));
    const subtotal = lines.reduce((s, l) => s + l.unit_price_cents * l.quantity, 0);
    const eligible = lines
      .filter((l) => l.eligible_for_points)
      .reduce((s, l) => s + l.unit_price_cents * l.quantity, 0);
    const common = {
      member_id: members[c.member]!,
      channel: store.channel,
      store_id: store.id,
      currency: store.currency,
    };
    const purchase: Json = {
      event_id: id,
      event_type: 'purchase_completed',
      ...common,
      transaction_id: `txn_${id}`,
      transaction_ts: new Date(ts).toISOString(),
      ...(c.withOrder ? { order_id: `ord_${id}` } : {}),
      line_items: lines,
      subtotal_cents: subtotal,
      eligible_subtotal_cents: eligible,
      idempotency_key: `key_${id}`,
    };
    const chain: Json[] = [purchase];
    const left = lines.map((l) => l.quantity);
    c.refunds.forEach((r, j) => {
      const li = r.line % lines.length;
      const q = Math.min(r.quantity, left[li]!);
      if (q === 0) return;
      left[li]! -= q;
      const rid = `${id}_r${j}`;
      chain.push({
        event_id: rid,
        event_type: 'purchase_refunded',
        ...common,
        transaction_id: `txn_${rid}`,
        transaction_ts: new Date(ts + (j + 1) * MIN_MS).toISOString(),
        reversal_of: id,
        line_items: [{ ...lines[li]!, quantity: q }],
        idempotency_key: `key_${rid}`,
      });
    });
    if (c.voidAfter && left.some((q) => q > 0)) {
      const vid = `${id}_v`;
      chain.push({
        event_id: vid,
        event_type: 'purchase_voided',
        ...common,
        transaction_id: `txn_${vid}`,
        transaction_ts: new Date(ts + 10 * MIN_MS).toISOString(),
        reversal_of: id,
        idempotency_key: `key_${vid}`,
      });
    }
    chains.push(chain);
    if (c.withOrder && c.bopisTwin) {
      // The same order reported by another channel of the brand, under its own event id and key.
      const other = STORES.find((s) => s.brand === store.brand && s.id !== store.id)!;
      const tid = `${id}_twin`;
      twins.set(i, {
        ...purchase,
        event_id: tid,
        transaction_id: `txn_${tid}`,
        idempotency_key: `key_${tid}`,
        store_id: other.id,
        channel: other.channel,
      });
    }
    if (c.earlyRefund && chain.length > 1) early.set(i, chain[1]!);
  });
  return { members, chains, twins, early };
}

/** The noisy delivery: chains interleaved at random, plus twins, early reversals and copies. */
function deliver(b: Built, noise: Noise): { events: Json[]; expectRejected: Set<number> } {
  const queues = b.chains.map((c) => [...c]);
  const out: { ev: Json; chain: number; kind: 'event' | 'early' }[] = [];
  let k = 0;
  while (queues.some((q) => q.length > 0)) {
    const open = queues.map((q, i) => [q, i] as const).filter(([q]) => q.length > 0);
    const [q, i] = open[noise.picks[k++ % noise.picks.length]! % open.length]!;
    const ev = q.shift()!;
    // A reversal that overtakes its purchase: rejected, then retried in its proper place.
    if (ev.event_type === 'purchase_completed' && b.early.has(i))
      out.push({ ev: b.early.get(i)!, chain: i, kind: 'early' });
    out.push({ ev, chain: i, kind: 'event' });
    if (ev.event_type === 'purchase_completed' && b.twins.has(i))
      out.push({ ev: b.twins.get(i)!, chain: i, kind: 'event' });
  }
  // Copies (client retries, at-least-once delivery): each after the event it copies.
  for (const d of noise.dups) {
    const src = d.src % out.length;
    if (out[src]!.kind === 'early') continue;
    const at = src + 1 + (d.gap % (out.length - src));
    out.splice(at, 0, { ...out[src]!, ev: structuredClone(out[src]!.ev) });
  }
  const expectRejected = new Set(out.map((o, i) => (o.kind === 'early' ? i : -1)).filter((i) => i >= 0));
  return { events: out.map((o) => o.ev), expectRejected };
}

async function submitOne(t: TestService, ev: Json): Promise<{ status: number; body: Json }> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/events', headers: t.adminHeaders, payload: ev });
  return { status: res.statusCode, body: res.json<Json>() };
}

async function submitBatches(
  t: TestService,
  events: Json[],
  sizes: number[],
): Promise<{ status: number; body: Json }[]> {
  const out: { status: number; body: Json }[] = [];
  let i = 0;
  let s = 0;
  while (i < events.length) {
    const size = sizes[s++ % sizes.length]!;
    const part = events.slice(i, i + size);
    i += part.length;
    if (part.length === 1 && s % 2 === 0) {
      out.push(await submitOne(t, part[0]!));
      continue;
    }
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/events/batch',
      headers: t.adminHeaders,
      payload: { events: part },
    });
    assert.equal(res.statusCode, 200, res.body);
    const results: Json[] = res.json<Json>().results;
    assert.equal(results.length, part.length);
    for (const r of results) out.push({ status: r.http_status, body: r });
  }
  return out;
}

const toPt4 = (points: number): bigint => BigInt(Math.round(points * 10_000));

async function balancesOf(
  t: TestService,
  members: readonly string[],
): Promise<Record<string, Record<string, { available: number; pending: number; held: number }>>> {
  const out: Record<string, Record<string, { available: number; pending: number; held: number }>> = {};
  for (const m of members) {
    const res = await t.app.inject({
      method: 'GET',
      url: `/v1/members/${m}/balances`,
      headers: t.adminHeaders,
    });
    if (res.statusCode === 404) continue;
    assert.equal(res.statusCode, 200, res.body);
    out[m] = Object.fromEntries(
      res
        .json<Json>()
        .programs.map((p: Json) => [
          p.program_id,
          { available: p.available, pending: p.pending, held: p.held },
        ]),
    );
  }
  return out;
}

async function assertVerifyOk(t: TestService): Promise<void> {
  const res = await t.app.inject({ method: 'GET', url: '/v1/ledger/verify', headers: t.adminHeaders });
  const v = res.json<Json>();
  assert.equal(v.ok, true, JSON.stringify(v.checks?.filter((c: Json) => !c.ok)));
}

void describe('events property: duplicates, retries and reordering do not change balances', () => {
  void it('a noisy delivery of a random stream ends with the balances of the clean one; verify stays ok', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(chainArb, { minLength: 1, maxLength: 6 }), noiseArb, async (spec, noise) => {
        const b = build(spec);

        // Clean pass: each event once, chain by chain. Every one is accepted.
        const net = new Map<string, bigint>(); // member|program → accrued − reversed (pt4)
        const add = (m: string, p: string, pts: number) =>
          net.set(`${m}|${p}`, (net.get(`${m}|${p}`) ?? 0n) + toPt4(pts));
        for (const ev of b.chains.flat()) {
          const r = await submitOne(clean, ev);
          assert.equal(r.status, 201, `${ev.event_id}: ${JSON.stringify(r.body)}`);
          for (const a of r.body.accruals) add(ev.member_id, a.program_id, a.points);
          for (const x of r.body.reversed) add(ev.member_id, x.program_id, -x.points);
        }
        const expected = await balancesOf(clean, b.members);
        for (const [key, pt4] of net) {
          const [m, p] = key.split('|') as [string, string];
          const bal = expected[m]?.[p];
          assert.ok(bal, `${key} has a balance`);
          assert.equal(
            toPt4(bal.available) + toPt4(bal.pending) + toPt4(bal.held),
            pt4,
            `${key}: balance = accrued − reversed`,
          );
          assert.ok(bal.available >= 0 && bal.pending >= 0, `${key} never negative without spending`);
        }
        await assertVerifyOk(clean);

        // Noisy pass.
        const { events, expectRejected } = deliver(b, noise);
        const results = await submitBatches(noisy, events, noise.batches);
        let accepted = 0;
        results.forEach((r, i) => {
          assert.ok(r.status < 500, `${events[i]!.event_id}: ${r.status}`);
          if (expectRejected.has(i)) {
            assert.equal(r.status, 422, JSON.stringify(r.body));
            assert.equal(r.body.error.code, 'REVERSAL_TARGET_NOT_FOUND');
          } else {
            assert.ok(
              r.status === 201 || r.status === 200,
              `${events[i]!.event_id}: ${r.status} ${JSON.stringify(r.body)}`,
            );
            if (r.status === 201) accepted++;
            else assert.equal(r.body.status, 'duplicate');
          }
        });
        assert.equal(accepted, b.chains.flat().length, 'each event of the stream took effect exactly once');
        assert.deepEqual(await balancesOf(noisy, b.members), expected);
        await assertVerifyOk(noisy);
      }),
      { numRuns: Number(process.env.EVENTS_PROPERTY_RUNS ?? 10) },
    );
  });
});
