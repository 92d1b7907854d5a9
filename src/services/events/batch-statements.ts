import { sql, type CompiledQuery, type Kysely } from 'kysely';
import type { DB } from '../../store/schema.ts';
import type { Trx } from '../../ledger/post.ts';
import { intArray, textArray, timestampArray } from '../../store/pg-arrays.ts';

// The batch path's set-based statements (services/events/batch.ts): one statement per table for
// a whole round of purchases, each column one array parameter (store/pg-arrays.ts) or, for rows that
// carry JSON documents, one JSON parameter (jsonb_to_recordset). All parameters are strings, so
// every statement here may be sent with others in one round trip or deferred to the commit
// (store/write-behind.ts). Keys are claimed, members created and locked and enrollments written in
// key order, so two concurrent batches over the same keys or members wait on each other in one
// order rather than deadlock. Reads probe an index once per key (a lateral subquery where the
// planner could otherwise pick a scan of the whole table), so their cost follows the batch, not
// the table.

/** Claims the events' idempotency keys (provisional response {event_id}); answers those claimed. */
export function claimKeysQuery(
  trx: Trx,
  rows: readonly { key: string; hash: string; event_id: string }[],
  now: Date,
): CompiledQuery<{ key: string }> {
  return sql<{ key: string }>`
    insert into idempotency_keys (scope, key, request_hash, status_code, response, created_at)
    select 'event', u.key, u.hash, 0, json_build_object('event_id', u.event_id), ${now.toISOString()}::timestamptz
    from unnest(${textArray(rows.map((r) => r.key))}::text[], ${textArray(rows.map((r) => r.hash))}::text[],
                ${textArray(rows.map((r) => r.event_id))}::text[]) as u(key, hash, event_id)
    order by u.key
    on conflict (scope, key) do nothing
    returning key`.compile(trx);
}

/** Events already recorded under these event ids. */
export function eventsByIdQuery(
  trx: Trx,
  event_ids: readonly string[],
): CompiledQuery<{ event_id: string; payload: unknown }> {
  return sql<{ event_id: string; payload: unknown }>`
    select event_id, payload from events where event_id = any(${textArray(event_ids)}::text[])`.compile(trx);
}

/**
 * Purchases already recorded under these (brand, order id) pairs: one probe of the unique partial
 * index events_purchase_order per pair, however large the table.
 */
export function purchasesByOrderQuery(
  trx: Trx,
  pairs: readonly { brand_id: string; order_id: string }[],
): CompiledQuery<{ event_id: string; brand_id: string; order_id: string }> {
  return sql<{ event_id: string; brand_id: string; order_id: string }>`
    select e.event_id, e.brand_id, e.order_id
    from unnest(${textArray(pairs.map((p) => p.brand_id))}::text[], ${textArray(pairs.map((p) => p.order_id))}::text[]) as u(brand_id, order_id)
    cross join lateral (
      select event_id, brand_id, order_id from events e
      where e.brand_id = u.brand_id and e.order_id = u.order_id
        and e.event_type = 'purchase_completed' and e.order_id is not null
      limit 1) e`.compile(trx);
}

/** Creates the members not seen before (as ensureMember does for one). */
export function insertMembersQuery(trx: Trx, member_ids: readonly string[], now: Date): CompiledQuery {
  return sql`
    insert into members (id, created_at, referred_by)
    select u.id, ${now.toISOString()}::timestamptz, null from unnest(${textArray(member_ids)}::text[]) as u(id)
    order by u.id
    on conflict (id) do nothing`.compile(trx);
}

/** Locks the members' rows in id order (as lockMembers does). */
export function lockMembersQuery(trx: Trx, member_ids: readonly string[]): CompiledQuery<{ id: string }> {
  return sql<{ id: string }>`
    select id from members where id = any(${textArray(member_ids)}::text[]) order by id for update`.compile(
    trx,
  );
}

