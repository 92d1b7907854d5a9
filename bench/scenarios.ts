// The measured workloads, each bounded in count and time, each against the local server only.
// Every request carries unique ids (event_id, idempotency_key, order_id), so nothing is a replay.

import { call, callOk, load, type LoadResult, type Target } from './load.ts';

export interface Bounds {
  readonly count: number;
  readonly max_seconds: number;
}

const pad = (n: number) => String(n).padStart(7, '0');

/** A purchase at store_atl_012 (northwind, in store): 5 northwind-stars and 1 acme-point per $10 eligible. */
export function purchase(
  tag: string,
  i: number,
  member_id: string,
  cents: number,
  ts: string,
): Record<string, unknown> {
  const id = `${tag}_${i}`;
  return {
    event_id: `ev_${id}`,
    event_type: 'purchase_completed',
    member_id,
    channel: 'in_store',
    store_id: 'store_atl_012',
    transaction_id: `txn_${id}`,
    transaction_ts: ts,
    order_id: `ord_${id}`,
    currency: 'USD',
    line_items: [
      {
        sku: 'SKU-BENCH',
        category: 'shirts',
        unit_price_cents: cents,
        quantity: 1,
        eligible_for_points: true,
      },
    ],
    subtotal_cents: cents,
    eligible_subtotal_cents: cents,
    idempotency_key: `key_${id}`,
  };
}

/** Counts statuses and error codes from response bodies. */
export class Outcomes {
  readonly byCode = new Map<string, number>();
  add = (status: number, body: string): void => {
    let code = String(status);
    if (status >= 400) {
      try {
        code = `${status} ${(JSON.parse(body) as { error?: { code?: string } }).error?.code ?? '?'}`;
      } catch {
        code = `${status} (non-JSON)`;
      }
    }
    this.byCode.set(code, (this.byCode.get(code) ?? 0) + 1);
  };
  get(code: string): number {
    return this.byCode.get(code) ?? 0;
  }
  toJSON(): Record<string, number> {
    return Object.fromEntries(this.byCode);
  }
}

export interface Checked<T> {
  readonly result: T;
  readonly outcomes: Record<string, number>;
  readonly problems: string[];
}

function unexpected(o: Outcomes, allowed: readonly string[]): string[] {
  return [...o.byCode.entries()].filter(([k]) => !allowed.includes(k)).map(([k, n]) => `${n} × ${k}`);
}

export async function singleAccrual(
  t: Target,
  tag: string,
  b: Bounds,
  connections: number,
  members: number,
): Promise<Checked<LoadResult>> {
  const ts = new Date(Date.now() - 60_000).toISOString();
  const o = new Outcomes();
  const result = await load(t, {
    name: 'single-event accrual',
    method: 'POST',
    connections,
    ...b,
    request: (i) => ({
      path: '/v1/events',
      body: JSON.stringify(purchase(`${tag}s`, i, `ma${tag}${pad(i % members)}`, 10_000, ts)),
    }),
    onResponse: o.add,
  });
  return { result, outcomes: o.toJSON(), problems: unexpected(o, ['201']) };
}

export interface BatchResult {
  /** Events sent (fewer than asked when the time limit stopped the run). */
  readonly events: number;
  readonly calls: number;
  readonly concurrency: number;
  readonly seconds: number;
  readonly events_per_second: number;
  readonly p50_call_ms: number;
  readonly max_call_ms: number;
}

