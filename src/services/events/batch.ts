import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { fxFactor } from '../../domain/config/fx.ts';
import type { Group } from '../../domain/config/group.ts';
import type { StoreConfig } from '../../domain/config/schema.ts';
import { canonicalJson, parseEvent, type CanonicalEvent } from '../../domain/events/canonical.ts';
import { evaluateTier, tierWindow } from '../../domain/tiers.ts';
import { AppError } from '../../errors.ts';
import type { EntryInput } from '../../ledger/entry.ts';
import { postEntries, type Trx } from '../../ledger/post.ts';
import { requireGroup } from '../config.ts';
import type { Actor, Ctx } from '../context.ts';
import { inTransaction } from '../transaction.ts';
import { buildAccrual, type AccrualPlan } from './accrual-entry.ts';
import { computeEarn, programsForStore, resolvePaidDebts } from './accrue.ts';
import { extendInactivityExpiry } from './inactivity.ts';
import { checkTime, sameEventBody, submitEvent, type BrandGuard, type EventOutcome } from './intake.ts';

// POST /v1/events/batch in few round trips. Plain purchases of members that appear once in the
// batch (the bulk of any real feed) are accrued together in one transaction with one statement
// per table; everything else — reversals, referrals, a member's second event in the batch,
// anything that needs a rejection, a replay or a referral bonus — goes through the single-event
// path, in batch order. Both paths build the same entry (buildAccrual) and claim the same keys,
// so a batch has exactly the effect of its events sent one by one. If the bulk transaction fails
// for any reason it rolls back whole and its events take the single-event path too.

interface Candidate {
  readonly index: number;
  readonly raw: unknown;
  readonly ev: CanonicalEvent;
  readonly store: StoreConfig;
  readonly hash: string;
}

export async function submitBatch(
  ctx: Ctx,
  raws: readonly unknown[],
  actor: Actor,
  guard: BrandGuard,
): Promise<EventOutcome[]> {
  const group = await requireGroup(ctx);
  const results: (EventOutcome | null)[] = raws.map(() => null);
  // Round r holds each member's r-th purchase: rounds run in order, so each member's events keep
  // their order, and within a round every member appears once.
  for (const round of bulkRounds(group, raws, ctx.clock.now(), guard)) {
    if (round.length < 2) break;
    try {
      const done = await inTransaction(ctx.db, (trx) => accrueBulk(trx, ctx, group, round, actor));
      for (const [index, outcome] of done) results[index] = outcome;
    } catch {
      // Rolled back whole (a concurrent twin, a referred member …): this round and the later
      // ones go through the single-event path below, which answers each event exactly.
      break;
    }
  }
  for (const [index, raw] of raws.entries()) {
    if (results[index]) continue;
    try {
      results[index] = await submitEvent(ctx, raw, actor, guard);
    } catch (e) {
      if (!(e instanceof AppError)) throw e;
      results[index] = {
        http_status: e.status,
        body: { error: { code: e.code, message: e.message, details: e.details } },
      };
    }
  }
  return results.map((r) => r!);
}

/**
 * Purchases that can be accrued in bulk (valid, on time, convertible, allowed, key unique in the
 * batch), grouped into rounds. Once a member has an event that must take the single-event path
 * (a reversal, a referral, a rejection …), that member's later events take it too, after it.
 */
function bulkRounds(group: Group, raws: readonly unknown[], now: Date, guard: BrandGuard): Candidate[][] {
  const parsed = raws.map((raw, index) => ({ index, raw, p: parseEvent(raw) }));
  const perKey = new Map<string, number>();
  for (const { p } of parsed)
    if (p.ok) perKey.set(p.event.idempotency_key, (perKey.get(p.event.idempotency_key) ?? 0) + 1);
  const broken = new Set<string>();
  const seen = new Map<string, number>();
  const rounds: Candidate[][] = [];
  for (const { index, raw, p } of parsed) {
    if (!p.ok) continue;
    const ev = p.event;
    const store = group.stores.get(ev.store_id);
    let bulk =
      ev.event_type === 'purchase_completed' &&
      store !== undefined &&
      perKey.get(ev.idempotency_key) === 1 &&
      !broken.has(ev.member_id);
    if (bulk && store) {
      try {
        guard(store.brand);
        checkTime(group, ev, store, now);
        for (const program of programsForStore(group, store))
          fxFactor(ev.currency, program.currency, group, ev.transaction_ms);
      } catch {
        bulk = false; // the single-event path rejects it, with its code and field
      }
    }
    if (!bulk || !store) {
      for (const m of [ev.member_id, ev.referrer_member_id]) if (m) broken.add(m);
      continue;
    }
    const r = seen.get(ev.member_id) ?? 0;
    seen.set(ev.member_id, r + 1);
    (rounds[r] ??= []).push({
      index,
      raw,
      ev,
      store,
      hash: createHash('sha256').update(canonicalJson(raw)).digest('hex'),
    });
  }
  return rounds;
}