/** One of the members whose referral bonus is still unpaid, if any. */
export function unpaidReferralQuery(
  trx: Trx,
  member_ids: readonly string[],
): CompiledQuery<{ referred_member_id: string }> {
  return sql<{ referred_member_id: string }>`
    select referred_member_id from referrals
    where referred_member_id = any(${textArray(member_ids)}::text[]) and rewarded_entry_id is null
    limit 1`.compile(trx);
}

/** The members' referrers (paid or not), for the batch's order (batch.ts referrersOfReversals). */
export function referrersQuery(
  db: Kysely<DB>,
  member_ids: readonly string[],
): CompiledQuery<{ referred_member_id: string; referrer_member_id: string }> {
  return sql<{ referred_member_id: string; referrer_member_id: string }>`
    select referred_member_id, referrer_member_id from referrals
    where referred_member_id = any(${textArray(member_ids)}::text[])`.compile(db);
}

/** The tiers the members hold now, in the programs where they hold one (one index probe each). */
export function currentTiersQuery(
  trx: Trx,
  member_ids: readonly string[],
): CompiledQuery<{ member_id: string; program_id: string; tier: string }> {
  // offset 0 keeps each member's lookup a probe of the primary key, whatever the statistics say.
  return sql<{ member_id: string; program_id: string; tier: string }>`
    select e.member_id, e.program_id, e.tier from unnest(${textArray(member_ids)}::text[]) as u(m)
    cross join lateral (
      select member_id, program_id, tier from enrollments e where e.member_id = u.m and e.tier is not null
      offset 0) e`.compile(trx);
}

export interface Enrollment {
  readonly member_id: string;
  readonly program_id: string;
  /** An immediate upgrade: the new tier, held from the purchase's time (as setTier). */
  readonly upgrade: { readonly tier: string | null; readonly from_ms: number } | null;
}

/**
 * Enrolls each (member, program) not yet enrolled and marks activity in all (as enroll does),
 * and sets the tier of the upgraded ones (as setTier): one upsert instead of an upsert and an
 * update. A pair without an upgrade proposes no tier_since, and keeps the tier it has.
 */
export function enrollQuery(trx: Trx, rows: readonly Enrollment[], now: Date): CompiledQuery {
  const at = now.toISOString();
  return sql`
    insert into enrollments (member_id, program_id, enrolled_at, tier, tier_since, last_activity_at)
    select u.m, u.p, ${at}::timestamptz, u.tier, u.since, ${at}::timestamptz
    from unnest(${textArray(rows.map((r) => r.member_id))}::text[], ${textArray(rows.map((r) => r.program_id))}::text[],
                ${textArray(rows.map((r) => r.upgrade?.tier ?? null))}::text[],
                ${timestampArray(rows.map((r) => r.upgrade?.from_ms ?? null))}::timestamptz[]) as u(m, p, tier, since)
    order by u.m, u.p
    on conflict (member_id, program_id) do update
      set last_activity_at = greatest(enrollments.last_activity_at, excluded.last_activity_at),
          tier = case when excluded.tier_since is null then enrollments.tier else excluded.tier end,
          tier_since = coalesce(excluded.tier_since, enrollments.tier_since)`.compile(trx);
}

/** Each (member, program)'s tier at its instant, from tier history (as services/tiers.ts tiersAtQuery). */
export function tiersAtQuery(
  trx: Trx,
  pairs: readonly { member_id: string; program_id: string; at_ms: number }[],
): CompiledQuery<{ member_id: string; program_id: string; tier: string | null }> {
  return sql<{ member_id: string; program_id: string; tier: string | null }>`
    select u.m as member_id, u.p as program_id, h.tier
    from unnest(${textArray(pairs.map((p) => p.member_id))}::text[], ${textArray(pairs.map((p) => p.program_id))}::text[],
                ${timestampArray(pairs.map((p) => p.at_ms))}::timestamptz[]) as u(m, p, at)
    cross join lateral (
      select h.tier from tier_history h
      where h.member_id = u.m and h.program_id = u.p and h.from_at <= u.at
      order by h.from_at desc, h.id desc limit 1) h`.compile(trx);
}

/**
 * Each (member, program)'s current inactivity deadline: the latest expiry among its open lots not
 * expired by `now` (as inactivity.ts inactivityDeadlineQuery). Pairs with none have no row.
 */
