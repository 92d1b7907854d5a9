import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, ERRORS, type ErrorCode } from '../errors.ts';

// Maps every error to the catalogue's body. Fastify's own errors (bad JSON, body too large,
// schema validation) become stable 4xx codes; anything unknown is a logged 500 that never
// echoes internals.

function send(reply: FastifyReply, code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
  return reply.status(ERRORS[code].status).send({ error: { code, message, details } });
}

function fromFastify(
  err: FastifyError,
): { code: ErrorCode; message: string; details: Record<string, unknown> } | null {
  if (err.validation) {
    const first = err.validation[0];
    const field = first
      ? `${err.validationContext ?? 'body'}${first.instancePath.replaceAll('/', '.')}` +
        (first.params && 'missingProperty' in first.params ? `.${String(first.params.missingProperty)}` : '')
      : undefined;
    return {
      code: 'INVALID_REQUEST',
      message: `${field ?? err.validationContext ?? 'request'}: ${first?.message ?? 'invalid'}`,
      details: {
        field,
        problems: err.validation
          .slice(0, 20)
          .map((v) => ({ path: v.instancePath, message: v.message, params: v.params })),
      },
    };
  }
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'INVALID_JSON', message: err.message, details: {} };
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'BODY_TOO_LARGE', message: err.message, details: {} };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'UNSUPPORTED_MEDIA_TYPE', message: err.message, details: {} };
  }
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message)))
    return { code: 'INVALID_JSON', message: err.message, details: {} };
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500)
    return { code: 'INVALID_REQUEST', message: err.message, details: {} };
  return null;
}

/**
 * Errors the router meets before any route or hook runs (Fastify's `frameworkErrors`): a path
 * that is not valid percent-encoding (FST_ERR_BAD_URL), a path segment over the router's length
 * limit (FST_ERR_MAX_PARAM_LENGTH). Answered from the catalogue like every other error.
 */
export function frameworkError(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  void send(reply, 'INVALID_REQUEST', err.message, { field: 'url', cause: err.code });
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof AppError) return send(reply, err.code, err.message, err.details);
    const mapped = fromFastify(err);
    if (mapped) return send(reply, mapped.code, mapped.message, mapped.details);
    // Values the database cannot represent (out-of-range numbers, unstorable text) can only come
    // from input that slipped past a schema: answer 400, and log it so the schema gets fixed.
    const pg = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : '';
    if (['22003', '22P02', '22021', '22P05', '54001'].includes(pg)) {
      req.log.warn({ err }, 'database refused a value from the request');
      return send(reply, 'INVALID_REQUEST', 'A value in the request is out of range or not representable', {
        db_code: pg,
      });
    }
    req.log.error({ err }, 'unhandled error');
    return send(reply, 'INTERNAL', 'Internal error; the request id in the logs has the cause', {
      request_id: req.id,
    });
  });
  app.setNotFoundHandler((req, reply) =>
    send(reply, 'ROUTE_NOT_FOUND', `No route ${req.method} ${req.url.split('?')[0]}`, { method: req.method }),
  );
}
