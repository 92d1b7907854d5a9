import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql, type RawBuilder } from 'kysely';
import { CHECKS } from '../../src/services/verify.ts';
import { checksFailingAfter } from '../helpers/verify-rollback.ts';
import type { TestService } from '../helpers/store.ts';
import { HOUR_MS, serviceWithApi, uid, type AnyDb, type Api, type Json } from '../api/lifecycle-helpers.ts';

// Every check of `verify` can fail. One ledger built through the HTTP API (purchases at three
// brands, cross-brand group redemptions on both sides of a closed settlement period, a
// same-brand redemption, a released hold, a void that leaves a recorded negative balance with its
// review) passes them all; then, for each check, the smallest change to the stored rows that
// breaks its invariant is planted in a transaction that is rolled back, and verify — run on that
// transaction — must fail that check and no other. Guard triggers and constraints are set aside
// inside the same transaction, as an operator with DDL rights could; the rollback restores them.
// The last test fails when CHECKS gains a check that has no corruption here or elsewhere.

/** Checks whose corruption tests live in another file. */
const COVERED_ELSEWHERE = [
  // test/services/verify-reversals.test.ts
  'no_float_columns',
  'orders_accrued_once',
  'reversals_within_earned',
  'refunds_within_purchase',
];

const NOW = Date.parse('2026-11-20T12:00:00.000Z');
const at = (ms: number): string => new Date(NOW + ms).toISOString();

/** `statement` changed exactly one row: the corruption is planted, and no wider than meant. */
async function one(trx: AnyDb, statement: RawBuilder<unknown>): Promise<void> {
  const { numAffectedRows } = await statement.execute(trx);
  assert.equal(numAffectedRows, 1n, statement.compile(trx).sql);
}

/** Runs `change` with a guard trigger off, then turns it back on (the rollback would too). */
async function withoutTrigger(trx: AnyDb, table: string, trigger: string, change: () => Promise<void>) {
  await sql`alter table ${sql.id(table)} disable trigger ${sql.id(trigger)}`.execute(trx);
  await change();
  await sql`alter table ${sql.id(table)} enable trigger ${sql.id(trigger)}`.execute(trx);
}

