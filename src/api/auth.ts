import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { AppError } from '../errors.ts';
import { authenticate, type ApiKey } from '../services/api-keys.ts';
import type { DB } from '../store/schema.ts';

// Route-level access: each route names the least scope it needs in `config.scope`.
// - public: no key (health, metrics, docs)
// - read:   any valid key (admin, read, brand:<id>)
// - brand:  admin or a brand key; the route then checks the brand it acts for (assertBrand)
// - admin:  admin only

export type RouteScope = 'public' | 'read' | 'brand' | 'admin';

declare module 'fastify' {
  interface FastifyContextConfig {
    scope?: RouteScope;
    action?: string;
  }
  interface FastifyRequest {
    apiKey: ApiKey | null;
  }
}

/**
 * Routes that take no key: unmatched ones (answered 404 by the not-found handler), the API
 * reference, and those whose scope is public (health, metrics, the OpenAPI document).
 */
export const isOpenRoute = (req: FastifyRequest): boolean =>
  !req.routeOptions.url ||
  req.routeOptions.url.startsWith('/docs') ||
  req.routeOptions.config.scope === 'public';

export function authHook(db: Kysely<DB>) {
  return async (req: FastifyRequest, _reply: FastifyReply): Promise<void> => {
    req.apiKey = null;
    if (isOpenRoute(req)) return;
    const scope = req.routeOptions.config.scope ?? 'admin';
    const header = req.headers.authorization;
    const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!m?.[1]) throw new AppError('UNAUTHENTICATED');
    const key = await authenticate(db, m[1]);
    if (!key) throw new AppError('UNAUTHENTICATED', 'The key is unknown or revoked');
    req.apiKey = key;
    const kind = key.parsed.kind;
    const allowed = kind === 'admin' || scope === 'read' || (scope === 'brand' && kind === 'brand');
    if (!allowed)
      throw new AppError(
        'FORBIDDEN',
        `This call needs scope ${scope === 'brand' ? 'brand:<id> or admin' : scope}`,
        { key_scope: key.scope },
      );
  };
}

/** A brand key may act only for its own brand; admin for any. */
export function assertBrand(req: FastifyRequest, brand_id: string): void {
  const key = req.apiKey;
  if (!key) throw new AppError('UNAUTHENTICATED');
  if (key.parsed.kind === 'admin') return;
  if (key.parsed.kind === 'brand' && key.parsed.brand_id === brand_id) return;
  throw new AppError('FORBIDDEN', `This key cannot act for brand ${brand_id}`, {
    brand_id,
    key_scope: key.scope,
  });
}

export const actorOf = (req: FastifyRequest) => ({
  key_id: req.apiKey?.id ?? null,
  request_id: String(req.id),
  brand_id: req.apiKey?.parsed.kind === 'brand' ? req.apiKey.parsed.brand_id : null,
});
