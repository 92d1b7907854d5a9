import type { Kysely } from 'kysely';
import type { Clock } from '../clock.ts';
import type { Group } from '../domain/config/group.ts';
import type { StoreKind } from '../store/connect.ts';
import type { DB } from '../store/schema.ts';

/** Everything a use case needs, passed in explicitly: no hidden globals. */
export interface Ctx {
  readonly db: Kysely<DB>;
  readonly storeKind: StoreKind;
  readonly clock: Clock;
  readonly groups: GroupSource;
}

/** Who asks: carried into entries and the audit log. */
export interface Actor {
  readonly key_id: string | null;
  readonly request_id: string | null;
  /** The brand of a brand key: a rejected event that names no known store is kept under it. */
  readonly brand_id?: string | null;
}

export interface GroupSource {
  /** The configuration in force, or null before any has been applied. */
  current(): Promise<Group | null>;
  /** Forgets the cached version (after an apply). */
  invalidate(): void;
}
