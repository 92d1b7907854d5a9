// Shared by the API tests of the lifecycle, statements, jobs and events: a service with the demo
// configuration, events built from lines, and calls over app.inject().

import { strict as assert } from 'node:assert';
import { after, before, beforeEach } from 'node:test';
import type { LightMyRequestResponse } from 'fastify';
import type { Kysely } from 'kysely';
import { ManualClock } from '../../src/clock.ts';
import { demoConfigDoc } from '../fixtures/config.ts';
import { applyDemoConfig, createTestService, type TestService } from '../helpers/store.ts';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const HOUR_MS = 3_600_000;
export const DAY_MS = 24 * HOUR_MS;

const CHANNEL: Record<string, string> = {
  store_atl_012: 'in_store',
  web_northwind: 'online',
  web_harbor: 'online',
  store_ber_001: 'in_store',
  store_lon_001: 'in_store',
  web_summit: 'online',
};
const CURRENCY: Record<string, string> = { northwind: 'USD', harbor: 'EUR', summit: 'GBP' };
const BRAND: Record<string, string> = {
  store_atl_012: 'northwind',
  web_northwind: 'northwind',
  web_harbor: 'harbor',
  store_ber_001: 'harbor',
  store_lon_001: 'summit',
  web_summit: 'summit',
};

/** A brand's store in the demo configuration, for tests that buy "at a brand". */
export const BRAND_STORE: Record<string, string> = {
  northwind: 'store_atl_012',
  harbor: 'web_harbor',
  summit: 'store_lon_001',
};

/** The demo configuration with northwind tiers that carry benefits: silver, and gold from $500 a year. */
export function tieredDemoDoc(): ReturnType<typeof demoConfigDoc> {
  const doc = demoConfigDoc();
  const nw = doc.programs.find((p) => p.id === 'northwind-stars')!;
  nw.tiers = [
    { id: 'silver', benefits: ['free returns'] },
    {
      id: 'gold',
      qualify: { metric: 'spend_minor', at_least: 50000, window_days: 365 },
      benefits: ['free shipping', 'early access'],
    },
  ];
  return doc;
}

let seq = 0;
export const uid = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;

export interface Line {
  sku: string;
  category?: string;
  unit_price_cents: number;
  quantity: number;
  /** true unless said otherwise */
  eligible_for_points?: boolean;
}

export const shirt = (cents: number, quantity = 1): Line => ({
  sku: 'SKU-SHIRT',
  category: 'shirts',
  unit_price_cents: cents,
  quantity,
});

export class Api {
  #t: TestService | undefined;

  constructor(
    t: TestService | undefined,
    readonly clock: ManualClock,
  ) {
    this.#t = t;
  }

