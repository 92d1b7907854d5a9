import { Type } from '@sinclair/typebox';
import { ConfigSchema } from '../../domain/config/schema.ts';
import { applyConfig, getConfigVersion, listConfigVersions } from '../../services/config.ts';
import { actorOf } from '../auth.ts';
import type { App } from '../app.ts';
import { errorResponses } from '../schemas.ts';

export default async function configRoutes(app: App): Promise<void> {
  // The body is validated whole by validateConfig (every problem with its JSON path), not by
  // Fastify's schema, which would stop at the first problem.
  app.put(
    '/v1/config',
    {
      config: { scope: 'admin', action: 'config.apply' },
      bodyLimit: 8 * 1024 * 1024,
      schema: {
        tags: ['config'],
        summary: 'Apply a new configuration version',
        description:
          'Validates the whole document (422 INVALID_CONFIG lists each problem with its JSON path; every CEL rule is compiled) and stores it as the next version.',
        body: Type.Unknown({ description: 'The group configuration document (see the Config schema)' }),
        response: {
          200: Type.Object({ version: Type.Integer() }),
          ...errorResponses('INVALID_CONFIG', 'INVALID_JSON', 'UNAUTHENTICATED', 'FORBIDDEN'),
        },
      },
    },
    async (req) => applyConfig(app.ctx, req.body, actorOf(req)),
  );

  app.get(
    '/v1/config',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['config'],
        summary: 'The configuration in force, or a given version',
        querystring: Type.Object({
          version: Type.Optional(Type.Integer({ minimum: 1, maximum: 2_147_483_647 })),
        }),
        response: {
          200: Type.Object({ version: Type.Integer(), created_at: Type.String(), config: ConfigSchema }),
          ...errorResponses('CONFIG_NOT_FOUND', 'NOT_FOUND'),
        },
      },
    },
    async (req) => {
      const v = await getConfigVersion(app.ctx.db, req.query.version);
      return { version: v.version, created_at: v.created_at.toISOString(), config: v.config };
    },
  );

  app.get(
    '/v1/config/versions',
    {
      config: { scope: 'read' },
      schema: { tags: ['config'], summary: 'Every stored configuration version, newest first' },
    },
    async () => ({
      versions: (await listConfigVersions(app.ctx.db)).map((v) => ({
        ...v,
        created_at: v.created_at.toISOString(),
      })),
    }),
  );
}
