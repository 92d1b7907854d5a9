// What the OpenAPI document says beyond each route's own schema, so a client generated from it
// knows every answer it can get. Applied in the document only (the swagger `transform`): adding
// a response schema to a route would also make Fastify serialize through it and drop fields.
// - operationId: from method and path (POST /v1/redemptions/:id/capture → postRedemptionsByIdCapture).
// - 400 for a route that validates a request, 401 and 403 for every route needing a key.
// - The success answer of routes whose body is described in CONTRACT.md rather than by a schema.

import { Type, type TSchema } from '@sinclair/typebox';
import type { RouteScope } from './auth.ts';

interface RouteLike {
  readonly method: string | readonly string[];
  readonly config?: unknown;
}

interface Transformed {
  schema: Record<string, unknown>;
  url: string;
}

const ErrorRef = (description: string): TSchema => Type.Ref('ErrorBody', { description });

const ok = (description: string) => Type.Object({}, { additionalProperties: true, description });

/** Success answers of routes without a response schema, by "METHOD url". */
const SUCCESS: Readonly<Record<string, Readonly<Record<number, TSchema>>>> = {
  'GET /metrics': { 200: Type.String({ description: 'Prometheus text exposition' }) },
  'GET /v1/config/versions': { 200: ok('The configuration versions, newest first') },
  'GET /v1/api-keys': { 200: ok('The API keys (never their secrets)') },
  'GET /v1/audit': { 200: ok('A page of audit records, newest first') },
  'POST /v1/events/batch': {
    200: ok('{ results }: one outcome per event, in order, each with its http_status as if sent alone'),
  },
  'POST /v1/events/simulate': { 200: ok('What the event would earn and why; nothing is written') },
  'GET /v1/rejections': { 200: ok('A page of rejected events with their code, field and payload') },
  'GET /v1/reviews': { 200: ok('A page of reversal shortfalls sent to review') },
  'GET /v1/members/:member_id': { 200: ok('The member, its enrollments and tiers') },
  'POST /v1/events': {
    201: ok('Accepted: the accruals per program (CONTRACT.md)'),
    200: ok('Duplicate: the original outcome of the same event (key, event id or order)'),
  },
  'POST /v1/redemptions': {
    201: ok('Captured or held: redemption_id, status, points, value, breakdown_by_program'),
    200: ok('Replay of the same idempotency key and body: the stored answer'),
  },
  'GET /v1/redemptions/:id': { 200: ok('The redemption: status, points, value and breakdown') },
  'POST /v1/redemptions/:id/capture': { 200: ok('The redemption, captured') },
  'POST /v1/redemptions/:id/release': { 200: ok('The redemption, released') },
  'POST /v1/redemptions/:id/reverse': { 200: ok('The redemption, reversed: points back in their lots') },
  'POST /v1/transfers': {
    201: ok('The transfer: what left the sender, what the receiver got, both balances'),
    200: ok('Replay of the same idempotency key and body: the stored answer'),
  },
  'POST /v1/rewards': { 201: ok('The reward created') },
  'GET /v1/rewards': { 200: ok('{ data: rewards }') },
  'GET /v1/rewards/:id': { 200: ok('The reward') },
  'PATCH /v1/rewards/:id': { 200: ok('The reward, changed') },
  'DELETE /v1/rewards/:id': { 200: ok('The reward, deactivated') },
  'POST /v1/jobs/:name/run': { 200: ok("The job's counts") },
  'GET /v1/settlement/periods/:id.csv': {
    200: Type.String({ description: 'The statement as CSV (text/csv): a line per pair, then the net lines' }),
  },
  'GET /v1/reports/liability': { 200: ok('Outstanding points and value per program and issuing brand') },
  'GET /v1/members/:member_id/activity': { 200: ok("A page of the member's ledger entries, newest first") },
  'GET /v1/members/:member_id/tiers': { 200: ok("The member's tier per program and its history") },
  'GET /v1/members/:member_id/statement': { 200: ok("The member's statement over the range") },
  'GET /v1/orders/:order_id/loyalty': { 200: ok('Everything the order earned and spent') },
  'POST /v1/adjustments': {
    201: ok('The adjustment posted'),
    200: ok('Replay of the same idempotency key and body: the stored answer'),
  },
  'GET /v1/adjustments/:id': { 200: ok('The adjustment') },
};

/** postRedemptionsByIdCapture for POST /v1/redemptions/:id/capture. */
export function operationIdOf(method: string, url: string): string {
  const words = url
    .split('/')
    .filter((s) => s !== '' && s !== 'v1')
    .flatMap((s) => s.split('.'))
    .map((s) => (s.startsWith(':') ? `by_${s.slice(1)}` : s))
    .flatMap((s) => s.split(/[_-]/))
    .filter((w) => w !== '');
  return [method.toLowerCase(), ...words.map((w) => w[0]!.toUpperCase() + w.slice(1))].join('');
}

export function openapiTransform({
  schema,
  url,
  route,
}: {
  schema: unknown;
  url: string;
  route: RouteLike;
}): Transformed {
  const s = { ...((schema ?? {}) as Record<string, unknown>) };
  const method = (Array.isArray(route.method) ? route.method[0] : route.method) as string;
  const scope = (route.config as { scope?: RouteScope } | undefined)?.scope ?? 'admin';
  s.operationId ??= operationIdOf(method, url);
  const response: Record<number, unknown> = { ...(s.response as Record<number, unknown> | undefined) };
  for (const [status, body] of Object.entries(SUCCESS[`${method} ${url}`] ?? {}))
    response[Number(status)] ??= body;
  if (!Object.keys(response).some((k) => k.startsWith('2'))) response[200] = ok('Success');
  if (s.params !== undefined || s.querystring !== undefined || s.body !== undefined)
    response[400] ??= ErrorRef(
      'INVALID_REQUEST: the request does not match its schema; details.field names where',
    );
  if (scope !== 'public') {
    response[401] ??= ErrorRef('UNAUTHENTICATED: no key, or a key that is unknown or revoked');
    response[403] ??= ErrorRef(
      "FORBIDDEN: the key's scope does not allow this call, or another brand's data",
    );
  }
  s.response = response;
  return { schema: s, url };
}
