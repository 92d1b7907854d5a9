import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyRequest,
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import { randomUUID } from 'node:crypto';
import { AppError } from '../errors.ts';
import { recordAudit, setAuditStatus, type AuditRecord } from '../services/audit.ts';
import { runInAuditScope, type AuditScope } from '../services/audit-scope.ts';
import type { Ctx } from '../services/context.ts';
import { authHook } from './auth.ts';
import { frameworkError, installErrorHandling } from './error-handler.ts';
import { installInstantBounds } from './instant-bounds.ts';
import { installJsonBody } from './json-body.ts';
import { openapiTransform } from './openapi.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { refuseUnknownQuery, typedQueryValues, type QuerySchema } from './query-values.ts';
import { statsOf } from '../services/redemptions/shared.ts';
import { sharedEventStats } from '../services/events/shared-accrual.ts';
import { sharedReadStats } from '../services/balances-current.ts';
import adminRoutes from './routes/admin.ts';
import configRoutes from './routes/config.ts';
import eventRoutes from './routes/events.ts';
import jobRoutes from './routes/jobs.ts';
import lifecycleRoutes from './routes/lifecycle.ts';
import memberRoutes from './routes/members.ts';
import redemptionRoutes from './routes/redemptions.ts';
import settlementRoutes from './routes/settlement.ts';
import systemRoutes from './routes/system.ts';
import { ErrorBody } from './schemas.ts';

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
> & {
  ctx: Ctx;
  metrics: Metrics;
};

export interface AppOptions {
  readonly ctx: Ctx;
  /** pino options, or false to stay quiet (tests). */
  readonly logger?: boolean | Record<string, unknown>;
  /** Extra route plugins (later capabilities register here). */
  readonly routes?: readonly ((app: App) => Promise<void>)[];
}

export const BODY_LIMIT_BYTES = 1024 * 1024;

/** Who, when, which request and what: the audit row of a write, before its outcome is known. */
function auditRecord(app: App, req: FastifyRequest, action: string): Omit<AuditRecord, 'status_code'> {
  const params = (req.params ?? {}) as Record<string, unknown>;
  const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
  const target =
    [params.id, params.member_id, body.member_id, body.from_member_id]
      .find((v): v is string => typeof v === 'string')
      ?.slice(0, 200) ?? null;
  return {
    at: app.ctx.clock.now(),
    key_id: req.apiKey?.id ?? null,
    request_id: String(req.id),
    method: req.method,
    path: req.url.slice(0, 500),
    action,
    target,
    detail: {},
  };
}

