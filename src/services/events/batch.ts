import { createHash } from 'node:crypto';
import type { CompiledQuery } from 'kysely';
import { fxFactor } from '../../domain/config/fx.ts';
import type { CompiledProgram, Group } from '../../domain/config/group.ts';
import type { StoreConfig } from '../../domain/config/schema.ts';
import { canonicalJson, parseEvent, type CanonicalEvent } from '../../domain/events/canonical.ts';
import { DAY_MS } from '../../domain/expiry.ts';
import { evaluateTier, tierWindow } from '../../domain/tiers.ts';
import { AppError } from '../../errors.ts';
import type { EntryInput } from '../../ledger/entry.ts';
import { idsOf, postEntries, reserveIds, type EntryIds, type Trx } from '../../ledger/post.ts';
import { deferWrite, together } from '../../store/write-behind.ts';
import { requireGroup } from '../config.ts';
import type { Actor, Ctx } from '../context.ts';
import { inTransaction, PREPARED } from '../transaction.ts';
import { buildAccrual, type AccrualPlan } from './accrual-entry.ts';
import { computeEarn, programsForStore, resolvePaidDebts, type ProgramEarn } from './accrue.ts';
import {
  claimKeysQuery,
  currentTiersQuery,
  debtsQuery,
  enrollQuery,
  eventsByIdQuery,
  extendInactivityQuery,
  inactivityDeadlinesQuery,
  insertActivityQuery,
  insertMembersQuery,
  lockMembersQuery,
  metricsQuery,
  purchasesByOrderQuery,
  recordAcceptedQuery,
  referrersQuery,
  storeOutcomesQuery,
  tierHistoryQuery,
  tiersAtQuery,
  unpaidReferralQuery,
  type AcceptedEvent,
  type ActivityRow,
  type Enrollment,
  type TierChange,
} from './batch-statements.ts';
import { checkTime, sameEventBody, submitEvent, type BrandGuard, type EventOutcome } from './intake.ts';
import { storedEarn } from './reverse.ts';

// POST /v1/events/batch in few round trips. Plain purchases of members that appear once in the
// batch (the bulk of any real feed) are accrued together in one transaction with one statement
// per table; everything else — reversals, referrals, a member's second event in the batch,
// anything that needs a rejection, a replay or a referral bonus — goes through the single-event
// path, in batch order. Both paths build the same entry (buildAccrual) and claim the same keys,
// so a batch has exactly the effect of its events sent one by one. If the bulk transaction fails
// for any reason it rolls back whole and its events take the single-event path too.
//
// The bulk transaction takes two round trips whatever the batch size, and its commit: claim the
// keys and look for twins; then create and lock the members and read, under the lock, what their
// accruals need (tiers at the event's time, current tiers, debts, tier metrics, entry and lot
// ids). Everything after that is a write whose result nobody reads — the entries (ledger),
// enrollments, tier history, activity, inactivity expiry, the events rows and the keys' outcomes
// — and travels with the commit (store/write-behind.ts). Each statement takes one array parameter
// per column, or one JSON document for rows that carry documents (batch-statements.ts), not one
// parameter per value, and reads probe their indexes once per key, so a batch costs the same
// however large the tables grow.

/** A purchase the bulk transaction can take; `index` is its place in what the caller sent. */
export interface Candidate {
  readonly index: number;
  readonly ev: CanonicalEvent;
  readonly store: StoreConfig;
  readonly programs: readonly CompiledProgram[];
  readonly hash: string;
  readonly actor: Actor;
}

