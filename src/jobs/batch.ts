import type { Trx } from '../ledger/post.ts';
import type { Ctx } from '../services/context.ts';
import { inTransaction } from '../services/transaction.ts';

// Jobs walk their candidates in member order, a bounded page at a time (memory stays flat however
// many rows are due), and handle each page in one transaction that first claims the page's members
// with FOR UPDATE SKIP LOCKED: a member busy in a command or claimed by a job on another server
// instance is skipped now and picked up by the next run. Within the transaction every job re-reads
// what is due under that lock, so running twice changes nothing the second time.

export const MEMBERS_PER_BATCH = 200;

export interface JobProgress {
  readonly batches: number;
  readonly members: number;
}

export interface MemberPage {
  readonly member_ids: string[];
  /** Where the next page starts; null when this was the last. */
  readonly next: string | null;
}

/** Pages keyed by member id: the next page starts after the last id. */
export const byMemberId = (ids: string[], limit: number): MemberPage => ({
  member_ids: ids,
  next: ids.length < limit ? null : ids[ids.length - 1]!,
});

/** Calls `handle` for each page of distinct member ids returned by `page(after)`. */
export async function forEachMemberBatch(
  ctx: Ctx,
  page: (after: string | null, limit: number) => Promise<MemberPage>,
  handle: (trx: Trx, member_ids: string[]) => Promise<void>,
  onProgress?: (p: JobProgress) => void,
): Promise<{ skipped_members: number }> {
  let after: string | null = null;
  let batches = 0;
  let members = 0;
  let skipped = 0;
  for (;;) {
    const { member_ids: ids, next } = await page(after, MEMBERS_PER_BATCH);
    if (ids.length === 0 && next === null) break;
    after = next;
    if (ids.length > 0)
      await inTransaction(ctx.db, async (trx) => {
        const claimed = await trx
          .selectFrom('members')
          .select('id')
          .where('id', 'in', ids)
          .orderBy('id')
          .forUpdate()
          .skipLocked()
          .execute();
        skipped += ids.length - claimed.length;
        if (claimed.length > 0)
          await handle(
            trx,
            claimed.map((c) => c.id),
          );
      });
    batches++;
    members += ids.length;
    onProgress?.({ batches, members });
    if (next === null) break;
  }
  return { skipped_members: skipped };
}

/** Map.groupBy is Node 21+; this project runs on Node 20. */
export function groupBy<T, K>(items: readonly T[], key: (t: T) => K): Map<K, T[]> {
  const out = new Map<K, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = out.get(k);
    if (list) list.push(item);
    else out.set(k, [item]);
  }
  return out;
}

/**
 * When a job's entries take effect: at as_of when it is ahead of the clock (a run scheduled for
 * an instant), else now. A run with a past as_of catches up on what was due then without
 * back-dating postings into periods already reported.
 */
export function stampAt(ctx: Ctx, as_of: Date): Date {
  const now = ctx.clock.now();
  return as_of.getTime() > now.getTime() ? as_of : now;
}
