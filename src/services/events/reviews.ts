import type { Kysely } from 'kysely';
import { pt4ToJson } from '../../domain/points.ts';
import type { DB } from '../../store/schema.ts';
import { decodeCursor, toPage, type Page } from '../paging.ts';

// Review items: a reversal shortfall above the program's absorb limit leaves a recorded negative
// balance and an open item here; accruals that pay the debt back to zero resolve it.

export interface ReviewFilter {
  readonly status?: string | undefined;
  readonly member_id?: string | undefined;
  readonly program_id?: string | undefined;
  readonly kind?: string | undefined;
  /** Only items in these programs (a brand key sees its brand's program and the default one). */
  readonly program_ids?: readonly string[] | undefined;
  readonly cursor?: string | undefined;
  readonly limit: number;
}

export async function listReviews(db: Kysely<DB>, f: ReviewFilter): Promise<Page<Record<string, unknown>>> {
  let q = db
    .selectFrom('reviews')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(f.limit + 1);
  if (f.status) q = q.where('status', '=', f.status);
  if (f.member_id) q = q.where('member_id', '=', f.member_id);
  if (f.program_id) q = q.where('program_id', '=', f.program_id);
  if (f.kind) q = q.where('kind', '=', f.kind);
  if (f.program_ids) {
    if (f.program_ids.length === 0) return { data: [], next_cursor: null };
    q = q.where('program_id', 'in', [...f.program_ids]);
  }
  if (f.cursor) q = q.where('id', '<', decodeCursor(f.cursor));
  const rows = await q.execute();
  return toPage(rows, f.limit, (r) => ({
    id: r.id.toString(),
    at: r.at.toISOString(),
    kind: r.kind,
    status: r.status,
    member_id: r.member_id,
    program_id: r.program_id,
    points: pt4ToJson(r.points_pt4),
    entry_id: r.entry_id?.toString() ?? null,
    event_id: r.event_id,
    detail: r.detail,
  }));
}
