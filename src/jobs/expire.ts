import { sql } from 'kysely';
import { pt4ToJson } from '../domain/points.ts';
import { memberAccount, systemAccount } from '../ledger/accounts.ts';
import type { LotMove, PostingInput } from '../ledger/entry.ts';
import { postEntries } from '../ledger/post.ts';
import type { EntryInput } from '../ledger/entry.ts';
import type { Ctx } from '../services/context.ts';
import { forEachMemberBatch, groupBy, stampAt, type JobProgress } from './batch.ts';

// expire: every lot whose expires_at <= as_of gives up its points not held by an open hold to
// breakage of its issuing brand. One entry per member and run, posted a page at a time; a lot is expired once because the
// second run finds nothing left in it.

/** Lots read per page, per member the page may claim. */
const LOTS_PER_MEMBER_PAGE = 5;

export async function runExpire(ctx: Ctx, as_of: Date, onProgress?: (p: JobProgress) => void) {
  let lots = 0;
  let points = 0n;
  let entryCount = 0;
  const { skipped_members } = await forEachMemberBatch(
    ctx,
    // Pages walk the open-expiry index in (expires_at, id) order rather than sorting every due
    // lot by member: each page costs what it reads, however many lots are due.
    async (after, limit) => {
      const [t, id] = after === null ? [null, null] : after.split('|');
      const rows = await sql<{
        id: bigint;
        member_id: string;
        expires_at: Date;
      }>`select id, member_id, expires_at from lots
        where remaining_pt4 > 0 and expires_at is not null and expires_at <= ${as_of} and remaining_pt4 > held_pt4
          ${t === null ? sql`` : sql`and (expires_at, id) > (${new Date(t)}::timestamptz, ${BigInt(id!)}::int8)`}
        order by expires_at, id limit ${limit * LOTS_PER_MEMBER_PAGE}`.execute(ctx.db);
      const last = rows.rows[rows.rows.length - 1];
      return {
        member_ids: [...new Set(rows.rows.map((r) => r.member_id))],
        next:
          rows.rows.length < limit * LOTS_PER_MEMBER_PAGE || !last
            ? null
            : `${last.expires_at.toISOString()}|${last.id}`,
      };
    },
    async (trx, member_ids) => {
      const due = await trx
        .selectFrom('lots')
        .select(['id', 'member_id', 'program_id', 'issuing_brand_id', 'remaining_pt4', 'held_pt4', 'state'])
        .where('member_id', 'in', member_ids)
        .where('expires_at', '<=', as_of)
        .where(sql<boolean>`remaining_pt4 > held_pt4`)
        .orderBy('member_id')
        .orderBy('id')
        .execute();
      const entries: EntryInput[] = [];
      for (const [member_id, memberLots] of groupBy(due, (l) => l.member_id)) {
        const postings: PostingInput[] = [];
        const moves: LotMove[] = [];
        for (const l of memberLots) {
          const x = l.remaining_pt4 - l.held_pt4;
          postings.push({
            account: memberAccount(
              l.program_id,
              member_id,
              l.state === 'pending' ? 'member_pending' : 'member_available',
            ),
            amount_pt4: -x,
          });
          postings.push({
            account: systemAccount(l.program_id, 'breakage', l.issuing_brand_id),
            amount_pt4: x,
          });
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
          lots++;
          points += x;
        }
        entries.push({
          kind: 'expiry',
          member_id,
          at: stampAt(ctx, as_of),
          ref_type: 'job',
          ref_id: 'expire',
          detail: { as_of: as_of.toISOString(), lots: moves.length },
          postings,
          lot_moves: moves,
        });
      }
      // One entry per member, posted for the whole page at once.
      await postEntries(trx, entries);
      entryCount += entries.length;
    },
    onProgress,
  );
  return {
    job: 'expire',
    as_of: as_of.toISOString(),
    lots_expired: lots,
    points_expired: pt4ToJson(points),
    entries: entryCount,
    skipped_members,
  };
}