export function inactivityDeadlinesQuery(
  trx: Trx,
  pairs: readonly { member_id: string; program_id: string }[],
  now: Date,
): CompiledQuery<{ member_id: string; program_id: string; deadline: Date }> {
  return sql<{ member_id: string; program_id: string; deadline: Date }>`
    select u.m as member_id, u.p as program_id, d.deadline
    from unnest(${textArray(pairs.map((p) => p.member_id))}::text[], ${textArray(pairs.map((p) => p.program_id))}::text[]) as u(m, p)
    cross join lateral (
      select max(l.expires_at) as deadline from lots l
      where l.member_id = u.m and l.program_id = u.p and l.open and l.expires_at > ${now.toISOString()}::timestamptz) d
    where d.deadline is not null`.compile(trx);
}

/** The members' recorded debts: available accounts whose floor is below zero (a probe each). */
export function debtsQuery(
  trx: Trx,
  member_ids: readonly string[],
): CompiledQuery<{ owner_id: string; program_id: string; floor_pt4: bigint }> {
  return sql<{ owner_id: string; program_id: string; floor_pt4: bigint }>`
    select a.owner_id, a.program_id, a.floor_pt4 from unnest(${textArray(member_ids)}::text[]) as u(m)
    cross join lateral (
      select owner_id, program_id, floor_pt4 from accounts a
      where a.owner_id = u.m and a.kind = 'member_available' and a.floor_pt4 < 0
      offset 0) a`.compile(trx);
}

/**
 * Recorded activity per check over its window [from, to): the tier metric before the activity
 * now being recorded. Checks with no activity have no row. `i` is the check's 1-based position.
 * Each check is its own range read of program_activity_member.
 */
export function metricsQuery(
  trx: Trx,
  checks: readonly { member_id: string; program_id: string; from_ms: number; to_ms: number }[],
): CompiledQuery<{ i: bigint; spend: bigint; points: bigint }> {
  return sql<{ i: bigint; spend: bigint; points: bigint }>`
    select u.i, s.spend, s.points
    from unnest(${textArray(checks.map((k) => k.member_id))}::text[], ${textArray(checks.map((k) => k.program_id))}::text[],
                ${timestampArray(checks.map((k) => k.from_ms))}::timestamptz[],
                ${timestampArray(checks.map((k) => k.to_ms))}::timestamptz[]) with ordinality as u(m, p, from_at, to_at, i)
    cross join lateral (
      select count(*) as n, sum(a.spend_minor)::int8 as spend, sum(a.points_pt4)::int8 as points
      from program_activity a
      where a.member_id = u.m and a.program_id = u.p and a.at >= u.from_at and a.at < u.to_at) s
    where s.n > 0`.compile(trx);
}

export interface ActivityRow {
  readonly member_id: string;
  readonly program_id: string;
  readonly at_ms: number;
  readonly spend_minor: bigint;
  readonly points_pt4: bigint;
  readonly event_id: string;
  readonly entry_id: bigint | null;
}

/** Activity rows for tier qualification (as recordActivity writes them). */
export function insertActivityQuery(trx: Trx, rows: readonly ActivityRow[]): CompiledQuery {
  return sql`
    insert into program_activity (member_id, program_id, at, spend_minor, points_pt4, event_id, entry_id)
    select * from unnest(${textArray(rows.map((r) => r.member_id))}::text[], ${textArray(rows.map((r) => r.program_id))}::text[],
                         ${timestampArray(rows.map((r) => r.at_ms))}::timestamptz[], ${intArray(rows.map((r) => r.spend_minor))}::int8[],
                         ${intArray(rows.map((r) => r.points_pt4))}::int8[], ${textArray(rows.map((r) => r.event_id))}::text[],
                         ${intArray(rows.map((r) => r.entry_id))}::int8[])`.compile(trx);
}

export interface TierChange {
  readonly member_id: string;
  readonly program_id: string;
  readonly tier: string | null;
  readonly from_ms: number;
}

