import { sql } from 'kysely';
import type { Ctx } from '../services/context.ts';
import { requireGroup } from '../services/config.ts';
import { applyResolution } from '../services/redemptions/resolve.ts';
import { byMemberId, forEachMemberBatch, stampAt, type JobProgress } from './batch.ts';

// release-holds: holds past their timeout are released (status expired), exactly once: the
// status moves by a conditional update under the member's lock.

export async function runReleaseHolds(ctx: Ctx, as_of: Date, onProgress?: (p: JobProgress) => void) {
  const group = await requireGroup(ctx);
  let released = 0;
  const { skipped_members } = await forEachMemberBatch(
    ctx,
    async (after, limit) => {
      const rows = await sql<{ member_id: string }>`select distinct member_id from redemptions
        where status = 'held' and hold_expires_at <= ${as_of}
          ${after === null ? sql`` : sql`and member_id > ${after}`}
        order by member_id limit ${limit}`.execute(ctx.db);
      return byMemberId(
        rows.rows.map((r) => r.member_id),
        limit,
      );
    },
    async (trx, member_ids) => {
      const due = await trx
        .selectFrom('redemptions')
        .selectAll()
        .where('member_id', 'in', member_ids)
        .where('status', '=', 'held')
        .where('hold_expires_at', '<=', as_of)
        .orderBy('id')
        .execute();
      for (const r of due) {
        await applyResolution(trx, group, r, 'expire', stampAt(ctx, as_of), {
          key_id: null,
          request_id: 'job:release-holds',
        });
        released++;
      }
    },
    onProgress,
  );
  return { job: 'release-holds', as_of: as_of.toISOString(), holds_released: released, skipped_members };
}
