import { sql } from 'kysely';
import { AppError } from '../../errors.ts';
import type { Trx } from '../../ledger/post.ts';
import { deferWrite } from '../../store/write-behind.ts';
import {
  committedAuditRow,
  currentAuditScope,
  deferAuditRows,
  outsideAuditScope,
  runInAuditScope,
  type AuditScope,
} from '../audit-scope.ts';
import type { Ctx } from '../context.ts';
import { Lane, rejectAll, takeDistinct } from '../lane.ts';
import { perService } from '../per-service.ts';
import { inTransaction, PREPARED } from '../transaction.ts';

// Redemptions that arrive while others are in flight share one transaction (services/lane.ts)
// and one commit. What they read — the members' locks, lots, balances and keys — is read once for
// all of them before any of them runs (prepare). Each is then planned in memory against it as the
// ones before it left it (plan): a refusal (not enough points …) throws before it changes
// anything, and the accepted ones' writes wait to be written together, one statement per table
// for all of them (flush). A redemption that cannot be planned (its member was not read, or it
// was validated under another configuration) runs with its own statements in a savepoint, after
// the writes planned before it. This matters most for one member's redemptions arriving together
// (a checkout retried, a family sharing one account): they run one at a time whatever we do,
// each holding the member's row lock until its commit. Every redemption keeps its own
// idempotency key, its own audit row (written in the same transaction) and its own answer. If the
// shared transaction fails as a whole (a database error, a concurrent claim of a key, a ledger
// check that only the commit sees), each redemption runs again on its own, as if it had arrived
// alone: nothing of the failed attempt was committed.

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
   * What the redemptions of one shared transaction read together, before any of them runs.
   * Called on the first of them, with all of them in order.
   */
  prepare(trx: Trx, batch: readonly SharedJob<S>[]): Promise<S>;
  /**
   * The redemption planned against what was read, its writes kept in `shared` until flush; a
   * refusal throws an AppError before it changes anything. Null when it cannot be planned.
   */
  plan(shared: S): Outcome | null;
  /** A redemption that could not be planned, with its own statements (in a savepoint). */
  inBatch(trx: Trx, shared: S): Promise<Outcome>;
  /** Writes what the planned redemptions kept, in their order. Called on the first of them. */
  flush(trx: Trx, shared: S): Promise<void>;
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
      // In no request's audit scope: each redemption's own row is written by runShared (planned)
      // or inSavepoint.
      run: (batch) => outsideAuditScope(() => runShared(ctx, batch)),
      fail: rejectAll,
    }),
);

/** Settles every waiting redemption; never throws. */
async function runShared(ctx: Ctx, batch: readonly Waiting[]): Promise<void> {
  if (batch.length === 1) return runAlone(batch[0]!);
  let results: (Outcome | AppError)[] = [];
  try {
    await inTransaction(
      ctx.db,
      async (trx) => {
        results = [];
        const first = batch[0]!.job;
        const shared = await first.prepare(
          trx,
          batch.map((w) => w.job),
        );
        let audits: ReturnType<typeof committedAuditRow>[] = [];
        const flush = async () => {
          await first.flush(trx, shared);
          await deferAuditRows(trx, audits);
          audits = [];
        };
        for (const [i, w] of batch.entries()) {
          const planned = planOrRefuse(w, shared);
          if (planned === null) {
            await flush(); // what it reads must see the redemptions planned before it
            results.push(await inSavepoint(trx, `r${i}`, w, shared));
            continue;
          }
          if (w.audit && !(planned instanceof AppError))
            audits.push(committedAuditRow(w.audit, planned.http_status));
          results.push(planned);
        }
        await flush();
      },
      PREPARED,
    );
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

/** The planned answer, the refusal, or null when the redemption cannot be planned. */
function planOrRefuse(w: Waiting, shared: unknown): Outcome | AppError | null {
  try {
    return w.job.plan(shared);
  } catch (e) {
    // A refusal answers this redemption only; anything else fails the shared transaction.
    if (e instanceof AppError) return e;
    throw e;
  }
}

async function inSavepoint(trx: Trx, name: string, w: Waiting, shared: unknown): Promise<Outcome | AppError> {
  // The savepoint and its release travel with the redemption's own statements (write-behind).
  await deferWrite(trx, sql`savepoint ${sql.id(name)}`.compile(trx));
  try {
    const out = await w.job.inBatch(trx, shared);
    if (w.audit) await deferAuditRows(trx, [committedAuditRow(w.audit, out.http_status)]);
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
