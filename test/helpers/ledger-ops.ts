// Random operations on a few members of the demo group, and an independent model of their
// balances fed only by what each response says moved: the property tests of redemptions
// (test/api/redemptions.property.test.ts, one operation at a time) and of concurrent operations
// (test/reliability/concurrent-ops.property.test.ts) share them. Whatever order the service runs
// the operations in, each answer says what it moved, so the model's sum must equal the API's
// balances.

import { strict as assert } from 'node:assert';
import * as fc from 'fast-check';
import type { LightMyRequestResponse } from 'fastify';
import type { ManualClock } from '../../src/clock.ts';
import type { TestService } from './store.ts';

export type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const BRANDS = ['northwind', 'harbor', 'summit'] as const;
export type Brand = (typeof BRANDS)[number];
const STORE: Record<Brand, { store: string; channel: string; currency: string; program: string }> = {
  northwind: { store: 'store_atl_012', channel: 'in_store', currency: 'USD', program: 'northwind-stars' },
  harbor: { store: 'web_harbor', channel: 'online', currency: 'EUR', program: 'harbor-rewards' },
  summit: { store: 'store_lon_001', channel: 'in_store', currency: 'GBP', program: 'summit-miles' },
};

let seq = 0;
export const uid = (prefix: string): string => `${prefix}_${process.pid}_${++seq}`;
const pt4 = (n: number): bigint => BigInt(Math.round(n * 1e4));

/** `twice`: the same request (same idempotency key) sent twice at once. */
export type Op =
  | { k: 'buy'; m: number; brand: Brand; cents: number; twice?: boolean }
  | { k: 'batch'; buys: readonly { m: number; brand: Brand; cents: number }[] }
  | { k: 'void'; i: number }
  | { k: 'release-holds' }
  | { k: 'close' }
  | { k: 'job'; name: 'expire' | 'mature' | 'tiers' }
  | {
      k: 'redeem';
      m: number;
      brand: Brand;
      group: boolean;
      points: number;
      capture: boolean;
      twice?: boolean;
    }
  | { k: 'capture'; i: number; part: number | null }
  | { k: 'release'; i: number }
  | { k: 'reverse'; i: number }
  | {
      k: 'transfer';
      from: number;
      to: number;
      group: boolean;
      brand: Brand;
      points: number;
      twice?: boolean;
    }
  | { k: 'advance'; minutes: number };

export interface OpOptions {
  /** Purchase voids (which may leave a member negative, as a recorded shortfall). */
  readonly voids?: boolean;
  /** Requests sent twice at once under one key. */
  readonly twice?: boolean;
  /** Clock advances (not inside a round of concurrent operations). */
  readonly advance?: boolean;
  /**
   * Purchases through POST /v1/events/batch, runs of the jobs (release-holds, and expire, mature
   * and tiers, which find nothing due here but take their locks), settlement closes.
   */
  readonly batchAndJobs?: boolean;
}

export const opArb = (members: number, opts: OpOptions = {}): fc.Arbitrary<Op> => {
  const m = fc.integer({ min: 0, max: members - 1 });
  const brand = fc.constantFrom(...BRANDS);
  const twice = { twice: opts.twice ? fc.boolean() : fc.constant(false) };
  const weighted: fc.WeightedArbitrary<Op>[] = [
    {
      arbitrary: fc.record({
        k: fc.constant('buy' as const),
        m,
        brand,
        cents: fc.integer({ min: 100, max: 20_000 }),
        ...twice,
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        k: fc.constant('redeem' as const),
        m,
        brand,
        group: fc.boolean(),
        points: fc.integer({ min: 1, max: 40 }),
        capture: fc.boolean(),
        ...twice,
      }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        k: fc.constant('capture' as const),
        i: fc.nat(),
        part: fc.option(fc.integer({ min: 1, max: 30 }), { nil: null }),
      }),
      weight: 3,
    },
    { arbitrary: fc.record({ k: fc.constant('release' as const), i: fc.nat() }), weight: 1 },
    { arbitrary: fc.record({ k: fc.constant('reverse' as const), i: fc.nat() }), weight: 2 },
    {
      arbitrary: fc.record({
        k: fc.constant('transfer' as const),
        from: m,
        to: m,
        group: fc.boolean(),
        brand,
        points: fc.integer({ min: 1, max: 40 }),
        ...twice,
      }),
      weight: 2,
    },
  ];
  if (opts.batchAndJobs)
    weighted.push(
      {
        arbitrary: fc.record({
          k: fc.constant('batch' as const),
          buys: fc.array(fc.record({ m, brand, cents: fc.integer({ min: 100, max: 20_000 }) }), {
            minLength: 1,
            maxLength: 4,
          }),
        }),
        weight: 1,
      },
      { arbitrary: fc.record({ k: fc.constant('release-holds' as const) }), weight: 3 },
      { arbitrary: fc.record({ k: fc.constant('close' as const) }), weight: 1 },
      {
        arbitrary: fc.record({
          k: fc.constant('job' as const),
          name: fc.constantFrom('expire' as const, 'mature' as const, 'tiers' as const),
        }),
        weight: 1,
      },
    );
  if (opts.voids)
    weighted.push({ arbitrary: fc.record({ k: fc.constant('void' as const), i: fc.nat() }), weight: 1 });
  if (opts.advance !== false)
    weighted.push({
      arbitrary: fc.record({ k: fc.constant('advance' as const), minutes: fc.integer({ min: 1, max: 20 }) }),
      weight: 1,
    });
  return fc.oneof(...weighted);
};

