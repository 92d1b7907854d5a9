import type { Trx } from '../ledger/post.ts';
import type { Ctx } from '../services/context.ts';
import { inTransaction } from '../services/transaction.ts';

// Jobs walk their candidates a bounded page at a time (memory stays flat however many rows are
// due), and handle each page in one transaction that first claims the page's members with
// FOR UPDATE SKIP LOCKED: a member busy in a command or claimed by a job on another server
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

export interface BatchOptions {
  /** Page size handed to `page` (default MEMBERS_PER_BATCH). */
  readonly limit?: number;
  /**
   * Pages handled at once, each in its own transaction on its own connection (default 1). The
   * next page is always read while the current ones run. Pages in flight never share a member.
   */
  readonly concurrency?: number;
}

/** Pages keyed by member id: the next page starts after the last id. */
export const byMemberId = (ids: string[], limit: number): MemberPage => ({
  member_ids: ids,
  next: ids.length < limit ? null : ids[ids.length - 1]!,
});

/**
 * Calls `handle` for each page of distinct member ids returned by `page(after)`. The next page is
 * read while the previous ones are handled (up to `concurrency` of them at once), so the page
 * query and the database's work on a page overlap with the server's work on the next.
 */
export async function forEachMemberBatch(
  ctx: Ctx,
  page: (after: string | null, limit: number) => Promise<MemberPage>,
  handle: (trx: Trx, member_ids: string[]) => Promise<void>,
  onProgress?: (p: JobProgress) => void,
  opts: BatchOptions = {},
): Promise<{ skipped_members: number }> {
  const limit = opts.limit ?? MEMBERS_PER_BATCH;
  const pool = new PagePool(Math.max(1, opts.concurrency ?? 1));
  let batches = 0;
  let members = 0;
  let skipped = 0;
  const claimAndHandle = (ids: string[]) =>
    inTransaction(ctx.db, async (trx) => {
      const claimed = await claimMembers(trx, ids);
      skipped += ids.length - claimed.length;
      if (claimed.length > 0) await handle(trx, claimed);
    }).then(() => {
      batches++;
      members += ids.length;
      onProgress?.({ batches, members });
    });
  let after: string | null = null;
  try {
    for (;;) {
      const { member_ids, next } = await page(after, limit);
      if (member_ids.length === 0 && next === null) break;
      after = next;
      await pool.run(member_ids, claimAndHandle);
      if (next === null) break;
    }
  } finally {
    await pool.drain();
  }
  return { skipped_members: skipped };
}

/** Locks the members that no other transaction holds, in id order; returns their ids. */
async function claimMembers(trx: Trx, ids: readonly string[]): Promise<string[]> {
  const rows = await trx
    .selectFrom('members')
    .select('id')
    .where('id', 'in', ids)
    .orderBy('id')
    .forUpdate()
    .skipLocked()
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Runs page handlers with bounded concurrency. A member already in a page in flight is dropped
 * from a new page: the page in flight re-reads everything due for that member under its lock, so
 * the new page would find nothing (or, had the first page been skipped, count the member twice).
 */
class PagePool {
  readonly #running = new Set<Promise<void>>();
  readonly #members = new Set<string>();
  #failure: { error: unknown } | null = null;

  constructor(private readonly size: number) {}

  async run(ids: readonly string[], fn: (ids: string[]) => Promise<void>): Promise<void> {
    this.#rethrow();
    const fresh = ids.filter((id) => !this.#members.has(id));
    if (fresh.length === 0) return;
    while (this.#running.size >= this.size) await Promise.race(this.#running);
    this.#rethrow();
    for (const id of fresh) this.#members.add(id);
    const p: Promise<void> = fn(fresh)
      .catch((error: unknown) => {
        this.#failure ??= { error };
      })
      .finally(() => {
        this.#running.delete(p);
        for (const id of fresh) this.#members.delete(id);
      });
    this.#running.add(p);
  }

  /** Waits for every page in flight; rethrows the first failure. */
  async drain(): Promise<void> {
    await Promise.all(this.#running);
    this.#rethrow();
  }

  #rethrow(): void {
    if (this.#failure) throw this.#failure.error;
  }
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
