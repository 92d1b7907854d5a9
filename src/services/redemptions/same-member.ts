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
import { inTransaction } from '../transaction.ts';

// Redemptions of one member run one at a time whatever we do: each takes the member's row lock
// first and holds it until its commit, and a commit waits for the disk (fsync). When several
// arrive together (a checkout retried, a family sharing one account, a load test), each would
// hold the lock for its own round trips and its own fsync. Instead, while one is in flight the
// others queue here, and the queue then runs as one transaction: each redemption in a savepoint
// of its own (a refused one rolls back alone and answers its own 4xx), one lock, one commit.
// Every redemption keeps its own idempotency key, its own audit row (written in the same
// transaction) and its own answer. If the shared transaction fails as a whole (a database error,
// a ledger check that only the commit sees), each queued redemption runs again on its own, as if
// it had arrived alone: nothing of the failed attempt was committed.

export interface Outcome {
  readonly http_status: number;
  readonly body: Record<string, unknown>;
}

export interface SameMemberJob<S = unknown> {
  /** The redemption in a transaction of its own. */
  alone(): Promise<Outcome>;
  /**
   * What the redemptions of one shared transaction read together, before any of them runs: it
   * lies outside their savepoints, so a refused redemption cannot undo it (nor the lock it takes).
   * Called on the first of them, with all of them in order.
   */
  prepare(trx: Trx, batch: readonly SameMemberJob<S>[]): Promise<S>;
  /** The redemption's body inside a transaction shared with others, given what they read together. */
  inBatch(trx: Trx, shared: S): Promise<Outcome>;
}

interface Waiting {
  readonly job: SameMemberJob;
  readonly audit: AuditScope | undefined;
  readonly resolve: (o: Outcome) => void;
  readonly reject: (e: unknown) => void;
}

/** At most this many redemptions share a transaction (the rest wait for the next). */
export const MAX_SHARED = 64;

const queues = new WeakMap<Ctx, Map<string, Waiting[]>>();

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

const stats = new WeakMap<Ctx, SharedStats>();

export function statsOf(ctx: Ctx): SharedStats {
  let s = stats.get(ctx);
  if (!s) stats.set(ctx, (s = { transactions: 0, redemptions: 0, fallbacks: 0, read_together: 0 }));
  return s;
}

export async function sameMember(ctx: Ctx, member_id: string, job: SameMemberJob): Promise<Outcome> {
  let byMember = queues.get(ctx);
  if (!byMember) queues.set(ctx, (byMember = new Map()));
  const queue = byMember.get(member_id);
  if (queue) {
    return new Promise<Outcome>((resolve, reject) =>
      queue.push({ job, audit: currentAuditScope(), resolve, reject }),
    );
  }
  byMember.set(member_id, []);
  try {
    return await job.alone();
  } finally {
    // The queue that formed meanwhile runs after this one, in no request's audit scope. runShared
    // settles every request it takes; should drain itself fail, no queued request may hang.
    void outsideAuditScope(() => drain(ctx, byMember, member_id)).catch((e: unknown) => {
      for (const w of byMember.get(member_id) ?? []) w.reject(e);
      byMember.delete(member_id);
    });
  }
}

async function drain(ctx: Ctx, byMember: Map<string, Waiting[]>, member_id: string): Promise<void> {
  for (;;) {
    const queue = byMember.get(member_id)!;
    if (queue.length === 0) {
      byMember.delete(member_id);
      return;
    }
    await runShared(ctx, queue.splice(0, MAX_SHARED));
  }
}

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
    for (const w of batch) await runAlone(w);
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
