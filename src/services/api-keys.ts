import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { AppError } from '../errors.ts';
import type { DB } from '../store/schema.ts';
import type { Ctx } from './context.ts';

// API keys are stored as SHA-256 of the secret; the secret is shown once, at creation. A secret
// is 32 random bytes, so a fast hash is enough (no dictionary to guess from).

export type Scope = { kind: 'admin' } | { kind: 'read' } | { kind: 'brand'; brand_id: string };

export interface ApiKey {
  readonly id: string;
  readonly name: string;
  readonly scope: string;
  readonly parsed: Scope;
}

export const ENV_ADMIN_KEY_ID = 'key_env_admin';

export function parseScope(scope: string): Scope | null {
  if (scope === 'admin') return { kind: 'admin' };
  if (scope === 'read') return { kind: 'read' };
  const m = /^brand:([A-Za-z0-9][A-Za-z0-9_.:-]{0,63})$/.exec(scope);
  return m?.[1] ? { kind: 'brand', brand_id: m[1] } : null;
}

const hashSecret = (secret: string): string => createHash('sha256').update(secret).digest('hex');

/** The brand ids of the configuration in force; null before any is applied. */
export async function configuredBrands(ctx: Ctx): Promise<ReadonlySet<string> | null> {
  const group = await ctx.groups.current();
  return group ? new Set(group.brands.keys()) : null;
}

/**
 * Creates a key. A brand key must name a brand of the configuration in force (`brands`, null
 * when none is applied yet): a key for a mistyped brand would be refused on every call it makes.
 */
export async function createApiKey(
  db: Kysely<DB>,
  input: { name: string; scope: string },
  brands: ReadonlySet<string> | null,
  at: Date,
): Promise<{ id: string; secret: string; name: string; scope: string; created_at: string }> {
  const scope = parseScope(input.scope);
  if (!scope)
    throw new AppError('INVALID_REQUEST', 'scope must be admin, read or brand:<brand_id>', {
      field: 'scope',
    });
  if (scope.kind === 'brand' && !brands?.has(scope.brand_id))
    throw new AppError(
      'INVALID_REQUEST',
      brands
        ? `brand ${scope.brand_id} is not in the configuration (brands: ${[...brands].join(', ')})`
        : `brand ${scope.brand_id} is not in the configuration: none is applied yet; apply one first (PUT /v1/config, or pointpool apply <file>)`,
      { field: 'scope' },
    );
  const id = `key_${randomBytes(8).toString('hex')}`;
  const secret = `pp_${randomBytes(32).toString('base64url')}`;
  await db
    .insertInto('api_keys')
    .values({
      id,
      name: input.name,
      scope: input.scope,
      secret_hash: hashSecret(secret),
      created_at: at,
      revoked_at: null,
    })
    .execute();
  return { id, secret, name: input.name, scope: input.scope, created_at: at.toISOString() };
}

/** Makes `secret` the admin key named by POINTPOOL_ADMIN_KEY (replacing an earlier one). */
export async function bootstrapAdminKey(db: Kysely<DB>, secret: string, at: Date): Promise<void> {
  if (secret.length < 16)
    throw new Error(
      'POINTPOOL_ADMIN_KEY must be at least 16 characters; set a longer secret and start again',
    );
  keyCache.delete(db);
  await db
    .insertInto('api_keys')
    .values({
      id: ENV_ADMIN_KEY_ID,
      name: 'POINTPOOL_ADMIN_KEY',
      scope: 'admin',
      secret_hash: hashSecret(secret),
      created_at: at,
      revoked_at: null,
    })
    .onConflict((oc) => oc.column('id').doUpdateSet({ secret_hash: hashSecret(secret), revoked_at: null }))
    .execute();
}

// Every request authenticates, so valid keys are remembered briefly instead of costing a query
// each time. A revocation takes effect at once on this instance and within KEY_CACHE_MS on the
// others. Unknown secrets are never cached (no memory to fill by guessing).
const KEY_CACHE_MS = 5_000;
const KEY_CACHE_MAX = 10_000;
const keyCache = new WeakMap<object, Map<string, { key: ApiKey; until_ms: number }>>();

export async function authenticate(db: Kysely<DB>, secret: string): Promise<ApiKey | null> {
  if (secret.length < 16 || secret.length > 512) return null;
  const hash = hashSecret(secret);
  let cache = keyCache.get(db);
  if (!cache) keyCache.set(db, (cache = new Map()));
  const hit = cache.get(hash);
  if (hit && hit.until_ms > Date.now()) return hit.key;
  const key = await lookupKey(db, hash);
  if (key) {
    if (cache.size >= KEY_CACHE_MAX) cache.clear();
    cache.set(hash, { key, until_ms: Date.now() + KEY_CACHE_MS });
  } else cache.delete(hash);
  return key;
}

async function lookupKey(db: Kysely<DB>, hash: string): Promise<ApiKey | null> {
  const row = await db
    .selectFrom('api_keys')
    .selectAll()
    .where('secret_hash', '=', hash)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (!row || !timingSafeEqual(Buffer.from(row.secret_hash), Buffer.from(hash))) return null;
  const parsed = parseScope(row.scope);
  return parsed ? { id: row.id, name: row.name, scope: row.scope, parsed } : null;
}

export async function listApiKeys(db: Kysely<DB>) {
  const rows = await db
    .selectFrom('api_keys')
    .select(['id', 'name', 'scope', 'created_at', 'revoked_at'])
    .orderBy('created_at')
    .limit(1000)
    .execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    scope: r.scope,
    created_at: r.created_at.toISOString(),
    revoked_at: r.revoked_at?.toISOString() ?? null,
  }));
}

export async function revokeApiKey(db: Kysely<DB>, id: string, at: Date): Promise<void> {
  keyCache.delete(db);
  const res = await db
    .updateTable('api_keys')
    .set({ revoked_at: at })
    .where('id', '=', id)
    .where('revoked_at', 'is', null)
    .executeTakeFirst();
  if (res.numUpdatedRows === 0n) throw new AppError('NOT_FOUND', 'No such active key', { id });
}