/** The history rows of immediate upgrades (setTier's second half; enrollQuery sets the tier). */
export function tierHistoryQuery(trx: Trx, changes: readonly TierChange[], now: Date): CompiledQuery {
  return sql`
    insert into tier_history (member_id, program_id, tier, from_at, recorded_at, reason)
    select u.m, u.p, u.tier, u.from_at, ${now.toISOString()}::timestamptz, 'upgrade'
    from unnest(${textArray(changes.map((c) => c.member_id))}::text[], ${textArray(changes.map((c) => c.program_id))}::text[],
                ${textArray(changes.map((c) => c.tier))}::text[],
                ${timestampArray(changes.map((c) => c.from_ms))}::timestamptz[]) as u(m, p, tier, from_at)`.compile(
    trx,
  );
}

/**
 * extendInactivityExpiry for many (member, program) pairs at once: each pair's open lots that
 * expire after its activity and after `now` (never revived) and before `until` (or never) now
 * expire at `until`.
 */
export function extendInactivityQuery(
  trx: Trx,
  rows: readonly { member_id: string; program_id: string; activity_ms: number; until_ms: number }[],
  now: Date,
): CompiledQuery {
  return sql`
    update lots l set expires_at = u.until
    from unnest(${textArray(rows.map((r) => r.member_id))}::text[], ${textArray(rows.map((r) => r.program_id))}::text[],
                ${timestampArray(rows.map((r) => r.activity_ms))}::timestamptz[],
                ${timestampArray(rows.map((r) => r.until_ms))}::timestamptz[]) as u(m, p, activity, until)
    where l.member_id = any(${textArray(rows.map((r) => r.member_id))}::text[])
      and l.member_id = u.m and l.program_id = u.p and l.open
      and (l.expires_at is null
           or (l.expires_at > u.activity and l.expires_at > ${now.toISOString()}::timestamptz and l.expires_at < u.until))`.compile(
    trx,
  );
}

/** An accepted purchase: its events row, whose outcome answers its idempotency key (event-keys.ts). */
export interface AcceptedEvent {
  readonly event_id: string;
  readonly idempotency_key: string;
  readonly member_id: string;
  readonly store_id: string;
  readonly brand_id: string;
  readonly channel: string;
  readonly order_id: string | null;
  readonly transaction_id: string;
  readonly transaction_ts: string;
  readonly request_hash: string;
  readonly payload: unknown;
  readonly outcome: unknown;
  readonly earn: unknown;
}

/**
 * Records accepted purchases (the events rows) from one JSON document. Their keys keep the
 * claim's {event_id}: the events row under the key holds the answer (event-keys.ts), so the key
 * row is written once and the outcome stored once.
 */
export function recordAcceptedQuery(trx: Trx, rows: readonly AcceptedEvent[], now: Date): CompiledQuery {
  return sql`
    insert into events (event_id, idempotency_key, event_type, member_id, store_id, brand_id, channel, order_id,
                        transaction_id, transaction_ts, reversal_of, received_at, request_hash, payload, outcome, earn)
    select event_id, idempotency_key, 'purchase_completed', member_id, store_id, brand_id, channel, order_id,
           transaction_id, transaction_ts, null, ${now.toISOString()}::timestamptz, request_hash, payload, outcome, earn
    from json_to_recordset(${JSON.stringify(rows)}::json) as x(
      event_id text, idempotency_key text, member_id text, store_id text, brand_id text, channel text,
      order_id text, transaction_id text, transaction_ts timestamptz, request_hash text,
      payload json, outcome json, earn json)`.compile(trx);
}

/** Stores other outcomes (duplicates) under their claimed keys. */
export function storeOutcomesQuery(
  trx: Trx,
  rows: readonly { key: string; status: number; response: unknown }[],
): CompiledQuery {
  return sql`
    update idempotency_keys k set status_code = x.status, response = x.response
    from json_to_recordset(${JSON.stringify(rows)}::json) as x(key text, status int4, response json)
    where k.scope = 'event' and k.key = any(${textArray(rows.map((r) => r.key))}::text[]) and k.key = x.key`.compile(
    trx,
  );
}