/** Builds the HTTP app without listening; tests use app.inject() or listen on port 0. */
export async function buildApp(opts: AppOptions): Promise<App> {
  const fastify = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: BODY_LIMIT_BYTES,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && /^[A-Za-z0-9_.:-]{1,100}$/.test(given) ? given : randomUUID();
    },
    ajv: {
      // No type coercion: JSON bodies are taken as sent (query values are typed in preValidation).
      customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false },
    },
    return503OnClosing: true,
    routerOptions: { maxParamLength: 1000 },
    frameworkErrors: frameworkError,
  }).withTypeProvider<TypeBoxTypeProvider>();
  const app = fastify as unknown as App;
  app.decorate('ctx', opts.ctx);
  app.decorate(
    'metrics',
    createMetrics(
      () => statsOf(opts.ctx),
      () => sharedEventStats(opts.ctx),
      () => sharedReadStats(opts.ctx),
    ),
  );
  app.decorateRequest('apiKey', null);
  app.addSchema(ErrorBody);
  installErrorHandling(app);
  // JSON only: a text/plain body is refused with 415 rather than parsed as a string.
  app.removeContentTypeParser('text/plain');
  installJsonBody(app);

  await app.register(swagger, {
    openapi: {
      info: {
        title: 'pointpool',
        version: '1',
        description: 'Cross-brand loyalty points ledger. Errors: see the ErrorBody schema; codes are stable.',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: openapiTransform,
    // Shared schemas keep their $id as their name in components (ErrorBody, not def-0).
    refResolver: {
      buildLocalReference: (json: { $id?: unknown }, _base: unknown, _fragment: unknown, i: number) =>
        typeof json.$id === 'string' ? json.$id : `def-${i}`,
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  app.addHook('onRequest', async (req, reply) => {
    reply.header('x-request-id', req.id);
    // PostgreSQL text cannot hold NUL: a path or query carrying one is bad input, not a 500.
    if (/%00/i.test(req.url) || req.url.includes('\u0000'))
      throw new AppError('INVALID_REQUEST', 'The URL contains a NUL character', { field: 'url' });
  });
  // Query numbers are plain decimals: ajv would coerce "1e999" to Infinity and let it through.
  // The key is checked before the request is: a caller without a key, or without the scope, is
  // answered 401/403 whatever it sent (CONTRACT), learns nothing of the schemas, and a refused
  // write by a known key is audited with that key.
  app.addHook('preValidation', authHook(opts.ctx.db));
  app.addHook('preValidation', async (req) => {
    // Fastify hands an empty body to no parser at all: a write declaring JSON and sending nothing
    // is malformed JSON, as its own parser says (a GET carrying the header is fine).
    if (
      req.body === undefined &&
      ['POST', 'PUT', 'PATCH'].includes(req.method) &&
      /^application\/json/i.test(req.headers['content-type'] ?? '')
    ) {
      throw new AppError('INVALID_JSON', 'The body is empty but content-type says JSON');
    }
    for (const [k, v] of Object.entries((req.query ?? {}) as Record<string, unknown>)) {
      if (typeof v === 'string' && /^[+-]?(\d+\.?\d*|\.\d+)e[+-]?\d+$/i.test(v)) {
        throw new AppError('INVALID_REQUEST', `querystring.${k}: write numbers without an exponent`, {
          field: `querystring.${k}`,
        });
      }
    }
    // Only routes that declare a querystring have values to type (not the event and redemption writes).
    const querystring = req.routeOptions.schema?.querystring as QuerySchema | undefined;
    refuseUnknownQuery(req, querystring);
    if (querystring) req.query = typedQueryValues(querystring, (req.query ?? {}) as Record<string, unknown>);
  });
  // After auth, so a caller without a key learns nothing from the bound.
  installInstantBounds(app);
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched';
    app.metrics.requests.inc({ method: req.method, route, status: String(reply.statusCode) });
    app.metrics.duration.observe({ method: req.method, route }, reply.elapsedTime / 1000);
  });
  // Every write is audited, whatever its outcome: who, when, which request, what. The handler of
  // an audited route runs in an audit scope, so the row commits inside the command's own
  // transaction (audit-scope.ts); onSend writes it, with the status, for requests that
  // committed nothing. Either way it is written before the reply leaves.
  app.addHook('onRoute', (route) => {
    const action = route.config?.action;
    if (!action) return;
    const handler = route.handler;
    route.handler = function (this: unknown, req, reply) {
      const scope: AuditScope = { record: auditRecord(app, req, action), committed: false };
      (req as unknown as { auditScope: AuditScope }).auditScope = scope;
      return runInAuditScope(scope, () => handler.call(this as never, req, reply));
    };
  });
  app.addHook('onSend', async (req, reply, payload) => {
    const action = req.routeOptions.config.action;
    if (!action || !req.apiKey) return payload;
    const scope = (req as unknown as { auditScope?: AuditScope }).auditScope;
    if (scope?.committed) {
      if (scope.audit_id !== undefined && scope.status_code !== reply.statusCode) {
        await setAuditStatus(app.ctx.db, scope.audit_id, reply.statusCode).catch((err: unknown) =>
          req.log.error({ err }, 'audit status write failed'),
        );
      }
      return payload;
    }
    await recordAudit(app.ctx.db, {
      ...(scope?.record ?? auditRecord(app, req, action)),
      status_code: reply.statusCode,
    }).catch((err: unknown) => req.log.error({ err }, 'audit write failed'));
    return payload;
  });

  // OpenAPI is served by the app itself at /openapi.json (swagger-ui serves its own copy at /docs/json).
  app.get('/openapi.json', { config: { scope: 'public' }, schema: { hide: true } }, async () =>
    app.swagger(),
  );

  // Route modules are plain functions over the root instance (no encapsulation needed: they share
  // the auth hook, error handler and decorations).
  for (const routes of [
    systemRoutes,
    configRoutes,
    adminRoutes,
    memberRoutes,
    eventRoutes,
    redemptionRoutes,
    jobRoutes,
    settlementRoutes,
    lifecycleRoutes,
    ...(opts.routes ?? []),
  ])
    await routes(app);
  return app;
}