function byProgram(list: readonly Json[], field = 'points'): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const x of list) out.set(x.program_id, (out.get(x.program_id) ?? 0n) + pt4(x[field]));
  return out;
}

function expectOneOf(
  res: LightMyRequestResponse,
  ok: readonly number[],
  codes: readonly string[],
  what: string,
): boolean {
  if (ok.includes(res.statusCode)) return true;
  assert.ok(res.statusCode < 500, `${what}: ${res.statusCode} ${res.body}`);
  const code = res.json<Json>().error?.code as string;
  assert.ok(codes.includes(code), `${what}: unexpected ${res.statusCode} ${res.body}`);
  return false;
}

/**
 * The answers to one request sent `n` times at once under one key: at most one took effect (a
 * 201), the others are replays of it (200) or the same refusal. Returns the answer that took
 * effect, if any.
 */
function once(answers: readonly LightMyRequestResponse[], id: (b: Json) => unknown, what: string) {
  const made = answers.filter((r) => r.statusCode === 201);
  assert.ok(made.length <= 1, `${what}: ${made.length} took effect: ${made.map((r) => r.body).join(' ')}`);
  for (const r of answers.filter((a) => a.statusCode === 200)) {
    assert.ok(made[0], `${what}: a replay without an original: ${r.body}`);
    assert.equal(id(r.json<Json>()), id(made[0].json<Json>()), `${what}: replay of another: ${r.body}`);
  }
  return made[0] ?? answers[0]!;
}

/** Successful operations by kind, over all runs: a property must show it exercised the API. */
export const done = new Map<string, number>();
const count = (k: string) => done.set(k, (done.get(k) ?? 0) + 1);

/**
 * A few members, their model (member → program → available and held, in pt4), and what later
 * operations can refer to: redemptions and purchases that took effect.
 */
export class LedgerOps {
  readonly bal = new Map<string, Map<string, { available: bigint; held: bigint }>>();
  readonly holds = new Map<string, Map<string, bigint>>();
  readonly redemptions: { id: string; member: string }[] = [];
  readonly purchases: { event: Json; brand: Brand; voided: boolean }[] = [];
  /** member \u0000 program where a void recorded a negative balance. */
  readonly negative = new Set<string>();

  constructor(
    private readonly t: TestService,
    private readonly clock: ManualClock,
    readonly members: readonly string[],
  ) {}

  /** Two purchases per member, so that there is something to spend. */
  async seed(): Promise<void> {
    for (let m = 0; m < this.members.length; m++) {
      await this.run({ k: 'buy', m, brand: 'northwind', cents: 20_000 });
      await this.run({ k: 'buy', m, brand: 'harbor', cents: 5_000 });
    }
  }

  /** Holds the release-holds job said it released, since the last settleExpiredHolds. */
  jobReleases = 0;

