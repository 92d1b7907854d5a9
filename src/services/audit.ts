import type { Kysely } from 'kysely';
import type { DB } from '../store/schema.ts';
import { decodeCursor, toPage, type Page } from './paging.ts';

export interface AuditRecord {
  readonly at: Date;
  readonly key_id: string | null;
  readonly request_id: string | null;
  readonly method: string;
  readonly path: string;
  readonly action: string;
  readonly target: string | null;
  /** null for a write audited inside its own committed transaction (detail.outcome = committed). */
  readonly status_code: number | null;
  readonly detail: Record<string, unknown>;
}

export async function recordAudit(db: Kysely<DB>, r: AuditRecord): Promise<void> {
  await db
    .insertInto('audit_log')
    .values({ ...r, detail: JSON.stringify(r.detail) as never })
    .execute();
}

export interface AuditFilter {
  readonly key_id?: string | undefined;
  readonly action?: string | undefined;
  readonly target?: string | undefined;
  readonly from?: Date | undefined;
  readonly to?: Date | undefined;
  readonly cursor?: string | undefined;
  readonly limit: number;
}

export async function listAudit(db: Kysely<DB>, f: AuditFilter): Promise<Page<Record<string, unknown>>> {
  let q = db
    .selectFrom('audit_log')
    .selectAll()
    .orderBy('id', 'desc')
    .limit(f.limit + 1);
  if (f.key_id) q = q.where('key_id', '=', f.key_id);
  if (f.action) q = q.where('action', '=', f.action);
  if (f.target) q = q.where('target', '=', f.target);
  if (f.from) q = q.where('at', '>=', f.from);
  if (f.to) q = q.where('at', '<', f.to);
  if (f.cursor) q = q.where('id', '<', decodeCursor(f.cursor));
  const rows = await q.execute();
  return toPage(rows, f.limit, (r) => ({ ...r, id: r.id.toString(), at: r.at.toISOString() }));
}

/** Fills in the HTTP status of a row committed with its write (see audit-scope.ts). */
export async function setAuditStatus(db: Kysely<DB>, id: bigint, status_code: number): Promise<void> {
  await db.updateTable('audit_log').set({ status_code }).where('id', '=', id).execute();
}
