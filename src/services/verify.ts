import { TAKING_KINDS_SQL as TAKING } from '../ledger/read.ts';
import { sql, type Kysely, type RawBuilder } from 'kysely';
import { CHECKED_REFERENCES as CHECKED_008 } from '../store/migrations/008_reference_checks.ts';
import { CHECKED_REFERENCES as CHECKED_009 } from '../store/migrations/009_more_reference_checks.ts';
import type { DB } from '../store/schema.ts';
import { changedStatements, flowsNotMatchingAllocations, netsNotZero } from './settlement/integrity.ts';

// `verify` re-derives every invariant from the raw rows, over the whole store, independently of
// the code that wrote them. Each check reports how many rows break it and a few examples.

export interface Check {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly checks: Check[];
}

const EXAMPLES = 5;

/** References checked by trigger rather than by foreign key (migrations 008 and 009). */
const CHECKED_REFERENCES = [...CHECKED_008, ...CHECKED_009];

interface CheckDef {
  readonly name: string;
  readonly what: string;
  /** A query returning the offending rows (at most EXAMPLES + 1 are read). */
  readonly offenders: (db: Kysely<DB>) => Promise<readonly Record<string, unknown>[]>;
}

/** An event payload's line items (none when it holds no array there) and a line's quantity (null when
 * not a number): verify reports what it finds, it never fails on a row it did not expect. */
const lineItems = (payload: RawBuilder<unknown>) =>
  sql`case when jsonb_typeof(${payload}::jsonb -> 'line_items') = 'array'
    then ${payload}::jsonb -> 'line_items' else '[]'::jsonb end`;

const quantity = sql`case when jsonb_typeof(l -> 'quantity') = 'number' then (l ->> 'quantity')::numeric end`;

const rows = async (db: Kysely<DB>, q: ReturnType<typeof sql>) =>
  (await q.execute(db)).rows as Record<string, unknown>[];