void describe('verify: each check fails on the corruption it guards against', () => {
  let t: TestService, api: Api, db: AnyDb;
  /** m1 earns at northwind and summit and redeems across brands; m2 ends with a recorded debt. */
  let m1: string, m2: string;
  /** m1's same-brand redemption (no flows) and released hold. */
  let sameBrand: string, released: string;
  /** m1's summit purchase: its lots and entry are not touched by any redemption or reversal. */
  let summitEvent: string, northwindEvent: string;

  before(async () => {
    ({ t, api, db } = await serviceWithApi(at(0)));
    m1 = uid('mbr_vc');
    m2 = uid('mbr_vc');
    // Northwind first, so that its lots (50 stars, 10 acme) expire first and the group
    // redemptions at summit and harbor spend them: cross-brand flows from northwind.
    northwindEvent = (await api.buy(m1, 'northwind', 100_00, at(-2 * 60_000))).event_id as string;
    summitEvent = (await api.buy(m1, 'summit', 30_00, at(-60_000))).event_id as string; // 60 miles, 3 acme
    const r1 = await api.redeem({ member_id: m1, brand_id: 'summit', group_redemption: true, points: 20 });
    // Period 1 closes over R1's flows; R2's flows stay open.
    api.clock.set(at(HOUR_MS));
    await api.post('/v1/settlement/periods', { to: at(HOUR_MS) });
    api.clock.set(at(2 * HOUR_MS));
    const r2 = await api.redeem({ member_id: m1, brand_id: 'harbor', group_redemption: true, points: 10 });
    sameBrand = (
      await api.redeem({ member_id: m1, brand_id: 'northwind', program_id: 'northwind-stars', points: 5 })
    ).redemption_id as string;
    released = (
      await api.redeem({
        member_id: m1,
        brand_id: 'northwind',
        program_id: 'northwind-stars',
        points: 5,
        capture: false,
      })
    ).redemption_id as string;
    await api.post(`/v1/redemptions/${released}/release`, {}, 200);

    // m2 spends 230 of 230 stars, then the 200-star purchase is voided: 200 > absorb_up_to 100,
    // so the balance goes to −200 with a recorded floor and an open review.
    await api.buy(m2, 'northwind', 60_00, at(2 * HOUR_MS - 5 * 60_000));
    const big = await api.buy(m2, 'northwind', 400_00, at(2 * HOUR_MS - 4 * 60_000));
    await api.redeem({ member_id: m2, brand_id: 'northwind', program_id: 'northwind-stars', points: 230 });
    await api.reverse(big, 'purchase_voided');

    // The ledger has what the corruptions below need.
    const flows = await sql<{ redemption_id: string; closed: boolean }>`
      select redemption_id, period_id is not null as closed from settlement_flows`.execute(db);
    assert.ok(flows.rows.some((f) => f.redemption_id === r1.redemption_id && f.closed));
    assert.ok(flows.rows.some((f) => f.redemption_id === r2.redemption_id && !f.closed));
    assert.ok(flows.rows.every((f) => f.redemption_id !== sameBrand));
    assert.equal((await api.available(m2))['northwind-stars'], -200);
  });
  after(async () => t?.close());

  const failedAfter = async (corrupt: (trx: AnyDb) => Promise<void>) =>
    (await checksFailingAfter(db, corrupt)).map((c) => c.name);

  void it('the ledger passes every check, over HTTP and inside a transaction', async () => {
    const v = await api.assertVerifyOk();
    assert.deepEqual(
      (v.checks as Json[]).map((c) => c.name),
      CHECKS.map((c) => c.name),
    );
    assert.deepEqual(await failedAfter(async () => {}), []);
  });

  interface Corruption {
    readonly check: string;
    readonly what: string;
    readonly corrupt: (trx: AnyDb) => Promise<void>;
    /** The failing checks when more than `check` fails unavoidably (the reason in a comment). */
    readonly fails?: readonly string[];
  }

  // m1's summit-miles accounts and lot are touched by no redemption or reversal.
  const summitAccount = (kind: string) => sql`(select id from accounts
    where program_id = 'summit-miles' and kind = ${kind} and owner_id = ${kind === 'issuance' ? 'summit' : m1})`;
  const summitEntry = () =>
    sql`(select id from entries where kind = 'accrual' and event_id = ${summitEvent})`;
  const summitLot = () => sql`(select id from lots where member_id = ${m1} and program_id = 'summit-miles')`;

  const CORRUPTIONS: readonly Corruption[] = [
    {
      check: 'entries_balance',
      what: 'a posting added to an accrual, to its issuance account only',
      // A system account carries no running balance, so nothing else moves.
      corrupt: (trx) =>
        withoutTrigger(trx, 'postings', 'postings_sum_zero', () =>
          one(
            trx,
            sql`insert into postings (entry_id, account_id, program_id, amount_pt4, at)
            values (${summitEntry()}, ${summitAccount('issuance')}, 'summit-miles', 1, now())`,
          ),
        ),
    },
    {
      check: 'references_resolve',
      what: 'an enrollment of a member that does not exist',
      corrupt: (trx) =>
        withoutTrigger(trx, 'enrollments', 'enrollments_member_id_ref', () =>
          one(
            trx,
            sql`insert into enrollments (member_id, program_id, enrolled_at, last_activity_at)
            values (${uid('ghost')}, 'summit-miles', now(), now())`,
          ),
        ),
    },
    {
      check: 'member_balances_equal_postings',
      what: "a balanced pair of postings (member +1, issuance −1) that the member's balance never saw",
      // Balanced, so the entry still sums to zero; no account row or lot changes, so balances
      // still agree with the lots. Two rows, but one posting alone would also unbalance its entry.
      corrupt: async (trx) => {
        const { numAffectedRows } =
          await sql`insert into postings (entry_id, account_id, program_id, amount_pt4, at)
          values (${summitEntry()}, ${summitAccount('member_available')}, 'summit-miles', 1, now()),
                 (${summitEntry()}, ${summitAccount('issuance')}, 'summit-miles', -1, now())`.execute(trx);
        assert.equal(numAffectedRows, 2n);
      },
    },
    {
      check: 'system_accounts_have_no_running_balance',
      what: 'an issuance account with a running balance',
      corrupt: (trx) =>
        one(trx, sql`update accounts set balance_pt4 = 1 where id = ${summitAccount('issuance')}`),
    },
    {
      check: 'balances_equal_lots',
      what: 'an available lot marked pending, its account unchanged',
      // The lot's remaining and held still match its allocations: only its state moved.
      corrupt: (trx) => one(trx, sql`update lots set state = 'pending' where id = ${summitLot()}`),
    },
    {
      check: 'lots_equal_allocations',
      what: "a lot's award raised by 1/10000 point, its remaining unchanged",
      // remaining and held are what the balances are compared with; points_pt4 is not.
      corrupt: (trx) => one(trx, sql`update lots set points_pt4 = points_pt4 + 1 where id = ${summitLot()}`),
    },
    {
      check: 'no_negative_balance_without_record',
      what: 'a floor below zero on a held account, where no shortfall can be recorded',
      // The floor of a held account enters no balance comparison (only the available account's
      // does), so the account's balance, postings and lots all still agree. A balance moved
      // below its floor would also break member_balances_equal_postings and balances_equal_lots.
      corrupt: async (trx) => {
        await sql`alter table accounts drop constraint only_available_has_floor`.execute(trx);
        await one(
          trx,
          sql`update accounts set floor_pt4 = -1
          where program_id = 'northwind-stars' and kind = 'member_held' and owner_id = ${m1}`,
        );
      },
    },
    {
      check: 'recorded_negative_balances_reviewed',
      what: 'the review of a recorded negative balance deleted',
      corrupt: (trx) =>
        one(trx, sql`delete from reviews where member_id = ${m2} and kind = 'negative_balance'`),
    },
    {
      check: 'no_spendable_lots_under_debt',
      what: "a debt of 1/10000 point recorded on m1's northwind-stars, where m1 has stars to spend",
      // Floor and balance move together, so the balance still equals the lots plus the floor and
      // stays above it; only its postings no longer add up to it.
      fails: ['member_balances_equal_postings', 'no_spendable_lots_under_debt'],
      corrupt: (trx) =>
        one(
          trx,
          sql`update accounts set floor_pt4 = floor_pt4 - 1, balance_pt4 = balance_pt4 - 1
          where program_id = 'northwind-stars' and kind = 'member_available' and owner_id = ${m1}`,
        ),
    },
    {
      check: 'write_off_recoveries_within_write_offs',
      what: "the same-brand redemption's credit to its brand re-recorded as a recovery of a write-off m1 never had",
      // The entry still balances, and a system account's postings move no running balance.
      corrupt: (trx) =>
        withoutTrigger(trx, 'postings', 'postings_append_only', () =>
          withoutTrigger(trx, 'postings', 'postings_account_id_fixed', () =>
            one(
              trx,
              sql`update postings set account_id = (
              select id from accounts where kind = 'writeoff' and program_id = 'northwind-stars' and owner_id = 'northwind')
            where amount_pt4 > 0 and entry_id = (select entry_id from redemptions where id = ${sameBrand})`,
            ),
          ),
        ),
    },
    {
      check: 'events_accrued_once',
      what: "m1's summit acme lot credited to the northwind purchase, which already accrued acme",
      corrupt: (trx) =>
        one(
          trx,
          sql`update lots set source_event_id = ${northwindEvent}
          where program_id = 'acme-points' and source_event_id = ${summitEvent}`,
        ),
    },
    {
      check: 'event_keys_answered',
      what: "an accepted event's key naming an event that was never recorded",
      corrupt: (trx) =>
        one(
          trx,
          sql`update idempotency_keys set response = jsonb_build_object('event_id', ${uid('lost')}::text)
          where scope = 'event' and status_code = 0 and response ->> 'event_id' = ${summitEvent}`,
        ),
    },
    {
      check: 'holds_resolved_once',
      what: 'a released hold captured as well',
      // An entry without postings or allocations moves no balance, lot or flow.
      corrupt: (trx) =>
        one(
          trx,
          sql`insert into entries (kind, member_id, at, ref_type, ref_id)
          values ('capture', ${m1}, now(), 'redemption', ${released})`,
        ),
    },
    {
      check: 'settlement_equals_cross_brand_redemptions',
      what: 'a same-brand redemption re-recorded at another brand: its points now cross brands, unsettled',
      // settlement_flows_match_allocations re-derives the flows of entries that have flows;
      // this redemption has none, so only the points comparison sees it.
      corrupt: (trx) => one(trx, sql`update redemptions set brand_id = 'harbor' where id = ${sameBrand}`),
    },
    {
      check: 'settlement_flows_match_allocations',
      what: 'an open flow (no period yet) paying one minor unit more',
      // In a closed period the change would also break that statement (settlement.test.ts shows
      // that case); an open flow is in none. Points are unchanged, and a flow adds its amount
      // to one brand and takes it from the other, so the nets still sum to zero.
      corrupt: (trx) =>
        withoutTrigger(trx, 'settlement_flows', 'settlement_flows_guard', () =>
          one(
            trx,
            sql`update settlement_flows set amount_minor = amount_minor + 1
            where id = (select min(id) from settlement_flows where period_id is null)`,
          ),
        ),
    },
    {
      check: 'settlement_statements_unchanged',
      what: 'a flow taken out of its closed period',
      corrupt: (trx) =>
        withoutTrigger(trx, 'settlement_flows', 'settlement_flows_guard', () =>
          one(
            trx,
            sql`update settlement_flows set period_id = null
            where id = (select min(id) from settlement_flows where period_id is not null)`,
          ),
        ),
    },
    {
      check: 'settlement_net_sums_to_zero',
      what: "a closed statement's first net line raised by one minor unit",
      // Unavoidably two: the nets of the flows always sum to zero (each flow credits one brand
      // what it debits another), so only a stored statement's net can fail, and a stored
      // statement that differs from the one recomputed from its flows is a changed statement.
      fails: ['settlement_statements_unchanged', 'settlement_net_sums_to_zero'],
      corrupt: (trx) =>
        withoutTrigger(trx, 'settlement_periods', 'settlement_periods_append_only', () =>
          one(
            trx,
            sql`update settlement_periods set lines = jsonb_set(lines, '{net,0,amount_minor}',
              to_jsonb((lines #>> '{net,0,amount_minor}')::bigint + 1))
            where id = (select min(id) from settlement_periods)`,
          ),
        ),
    },
  ];

  for (const c of CORRUPTIONS) {
    void it(`${c.check}: ${c.what}`, async () => {
      const failed = await failedAfter(c.corrupt);
      assert.deepEqual(failed, c.fails ?? [c.check]);
    });
  }

  void it('the rolled-back corruptions left the ledger and its guards as they were', async () => {
    await api.assertVerifyOk();
    // The dropped constraint and any trigger left disabled would weaken every later test.
    const disabled = await sql<{ tgname: string }>`
      select tgname from pg_trigger where not tgisinternal and tgenabled = 'D'`.execute(db);
    assert.deepEqual(disabled.rows, []);
    const floor = await sql`select from pg_constraint where conname = 'only_available_has_floor'`.execute(db);
    assert.equal(floor.rows.length, 1);
  });

  void it('every check in CHECKS has a corruption test, here or elsewhere', () => {
    const here = CORRUPTIONS.map((c) => c.check);
    assert.equal(new Set(here).size, here.length, 'a check listed twice');
    const elsewhere = new Set(COVERED_ELSEWHERE);
    assert.deepEqual(
      [...here].sort(),
      CHECKS.map((c) => c.name)
        .filter((n) => !elsewhere.has(n))
        .sort(),
      'a check of verify.ts with no test showing it can fail (add one, or name its test in COVERED_ELSEWHERE)',
    );
  });
});
