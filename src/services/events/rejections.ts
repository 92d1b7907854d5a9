import type { Kysely } from 'kysely';
import type { EventProblem } from '../../domain/events/canonical.ts';
import { payloadIds } from '../../domain/events/canonical.ts';
import type { DB } from '../../store/schema.ts';
import { decodeCursor, toPage, type Page } from '../paging.ts';

const MAX_KEPT_PAYLOAD_BYTES = 64 * 1024;

/** Keeps a rejected event with its payload and reason (outside the rolled-back transaction). */
export async function recordRejection(
  db: Kysely<DB>,
  r: { at: Date; problem: EventProblem; payload: unknown; brand_id: string | null; key_id: string | null },
): Promise<bigint> {
  const ids = payloadIds(r.payload);
  let payload: unknown = r.payload;
  const text = JSON.stringify(payload) ?? 'null';
  // A hostile payload is kept, but bounded: its head and size, not megabytes.
  if (text.length > MAX_KEPT_PAYLOAD_BYTES)
    payload = { truncated: true, bytes: text.length, head: text.slice(0, 2048) };
  const row = await db
    .insertInto('rejections')
    .values({
      at: r.at,
      code: r.problem.code,
      field: r.problem.field,
      message: r.problem.message.slice(0, 1000),
      event_id: ids.event_id,
      store_id: ids.store_id,
      brand_id: r.brand_id,
      key_id: r.key_id,
      payload: JSON.stringify(
        typeof payload === 'object' && payload !== null ? payload : { value: payload },
      ) as never,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return row.id;
}

export interface RejectionFilter {
  readonly code?: string | undefined;
  readonly store_id?: string | undefined;
  readonly brand_id?: string | undefined;
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
  readonly cursor?: string | undefined;
  readonly limit: number;
}

export async function listRejections(
  db: Kysely<DB>,
  f: RejectionFilter,
): Promise<Page<Record<string, unknown>>> {
  let q = db
    .selectFrom('rejections')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(f.limit + 1);
  if (f.code) q = q.where('code', '=', f.code);
  if (f.store_id) q = q.where('store_id', '=', f.store_id);
  if (f.brand_id) q = q.where('brand_id', '=', f.brand_id);
  if (f.from) q = q.where('at', '>=', f.from);
  if (f.to) q = q.where('at', '<', f.to);
  if (f.cursor) q = q.where('id', '<', decodeCursor(f.cursor));
  const rows = await q.execute();
  return toPage(rows, f.limit, (r) => ({ ...r, id: r.id.toString(), at: r.at.toISOString() }));
}