/** Accrues one $100 purchase for each of `members` members through /v1/events/batch, 1,000 per call. */
export async function batchAccrual(
  t: Target,
  tag: string,
  members: number,
  concurrency: number,
  max_seconds: number,
  per_call = 1000,
): Promise<Checked<BatchResult>> {
  const ts = new Date(Date.now() - 60_000).toISOString();
  const calls = Math.ceil(members / per_call);
  const deadline = performance.now() + max_seconds * 1000;
  let sent = 0;
  const problems: string[] = [];
  const durations: number[] = [];
  let next = 0;
  let accepted = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(concurrency, calls) }, async () => {
      // No new call starts after the deadline; members of calls not sent have no points.
      for (let c = next++; c < calls && performance.now() < deadline; c = next++) {
        const events = [];
        for (let i = c * per_call; i < Math.min(members, (c + 1) * per_call); i++)
          events.push(purchase(`${tag}b`, i, `mr${tag}${pad(i)}`, 10_000, ts));
        sent += events.length;
        const s = performance.now();
        const res = await callOk<{ results: { http_status: number }[] }>(t, 'POST', '/v1/events/batch', {
          events,
        });
        durations.push(performance.now() - s);
        for (const r of res.results) if (r.http_status === 201) accepted++;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  if (accepted !== sent) problems.push(`${sent - accepted} of ${sent} batch events not accepted`);
  durations.sort((a, b) => a - b);
  return {
    result: {
      events: sent,
      calls: durations.length,
      concurrency,
      seconds: Math.round(seconds * 1000) / 1000,
      events_per_second: Math.round((accepted / seconds) * 10) / 10,
      p50_call_ms: Math.round(durations[Math.floor(durations.length / 2)]!),
      max_call_ms: Math.round(durations[durations.length - 1]!),
    },
    outcomes: { accepted },
    problems,
  };
}

/**
 * 10-point northwind-stars redemptions, each on a different member of the batch-seeded pool
 * (`mr<tag>…`); `run` tells the keys of a warm-up from those of the measured run, and `first`
 * continues the walk over the pool where the runs before it stopped (each member has 5 to give).
 */
export async function redemptions(
  t: Target,
  tag: string,
  b: Bounds,
  connections: number,
  members: number,
  run = '',
  first = 0,
): Promise<Checked<LoadResult>> {
  const o = new Outcomes();
  const stride = 7919; // prime: i → i × stride mod members visits every member once per `members` requests
  const result = await load(t, {
    name: 'redemption',
    method: 'POST',
    connections,
    ...b,
    request: (i) => ({
      path: '/v1/redemptions',
      body: JSON.stringify({
        member_id: `mr${tag}${pad(((first + i) * stride) % members)}`,
        brand_id: 'northwind',
        points: 10,
        idempotency_key: `rd_${tag}${run}_${i}`,
      }),
    }),
    onResponse: o.add,
  });
  return { result, outcomes: o.toJSON(), problems: unexpected(o, ['201']) };
}

export interface HotResult extends LoadResult {
  readonly initial_points: number;
  readonly final_points: number;
  readonly successes: number;
  readonly successes_per_second: number;
}

/**
 * 64 concurrent redemptions of 10 points against one member whose balance covers exactly
 * `successes` of them; 64 more requests than that are sent, so the tail must be refused.
 * Anomalies: any outcome but 201 / 409 INSUFFICIENT_POINTS, a final balance other than
 * initial − successes × 10, a negative balance, more successes than the balance allowed.
 */
export async function hotMember(
  t: Target,
  tag: string,
  successes: number,
  max_seconds: number,
  connections: number,
): Promise<Checked<HotResult>> {
  const member_id = `mh${tag}`;
  const ts = new Date(Date.now() - 60_000).toISOString();
  // 5 northwind-stars per $10: 10 × successes points need 2,000 × successes cents.
  const seeded = await callOk<{ accruals: { program_id: string; points: number }[] }>(
    t,
    'POST',
    '/v1/events',
    purchase(`${tag}h`, 0, member_id, 2_000 * successes, ts),
  );
  const initial = seeded.accruals.find((a) => a.program_id === 'northwind-stars')?.points ?? 0;
  const allowed = Math.floor(initial / 10);
  const o = new Outcomes();
  const result = await load(t, {
    name: 'hot member',
    method: 'POST',
    connections,
    count: allowed + connections,
    max_seconds,
    request: (i) => ({
      path: '/v1/redemptions',
      body: JSON.stringify({
        member_id,
        brand_id: 'northwind',
        points: 10,
        idempotency_key: `hot_${tag}_${i}`,
      }),
    }),
    onResponse: o.add,
  });
  const bal = await callOk<{ programs: { program_id: string; available: number }[] }>(
    t,
    'GET',
    `/v1/members/${member_id}/balances`,
  );
  const final = bal.programs.find((p) => p.program_id === 'northwind-stars')?.available ?? NaN;
  const ok = o.get('201');
  const problems = unexpected(o, ['201', '409 INSUFFICIENT_POINTS']);
  if (final !== initial - ok * 10) problems.push(`final balance ${final} ≠ initial ${initial} − ${ok} × 10`);
  if (final < 0) problems.push(`negative balance ${final}`);
  if (ok > allowed) problems.push(`${ok} successes, but the balance allowed ${allowed}`);
  if (!result.time_limited && ok !== allowed)
    problems.push(`${ok} successes, expected exactly ${allowed} (every request completed)`);
  return {
    result: {
      ...result,
      initial_points: initial,
      final_points: final,
      successes: ok,
      successes_per_second: Math.round((ok / result.seconds) * 10) / 10,
    },
    outcomes: o.toJSON(),
    problems,
  };
}

/**
 * Group redemptions of 50 default-program points by members holding 200 lots in each of 5 brand
 * programs (`bg<tag>…`); `run` tells the keys of a warm-up from those of the measured run.
 */
export async function groupRedemptions(
  t: Target,
  tag: string,
  b: Bounds,
  connections: number,
  members: number,
  run = '',
): Promise<Checked<LoadResult & { programs_per_redemption: number }>> {
  const o = new Outcomes();
  let spans = 0;
  let measured = 0;
  const result = await load(t, {
    name: 'group redemption',
    method: 'POST',
    connections,
    ...b,
    request: (i) => ({
      path: '/v1/redemptions',
      body: JSON.stringify({
        member_id: `bg${tag}${pad((i % members) + 1)}`,
        brand_id: 'northwind',
        group_redemption: true,
        points: 50,
        idempotency_key: `grp_${tag}${run}_${i}`,
      }),
    }),
    onResponse: (status, body) => {
      o.add(status, body);
      if (status === 201) {
        spans += (JSON.parse(body) as { breakdown_by_program: unknown[] }).breakdown_by_program.length;
        measured++;
      }
    },
  });
  return {
    result: { ...result, programs_per_redemption: measured ? Math.round((spans / measured) * 100) / 100 : 0 },
    outcomes: o.toJSON(),
    problems: unexpected(o, ['201']),
  };
}

export async function balanceReads(
  t: Target,
  tag: string,
  b: Bounds,
  connections: number,
  members: number,
): Promise<Checked<LoadResult>> {
  // No onResponse: collecting bodies would cost the load generator CPU the server needs.
  const result = await load(t, {
    name: 'balance reads',
    method: 'GET',
    connections,
    ...b,
    request: (i) => ({ path: `/v1/members/mr${tag}${pad((i * 7919) % members)}/balances` }),
  });
  const problems = Object.entries(result.status)
    .filter(([k]) => k !== '200')
    .map(([k, n]) => `${n} × HTTP ${k}`);
  return { result, outcomes: result.status, problems };
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly seconds: number;
  readonly failed: string[];
}

export async function verify(t: Target): Promise<VerifyResult> {
  const s = performance.now();
  const res = await call<{ ok: boolean; checks: { name: string; ok: boolean; detail: string }[] }>(
    t,
    'GET',
    '/v1/ledger/verify',
  );
  const seconds = Math.round((performance.now() - s) / 10) / 100;
  if (res.status !== 200)
    return { ok: false, seconds, failed: [`HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`] };
  return {
    ok: res.body.ok,
    seconds,
    failed: res.body.checks.filter((c) => !c.ok).map((c) => `${c.name}: ${c.detail.slice(0, 300)}`),
  };
}
