import type { AuditScope } from '../audit-scope.ts';
import {
  committedAuditRow,
  currentAuditScope,
  deferAuditRows,
  outsideAuditScope,
  runInAuditScope,
} from '../audit-scope.ts';
import type { Actor, Ctx } from '../context.ts';
import { inTransaction, PREPARED } from '../transaction.ts';
import { Lane, rejectAll, takeDistinct } from '../lane.ts';
import { perService } from '../per-service.ts';
import { accrueBulk, bulkPrograms, type Candidate } from './batch.ts';
import {
  admitEvent,
  isAdmitted,
  processAdmitted,
  type Admitted,
  type BrandGuard,
  type EventOutcome,
} from './intake.ts';

// POST /v1/events under load. Each event in a transaction of its own pays its own round trips
// and its own commit (an fsync); tills send many small events at once. So a few single-event
// transactions run at a time, and the purchases that arrive meanwhile queue here; when a
// transaction ends, the queue runs as one bulk transaction (the batch endpoint's, batch.ts),
// which has exactly the effect of its events sent one by one. Every event keeps its own answer,
// its own idempotency key and its own audit row, written in the shared transaction. Anything the
// bulk transaction cannot answer (a replayed key) or a failure of the shared transaction as a
// whole (a concurrent twin, a referred member, a database error) sends each event down the
// single-event path on its own, as if it had arrived alone: nothing of the failed attempt was
// committed. Reversals, referrals and events that will be rejected never queue.

/** At most this many events share a transaction (the rest wait for the next). */
const MAX_SHARED_EVENTS = 500;

interface Waiting {
  readonly admitted: Admitted;
  readonly actor: Actor;
  readonly audit: AuditScope | undefined;
  readonly resolve: (o: EventOutcome) => void;
  readonly reject: (e: unknown) => void;
}

/** Counts since start, per service (exposed in /metrics). */
export interface SharedEventStats {
  /** Shared transactions committed, and the events they answered. */
  transactions: number;
  events: number;
  /** Events run again on their own after their shared transaction failed. */
  fallbacks: number;
}

export const sharedEventStats = perService((): SharedEventStats => ({
  transactions: 0,
  events: 0,
  fallbacks: 0,
}));

/** One event of POST /v1/events, exactly once, sharing a transaction with others when they queue. */
export async function submitSharedEvent(
  ctx: Ctx,
  raw: unknown,
  actor: Actor,
  guard: BrandGuard,
): Promise<EventOutcome> {
  const admitted = await admitEvent(ctx, raw, actor, guard);
  if (!isAdmitted(admitted)) return admitted;
  const { group, ev, store } = admitted;
  if (!bulkPrograms(group, ev, store, ctx.clock.now())) return processAdmitted(ctx, admitted, actor);
  return laneOf(ctx).submit(
    () => processAdmitted(ctx, admitted, actor),
    (resolve, reject) => ({ admitted, actor, audit: currentAuditScope(), resolve, reject }),
  );
}

const laneOf = perService(
  (ctx) =>
    new Lane<Waiting>({
      // The bulk transaction's terms: distinct members, keys and event ids.
      take: (queue) =>
        takeDistinct(queue, MAX_SHARED_EVENTS, ({ admitted: { ev } }) => [
          `m:${ev.member_id}`,
          `k:${ev.idempotency_key}`,
          `e:${ev.event_id}`,
        ]),
      // In no request's audit scope: each event's own row is written by runShared.
      run: (batch) => outsideAuditScope(() => runShared(ctx, batch)),
      fail: rejectAll,
    }),
);

/** Settles every waiting event; never throws. */
async function runShared(ctx: Ctx, batch: readonly Waiting[]): Promise<void> {
  // Checked again at the transaction's time: the late-event window may have closed meanwhile.
  const now = ctx.clock.now();
  const candidates: Candidate[] = [];
  const sharing: Waiting[] = [];
  const alone: Waiting[] = [];
  // One configuration per transaction: an event admitted under another (a new version applied
  // meanwhile) runs alone, under the one it was admitted with, as it would have.
  const config = batch[0]!.admitted.group;
  for (const w of batch) {
    const { group, ev, store, hash } = w.admitted;
    const programs = group === config ? bulkPrograms(group, ev, store, now) : null;
    if (!programs) {
      alone.push(w);
      continue;
    }
    candidates.push({ index: sharing.length, ev, store, programs, hash, actor: w.actor });
    sharing.push(w);
  }
  let answers = new Map<number, EventOutcome>();
  if (sharing.length > 1) {
    try {
      answers = await inTransaction(
        ctx.db,
        async (trx) => {
          const out = await accrueBulk(trx, ctx, config, candidates);
          const rows = sharing.flatMap((w, i) => {
            const o = out.get(i);
            return o && w.audit && !w.audit.committed ? [committedAuditRow(w.audit, o.http_status)] : [];
          });
          await deferAuditRows(trx, rows);
          return out;
        },
        PREPARED,
      );
      sharedEventStats(ctx).transactions += 1;
      sharedEventStats(ctx).events += answers.size;
    } catch {
      sharedEventStats(ctx).fallbacks += sharing.length;
    }
  }
  sharing.forEach((w, i) => {
    const o = answers.get(i);
    if (!o) {
      alone.push(w);
      return;
    }
    if (w.audit) {
      w.audit.committed = true;
      w.audit.status_code = o.http_status;
    }
    w.resolve(o);
  });
  await Promise.all(alone.map((w) => runAlone(ctx, w)));
}

async function runAlone(ctx: Ctx, w: Waiting): Promise<void> {
  const run = () => processAdmitted(ctx, w.admitted, w.actor);
  await (w.audit ? runInAuditScope(w.audit, run) : run()).then(w.resolve, w.reject);
}
