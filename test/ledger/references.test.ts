// The ledger's busiest references are checked per statement by triggers (migrations 008 and
// 009), not by foreign keys: a reference to a missing row is refused whatever its place in a
// many-row statement, referenced rows cannot be deleted, re-keyed or truncated, and referencing
// columns cannot change. Each refusal is 23503, as a foreign key's, and changes nothing. Both
// stores.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { pgCode, type Trx } from '../../src/ledger/post.ts';
import { verifyLedger } from '../../src/services/verify.ts';
import type { DB } from '../../src/store/schema.ts';
import { creditOneLot } from '../helpers/ledger.ts';
import { createTestService, type TestService } from '../helpers/store.ts';

const AT = new Date('2026-03-01T12:00:00Z');
const MISSING = 9_000_000_000n;

const TABLES = [
  'members',
  'enrollments',
  'accounts',
  'entries',
  'postings',
  'lots',
  'lot_allocations',
  'program_activity',
  'redemptions',
  'settlement_flows',
  'transfers',
] as const;

async function counts(db: Kysely<DB>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const t of TABLES)
    out[t] = String(
      (await sql<{ n: bigint }>`select count(*) as n from ${sql.table(t)}`.execute(db)).rows[0]!.n,
    );
  return out;
}

void describe('ledger references (checked per statement)', () => {
  let t: TestService;
  let db: Kysely<DB>;
  let entry: bigint;
  let lot: bigint;
  let account: bigint;
  before(async () => {
    t = await createTestService();
    db = t.ctx.db;
    await db.transaction().execute(async (trx) => {
      await sql`insert into members (id, created_at) values ('ref_m', ${AT})`.execute(trx);
      const posted = await creditOneLot(trx, {
        member: 'ref_m',
        program: 'p_ref',
        brand: 'brand_ref',
        points: 100n,
        at: AT,
        expires_at: null,
      });
      entry = posted.entry_id;
      lot = posted.lot_ids[0]!;
    });
    account = (
      await db.selectFrom('accounts').select('id').where('owner_id', '=', 'ref_m').executeTakeFirstOrThrow()
    ).id;
  });
  after(() => t.close());

  // Each statement is valid but for one reference, the last row's where a statement has several.
  const refused: [string, (trx: Trx) => Promise<unknown>][] = [
    [
      'a posting of a missing entry',
      (trx) =>
        sql`insert into postings (entry_id, account_id, program_id, amount_pt4, at) values
        (${entry}, ${account}, 'p_ref', 5, ${AT}), (${MISSING}, ${account}, 'p_ref', -5, ${AT})`.execute(trx),
    ],
    [
      'a posting to a missing account',
      (trx) =>
        sql`insert into postings (entry_id, account_id, program_id, amount_pt4, at) values
        (${entry}, ${account}, 'p_ref', 5, ${AT}), (${entry}, ${MISSING}, 'p_ref', -5, ${AT})`.execute(trx),
    ],
    [
      'a lot of a missing entry',
      (trx) =>
        sql`insert into lots (program_id, member_id, issuing_brand_id, points_pt4, remaining_pt4, state,
          awarded_at, available_at, source_entry_id)
        values ('p_ref', 'ref_m', 'brand_ref', 1, 1, 'available', ${AT}, ${AT}, ${MISSING})`.execute(trx),
    ],
    [
      'an allocation of a missing lot',
      (trx) =>
        sql`insert into lot_allocations (entry_id, lot_id, program_id, issuing_brand_id, kind, points_pt4)
        values (${entry}, ${lot}, 'p_ref', 'brand_ref', 'spend', 1),
               (${entry}, ${MISSING}, 'p_ref', 'brand_ref', 'spend', 1)`.execute(trx),
    ],
    [
      'an allocation of a missing entry',
      (trx) =>
        sql`insert into lot_allocations (entry_id, lot_id, program_id, issuing_brand_id, kind, points_pt4)
        values (${MISSING}, ${lot}, 'p_ref', 'brand_ref', 'spend', 1)`.execute(trx),
    ],
    [
      'activity of a missing entry',
      (trx) =>
        sql`insert into program_activity (member_id, program_id, at, spend_minor, points_pt4, event_id, entry_id)
        values ('ref_m', 'p_ref', ${AT}, 1, 1, 'ev_ref', ${entry}), ('ref_m', 'p_ref', ${AT}, 1, 1, 'ev_ref', ${MISSING})`.execute(
          trx,
        ),
    ],
    [
      'an enrollment of a missing member',
      (trx) =>
        sql`insert into enrollments (member_id, program_id, enrolled_at, last_activity_at)
        values ('ref_m', 'p_other', ${AT}, ${AT}), ('ref_nobody', 'p_ref', ${AT}, ${AT})`.execute(trx),
    ],
    [
      'a redemption of a missing entry',
      (trx) =>
        sql`insert into redemptions (id, member_id, brand_id, group_redemption, status, points_pt4, created_at, entry_id)
        values ('red_ref', 'ref_m', 'brand_ref', false, 'captured', 1, ${AT}, ${MISSING})`.execute(trx),
    ],
    [
      'a settlement flow of a missing entry',
      (trx) =>
        sql`insert into settlement_flows (entry_id, redemption_id, issuer_brand_id, redeemer_brand_id, program_id,
          points_pt4, value_common, amount_minor, at)
        values (${MISSING}, 'red_ref', 'brand_ref', 'brand_other', 'p_ref', 1, '1', 1, ${AT})`.execute(trx),
    ],
    [
      'a transfer of a missing entry',
      (trx) =>
        sql`insert into transfers (id, from_member_id, to_member_id, group_transfer, points_pt4, created_at, entry_id)
        values ('tr_ref', 'ref_m', 'ref_y', false, 1, ${AT}, ${MISSING})`.execute(trx),
    ],
    ['deleting a member', (trx) => sql`delete from members where id = 'ref_m'`.execute(trx)],
    ['re-keying a member', (trx) => sql`update members set id = 'ref_x' where id = 'ref_m'`.execute(trx)],
    ['deleting an account', (trx) => sql`delete from accounts where id = ${account}`.execute(trx)],
    [
      're-keying an account',
      (trx) => sql`update accounts set id = ${MISSING} where id = ${account}`.execute(trx),
    ],
    ['deleting a lot', (trx) => sql`delete from lots where id = ${lot}`.execute(trx)],
    ['re-keying a lot', (trx) => sql`update lots set id = ${MISSING} where id = ${lot}`.execute(trx)],
    ['truncating members', (trx) => sql`truncate members cascade`.execute(trx)],
    ['truncating accounts', (trx) => sql`truncate accounts cascade`.execute(trx)],
    ['truncating entries', (trx) => sql`truncate entries cascade`.execute(trx)],
    ['truncating lots', (trx) => sql`truncate lots cascade`.execute(trx)],
    [
      'moving a lot to another entry',
      (trx) => sql`update lots set source_entry_id = ${MISSING} where id = ${lot}`.execute(trx),
    ],
    [
      'moving an enrollment to another member',
      (trx) => sql`update enrollments set member_id = 'ref_nobody' where member_id = 'ref_m'`.execute(trx),
    ],
  ];

  void it('refuses a reference to a missing row, and any removal of a referenced one (23503)', async () => {
    await db.transaction().execute(async (trx) => {
      await sql`insert into enrollments (member_id, program_id, enrolled_at, last_activity_at)
        values ('ref_m', 'p_ref', ${AT}, ${AT})`.execute(trx);
    });
    for (const [name, attempt] of refused) {
      const before = await counts(db);
      await assert.rejects(
        db.transaction().execute(attempt),
        (e: unknown) => (assert.equal(pgCode(e), '23503', `${name}: ${String(e)}`), true),
        name,
      );
      assert.deepEqual(await counts(db), before, name);
    }
    assert.ok((await verifyLedger(db)).ok);
  });

  void it('verify finds a reference planted past the triggers', async () => {
    const planted = new Error('rolled back');
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await sql`alter table program_activity disable trigger program_activity_entry_id_ref`.execute(trx);
        await sql`insert into program_activity (member_id, program_id, at, spend_minor, points_pt4, event_id, entry_id)
          values ('ref_m', 'p_ref', ${AT}, 1, 1, 'ev_planted', ${MISSING})`.execute(trx);
        const check = (await verifyLedger(trx)).checks.find((c) => c.name === 'references_resolve')!;
        assert.equal(check.ok, false);
        assert.match(check.detail, new RegExp(`program_activity\\.entry_id.*${MISSING}`));
        throw planted;
      }),
      (e) => e === planted,
    );
    assert.ok((await verifyLedger(db)).ok);
  });

  void it('accepts the same statements when every reference exists', async () => {
    await db.transaction().execute(async (trx) => {
      await sql`insert into program_activity (member_id, program_id, at, spend_minor, points_pt4, event_id, entry_id)
        values ('ref_m', 'p_ref', ${AT}, 1, 1, 'ev_ok', ${entry}), ('ref_m', 'p_ref', ${AT}, 1, 1, 'ev_ok', null)`.execute(
        trx,
      );
      await sql`insert into lots (program_id, member_id, issuing_brand_id, points_pt4, remaining_pt4, state,
          awarded_at, available_at, source_entry_id)
        values ('p_ref', 'ref_m', 'brand_ref', 1, 0, 'available', ${AT}, ${AT}, ${entry})`.execute(trx);
      await sql`update members set referred_by = null where id = 'ref_m'`.execute(trx);
      await sql`update lots set expires_at = ${AT} where id = ${lot}`.execute(trx);
    });
    const activity = await db
      .selectFrom('program_activity')
      .select('event_id')
      .where('event_id', '=', 'ev_ok')
      .execute();
    assert.equal(activity.length, 2);
  });
});
