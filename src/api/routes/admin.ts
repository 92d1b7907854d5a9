import { Type } from '@sinclair/typebox';
import { configuredBrands, createApiKey, listApiKeys, revokeApiKey } from '../../services/api-keys.ts';
import { listAudit } from '../../services/audit.ts';
import { DEFAULT_PAGE_SIZE } from '../../services/paging.ts';
import { verifyLedger } from '../../services/verify.ts';
import type { App } from '../app.ts';
import { errorResponses, PageQuery, Timestamp } from '../schemas.ts';

export default async function adminRoutes(app: App): Promise<void> {
  app.post(
    '/v1/api-keys',
    {
      config: { scope: 'admin', action: 'api_key.create' },
      schema: {
        tags: ['admin'],
        summary: 'Create an API key; its secret is shown once',
        body: Type.Object(
          {
            name: Type.String({ minLength: 1, maxLength: 200 }),
            scope: Type.String({ pattern: '^(admin|read|brand:[A-Za-z0-9][A-Za-z0-9_.:-]{0,63})$' }),
          },
          { additionalProperties: false },
        ),
        response: {
          201: Type.Object({
            id: Type.String(),
            secret: Type.String(),
            name: Type.String(),
            scope: Type.String(),
            created_at: Type.String(),
          }),
          ...errorResponses('INVALID_REQUEST'),
        },
      },
    },
    async (req, reply) =>
      reply
        .status(201)
        .send(await createApiKey(app.ctx.db, req.body, await configuredBrands(app.ctx), app.ctx.clock.now())),
  );

  app.get(
    '/v1/api-keys',
    {
      config: { scope: 'admin' },
      schema: { tags: ['admin'], summary: 'List API keys (never their secrets)' },
    },
    async () => ({ data: await listApiKeys(app.ctx.db) }),
  );

  app.delete(
    '/v1/api-keys/:id',
    {
      config: { scope: 'admin', action: 'api_key.revoke' },
      schema: {
        tags: ['admin'],
        summary: 'Revoke an API key',
        params: Type.Object({ id: Type.String({ maxLength: 100 }) }),
        response: {
          200: Type.Object({ id: Type.String(), revoked: Type.Boolean() }),
          ...errorResponses('NOT_FOUND'),
        },
      },
    },
    async (req) => {
      await revokeApiKey(app.ctx.db, req.params.id, app.ctx.clock.now());
      return { id: req.params.id, revoked: true };
    },
  );

  app.get(
    '/v1/audit',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['admin'],
        summary: 'The audit log of every write, newest first',
        querystring: Type.Object({
          ...PageQuery,
          key_id: Type.Optional(Type.String({ maxLength: 100 })),
          action: Type.Optional(Type.String({ maxLength: 100 })),
          target: Type.Optional(Type.String({ maxLength: 200 })),
          from: Type.Optional(Timestamp),
          to: Type.Optional(Timestamp),
        }),
      },
    },
    async (req) => {
      const q = req.query;
      return listAudit(app.ctx.db, {
        ...q,
        from: q.from ? new Date(q.from) : undefined,
        to: q.to ? new Date(q.to) : undefined,
        limit: q.limit ?? DEFAULT_PAGE_SIZE,
      });
    },
  );

  app.get(
    '/v1/ledger/verify',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['integrity'],
        summary: 'Check every ledger invariant over the whole store',
        response: {
          200: Type.Object({
            ok: Type.Boolean(),
            checks: Type.Array(
              Type.Object({ name: Type.String(), ok: Type.Boolean(), detail: Type.String() }),
            ),
          }),
        },
      },
    },
    async () => verifyLedger(app.ctx.db),
  );
}