  #purchase(b: { m: number; brand: Brand; cents: number }): Json {
    const s = STORE[b.brand];
    const id = uid('ev');
    return {
      event_id: id,
      event_type: 'purchase_completed',
      member_id: this.members[b.m]!,
      channel: s.channel,
      store_id: s.store,
      transaction_id: `tx_${id}`,
      transaction_ts: new Date(this.clock.now().getTime() - 3_600_000).toISOString(),
      order_id: `ord_${id}`,
      currency: s.currency,
      line_items: [
        { sku: 'SKU-1', category: 'misc', unit_price_cents: b.cents, quantity: 1, eligible_for_points: true },
      ],
      subtotal_cents: b.cents,
      eligible_subtotal_cents: b.cents,
      idempotency_key: `k_${id}`,
    };
  }

  #accrued(event: Json, brand: Brand, body: Json): void {
    assert.equal(body.status, 'accepted', JSON.stringify(body));
    const accrued = (body.accruals as Json[]).filter((a) => a.points > 0);
    this.#apply(event.member_id, byProgram(accrued), 'available', 1n);
    this.purchases.push({ event, brand, voided: false });
    count('buy');
  }

  /**
   * After every round: the holds the model still has that the service now says expired were
   * released by a release-holds run (it skips members another transaction holds, so not every
   * hold past its timeout need be; a capture or release past it resolves the hold itself, and
   * the model with it). No more can have expired than the runs released, so a hold that expired
   * with no run fails here.
   */
  async settleExpiredHolds(): Promise<void> {
    let expired = 0;
    for (const id of [...this.holds.keys()]) {
      const res = await this.t.app.inject({
        method: 'GET',
        url: `/v1/redemptions/${id}`,
        headers: this.t.adminHeaders,
      });
      assert.equal(res.statusCode, 200, res.body);
      if (res.json<Json>().status !== 'expired') continue;
      await this.#timedOut(id);
      expired++;
      count('expired');
    }
    assert.ok(expired <= this.jobReleases, `${expired} holds expired, the job released ${this.jobReleases}`);
    this.jobReleases = 0;
  }

  /**
   * A hold the service released by its timeout, into the model once. The hold leaves the model
   * before the await: an operation of the same round may be told the same, and would see it still
   * there while the ledger is read (a second capture of it answered meanwhile applied it twice).
   */
  async #timedOut(redemption_id: string): Promise<void> {
    const held = this.holds.get(redemption_id);
    if (!held) return;
    this.holds.delete(redemption_id);
    const member = this.redemptions.find((r) => r.id === redemption_id)!.member;
    this.#apply(member, held, 'held', -1n);
    this.#apply(member, held, 'available', 1n);
    this.#apply(member, await this.#recovered(redemption_id), 'available', -1n);
  }

  /**
   * What a redemption's returning points gave back to reversals' write-offs, per program
   * (services/redemptions/reclaim.ts): a hold released by its timeout answers nobody, so the
   * model reads it from the ledger.
   */
  async #recovered(redemption_id: string): Promise<Map<string, bigint>> {
    const rows = await this.t.ctx.db
      .selectFrom('lot_allocations as a')
      .innerJoin('entries as e', 'e.id', 'a.entry_id')
      .select(['a.program_id', 'a.points_pt4'])
      .where('e.ref_type', '=', 'redemption')
      .where('e.ref_id', '=', redemption_id)
      .where('a.kind', '=', 'writeoff_recovery')
      .execute();
    const out = new Map<string, bigint>();
    for (const r of rows) out.set(r.program_id, (out.get(r.program_id) ?? 0n) + r.points_pt4);
    return out;
  }

  #at(member: string, program: string) {
    let m = this.bal.get(member);
    if (!m) this.bal.set(member, (m = new Map()));
    let b = m.get(program);
    if (!b) m.set(program, (b = { available: 0n, held: 0n }));
    return b;
  }

  #apply(member: string, moved: Map<string, bigint>, field: 'available' | 'held', sign: 1n | -1n) {
    for (const [p, v] of moved) this.#at(member, p)[field] += sign * v;
  }

  #post(url: string, payload: Json): Promise<LightMyRequestResponse> {
    return this.t.app.inject({ method: 'POST', url, headers: this.t.adminHeaders, payload });
  }

  #times(n: number, url: string, payload: Json): Promise<LightMyRequestResponse[]> {
    return Promise.all(Array.from({ length: n }, () => this.#post(url, payload)));
  }

  /**
   * Runs one operation and feeds the model with what its answer says moved. Operations that refer
   * to earlier ones (capture, release, reverse, void) pick from those that had taken effect when
   * they started.
   */
  async run(op: Op): Promise<void> {
    const n = 'twice' in op && op.twice ? 2 : 1;
    switch (op.k) {
      case 'advance':
        this.clock.advance(op.minutes * 60_000);
        return;
      case 'buy': {
        const event = this.#purchase(op);
        const answers = await this.#times(n, '/v1/events', event);
        const res = once(answers, () => event.event_id, 'buy');
        assert.equal(res.statusCode, 201, res.body);
        for (const r of answers)
          if (r !== res) assert.equal(r.json<Json>().status, 'duplicate', `buy twice: ${r.body}`);
        this.#accrued(event, op.brand, res.json<Json>());
        return;
      }
      case 'batch': {
        const events = op.buys.map((b) => this.#purchase(b));
        const res = await this.#post('/v1/events/batch', { events });
        assert.equal(res.statusCode, 200, res.body);
        const results = res.json<Json>().results as Json[];
        assert.equal(results.length, events.length, res.body);
        results.forEach((r, i) => {
          assert.equal(r.http_status, 201, `batch[${i}]: ${JSON.stringify(r)}`);
          this.#accrued(events[i]!, op.buys[i]!.brand, r);
        });
        count('batch');
        return;
      }
      case 'close': {
        // The open settlement period, up to now: one of the closes sent at once succeeds, the
        // others find it closed; verify checks the statements against the flows.
        const res = await this.#post('/v1/settlement/periods', { to: this.clock.now().toISOString() });
        if (!expectOneOf(res, [201], ['SETTLEMENT_PERIOD_ALREADY_CLOSED'], 'close')) return;
        count('close');
        return;
      }
      case 'job': {
        const res = await this.#post(`/v1/jobs/${op.name}/run`, { as_of: this.clock.now().toISOString() });
        assert.equal(res.statusCode, 200, res.body);
        count(op.name);
        return;
      }
      case 'release-holds': {
        const res = await this.#post('/v1/jobs/release-holds/run', { as_of: this.clock.now().toISOString() });
        assert.equal(res.statusCode, 200, res.body);
        this.jobReleases += res.json<Json>().holds_released as number;
        count('release-holds');
        return;
      }
      case 'void': {
        if (this.purchases.length === 0) return;
        const purchase = this.purchases[op.i % this.purchases.length]!;
        const { event } = purchase;
        const id = uid('void');
        const res = await this.#post('/v1/events', {
          event_id: id,
          event_type: 'purchase_voided',
          member_id: event.member_id,
          channel: event.channel,
          store_id: event.store_id,
          transaction_id: `tx_${id}`,
          transaction_ts: new Date(this.clock.now().getTime() - 60_000).toISOString(),
          currency: event.currency,
          reversal_of: event.event_id,
          idempotency_key: `k_${id}`,
        });
        if (!expectOneOf(res, [201], ['OVER_REFUND'], 'void')) return;
        assert.ok(!purchase.voided, `${event.event_id} voided twice: ${res.body}`);
        purchase.voided = true;
        for (const r of res.json<Json>().reversed as Json[]) {
          // What was taken from the member: the available part, and a shortfall past the
          // program's absorb limit, which is a recorded negative balance.
          const taken = new Map([[r.program_id, pt4(r.from_available) + pt4(r.negative_balance)]]);
          this.#apply(event.member_id, taken, 'available', -1n);
          if (r.negative_balance > 0) this.negative.add(`${event.member_id}\u0000${r.program_id}`);
          assert.equal(r.from_pending, 0, `void: ${res.body}`);
        }
        count('void');
        return;
      }
      case 'redeem': {
        const member = this.members[op.m]!;
        const answers = await this.#times(n, '/v1/redemptions', {
          member_id: member,
          brand_id: op.brand,
          group_redemption: op.group,
          points: op.points,
          capture: op.capture,
          idempotency_key: uid('rk'),
        });
        const res = once(answers, (b) => b.redemption_id, 'redeem');
        // Whole points only, so never INVALID_AMOUNT: a group request worth less than one point of
        // the earliest-expiring lot takes that point (group-plan.ts rounds the last lot up).
        if (!expectOneOf(res, [201], ['INSUFFICIENT_POINTS'], 'redeem')) return;
        const body = res.json<Json>();
        const moved = byProgram(body.breakdown_by_program);
        this.#apply(member, moved, 'available', -1n);
        if (!op.capture) {
          this.#apply(member, moved, 'held', 1n);
          this.holds.set(body.redemption_id, moved);
        }
        this.redemptions.push({ id: body.redemption_id, member });
        count(op.capture ? 'redeem' : 'hold');
        return;
      }
      case 'capture':
      case 'release': {
        if (this.redemptions.length === 0) return;
        const r = this.redemptions[op.i % this.redemptions.length]!;
        const payload = op.k === 'capture' && op.part !== null ? { points: op.part } : {};
        const res = await this.#post(`/v1/redemptions/${r.id}/${op.k}`, payload);
        if (!expectOneOf(res, [200], ['HOLD_ALREADY_RESOLVED', 'INVALID_AMOUNT'], op.k)) {
          const err = res.json<Json>().error;
          // A capture or release past the timeout releases the hold, then refuses; so does any
          // later one, which finds it released already (the model's hold is gone by then).
          if (err.code === 'HOLD_ALREADY_RESOLVED' && err.details.status === 'expired')
            await this.#timedOut(r.id);
          return;
        }
        const body = res.json<Json>();
        const captured = byProgram(body.points_captured_by_program);
        const released = byProgram(body.points_released_by_program);
        // Whatever the hold had is now resolved, once: captured + released = held.
        const held = this.holds.get(r.id);
        assert.ok(held, `${op.k} of ${r.id} answered 200, but the hold was resolved before: ${res.body}`);
        for (const [p, v] of held)
          assert.equal((captured.get(p) ?? 0n) + (released.get(p) ?? 0n), v, `hold ${r.id} in ${p}`);
        this.#apply(r.member, captured, 'held', -1n);
        this.#apply(r.member, released, 'held', -1n);
        this.#apply(r.member, released, 'available', 1n);
        this.#apply(
          r.member,
          byProgram(body.points_released_by_program, 'write_off_recovered'),
          'available',
          -1n,
        );
        this.holds.delete(r.id);
        count(op.k);
        return;
      }
      case 'reverse': {
        if (this.redemptions.length === 0) return;
        const r = this.redemptions[op.i % this.redemptions.length]!;
        const res = await this.#post(`/v1/redemptions/${r.id}/reverse`, {});
        if (!expectOneOf(res, [200], ['REDEMPTION_NOT_REVERSIBLE'], 'reverse')) return;
        const restored = res.json<Json>().restored as Json[];
        this.#apply(r.member, byProgram(restored), 'available', 1n);
        this.#apply(r.member, byProgram(restored, 'expired_on_restore'), 'available', -1n);
        this.#apply(r.member, byProgram(restored, 'write_off_recovered'), 'available', -1n);
        count('reverse');
        return;
      }
      case 'transfer': {
        if (op.from === op.to) return;
        const from = this.members[op.from]!;
        const to = this.members[op.to]!;
        const answers = await this.#times(n, '/v1/transfers', {
          from_member_id: from,
          to_member_id: to,
          points: op.points,
          ...(op.group ? { group_transfer: true } : { program_id: STORE[op.brand].program }),
          idempotency_key: uid('tk'),
        });
        const res = once(answers, (b) => b.transfer_id, 'transfer');
        if (!expectOneOf(res, [201], ['INSUFFICIENT_POINTS'], 'transfer')) return;
        const body = res.json<Json>();
        // Every transfer credits exactly the request (a group transfer rounds the last lot up).
        assert.equal(body.credited.points, op.points, `transfer credited: ${res.body}`);
        this.#apply(from, byProgram(body.debited_by_program), 'available', -1n);
        this.#apply(to, byProgram([body.credited]), 'available', 1n);
        count('transfer');
        return;
      }
    }
  }

  /**
   * The API's balances equal the model's, nothing is pending, nothing is held below zero, and
   * nothing is available below zero but where a void recorded a negative balance.
   */
  async check(): Promise<void> {
    for (const m of this.members) {
      const res = await this.t.app.inject({
        method: 'GET',
        url: `/v1/members/${m}/balances`,
        headers: this.t.adminHeaders,
      });
      assert.equal(res.statusCode, 200, res.body);
      const api = new Map<string, { available: bigint; held: bigint }>();
      for (const p of res.json<Json>().programs) {
        assert.equal(p.pending, 0);
        if (p.available !== 0 || p.held !== 0)
          api.set(p.program_id, { available: pt4(p.available), held: pt4(p.held) });
        assert.ok(p.held >= 0, `${m} ${p.program_id}: held ${p.held}`);
        if (!this.negative.has(`${m}\u0000${p.program_id}`))
          assert.ok(p.available >= 0, `${m} ${p.program_id}: available ${p.available}`);
      }
      const mine = new Map(
        [...(this.bal.get(m) ?? new Map<string, { available: bigint; held: bigint }>())].filter(
          ([, b]) => b.available !== 0n || b.held !== 0n,
        ),
      );
      assert.deepEqual(new Map([...api].sort()), new Map([...mine].sort()), `member ${m}`);
    }
    const v = await this.t.app.inject({
      method: 'GET',
      url: '/v1/ledger/verify',
      headers: this.t.adminHeaders,
    });
    assert.equal(v.json<Json>().ok, true, JSON.stringify(v.json<Json>().checks.filter((c: Json) => !c.ok)));
  }
}
