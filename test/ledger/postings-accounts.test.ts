// Postings find their accounts by the accounts' unique key, one index probe per posting, whatever
// the number of accounts. Written as a plain join, a call's thousands of postings were costed
// cheaper as a hash of the whole accounts table: a scan per statement whose cost grows with the
// group's members (it did in the bench's batch accrual). The scans the transaction made show it.
// Both stores.

import { strict as assert } from 'node:assert';
import { after, before, describe, it } from 'node:test';
import { sql, type Kysely } from 'kysely';
import { postEntries } from '../../src/ledger/post.ts';
import { verifyLedger } from '../../src/services/verify.ts';
import type { DB } from '../../src/store/schema.ts';
import { oneLotCredit } from '../helpers/ledger.ts';
import { createTestService, type TestService } from '../helpers/store.ts';

const AT = new Date('2026-03-01T12:00:00Z');
const MEMBERS = 3_000;

const credits = (from: number, to: number) =>
  Array.from({ length: to - from }, (_, i) =>
    oneLotCredit({
      member: `pa_${from + i}`,
      program: 'p_pa',
      brand: 'brand_a',
      points: 10n,
      at: AT,
      expires_at: null,
    }),
  );

void describe('postings find their accounts', () => {
  let t: TestService;
  let db: Kysely<DB>;
  before(async () => {
    t = await createTestService();
    db = t.ctx.db;
    await sql`insert into members (id, created_at)
              select 'pa_' || i, ${AT} from generate_series(0, ${MEMBERS - 1}) as i`.execute(db);
    // One account per member: the table a scan would read.
    await db.transaction().execute((trx) => postEntries(trx, credits(0, MEMBERS)));
  });
  after(() => t.close());

  void it('by a probe per posting, never a scan of the accounts table', async () => {
    const scans = await db.transaction().execute(async (trx) => {
      // Counted in the transaction, before and after: the counter also holds earlier
      // transactions' scans until the backend reports them.
      const seqScans = async () =>
        Number(
          (await sql<{ n: bigint }>`select pg_stat_get_xact_numscans('accounts'::regclass) as n`.execute(trx))
            .rows[0]!.n,
        );
      const before = await seqScans();
      const posted = await postEntries(trx, credits(0, 1_000));
      assert.equal(posted.length, 1_000);
      return (await seqScans()) - before;
    });
    assert.equal(scans, 0, `sequential scans of accounts: ${scans}`);
    const { n } = (
      await sql<{ n: bigint }>`select count(*) as n from postings where program_id = 'p_pa'`.execute(db)
    ).rows[0]!;
    assert.equal(String(n), String(2 * (MEMBERS + 1_000)));
    assert.ok((await verifyLedger(db)).ok);
  });
});