export const CHECKS: readonly CheckDef[] = [
  {
    name: 'entries_balance',
    what: 'every entry sums to zero in each program it touches',
    offenders: (db) =>
      rows(
        db,
        sql`select entry_id, program_id, sum(amount_pt4) as off_by from postings
        group by entry_id, program_id having sum(amount_pt4) <> 0 limit ${EXAMPLES + 1}`,
      ),
  },
  {
    // Amounts are bigint fixed point and rates numeric; a float column would round silently.
    name: 'no_float_columns',
    what: 'no column of the store holds a binary floating-point number',
    offenders: (db) =>
      rows(
        db,
        sql`select table_name, column_name, data_type from information_schema.columns
        where table_schema = current_schema() and data_type in ('real', 'double precision')
        limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'references_resolve',
    what: `every reference checked by trigger rather than foreign key names an existing row (${CHECKED_REFERENCES.map(([t, c, r]) => `${t}.${c} → ${r}`).join(', ')})`,
    offenders: (db) =>
      rows(
        db,
        sql`${sql.join(
          CHECKED_REFERENCES.map(
            ([table, column, target]) =>
              sql`(select ${sql.lit(`${table}.${column}`)} as reference, n.${sql.ref(column)}::text as missing
              from ${sql.table(table)} n where n.${sql.ref(column)} is not null
                and not exists (select from ${sql.table(target)} r where r.id = n.${sql.ref(column)})
              limit ${EXAMPLES + 1})`,
          ),
          sql` union all `,
        )} limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'member_balances_equal_postings',
    what: "every member account's balance equals the sum of its postings",
    offenders: (db) =>
      rows(
        db,
        sql`select a.id, a.program_id, a.kind, a.owner_id, a.balance_pt4, coalesce(p.total, 0) as postings
        from accounts a left join (select account_id, sum(amount_pt4) as total from postings group by account_id) p
          on p.account_id = a.id
        where a.kind like 'member_%' and a.balance_pt4 <> coalesce(p.total, 0) limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'system_accounts_have_no_running_balance',
    what: 'system account balances are derived from postings only',
    offenders: (db) =>
      rows(
        db,
        sql`select id, program_id, kind, owner_id from accounts
        where kind not like 'member_%' and (balance_pt4 <> 0 or floor_pt4 <> 0) limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'balances_equal_lots',
    what: 'per member and program: available = open available lots − held + recorded floor, pending = pending lots, held = held lots',
    offenders: (db) =>
      rows(
        db,
        sql`with acc as (
          select owner_id as member_id, program_id,
            sum(case when kind = 'member_available' then balance_pt4 else 0 end) as available,
            sum(case when kind = 'member_available' then floor_pt4 else 0 end) as floor,
            sum(case when kind = 'member_pending' then balance_pt4 else 0 end) as pending,
            sum(case when kind = 'member_held' then balance_pt4 else 0 end) as held
          from accounts where kind like 'member_%' group by owner_id, program_id),
        lot as (
          select member_id, program_id,
            sum(case when state = 'available' then remaining_pt4 - held_pt4 else 0 end) as available,
            sum(case when state = 'pending' then remaining_pt4 else 0 end) as pending,
            sum(held_pt4) as held
          from lots group by member_id, program_id)
        select coalesce(acc.member_id, lot.member_id) as member_id, coalesce(acc.program_id, lot.program_id) as program_id,
          acc.available, acc.floor, acc.pending, acc.held,
          lot.available as lots_available, lot.pending as lots_pending, lot.held as lots_held
        from acc full join lot on acc.member_id = lot.member_id and acc.program_id = lot.program_id
        where coalesce(acc.available, 0) <> coalesce(lot.available, 0) + coalesce(acc.floor, 0)
           or coalesce(acc.pending, 0) <> coalesce(lot.pending, 0)
           or coalesce(acc.held, 0) <> coalesce(lot.held, 0)
        limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'lots_equal_allocations',
    what: "every lot's remaining and held equal its award minus what its allocations took, plus what they restored",
    offenders: (db) =>
      rows(
        db,
        sql`select l.id, l.points_pt4, l.remaining_pt4, l.held_pt4, coalesce(a.taken, 0) as taken, coalesce(a.held, 0) as held_by_allocations
        from lots l left join (
          select lot_id,
            sum(case when kind in (${TAKING}) then points_pt4
                     when kind = 'restore' then -points_pt4 else 0 end) as taken,
            sum(case when kind = 'hold' then points_pt4 when kind in ('release', 'capture') then -points_pt4 else 0 end) as held
          from lot_allocations group by lot_id) a on a.lot_id = l.id
        where l.remaining_pt4 <> l.points_pt4 - coalesce(a.taken, 0) or l.held_pt4 <> coalesce(a.held, 0)
        limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'no_negative_balance_without_record',
    what: 'no member account is below zero unless a reversal shortfall was recorded for it',
    offenders: (db) =>
      rows(
        db,
        sql`select id, program_id, kind, owner_id, balance_pt4, floor_pt4 from accounts
        where kind like 'member_%' and (balance_pt4 < floor_pt4 or (floor_pt4 < 0 and kind <> 'member_available'))
        limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'recorded_negative_balances_reviewed',
    what: 'every negative available balance has an open review item',
    offenders: (db) =>
      rows(
        db,
        sql`select a.program_id, a.owner_id, a.balance_pt4 from accounts a
        where a.kind = 'member_available' and a.balance_pt4 < 0
          and not exists (select 1 from reviews r where r.member_id = a.owner_id and r.program_id = a.program_id and r.kind = 'negative_balance')
        limit ${EXAMPLES + 1}`,
      ),
  },
  {
    // Every point that becomes available pays a recorded debt in its program first
    // (ledger/debt-paydown.ts), and the reversal that recorded it took every lot it could spend
    // then: while a debt is recorded, nothing in the program is spendable. Lots that had expired
    // by the latest shortfall (not yet swept) are not spendable and were not taken.
    name: 'no_spendable_lots_under_debt',
    what: 'no member holds spendable points in a program where a debt is recorded',
    offenders: (db) =>
      rows(
        db,
        sql`select a.owner_id as member_id, a.program_id, a.floor_pt4, l.id as lot_id,
          l.remaining_pt4 - l.held_pt4 as spendable_pt4
        from accounts a
        join lots l on l.member_id = a.owner_id and l.program_id = a.program_id
        where a.kind = 'member_available' and a.floor_pt4 < 0
          and l.open and l.state = 'available' and l.remaining_pt4 > l.held_pt4
          and (l.expires_at is null or l.expires_at > coalesce(
            (select max(r.at) from reviews r
             where r.member_id = a.owner_id and r.program_id = a.program_id and r.kind = 'negative_balance'),
            '-infinity'))
        limit ${EXAMPLES + 1}`,
      ),
  },
  {
    // Points that come back to a member settle what reversals wrote off in their program first
    // (services/redemptions/reclaim.ts), never more than that: both are postings to the brand's
    // write-off account in the member's own entries.
    name: 'write_off_recoveries_within_write_offs',
    what: "no member recovered more of a brand's write-offs in a program than reversals of their points wrote off",
    offenders: (db) =>
      rows(
        db,
        sql`select e.member_id, a.program_id, a.owner_id as brand_id, sum(p.amount_pt4) as recovered_beyond
        from entries e
        join postings p on p.entry_id = e.id
        join accounts a on a.id = p.account_id and a.kind = 'writeoff'
        group by e.member_id, a.program_id, a.owner_id
        having sum(p.amount_pt4) > 0 limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'events_accrued_once',
    what: 'no event accrued a lot twice in one program',
    offenders: (db) =>
      rows(
        db,
        sql`select l.source_event_id, l.program_id, count(*) as lots from lots l
        join entries e on e.id = l.source_entry_id and e.kind = 'accrual'
        where l.source_event_id is not null
        group by l.source_event_id, l.program_id having count(*) > 1 limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'orders_accrued_once',
    what: 'no order id of a brand was accepted as two purchases',
    offenders: (db) =>
      rows(
        db,
        sql`select brand_id, order_id, count(*) as purchases from events
        where event_type = 'purchase_completed' and order_id is not null
        group by brand_id, order_id having count(*) > 1 limit ${EXAMPLES + 1}`,
      ),
  },
  {
    // The issuance postings are the independent record: an accrual debits its brand's issuance
    // account by what it awarded in each program, a reversal credits back what it took.
    name: 'reversals_within_earned',
    what: "the reversals of a purchase never took back more points in a program than the purchase's accrual awarded there",
    offenders: (db) =>
      rows(
        db,
        sql`with taken as (
          select e.ref_id as purchase, p.program_id, sum(p.amount_pt4) as taken
          from entries e
          join postings p on p.entry_id = e.id
          join accounts a on a.id = p.account_id and a.kind = 'issuance'
          where e.kind = 'reversal' and e.ref_type = 'event'
          group by e.ref_id, p.program_id),
        earned as (
          select e.event_id as purchase, p.program_id, -sum(p.amount_pt4) as earned
          from entries e
          join postings p on p.entry_id = e.id
          join accounts a on a.id = p.account_id and a.kind = 'issuance'
          where e.kind = 'accrual' and e.event_id in (select purchase from taken)
          group by e.event_id, p.program_id)
        select t.purchase, t.program_id, t.taken, coalesce(r.earned, 0) as earned
        from taken t left join earned r on r.purchase = t.purchase and r.program_id = t.program_id
        where t.taken > coalesce(r.earned, 0) limit ${EXAMPLES + 1}`,
      ),
  },
  {
    // Read from the events as sent. A reversal is recorded against the purchase it took effect on,
    // even when it named an event answered as that purchase's duplicate (services/events/intake.ts).
    name: 'refunds_within_purchase',
    what: 'the refunds of a purchase never returned more of a sku than it sold, and a purchase was voided at most once',
    offenders: (db) =>
      rows(
        db,
        sql`with reversals as (
          select event_type, payload, reversal_of as purchase from events
          where reversal_of is not null and event_type in ('purchase_refunded', 'purchase_voided')),
        returned as (
          select f.purchase, l ->> 'sku' as sku, sum(${quantity}) as quantity
          from reversals f cross join lateral jsonb_array_elements(${lineItems(sql`f.payload`)}) l
          where f.event_type = 'purchase_refunded'
          group by f.purchase, l ->> 'sku'),
        sold as (
          select p.event_id as purchase, l ->> 'sku' as sku, sum(${quantity}) as quantity
          from events p cross join lateral jsonb_array_elements(${lineItems(sql`p.payload`)}) l
          where p.event_id in (select purchase from returned)
          group by p.event_id, l ->> 'sku')
        (select r.purchase, 'sku ' || r.sku || ': ' || r.quantity || ' returned of ' || coalesce(s.quantity, 0) || ' sold' as problem
        from returned r left join sold s on s.purchase = r.purchase and s.sku = r.sku
        where r.quantity > coalesce(s.quantity, 0) limit ${EXAMPLES + 1})
        union all
        (select purchase, 'voided ' || count(*) || ' times' from reversals
        where event_type = 'purchase_voided' group by purchase having count(*) > 1 limit ${EXAMPLES + 1})
        limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'event_keys_answered',
    what: 'every event idempotency key holds its answer, or names the event recorded under it whose outcome is the answer',
    offenders: (db) =>
      rows(
        db,
        sql`select k.key, k.response from idempotency_keys k
        where k.scope = 'event' and k.status_code = 0
          and not exists (select 1 from events e
                          where e.idempotency_key = k.key and e.event_id = k.response ->> 'event_id')
        limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'holds_resolved_once',
    what: 'every hold was captured, released or expired by at most one entry',
    offenders: (db) =>
      rows(
        db,
        sql`select ref_id, count(*) as resolutions from entries
        where kind in ('capture', 'release') and ref_type = 'redemption'
        group by ref_id having count(*) > 1 limit ${EXAMPLES + 1}`,
      ),
  },
  {
    name: 'settlement_equals_cross_brand_redemptions',
    what: 'settlement flows equal the cross-brand part of redemption allocations, net of reversals',
    offenders: (db) =>
      rows(
        db,
        sql`with alloc as (
          select e.ref_id as redemption_id, la.issuing_brand_id as issuer, r.brand_id as redeemer,
            sum(case when la.kind in ('spend', 'capture') then la.points_pt4 else -la.points_pt4 end) as points
          from lot_allocations la
          join entries e on e.id = la.entry_id and e.ref_type = 'redemption'
          join redemptions r on r.id = e.ref_id
          where la.kind in ('spend', 'capture', 'restore') and la.issuing_brand_id <> r.brand_id
          group by 1, 2, 3),
        flow as (
          select redemption_id, issuer_brand_id as issuer, redeemer_brand_id as redeemer, sum(points_pt4) as points
          from settlement_flows group by 1, 2, 3)
        select coalesce(alloc.redemption_id, flow.redemption_id) as redemption_id, alloc.points as allocated, flow.points as settled
        from alloc full join flow using (redemption_id, issuer, redeemer)
        where coalesce(alloc.points, 0) <> coalesce(flow.points, 0) limit ${EXAMPLES + 1}`,
      ),
  },
  // Settlement (issue 6): the checks above compare points; these compare money, exactly.
  {
    name: 'settlement_flows_match_allocations',
    what: "every settlement flow's exact amount is its allocation's value × a configured reimbursement rate, its amount_minor is that rounded by the carried half-even rule, and a reversal's flows negate the redemption's",
    offenders: (db) => flowsNotMatchingAllocations(db, EXAMPLES + 1),
  },
  {
    name: 'settlement_statements_unchanged',
    what: 'every closed period recomputed from its flows has the hash, flow count and figures recorded at close',
    offenders: (db) => changedStatements(db, EXAMPLES + 1),
  },
  {
    name: 'settlement_net_sums_to_zero',
    what: 'net positions sum to zero in every closed statement and over all flows',
    offenders: (db) => netsNotZero(db, EXAMPLES + 1),
  },
];

export async function verifyLedger(db: Kysely<DB>): Promise<VerifyReport> {
  const checks: Check[] = [];
  for (const c of CHECKS) {
    const bad = await c.offenders(db);
    const detail =
      bad.length === 0
        ? `ok: ${c.what}`
        : `${bad.length > EXAMPLES ? `more than ${EXAMPLES}` : bad.length} violation(s) of: ${c.what}; e.g. ${JSON.stringify(
            bad.slice(0, EXAMPLES),
            (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
          )}`;
    checks.push({ name: c.name, ok: bad.length === 0, detail });
  }
  return { ok: checks.every((c) => c.ok), checks };
}
