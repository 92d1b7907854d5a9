import { sql } from 'kysely';
import { pt4ToJson } from '../domain/points.ts';
import { accountKey, memberAccount, systemAccount, type AccountRef } from '../ledger/accounts.ts';
import type { EntryInput, LotMove } from '../ledger/entry.ts';
import { postEntries, type Trx } from '../ledger/post.ts';
import type { Ctx } from '../services/context.ts';
import { forEachMemberBatch, groupBy, stampAt, type JobProgress, type MemberPage } from './batch.ts';

// expire: every lot whose expires_at <= as_of gives up its points not held by an open hold to
// breakage of its issuing brand. One entry per member and run, posted a page at a time; a lot is
// expired once because the second run finds nothing left in it.

export interface ExpireOptions {
  /** Due lots read per page; a page claims the distinct members among them (at most this many). */
  readonly pageLots?: number;
  /** Pages in flight at once (each its own transaction); 1 on PGlite, which has one connection. */
  readonly concurrency?: number;
}

/**
 * 500 due lots per page, so at most 500 members (measured on PostgreSQL, docs/performance.md):
 * pages of 100–500 cost the same CPU per lot at 200,000 lots, pages of 200 ~4 µs more per lot at
 * 1,000,000 (more pages, more commits); larger pages hold more member locks for longer and more
 * memory.
 */
const PAGE_LOTS = 500;
/** Two pages in flight use both cores: the database works on one while the server builds the other. */
const POSTGRES_CONCURRENCY = 2;

export function runExpire(ctx: Ctx, as_of: Date, onProgress?: (p: JobProgress) => void) {
  return expireWith(ctx, as_of, onProgress);
}

export async function expireWith(
  ctx: Ctx,
  as_of: Date,
  onProgress?: (p: JobProgress) => void,
  opts: ExpireOptions = {},
) {
  const totals = { lots: 0, points: 0n, entries: 0 };
  const { skipped_members } = await forEachMemberBatch(
    ctx,
    (after, limit) => duePage(ctx, as_of, after, limit),
    async (trx, member_ids) => {
      const t = await expireMembers(trx, member_ids, as_of, stampAt(ctx, as_of));
      totals.lots += t.lots;
      totals.points += t.points;
      totals.entries += t.entries;
    },
    onProgress,
    {
      limit: opts.pageLots ?? PAGE_LOTS,
      concurrency: opts.concurrency ?? (ctx.storeKind === 'postgres' ? POSTGRES_CONCURRENCY : 1),
    },
  );
  return {
    job: 'expire',
    as_of: as_of.toISOString(),
    lots_expired: totals.lots,
    points_expired: pt4ToJson(totals.points),
    entries: totals.entries,
    skipped_members,
  };
}

/**
 * The members of the next `limit` due lots in (expires_at, member_id) order; the cursor is the last
 * lot's (expires_at, member_id). Lots often share an expiry instant (an end_of_period policy
 * expires a whole year at once), so the walk goes through one instant by member, on the
 * (member_id, expires_at) index, and only looks past it on the open-expiry index when that
 * instant is done. Ordering a shared instant by lot id instead would read all of its remaining
 * lots for every page (30–40 ms a page with 100,000 lots at one instant, ~1 ms this way).
 */
async function duePage(ctx: Ctx, as_of: Date, after: string | null, limit: number): Promise<MemberPage> {
  const due = sql`expires_at <= ${as_of} and remaining_pt4 > held_pt4 and open`;
  const rows: DueAt[] = [];
  let t: string | null = null;
  if (after !== null) {
    const bar = after.indexOf('|');
    t = after.slice(0, bar);
    const member = after.slice(bar + 1);
    rows.push(
      ...(
        await sql<DueAt>`select member_id, ${utcText} as at from lots
          where expires_at = ${t}::timestamptz and member_id > ${member} and ${due}
          order by member_id limit ${limit}`.execute(ctx.db)
      ).rows,
    );
  }
  if (rows.length < limit)
    rows.push(
      ...(
        await sql<DueAt>`select member_id, ${utcText} as at from lots
          where expires_at is not null and ${due} ${t === null ? sql`` : sql`and expires_at > ${t}::timestamptz`}
          order by expires_at, member_id limit ${limit - rows.length}`.execute(ctx.db)
      ).rows,
    );
  const last = rows[rows.length - 1];
  return {
    member_ids: [...new Set(rows.map((r) => r.member_id))],
    next: rows.length < limit || !last ? null : `${last.at}|${last.member_id}`,
  };
}