async function accrueBulk(
  trx: Trx,
  ctx: Ctx,
  group: Group,
  all: readonly Candidate[],
  actor: Actor,
): Promise<Map<number, EventOutcome>> {
  const now = ctx.clock.now();
  const claimed = await claimKeys(trx, all, now);
  // Events whose key was taken before (replays, reuse) are answered by the single-event path.
  const mine = all.filter((c) => claimed.has(c.ev.idempotency_key));
  const out = new Map<number, EventOutcome>();
  const twins = await findTwins(trx, mine);
  const fresh: Candidate[] = [];
  const orders = new Map<string, string>();
  for (const c of mine) {
    const orderKey = c.ev.order_id ? JSON.stringify([c.store.brand, c.ev.order_id]) : null;
    const twin =
      twins.get(c.ev.event_id) ?? (orderKey ? (twins.get(orderKey) ?? orders.get(orderKey)) : undefined);
    if (twin) {
      out.set(c.index, {
        http_status: 200,
        body: { status: 'duplicate', event_id: c.ev.event_id, duplicate_of: twin },
      });
      continue;
    }
    if (orderKey) orders.set(orderKey, c.ev.event_id);
    fresh.push(c);
  }
  const members = fresh.map((c) => c.ev.member_id);
  if (members.length > 0) {
    await trx
      .insertInto('members')
      .values(members.map((id) => ({ id, created_at: now, referred_by: null })))
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    await trx
      .selectFrom('members')
      .select('id')
      .where('id', 'in', members)
      .orderBy('id')
      .forUpdate()
      .execute();
    const referred = await trx
      .selectFrom('referrals')
      .select('referred_member_id')
      .where('referred_member_id', 'in', members)
      .where('rewarded_entry_id', 'is', null)
      .execute();
    // A pending referral bonus would need the referrer's lock too: the single-event path pays it.
    if (referred.length > 0)
      throw new AppError('CONCURRENT_UPDATE', 'batch has referred members; process one by one');
    await trx
      .insertInto('enrollments')
      .values(
        fresh.flatMap((c) =>
          programsForStore(group, c.store).map((p) => ({
            member_id: c.ev.member_id,
            program_id: p.id,
            enrolled_at: now,
            tier: null,
            tier_since: null,
            last_activity_at: now,
          })),
        ),
      )
      .onConflict((oc) =>
        oc.columns(['member_id', 'program_id']).doUpdateSet({
          last_activity_at: sql`greatest(enrollments.last_activity_at, excluded.last_activity_at)`,
        }),
      )
      .execute();
  }
  const plans = await planAll(trx, group, fresh, now, actor);
  const entries = plans.map((p) => p.plan.entry).filter((e): e is EntryInput => e !== null);
  const posted = await postEntries(trx, entries);
  const entryIds = new Map(entries.map((e, i) => [e.event_id!, posted[i]!.entry_id]));
  for (const { c, plan } of plans)
    if (plan.floors.length > 0) await resolvePaidDebts(trx, c.ev.member_id, plan.floors, now);
  await recordActivityBulk(trx, plans, entryIds);
  await upgradeTiersBulk(trx, group, plans, now);
  for (const { c } of plans) {
    for (const program of programsForStore(group, c.store))
      if (program.expiry.kind === 'inactivity')
        await extendInactivityExpiry(trx, c.ev.member_id, program, new Date(c.ev.transaction_ms));
  }
  for (const { c, plan } of plans) {
    out.set(c.index, {
      http_status: 201,
      body: {
        status: 'accepted',
        event_id: c.ev.event_id,
        member_id: c.ev.member_id,
        accruals: plan.accruals,
        reversed: [],
      },
    });
  }
  if (plans.length > 0) {
    await trx
      .insertInto('events')
      .values(
        plans.map(({ c, plan }) => ({
          event_id: c.ev.event_id,
          idempotency_key: c.ev.idempotency_key,
          event_type: c.ev.event_type,
          member_id: c.ev.member_id,
          store_id: c.ev.store_id,
          brand_id: c.store.brand,
          channel: c.ev.channel,
          order_id: c.ev.order_id,
          transaction_id: c.ev.transaction_id,
          transaction_ts: new Date(c.ev.transaction_ms),
          reversal_of: null,
          received_at: now,
          request_hash: c.hash,
          payload: JSON.stringify(c.ev.raw) as never,
          outcome: JSON.stringify(out.get(c.index)!.body) as never,
          earn: JSON.stringify({
            entry_id: entryIds.get(c.ev.event_id)?.toString() ?? null,
            programs: plan.explanations,
          }) as never,
        })),
      )
      .execute();
  }
  await storeOutcomes(trx, mine, out);
  return out;
}

