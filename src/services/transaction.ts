import type { Kysely, Transaction } from 'kysely';
import { AppError } from '../errors.ts';
import { ledgerExpectation } from '../ledger/expectations.ts';
import { pgCode } from '../ledger/post.ts';
import { committedAuditRow, currentAuditScope } from './audit-scope.ts';
import type { DB } from '../store/schema.ts';
import { isStalePrepared, markDeferred, PREPARED_STATEMENTS } from '../store/write-behind.ts';

const RETRYABLE = new Set(['40001', '40P01']); // serialization failure, deadlock detected
const MAX_ATTEMPTS = 5;

export interface TransactionOptions {
  /**
   * Run the transaction's statements as prepared ones (store/write-behind.ts): for the hot
   * paths, whose statements are short index probes and inserts, and whose texts repeat.
   */
  readonly prepared?: boolean;
}

export const PREPARED: TransactionOptions = { prepared: true };

/**
 * One database transaction per command. A serialization failure or deadlock is retried a bounded
 * number of times with jittered backoff; past that the caller gets CONCURRENT_UPDATE (409), which
 * is safe to retry with the same idempotency key.
 */
export async function inTransaction<T>(
  db: Kysely<DB>,
  fn: (trx: Transaction<DB>) => Promise<T>,
  opts: TransactionOptions = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      const scope = currentAuditScope();
      const audit = scope && !scope.committed ? scope : null;
      const result = await db.transaction().execute(async (trx) => {
        if (opts.prepared) await trx.executeQuery(PREPARED_STATEMENTS);
        const out = await fn(trx);
        // The request's audit row commits with its first committed transaction (audit-scope.ts).
        if (audit) {
          // Commands that answer their own HTTP status ({http_status, body}) give it here; for the
          // others the API fills it in afterwards, by the row's id, as it does for a command whose
          // reply ends with another status than it answered. The row travels with the commit, and
          // its id comes back with the commit's results.
          const status_code = httpStatusOf(out);
          const insert = trx
            .insertInto('audit_log')
            .values(committedAuditRow(audit, status_code))
            .returning('id')
            .compile();
          await trx.executeQuery(
            markDeferred(insert, (r) => {
              audit.audit_id = (r.rows[0] as { id: bigint }).id;
            }),
          );
          audit.status_code = status_code;
        }
        return out;
      });
      if (audit) audit.committed = true;
      return result;
    } catch (e) {
      const code = pgCode(e);
      const ledger = ledgerExpectation(e);
      if (ledger) throw ledger;
      if (!(code && RETRYABLE.has(code)) && !isStalePrepared(e)) throw e;
      if (attempt >= MAX_ATTEMPTS) throw new AppError('CONCURRENT_UPDATE', undefined, { attempts: attempt });
      await new Promise((r) => setTimeout(r, Math.random() * 5 * 2 ** attempt));
    }
  }
}

function httpStatusOf(out: unknown): number | null {
  const s =
    typeof out === 'object' && out !== null ? (out as { http_status?: unknown }).http_status : undefined;
  return typeof s === 'number' ? s : null;
}
