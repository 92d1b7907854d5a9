import { sql } from 'kysely';
import { AppError } from '../../errors.ts';
import type { Trx } from '../../ledger/post.ts';
import { deferWrite } from '../../store/write-behind.ts';
import {
  committedAuditRow,
  currentAuditScope,
  outsideAuditScope,
  runInAuditScope,
  type AuditScope,
} from '../audit-scope.ts';
import type { Ctx } from '../context.ts';
import { Lane, rejectAll, takeDistinct } from '../lane.ts';
import { perService } from '../per-service.ts';
import { inTransaction } from '../transaction.ts';

// Redemptions that arrive while others are in flight share one transaction (services/lane.ts):
// each in a savepoint of its own (a refused one rolls back alone and answers its own 4xx), one
// commit. What they read — the members' locks, lots, balances and keys — is read once for all
// of them before the first savepoint (prepare), and each then plans against it as the ones
// before it left it, so a redemption in a shared transaction costs no round trip of its own.
// This matters most for one member's redemptions arriving together (a checkout retried, a family
// sharing one account): they run one at a time whatever we do, each holding the member's row
// lock until its commit. Every redemption keeps its own idempotency key, its own audit row
// (written in the same transaction) and its own answer. If the shared transaction fails as a
// whole (a database error, a concurrent claim of a key, a ledger check that only the commit
// sees), each redemption runs again on its own, as if it had arrived alone: nothing of the
// failed attempt was committed.

export interface Outcome {
  readonly http_status: number;
  readonly body: Record<string, unknown>;
}

export interface SharedJob<S = unknown> {
  /** Its idempotency key: a transaction carries each key once. */
  readonly key: string;
  /** The redemption in a transaction of its own. */
  alone(): Promise<Outcome>;
  /**
   * What the redemptions of one shared transaction read together, before any of them runs: it
   * lies outside their savepoints, so a refused redemption cannot undo it (nor the lock it takes).
   * Called on the first of them, with all of them in order.
   */
  prepare(trx: Trx, batch: readonly SharedJob<S>[]): Promise<S>;
  /** The redemption's body inside a transaction shared with others, given what they read together. */
  inBatch(trx: Trx, shared: S): Promise<Outcome>;
}

interface Waiting {
  readonly job: SharedJob;
  readonly audit: AuditScope | undefined;
  readonly resolve: (o: Outcome) => void;
  readonly reject: (e: unknown) => void;
}

/** At most this many redemptions share a transaction (the rest wait for the next). */
const MAX_SHARED = 64;

/** Counts since start, per service (exposed in /metrics). */
export interface SharedStats {
  /** Shared transactions committed, and the redemptions they carried (refused ones included). */
  transactions: number;
  redemptions: number;
  /** Redemptions run again on their own after their shared transaction failed. */
  fallbacks: number;
  /** Redemptions planned against their batch's one read of the member's lots (redeem.ts). */
  read_together: number;
}

export const statsOf = perService((): SharedStats => ({
  transactions: 0,
  redemptions: 0,
  fallbacks: 0,
  read_together: 0,
}));

/** The redemption alone when nothing else is in flight, else in a transaction shared with others. */
export function shareTransaction(ctx: Ctx, job: SharedJob): Promise<Outcome> {
  return laneOf(ctx).submit(
    () => job.alone(),
    (resolve, reject) => ({ job, audit: currentAuditScope(), resolve, reject }),
  );
}

const laneOf = perService(
  (ctx) =>
    new Lane<Waiting>({
      take: (queue) => takeDistinct(queue, MAX_SHARED, (w) => [w.job.key]),
      // In no request's audit scope: each redemption's own row is written by inSavepoint.
      run: (batch) => outsideAuditScope(() => runShared(ctx, batch)),
      fail: rejectAll,
    }),
);

/** Settles every waiting redemption; never throws. */
async function runShared(ctx: Ctx, batch: readonly Waiting[]): Promise<void> {
  if (batch.length === 1) return runAlone(batch[0]!);
  let results: (Outcome | AppError)[] = [];
  try {
    await inTransaction(ctx.db, async (trx) => {
      results = [];
      const shared = await batch[0]!.job.prepare(
        trx,
        batch.map((w) => w.job),
      );
      for (const [i, w] of batch.entries()) results.push(await inSavepoint(trx, `r${i}`, w, shared));
    });
  } catch {
    statsOf(ctx).fallbacks += batch.length;
    await Promise.all(batch.map(runAlone));
    return;
  }
  statsOf(ctx).transactions += 1;
  statsOf(ctx).redemptions += batch.length;
  batch.forEach((w, i) => {
    const r = results[i]!;
    if (r instanceof AppError) return w.reject(r);
    if (w.audit) {
      w.audit.committed = true;
      w.audit.status_code = r.http_status;
    }
    w.resolve(r);
  });
}

async function inSavepoint(trx: Trx, name: string, w: Waiting, shared: unknown): Promise<Outcome | AppError> {
  // The savepoint and its release travel with the redemption's own statements (write-behind).
  await deferWrite(trx, sql`savepoint ${sql.id(name)}`.compile(trx));
  try {
    const out = await w.job.inBatch(trx, shared);
    if (w.audit)
      await deferWrite(trx, trx.insertInto('audit_log').values(committedAuditRow(w.audit, out.http_status)));
    await deferWrite(trx, sql`release savepoint ${sql.id(name)}`.compile(trx));
    return out;
  } catch (e) {
    // A refusal (not enough points, a reused key …) undoes this redemption only. Anything else
    // fails the shared transaction, and every redemption in it runs again on its own.
    if (!(e instanceof AppError)) throw e;
    await trx.executeQuery(sql`rollback to savepoint ${sql.id(name)}`.compile(trx));
    return e;
  }
}

async function runAlone(w: Waiting): Promise<void> {
  const run = () => w.job.alone();
  await (w.audit ? runInAuditScope(w.audit, run) : run()).then(w.resolve, w.reject);
}