async function claimKeys(trx: Trx, all: readonly Candidate[], now: Date): Promise<Set<string>> {
  const rows = await trx
    .insertInto('idempotency_keys')
    .values(
      all.map((c) => ({
        scope: 'event',
        key: c.ev.idempotency_key,
        request_hash: c.hash,
        status_code: 0,
        response: JSON.stringify({ event_id: c.ev.event_id }) as never,
        created_at: now,
      })),
    )
    .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
    .returning('key')
    .execute();
  return new Set(rows.map((r) => r.key));
}

/** Events already in the ledger by event_id, or by (brand, order_id) for purchases. */
async function findTwins(trx: Trx, list: readonly Candidate[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (list.length === 0) return out;
  const byId = await trx
    .selectFrom('events')
    .select(['event_id', 'payload'])
    .where(
      'event_id',
      'in',
      list.map((c) => c.ev.event_id),
    )
    .execute();
  for (const r of byId) {
    // A reused event_id with another body is a conflict the single-event path answers (409).
    if (!sameEventBody(r.payload, list.find((c) => c.ev.event_id === r.event_id)?.raw))
      throw new AppError('CONCURRENT_UPDATE', 'event_id reused in batch');
    out.set(r.event_id, r.event_id);
  }
  const withOrder = list.filter((c) => c.ev.order_id);
  if (withOrder.length > 0) {
    const rows = await trx
      .selectFrom('events')
      .select(['event_id', 'brand_id', 'order_id'])
      .where('event_type', '=', 'purchase_completed')
      .where(
        'order_id',
        'in',
        withOrder.map((c) => c.ev.order_id!),
      )
      .execute();
    for (const r of rows) out.set(JSON.stringify([r.brand_id, r.order_id]), r.event_id);
  }
  return out;
}

interface Planned {
  readonly c: Candidate;
  readonly plan: AccrualPlan;
}

async function planAll(
  trx: Trx,
  group: Group,
  fresh: readonly Candidate[],
  now: Date,
  actor: Actor,
): Promise<Planned[]> {
  if (fresh.length === 0) return [];
  const members = fresh.map((c) => c.ev.member_id);
  const history = await trx
    .selectFrom('tier_history')
    .select(['member_id', 'program_id', 'tier', 'from_at'])
    .where('member_id', 'in', members)
    .orderBy('from_at', 'desc')
    .orderBy('id', 'desc')
    .execute();
  const debts = await trx
    .selectFrom('accounts')
    .select(['owner_id', 'program_id', 'floor_pt4'])
    .where('owner_id', 'in', members)
    .where('kind', '=', 'member_available')
    .where('floor_pt4', '<', 0n)
    .execute();
  const out: Planned[] = [];
  for (const c of fresh) {
    const at = c.ev.transaction_ms;
    const tierOf = async (program_id: string) =>
      history.find(
        (h) => h.member_id === c.ev.member_id && h.program_id === program_id && h.from_at.getTime() <= at,
      )?.tier ?? null;
    const earns = await computeEarn(group, c.ev, c.store, tierOf);
    const debt = (program_id: string) =>
      -(debts.find((d) => d.owner_id === c.ev.member_id && d.program_id === program_id)?.floor_pt4 ?? 0n);
    out.push({ c, plan: buildAccrual(c.ev, c.store, now, earns, debt, actor) });
  }
  return out;
}

async function recordActivityBulk(
  trx: Trx,
  plans: readonly Planned[],
  entryIds: ReadonlyMap<string, bigint>,
): Promise<void> {
  const rows = plans.flatMap(({ c, plan }) =>
    plan.accruals
      .map((a) => ({
        program_id: a.program_id,
        spend_minor: plan.spend_minor.get(a.program_id) ?? 0n,
        points_pt4: BigInt(plan.explanations[a.program_id]?.points_pt4 ?? '0'),
      }))
      .filter((r) => r.spend_minor !== 0n || r.points_pt4 !== 0n)
      .map((r) => ({
        member_id: c.ev.member_id,
        program_id: r.program_id,
        at: new Date(c.ev.transaction_ms),
        spend_minor: r.spend_minor,
        points_pt4: r.points_pt4,
        event_id: c.ev.event_id,
        entry_id: entryIds.get(c.ev.event_id) ?? null,
      })),
  );
  for (let i = 0; i < rows.length; i += 2_000)
    await trx
      .insertInto('program_activity')
      .values(rows.slice(i, i + 2_000))
      .execute();
}

/** The same immediate upgrade as upgradeIfQualified, with the metrics read in one query. */
async function upgradeTiersBulk(trx: Trx, group: Group, plans: readonly Planned[], now: Date): Promise<void> {
  const checks = plans.flatMap(({ c, plan }) =>
    plan.accruals
      .map((a) => group.programs.get(a.program_id)!)
      .filter((p) => p.tiers.some((t) => t.qualify))
      .map((program) => {
        const qualify = program.tiers.find((t) => t.qualify)!.qualify!;
        const w = tierWindow(qualify, c.ev.transaction_ms);
        return { c, plan, program, metric: qualify.metric, from: new Date(w.from_ms), to: new Date(w.to_ms) };
      }),
  );
  if (checks.length === 0) return;
  const values = sql.join(
    checks.map(
      (k, i) =>
        sql`(${i}::int4, ${k.c.ev.member_id}::text, ${k.program.id}::text, ${k.from}::timestamptz, ${k.to}::timestamptz)`,
    ),
  );
  const metrics = await sql<{ i: number; spend: bigint | null; points: bigint | null }>`
    select v.i, sum(a.spend_minor)::int8 as spend, sum(a.points_pt4)::int8 as points
    from (values ${values}) as v(i, member_id, program_id, from_at, to_at)
    left join program_activity a on a.member_id = v.member_id and a.program_id = v.program_id and a.at >= v.from_at and a.at < v.to_at
    group by v.i`.execute(trx);
  const current = await trx
    .selectFrom('enrollments')
    .select(['member_id', 'program_id', 'tier'])
    .where('member_id', 'in', [...new Set(checks.map((k) => k.c.ev.member_id))])
    .execute();
  const tierOf = new Map(current.map((e) => [`${e.member_id}\u0000${e.program_id}`, e.tier]));
  const changes: { member_id: string; program_id: string; tier: string | null; from_at: Date }[] = [];
  for (const m of metrics.rows) {
    const k = checks[m.i]!;
    const value = (k.metric === 'spend_minor' ? m.spend : m.points) ?? 0n;
    const tier = tierOf.get(`${k.c.ev.member_id}\u0000${k.program.id}`) ?? null;
    const next = evaluateTier(k.program.tiers, value, tier, 'upgrade_only');
    if (next === tier) continue;
    changes.push({
      member_id: k.c.ev.member_id,
      program_id: k.program.id,
      tier: next,
      from_at: new Date(k.c.ev.transaction_ms),
    });
    const view = k.plan.accruals.find((a) => a.program_id === k.program.id);
    if (view) view.tier = next;
  }
  await setTiersBulk(trx, changes, now);
}

/** setTier for many (member, program) pairs at once: one update, one history insert. */
async function setTiersBulk(
  trx: Trx,
  changes: readonly { member_id: string; program_id: string; tier: string | null; from_at: Date }[],
  now: Date,
): Promise<void> {
  if (changes.length === 0) return;
  const values = sql.join(
    changes.map(
      (c) => sql`(${c.member_id}::text, ${c.program_id}::text, ${c.tier}::text, ${c.from_at}::timestamptz)`,
    ),
  );
  await sql`update enrollments e set tier = v.tier, tier_since = v.from_at
    from (values ${values}) as v(member_id, program_id, tier, from_at)
    where e.member_id = v.member_id and e.program_id = v.program_id`.execute(trx);
  await trx
    .insertInto('tier_history')
    .values(
      changes.map((c) => ({
        member_id: c.member_id,
        program_id: c.program_id,
        tier: c.tier,
        from_at: c.from_at,
        recorded_at: now,
        reason: 'upgrade',
      })),
    )
    .execute();
}

async function storeOutcomes(
  trx: Trx,
  list: readonly Candidate[],
  out: ReadonlyMap<number, EventOutcome>,
): Promise<void> {
  const rows = list.filter((c) => out.has(c.index));
  if (rows.length === 0) return;
  const values = sql.join(
    rows.map(
      (c) =>
        sql`(${c.ev.idempotency_key}::text, ${out.get(c.index)!.http_status}::int4, ${JSON.stringify({ event_id: c.ev.event_id, body: out.get(c.index)!.body })}::jsonb)`,
    ),
  );
  await sql`update idempotency_keys k set status_code = v.status, response = v.response
    from (values ${values}) as v(key, status, response)
    where k.scope = 'event' and k.key = v.key`.execute(trx);
}
