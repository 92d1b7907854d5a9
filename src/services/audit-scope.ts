import { AsyncLocalStorage } from 'node:async_hooks';
import type { Trx } from '../ledger/post.ts';
import { deferWrite } from '../store/write-behind.ts';
import type { AuditRecord } from './audit.ts';

// The audit row of a write belongs in the write's own transaction: then a committed command is
// never without its audit row, and the command pays one commit, not two. The API opens a scope
// per audited request; inTransaction writes the row inside the first transaction of that scope
// that commits, and the API's onSend hook writes it (with the status) only for requests that
// committed nothing — rejections, errors, writes outside a transaction. A command that answers
// its own HTTP status ({http_status, body}: events, redemptions, transfers, batches) has it
// written with the row; for the others the hook fills it in afterwards, and it corrects a written
// status that the reply did not end with.

export interface AuditScope {
  readonly record: Omit<AuditRecord, 'status_code'>;
  /** Set once a transaction carrying the row has committed. */
  committed: boolean;
  /** The committed row, whose status the API fills in when the reply is known. */
  audit_id?: bigint;
  /** The status written with the row, when the command answered its own. */
  status_code?: number | null;
}

const storage = new AsyncLocalStorage<AuditScope>();

export const runInAuditScope = <T>(scope: AuditScope, fn: () => T): T => storage.run(scope, fn);

export const currentAuditScope = (): AuditScope | undefined => storage.getStore();

/** Runs fn in no audit scope: its transactions write no audit row of their own. */
export const outsideAuditScope = <T>(fn: () => T): T => storage.exit(fn);

/** The audit_log row of a scope's command that commits with the given HTTP status (null: unknown yet). */
export const committedAuditRow = (scope: AuditScope, status_code: number | null) => ({
  ...scope.record,
  status_code,
  detail: JSON.stringify({ ...scope.record.detail, outcome: 'committed' }) as never,
});

/** Writes the rows (committedAuditRow) with the transaction's next statement or its commit. */
export async function deferAuditRows(
  trx: Trx,
  rows: readonly ReturnType<typeof committedAuditRow>[],
): Promise<void> {
  if (rows.length > 0) await deferWrite(trx, trx.insertInto('audit_log').values([...rows]));
}
