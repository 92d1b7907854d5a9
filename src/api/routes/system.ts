import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { App } from '../app.ts';

export default async function systemRoutes(app: App): Promise<void> {
  app.get(
    '/healthz',
    {
      config: { scope: 'public' },
      schema: {
        tags: ['system'],
        summary: 'Liveness and store reachability',
        response: {
          200: Type.Object({
            status: Type.String(),
            store: Type.String(),
            config_version: Type.Union([Type.Integer(), Type.Null()]),
          }),
        },
      },
    },
    async () => {
      await sql`select 1`.execute(app.ctx.db);
      const group = await app.ctx.groups.current();
      return { status: 'ok', store: app.ctx.storeKind, config_version: group?.version ?? null };
    },
  );

  app.get(
    '/metrics',
    { config: { scope: 'public' }, schema: { tags: ['system'], summary: 'Prometheus metrics', hide: false } },
    async (_req, reply) => {
      reply.header('content-type', app.metrics.registry.contentType);
      return app.metrics.registry.metrics();
    },
  );
}
