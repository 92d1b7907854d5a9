// Lots are updated in place (migration 010): no index on lots names the columns every spend
// changes, so PostgreSQL can update a partly spent lot without writing index entries (HOT). A lot
// that empties leaves the open-lot indexes. Both stores.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { memberAccount, systemAccount } from '../../src/ledger/accounts.ts';
import type { LotMove } from '../../src/ledger/entry.ts';
import { postEntry, type Trx } from '../../src/ledger/post.ts';
import { openLots } from '../../src/ledger/read.ts';
import { verifyLedger } from '../../src/services/verify.ts';
import type { DB } from '../../src/store/schema.ts';
import { creditOneLot } from '../helpers/ledger.ts';
import { createTestService, type TestService } from '../helpers/store.ts';

const AT = new Date('2026-03-01T12:00:00Z');
const M = 'hot_m';

const spend = (trx: Trx, lot: bigint, points: bigint) => {
  const move: LotMove = {
    lot_id: lot,
    program_id: 'p_hot',
    member_id: M,
    issuing_brand_id: 'brand_hot',
    kind: 'spend',
    points_pt4: points,
    remaining_delta_pt4: -points,
    held_delta_pt4: 0n,
    state_from: 'available',
  };
  return postEntry(trx, {
    kind: 'redemption',
    member_id: M,
    at: AT,
    postings: [
      { account: memberAccount('p_hot', M, 'member_available'), amount_pt4: -points },
      { account: systemAccount('p_hot', 'redemption', 'brand_hot'), amount_pt4: points },
    ],
    lot_moves: [move],
  });
};

/** Lot rows this transaction has updated in place so far. */
const hotUpdates = async (trx: Trx) =>
  (await sql<{ n: bigint }>`select pg_stat_get_xact_tuples_hot_updated('lots'::regclass) as n`.execute(trx))
    .rows[0]!.n;

void describe('lots are updated in place', () => {
  let t: TestService;
  let db: Kysely<DB>;
  let lot: bigint;
  before(async () => {
    t = await createTestService();
    db = t.ctx.db;
    await db.transaction().execute(async (trx) => {
      const posted = await creditOneLot(trx, {
        member: M,
        program: 'p_hot',
        brand: 'brand_hot',
        points: 100n,
        at: AT,
        expires_at: new Date('2027-03-01T12:00:00Z'),
      });
      lot = posted.lot_ids[0]!;
    });
  });
  after(() => t.close());

  void it('no index on lots names the points a spend or a hold changes', async () => {
    const { rows } = await sql<{ def: string }>`
      select pg_get_indexdef(indexrelid) as def from pg_index where indrelid = 'lots'::regclass`.execute(db);
    assert.ok(rows.length >= 7, `lots has ${rows.length} indexes`);
    for (const { def } of rows) assert.doesNotMatch(def, /remaining_pt4|held_pt4/, def);
  });

  void it('a partial spend is an update in place; the last one closes the lot', async () => {
    await db.transaction().execute(async (trx) => {
      const before = await hotUpdates(trx);
      await spend(trx, lot, 40n);
      assert.equal(await hotUpdates(trx), before + 1n, 'the partial spend updated the lot in place');
      await spend(trx, lot, 60n);
      assert.equal(await hotUpdates(trx), before + 1n, 'emptying the lot rewrote its index entries');
    });
    const row = await db
      .selectFrom('lots')
      .select(['remaining_pt4', 'open'])
      .where('id', '=', lot)
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, { remaining_pt4: 0n, open: false });
    assert.deepEqual(await openLots(db as unknown as Trx, M), []);
    assert.ok((await verifyLedger(db)).ok);
  });
});