  /** The service under test (for an Api of apiForTests, there from its before() on). */
  get t(): TestService {
    assert.ok(this.#t, 'the test service has not started (read it inside a test or a hook)');
    return this.#t;
  }

  /**
   * An Api over one test service for the file, or for the suite it is called in: started before
   * its tests (on `clock`, with the demo configuration or `doc()`) and closed after them; with
   * `resetClockTo`, the clock is set back to that instant before each test.
   */
  static forTests(
    clock: ManualClock,
    o: { doc?: () => unknown; poolSize?: number; resetClockTo?: string } = {},
  ): Api {
    const api = new Api(undefined, clock);
    before(async () => {
      api.#t = await createTestService({ clock, ...(o.poolSize ? { poolSize: o.poolSize } : {}) });
      await applyDemoConfig(api.#t.app, ...(o.doc ? [o.doc()] : []));
    });
    after(async () => {
      await api.#t?.close();
    });
    if (o.resetClockTo !== undefined) {
      const at = o.resetClockTo;
      beforeEach(() => clock.set(at));
    }
    return api;
  }

  inject(
    method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE',
    url: string,
    payload?: unknown,
    headers: Record<string, string> = {},
  ): Promise<LightMyRequestResponse> {
    return this.t.app.inject({
      method,
      url,
      headers: { ...this.t.adminHeaders, ...headers },
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
  }

  async get(url: string, headers: Record<string, string> = {}): Promise<Json> {
    const res = await this.inject('GET', url, undefined, headers);
    assert.equal(res.statusCode, 200, `${url}: ${res.body}`);
    return res.json<Json>();
  }

  async post(url: string, body: unknown, status = 201): Promise<Json> {
    const res = await this.inject('POST', url, body);
    assert.equal(res.statusCode, status, `${url}: ${res.body}`);
    return res.json<Json>();
  }

  /**
   * A command (redemption, transfer, …) with a fresh idempotency key unless the body has one; the
   * response as it is, for tests that look at refusals.
   */
  command(url: string, body: Json, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    return this.inject('POST', url, { idempotency_key: uid('cmd'), ...body }, headers);
  }

  /** A purchase at `ts` (default one minute before the clock's now). */
  purchaseEvent(
    member_id: string,
    store_id: string,
    lines: Line[],
    o: { order_id?: string; event_id?: string; ts?: string } = {},
  ): Json {
    const event_id = o.event_id ?? uid('evt');
    const total = lines.reduce((s, l) => s + l.unit_price_cents * l.quantity, 0);
    const eligible = lines
      .filter((l) => l.eligible_for_points !== false)
      .reduce((s, l) => s + l.unit_price_cents * l.quantity, 0);
    return {
      event_id,
      event_type: 'purchase_completed',
      member_id,
      channel: CHANNEL[store_id] ?? 'in_store',
      store_id,
      transaction_id: `txn_${event_id}`,
      transaction_ts: o.ts ?? new Date(this.clock.now().getTime() - 60_000).toISOString(),
      ...(o.order_id ? { order_id: o.order_id } : {}),
      currency: CURRENCY[BRAND[store_id] ?? 'northwind'],
      line_items: lines.map((l) => ({ eligible_for_points: true, ...l })),
      subtotal_cents: total,
      eligible_subtotal_cents: eligible,
      idempotency_key: `key_${event_id}`,
    };
  }

  async purchase(
    member_id: string,
    store_id: string,
    lines: Line[],
    o: { order_id?: string } = {},
  ): Promise<Json> {
    const ev = this.purchaseEvent(member_id, store_id, lines, o);
    const body = await this.post('/v1/events', ev);
    assert.equal(body.status, 'accepted');
    return { ...body, event: ev };
  }

  /**
   * A purchase of one line (SKU-1, category misc) of `cents` at `store` (a store id, or a brand for
   * its BRAND_STORE) at `ts` (default one minute before the clock's now), under order
   * `ord_<event id>` unless `order: false`; accepted (201). Returns the answer and the `event`.
   */
  async buy(
    member_id: string,
    store: string,
    cents: number,
    ts?: string,
    o: { order?: boolean } = {},
  ): Promise<Json> {
    const store_id = BRAND_STORE[store] ?? store;
    const id = uid('ev');
    const ev = {
      event_id: id,
      event_type: 'purchase_completed',
      member_id,
      channel: CHANNEL[store_id] ?? 'in_store',
      store_id,
      transaction_id: `tx_${id}`,
      transaction_ts: ts ?? new Date(this.clock.now().getTime() - 60_000).toISOString(),
      ...(o.order === false ? {} : { order_id: `ord_${id}` }),
      currency: CURRENCY[BRAND[store_id] ?? 'northwind'],
      line_items: [
        { sku: 'SKU-1', category: 'misc', unit_price_cents: cents, quantity: 1, eligible_for_points: true },
      ],
      subtotal_cents: cents,
      eligible_subtotal_cents: cents,
      idempotency_key: `k_${id}`,
    };
    const body = await this.post('/v1/events', ev);
    return { ...body, event: ev };
  }

  refund(purchase: Json, lines: Line[]): Promise<Json> {
    return this.reverse(purchase, 'purchase_refunded', lines);
  }

  /** A refund of these lines, or a void of what is left (no lines), 30 s before the clock's now. */
  reverse(
    purchase: Json,
    event_type: 'purchase_refunded' | 'purchase_voided',
    lines?: Line[],
  ): Promise<Json> {
    return this.post('/v1/events', this.reversalEvent(purchase.event as Json, event_type, lines));
  }

  /**
   * The refund of these lines, or the void of what is left (no lines), of purchase event `p`, at
   * `ts` (default 30 s before the clock's now).
   */
  reversalEvent(
    p: Json,
    event_type: 'purchase_refunded' | 'purchase_voided',
    lines?: Line[],
    o: { ts?: string } = {},
  ): Json {
    const event_id = uid(event_type === 'purchase_refunded' ? 'rfd' : 'void');
    return {
      event_id,
      event_type,
      member_id: p.member_id,
      channel: p.channel,
      store_id: p.store_id,
      transaction_id: `txn_${event_id}`,
      transaction_ts: o.ts ?? new Date(this.clock.now().getTime() - 30_000).toISOString(),
      currency: p.currency,
      reversal_of: p.event_id,
      ...(lines ? { line_items: lines.map((l) => ({ eligible_for_points: true, ...l })) } : {}),
      idempotency_key: `key_${event_id}`,
    };
  }

  redeem(body: Json): Promise<Json> {
    return this.post('/v1/redemptions', { idempotency_key: uid('rdm'), capture: true, ...body });
  }

  adjust(body: Json, status = 201): Promise<Json> {
    return this.post(
      '/v1/adjustments',
      { idempotency_key: uid('adj'), note: 'test', reason_code: 'goodwill', ...body },
      status,
    );
  }

  runJob(name: string, as_of: Date | string): Promise<Json> {
    return this.post(`/v1/jobs/${name}/run`, { as_of: new Date(as_of).toISOString() }, 200);
  }

  /** program_id → {available, pending, held, …}; as_of optional. */
  async balances(member_id: string, as_of?: Date | string): Promise<Record<string, Json>> {
    const q = as_of ? `?as_of=${encodeURIComponent(new Date(as_of).toISOString())}` : '';
    const b = await this.get(`/v1/members/${member_id}/balances${q}`);
    return Object.fromEntries((b.programs as Json[]).map((p) => [p.program_id, p]));
  }

  /** program_id → its available points; `omitZero` leaves out the programs at 0. */
  async available(member_id: string, o: { omitZero?: boolean } = {}): Promise<Record<string, number>> {
    const b = await this.balances(member_id);
    return Object.fromEntries(
      Object.entries(b)
        .filter(([, p]) => !o.omitZero || p.available !== 0)
        .map(([id, p]) => [id, p.available as number]),
    );
  }

  /** program_id → just these fields of its balance, e.g. { available, held }. */
  async balanceFields<K extends string>(
    member_id: string,
    ...fields: K[]
  ): Promise<Record<string, Record<K, number>>> {
    const b = await this.balances(member_id);
    return Object.fromEntries(
      Object.entries(b).map(([id, p]) => [id, Object.fromEntries(fields.map((f) => [f, p[f]]))]),
    ) as Record<string, Record<K, number>>;
  }

  async verify(): Promise<Json> {
    return this.get('/v1/ledger/verify');
  }

  /** GET /v1/ledger/verify answers ok; the failing checks are the message if not. */
  async assertVerifyOk(): Promise<Json> {
    const v = await this.verify();
    assert.equal(v.ok, true, JSON.stringify((v.checks as Json[]).filter((c) => !c.ok)));
    return v;
  }
}

/** The response is an error `status` with `code`; returns its `error`. */
export function assertError(res: LightMyRequestResponse, status: number, code: string): Json {
  assert.equal(
    res.statusCode,
    status,
    `expected ${status} ${code}, got ${res.statusCode} ${res.body.slice(0, 600)}`,
  );
  const body = res.json<Json>();
  assert.equal(body.error?.code, code, res.body);
  return body.error as Json;
}

/** How many responses answered each status ("201", or "409 INSUFFICIENT_POINTS" for an error). */
export function statusCounts(rs: readonly LightMyRequestResponse[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) {
    const k =
      r.statusCode >= 400 ? `${r.statusCode} ${r.json<Json>().error?.code as string}` : String(r.statusCode);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDb = Kysely<any>;

/**
 * A fresh test service whose clock stands at `now`, with the demo configuration (or `doc`); its
 * Api, and its database for what a test reads directly.
 */
export async function serviceWithApi(
  now: string,
  doc?: unknown,
): Promise<{ t: TestService; api: Api; db: AnyDb }> {
  const clock = new ManualClock(now);
  const t = await createTestService({ clock });
  await applyDemoConfig(t.app, ...(doc === undefined ? [] : [doc]));
  return { t, api: new Api(t, clock), db: t.ctx.db as AnyDb };
}

/** Exact sum of JSON points (up to 4 decimals) as pt4 bigint. */
export function pt4(n: number): bigint {
  const s = String(n);
  const neg = s.startsWith('-');
  const [w = '0', f = ''] = (neg ? s.slice(1) : s).split('.');
  const v = BigInt(w) * 10_000n + BigInt((f + '0000').slice(0, 4));
  return neg ? -v : v;
}