export async function submitBatch(
  ctx: Ctx,
  raws: readonly unknown[],
  actor: Actor,
  guard: BrandGuard,
): Promise<EventOutcome[]> {
  const group = await requireGroup(ctx);
  const results: (EventOutcome | null)[] = raws.map(() => null);
  const parsed = raws.map((raw, index) => ({ index, raw, p: parseEvent(raw) }));
  const referrers = await referrersOfReversals(ctx, parsed);
  // Rounds run in order, and an event tied to earlier ones (same member, order or event id:
  // tiesOf) is in a later round than each of them, so tied events keep the batch's order and
  // within a round every member and order appears once.
  for (const round of bulkRounds(group, parsed, referrers, ctx.clock.now(), guard, actor)) {
    if (round.length < 2) break;
    try {
      // The batch answers 200 whatever its events' outcomes: said here, the request's audit row
      // commits with its status (services/transaction.ts) instead of being updated afterwards.
      const done = await inTransaction(
        ctx.db,
        async (trx) => ({ http_status: 200, body: await accrueBulk(trx, ctx, group, round) }),
        PREPARED,
      );
      for (const [index, outcome] of done.body) results[index] = outcome;
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
 * What ties an event to the events around it: its member (and referrer), its order and its event
 * id. Events that share one must take effect in the batch's order, since the first of an order or
 * event id wins and a member's events read each other.
 */
const tiesOf = (ev: CanonicalEvent, referrers: ReadonlyMap<string, string>): string[] => [
  `member:${ev.member_id}`,
  ...(ev.referrer_member_id ? [`member:${ev.referrer_member_id}`] : []),
  ...(isReversal(ev) && referrers.has(ev.member_id) ? [`member:${referrers.get(ev.member_id)!}`] : []),
  ...(ev.order_id ? [`order:${ev.order_id}`] : []),
  `event:${ev.event_id}`,
];

const isReversal = (ev: CanonicalEvent): boolean =>
  ev.event_type === 'purchase_voided' || ev.event_type === 'purchase_refunded';

type Parsed = { index: number; raw: unknown; p: ReturnType<typeof parseEvent> };

/**
 * The referrers of the members whose purchases the batch reverses: a reversal may take the
 * referral bonus back from its referrer (referral-clawback.ts), so the referrer's later events
 * in the batch must follow it, as they would one by one. One read, only when there are reversals.
 */
async function referrersOfReversals(ctx: Ctx, parsed: readonly Parsed[]): Promise<Map<string, string>> {
  const members = [
    ...new Set(parsed.flatMap(({ p }) => (p.ok && isReversal(p.event) ? [p.event.member_id] : []))),
  ];
  if (members.length === 0) return new Map();
  const { rows } = await ctx.db.executeQuery(referrersQuery(ctx.db, members));
  return new Map(rows.map((r) => [r.referred_member_id, r.referrer_member_id]));
}

/**
 * Purchases that can be accrued in bulk (see bulkPrograms, and key unique in the batch), grouped
 * into rounds. Once an event must take the single-event path (a reversal, a referral, a
 * rejection …), the later events tied to it (tiesOf) take it too, after it: the bulk rounds run
 * first, so otherwise a later purchase of the same order could win over an earlier one.
 */
function bulkRounds(
  group: Group,
  parsed: readonly Parsed[],
  referrers: ReadonlyMap<string, string>,
  now: Date,
  guard: BrandGuard,
  actor: Actor,
): Candidate[][] {
  const perKey = new Map<string, number>();
  for (const { p } of parsed)
    if (p.ok) perKey.set(p.event.idempotency_key, (perKey.get(p.event.idempotency_key) ?? 0) + 1);
  const programsOf = new Map<StoreConfig, CompiledProgram[]>();
  const broken = new Set<string>();
  const seen = new Map<string, number>();
  const rounds: Candidate[][] = [];
  for (const { index, raw, p } of parsed) {
    if (!p.ok) continue;
    const ev = p.event;
    const store = group.stores.get(ev.store_id);
    let programs: CompiledProgram[] | null = null;
    const ties = tiesOf(ev, referrers);
    if (store && perKey.get(ev.idempotency_key) === 1 && !ties.some((t) => broken.has(t))) {
      try {
        guard(store.brand);
        programs = bulkPrograms(group, ev, store, now, programsOf);
      } catch {
        programs = null; // the single-event path answers FORBIDDEN
      }
    }
    if (!store || !programs) {
      for (const t of ties) broken.add(t);
      continue;
    }
    // After the round of every earlier event it is tied to: a member's r-th purchase, or a
    // purchase under an order id an earlier one used, runs in a later round than those.
    const r = Math.max(...ties.map((t) => seen.get(t) ?? 0));
    for (const t of ties) seen.set(t, r + 1);
    (rounds[r] ??= []).push({
      index,
      ev,
      store,
      programs,
      hash: createHash('sha256').update(canonicalJson(raw)).digest('hex'),
      actor,
    });
  }
  return rounds;
}

/**
 * The programs a purchase accrues in, when the bulk transaction can take it: a plain purchase,
 * on time, in a convertible currency. Null otherwise: the single-event path takes it and answers
 * any rejection with its code and field. `memo` keeps each store's programs across calls.
 */
export function bulkPrograms(
  group: Group,
  ev: CanonicalEvent,
  store: StoreConfig,
  now: Date,
  memo?: Map<StoreConfig, CompiledProgram[]>,
): CompiledProgram[] | null {
  if (ev.event_type !== 'purchase_completed' || ev.referrer_member_id) return null;
  try {
    checkTime(group, ev, store, now);
    const programs = memo?.get(store) ?? programsForStore(group, store);
    memo?.set(store, programs);
    for (const program of programs) fxFactor(ev.currency, program.currency, group, ev.transaction_ms);
    return programs;
  } catch {
    return null;
  }
}

const pairKey = (a: string, b: string) => `${a}\u0000${b}`;

/**
 * Accrues the candidates (distinct members, distinct keys) in the caller's transaction and
 * answers each by its index: accepted, or duplicate of an event already in the ledger. A
 * candidate whose key was claimed before is left unanswered for the single-event path, which
 * replays the stored outcome or refuses the reused key.
 */
export async function accrueBulk(
  trx: Trx,
  ctx: Ctx,
  group: Group,
  all: readonly Candidate[],
): Promise<Map<number, EventOutcome>> {
  const now = ctx.clock.now();
  // Round trip 1: claim the keys, and look for twins of the events (by event_id, by order).
  const withOrder = all.filter((c) => c.ev.order_id !== null);
  const [claimedRows, byId, byOrder] = await together(trx, [
    claimKeysQuery(
      trx,
      all.map((c) => ({ key: c.ev.idempotency_key, hash: c.hash, event_id: c.ev.event_id })),
      now,
    ),
    eventsByIdQuery(
      trx,
      all.map((c) => c.ev.event_id),
    ),
    withOrder.length > 0
      ? purchasesByOrderQuery(
          trx,
          withOrder.map((c) => ({ brand_id: c.store.brand, order_id: c.ev.order_id! })),
        )
      : null,
  ]);
  const claimed = new Set(claimedRows.map((r) => r.key));
  // Events whose key was taken before (replays, reuse) are answered by the single-event path.
  const mine = all.filter((c) => claimed.has(c.ev.idempotency_key));
  const twins = new Map<string, string>();
  const mineById = new Map(mine.map((c) => [c.ev.event_id, c]));
  for (const r of byId) {
    const c = mineById.get(r.event_id);
    if (!c) continue;
    // A reused event_id with another body is a conflict the single-event path answers (409).
    if (!sameEventBody(r.payload, c.ev.raw))
      throw new AppError('CONCURRENT_UPDATE', 'event_id reused in batch');
    twins.set(r.event_id, r.event_id);
  }
  for (const r of byOrder) twins.set(JSON.stringify([r.brand_id, r.order_id]), r.event_id);

  const out = new Map<number, EventOutcome>();
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

  const accepted: AcceptedEvent[] = [];
  if (fresh.length > 0) {
    const { plans, enrollments, upgrades, ids } = await planAll(trx, group, fresh, now);
    const entries = plans.map((p) => p.plan.entry).filter((e): e is EntryInput => e !== null);
    const posted = await postEntries(trx, entries, ids);
    const entryIds = new Map(entries.map((e, i) => [e.event_id!, posted[i]!.entry_id]));
    for (const { c, plan } of plans)
      if (plan.floors.length > 0) await resolvePaidDebts(trx, c.ev.member_id, plan.floors, now);
    await deferAll(trx, afterPosting(trx, plans, enrollments, upgrades, entryIds, now));
    for (const { c, plan } of plans) {
      const body = {
        status: 'accepted',
        event_id: c.ev.event_id,
        member_id: c.ev.member_id,
        accruals: plan.accruals,
        reversed: [],
      };
      out.set(c.index, { http_status: 201, body });
      const entry_id = entryIds.get(c.ev.event_id);
      accepted.push({
        event_id: c.ev.event_id,
        idempotency_key: c.ev.idempotency_key,
        member_id: c.ev.member_id,
        store_id: c.ev.store_id,
        brand_id: c.store.brand,
        channel: c.ev.channel,
        order_id: c.ev.order_id,
        transaction_id: c.ev.transaction_id,
        transaction_ts: c.ev.transaction_ts,
        request_hash: c.hash,
        payload: c.ev.raw,
        outcome: body,
        earn: storedEarn(entry_id ?? null, plan.explanations),
      });
    }
  }
  // The events rows (which answer their keys) and the other keys' outcomes travel with the commit.
  if (accepted.length > 0) await deferAll(trx, [recordAcceptedQuery(trx, accepted, now)]);
  const others = mine.filter((c) => out.get(c.index)?.http_status !== 201);
  if (others.length > 0)
    await deferAll(trx, [
      storeOutcomesQuery(
        trx,
        others.map((c) => {
          const o = out.get(c.index)!;
          return {
            key: c.ev.idempotency_key,
            status: o.http_status,
            response: { event_id: c.ev.event_id, body: o.body },
          };
        }),
      ),
    ]);
  return out;
}

async function deferAll(trx: Trx, queries: readonly CompiledQuery[]): Promise<void> {
  for (const q of queries) await deferWrite(trx, q);
}

interface Planned {
  readonly c: Candidate;
  readonly earns: readonly ProgramEarn[];
  readonly plan: AccrualPlan;
}

/**
 * Round trip 2: creates, locks and enrolls the members and reads, under the lock, what their
 * accruals need; then builds each purchase's entry without I/O, as the single-event path does,
 * and decides the immediate tier upgrades.
 */
async function planAll(
  trx: Trx,
  group: Group,
  fresh: readonly Candidate[],
  now: Date,
): Promise<{ plans: Planned[]; enrollments: Enrollment[]; upgrades: TierChange[]; ids: EntryIds }> {
  const members = fresh.map((c) => c.ev.member_id);
  const tiered = fresh.flatMap((c) =>
    c.programs
      .filter((p) => p.tiers.length > 0)
      .map((p) => ({ member_id: c.ev.member_id, program_id: p.id, at_ms: c.ev.transaction_ms })),
  );
  // Upgrade checks, as prefetchUpgrade: each tiered program that qualifies by a metric.
  const checks = fresh.flatMap((c, n) =>
    c.programs.flatMap((program) => {
      const qualify = program.tiers.find((t) => t.qualify)?.qualify;
      if (!qualify) return [];
      const w = tierWindow(qualify, c.ev.transaction_ms);
      return [{ n, program, metric: qualify.metric, from_ms: w.from_ms, to_ms: w.to_ms }];
    }),
  );
  // Ids for every entry and lot the purchases could post (unused ones are gaps), read with the rest.
  const reserved = await reserveIds(
    trx,
    fresh.length,
    fresh.reduce((n, c) => n + c.programs.length, 0),
  );
  // Pairs under an inactivity policy: a late purchase's lot expires at the member's deadline.
  const inactive = fresh.flatMap((c) =>
    c.programs
      .filter((p) => p.expiry.kind === 'inactivity')
      .map((p) => ({ member_id: c.ev.member_id, program_id: p.id })),
  );
  const [, , referred, tiersNow, tiersThen, debtRows, metricRows, deadlineRows] = await together(trx, [
    insertMembersQuery(trx, members, now),
    lockMembersQuery(trx, members),
    // Read under the lock. A pending referral bonus would need the referrer's lock too: the
    // single-event path pays it.
    unpaidReferralQuery(trx, members),
    currentTiersQuery(trx, members),
    // Reads with nothing to look up are not sent (see together).
    tiered.length > 0 ? tiersAtQuery(trx, tiered) : null,
    debtsQuery(trx, members),
    checks.length > 0
      ? metricsQuery(
          trx,
          checks.map((k) => ({
            member_id: members[k.n]!,
            program_id: k.program.id,
            from_ms: k.from_ms,
            to_ms: k.to_ms,
          })),
        )
      : null,
    inactive.length > 0 ? inactivityDeadlinesQuery(trx, inactive, now) : null,
  ]);
  if (referred.length > 0)
    throw new AppError('CONCURRENT_UPDATE', 'batch has referred members; process one by one');
  const tierThen = new Map(tiersThen.map((r) => [pairKey(r.member_id, r.program_id), r.tier]));
  const debts = new Map(debtRows.map((r) => [pairKey(r.owner_id, r.program_id), -r.floor_pt4]));
  const deadlines = new Map(
    deadlineRows.map((r) => [pairKey(r.member_id, r.program_id), new Date(r.deadline).getTime()]),
  );
  const plans: Planned[] = [];
  for (const c of fresh) {
    const m = c.ev.member_id;
    const earns = await computeEarn(group, c.ev, c.store, (pid) =>
      Promise.resolve(tierThen.get(pairKey(m, pid)) ?? null),
    );
    const debt = (pid: string) => debts.get(pairKey(m, pid)) ?? 0n;
    const deadline = (pid: string) => deadlines.get(pairKey(m, pid)) ?? null;
    plans.push({ c, earns, plan: buildAccrual(c.ev, c.store, now, earns, debt, c.actor, deadline) });
  }
  // As upgradeIfQualified: the metric recorded so far plus this purchase's own activity (it lies
  // inside the window, which ends at its time), against the tier held now.
  const tierNow = new Map(tiersNow.map((r) => [pairKey(r.member_id, r.program_id), r.tier]));
  const recorded = new Map(metricRows.map((r) => [Number(r.i) - 1, r]));
  const upgrades: TierChange[] = [];
  checks.forEach((k, i) => {
    const { c, earns, plan } = plans[k.n]!;
    const row = recorded.get(i);
    const before = (k.metric === 'spend_minor' ? row?.spend : row?.points) ?? 0n;
    const added =
      k.metric === 'spend_minor'
        ? (plan.spend_minor.get(k.program.id) ?? 0n)
        : (earns.find((e) => e.program.id === k.program.id)?.earn.points_pt4 ?? 0n);
    const tier = tierNow.get(pairKey(c.ev.member_id, k.program.id)) ?? null;
    const next = evaluateTier(k.program.tiers, before + added, tier, 'upgrade_only');
    if (next === tier) return;
    upgrades.push({
      member_id: c.ev.member_id,
      program_id: k.program.id,
      tier: next,
      from_ms: c.ev.transaction_ms,
    });
    const view = plan.accruals.find((a) => a.program_id === k.program.id);
    if (view) view.tier = next;
  });
  const upgraded = new Map(upgrades.map((u) => [pairKey(u.member_id, u.program_id), u]));
  const enrollments = fresh.flatMap((c) =>
    c.programs.map((p) => ({
      member_id: c.ev.member_id,
      program_id: p.id,
      upgrade: upgraded.get(pairKey(c.ev.member_id, p.id)) ?? null,
    })),
  );
  return { plans, enrollments, upgrades, ids: idsOf(await reserved.rows()) };
}

/**
 * The writes that follow the entries (all deferred): enrollments with their upgraded tiers, tier
 * history, activity, inactivity expiry.
 */
function afterPosting(
  trx: Trx,
  plans: readonly Planned[],
  enrollments: readonly Enrollment[],
  upgrades: readonly TierChange[],
  entryIds: ReadonlyMap<string, bigint>,
  now: Date,
): CompiledQuery[] {
  const activity: ActivityRow[] = [];
  const inactivity: { member_id: string; program_id: string; activity_ms: number; until_ms: number }[] = [];
  for (const { c, earns, plan } of plans) {
    for (const { program, earn } of earns) {
      const spend_minor = plan.spend_minor.get(program.id) ?? 0n;
      if (spend_minor !== 0n || earn.points_pt4 !== 0n)
        activity.push({
          member_id: c.ev.member_id,
          program_id: program.id,
          at_ms: c.ev.transaction_ms,
          spend_minor,
          points_pt4: earn.points_pt4,
          event_id: c.ev.event_id,
          entry_id: entryIds.get(c.ev.event_id) ?? null,
        });
    }
    for (const program of c.programs)
      if (program.expiry.kind === 'inactivity')
        inactivity.push({
          member_id: c.ev.member_id,
          program_id: program.id,
          activity_ms: c.ev.transaction_ms,
          until_ms: c.ev.transaction_ms + program.expiry.days * DAY_MS,
        });
  }
  return [
    enrollQuery(trx, enrollments, now),
    ...(upgrades.length > 0 ? [tierHistoryQuery(trx, upgrades, now)] : []),
    ...(activity.length > 0 ? [insertActivityQuery(trx, activity)] : []),
    ...(inactivity.length > 0 ? [extendInactivityQuery(trx, inactivity, now)] : []),
  ];
}