interface DueAt {
  readonly member_id: string;
  /** expires_at as exact UTC text: a JS Date would drop its microseconds. */
  readonly at: string;
}

const utcText = sql`to_char(expires_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;

interface DueLot {
  readonly id: bigint;
  readonly member_id: string;
  readonly program_id: string;
  readonly issuing_brand_id: string;
  readonly remaining_pt4: bigint;
  readonly held_pt4: bigint;
  readonly state: 'pending' | 'available';
}

/** Expires everything due for the claimed members (re-read under their lock): one entry each. */
async function expireMembers(trx: Trx, member_ids: string[], as_of: Date, at: Date) {
  const due = await trx
    .selectFrom('lots')
    .select(['id', 'member_id', 'program_id', 'issuing_brand_id', 'remaining_pt4', 'held_pt4', 'state'])
    .where('member_id', 'in', member_ids)
    .where('expires_at', '<=', as_of)
    // `open` is implied by remaining > held (held is never negative) and lets the read use the
    // open lots' index instead of every lot the members ever had.
    .where(sql<boolean>`open`)
    .where(sql<boolean>`remaining_pt4 > held_pt4`)
    .orderBy('member_id')
    .orderBy('id')
    .execute();
  const entries: EntryInput[] = [];
  let points = 0n;
  for (const [member_id, lots] of groupBy(due as DueLot[], (l) => l.member_id)) {
    const e = expiryEntry(member_id, lots, as_of, at);
    entries.push(e.entry);
    points += e.points;
  }
  // One entry per member, posted for the whole page at once.
  await postEntries(trx, entries);
  return { lots: due.length, points, entries: entries.length };
}

/**
 * One member's expiry entry: a lot move per lot, and one posting per account (the member's
 * available or pending account, breakage per issuing brand) rather than two per lot. That is what
 * postEntries would merge them into anyway, and it keeps a member with many due lots under an
 * entry's posting limit.
 */
function expiryEntry(member_id: string, lots: readonly DueLot[], as_of: Date, at: Date) {
  const postings = new Map<string, { account: AccountRef; amount_pt4: bigint }>();
  const post = (account: AccountRef, amount: bigint) => {
    const key = accountKey(account);
    const p = postings.get(key);
    if (p) p.amount_pt4 += amount;
    else postings.set(key, { account, amount_pt4: amount });
  };
  const moves: LotMove[] = [];
  let points = 0n;
  for (const l of lots) {
    const x = l.remaining_pt4 - l.held_pt4;
    post(
      memberAccount(l.program_id, member_id, l.state === 'pending' ? 'member_pending' : 'member_available'),
      -x,
    );
    post(systemAccount(l.program_id, 'breakage', l.issuing_brand_id), x);
    moves.push({
      lot_id: l.id,
      program_id: l.program_id,
      member_id,
      issuing_brand_id: l.issuing_brand_id,
      kind: 'expire',
      points_pt4: x,
      remaining_delta_pt4: -x,
      held_delta_pt4: 0n,
      state_from: l.state,
    });
    points += x;
  }
  const entry: EntryInput = {
    kind: 'expiry',
    member_id,
    at,
    ref_type: 'job',
    ref_id: 'expire',
    detail: { as_of: as_of.toISOString(), lots: moves.length },
    postings: [...postings.values()],
    lot_moves: moves,
  };
  return { entry, points };
}
