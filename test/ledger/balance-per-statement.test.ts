// Every entry's postings sum to zero per program, checked once per statement that inserts postings
// (migration 011), so an entry's postings must travel in one statement. postEntries writes a large
// call's postings in chunks of about 5,000 rows: a chunk ends between entries, never inside one.
// And the check reads no postings but the statement's own (its first version, a plain join, read
// the whole index: this test failed on it with 5,003 index entries read; migration 011's probed
// the new entries' postings; migration 015's sums the transition table alone). Both stores.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { systemAccount } from '../../src/ledger/accounts.ts';
import type { EntryInput } from '../../src/ledger/entry.ts';
import { postEntries } from '../../src/ledger/post.ts';
import { verifyLedger } from '../../src/services/verify.ts';
import type { DB } from '../../src/store/schema.ts';
import { oneLotCredit } from '../helpers/ledger.ts';
import { createTestService, type TestService } from '../helpers/store.ts';

const AT = new Date('2026-03-01T12:00:00Z');

/**
 * An entry crediting bal_m `points` in one lot of the first brand's, its debit split equally
 * between the brands' issuance accounts.
 */
function credit(points: bigint, brands: readonly string[]): EntryInput {
  const entry = oneLotCredit({
    member: 'bal_m',
    program: 'p_bal',
    brand: brands[0]!,
    points,
    at: AT,
    expires_at: null,
  });
  return {
    ...entry,
    postings: [
      entry.postings[0]!,
      ...brands.map((b) => ({
        account: systemAccount('p_bal', 'issuance', b),
        amount_pt4: -points / BigInt(brands.length),
      })),
    ],
  };
}

void describe('entry balance checked per postings statement', () => {
  let t: TestService;
  let db: Kysely<DB>;
  before(async () => {
    t = await createTestService();
    db = t.ctx.db;
    await sql`insert into members (id, created_at) values ('bal_m', ${AT})`.execute(db);
  });
  after(() => t.close());

  void it('commits a call whose postings fill more than one chunk, no entry split between two', async () => {
    // 1,667 entries of 3 postings: 5,001 rows, so a cut after exactly 5,000 rows would leave the
    // last entry's third posting alone in a second statement, and both statements unbalanced.
    const posted = await db.transaction().execute((trx) =>
      postEntries(
        trx,
        Array.from({ length: 1_667 }, () => credit(20n, ['brand_a', 'brand_b'])),
      ),
    );
    assert.equal(posted.length, 1_667);
    const { n } = (
      await sql<{ n: bigint }>`select count(*) as n from postings where program_id = 'p_bal'`.execute(db)
    ).rows[0]!;
    assert.equal(String(n), '5001');
    const member = await db
      .selectFrom('accounts')
      .select('balance_pt4')
      .where('owner_id', '=', 'bal_m')
      .executeTakeFirstOrThrow();
    assert.equal(String(member.balance_pt4), String(20n * 1_667n));
    assert.ok((await verifyLedger(db)).ok);
  });

  void it('reads no index of postings, however many the table holds', async () => {
    // The check's plan is made once per connection and kept: written as a join it could walk the
    // whole postings index for every statement (it did in the bench, doubling the redemption
    // p99), which no answer shows. The index entries the transaction read show it.
    const reads = await db.transaction().execute(async (trx) => {
      // Counted in the transaction, before and after: the counters also hold earlier transactions'
      // reads until the backend reports them.
      const read = async () =>
        Number(
          (
            await sql<{
              n: bigint;
            }>`select pg_stat_get_xact_tuples_returned('postings_entry'::regclass) as n`.execute(trx)
          ).rows[0]!.n,
        );
      const before = await read();
      const [posted] = await postEntries(trx, [credit(5n, ['brand_a'])]);
      assert.ok(posted);
      return (await read()) - before;
    });
    // The first test left 5,001 postings; this entry has 2, and the statement's rows are enough.
    assert.equal(reads, 0, `postings_entry index entries read: ${reads}`);
  });
});
