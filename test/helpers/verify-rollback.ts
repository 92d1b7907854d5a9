import { strict as assert } from 'node:assert';
import type { Kysely } from 'kysely';
import { verifyLedger, type Check } from '../../src/services/verify.ts';
import type { DB } from '../../src/store/schema.ts';

class Rollback extends Error {}

/**
 * The checks of `verify` that fail after `corrupt` changes the stored rows, run in one
 * transaction that is then rolled back (DDL included, on both stores): the ledger is left as it was.
 */
export async function checksFailingAfter(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  db: Kysely<any>,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  corrupt: (trx: Kysely<any>) => Promise<void>,
): Promise<Check[]> {
  let failed: Check[] = [];
  await assert.rejects(
    db.transaction().execute(async (trx) => {
      await corrupt(trx);
      failed = (await verifyLedger(trx as unknown as Kysely<DB>)).checks.filter((c) => !c.ok);
      throw new Rollback();
    }),
    Rollback,
  );
  return failed;
}
