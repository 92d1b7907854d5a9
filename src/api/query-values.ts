import type { FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';
import { isOpenRoute } from './auth.ts';

// Query values arrive as text; the route's querystring schema says which are numbers or booleans.
// Validation runs with type coercion off (app.ts), because ajv's coercion also rewrote JSON
// bodies: `null` became 0 in an integer-or-null field (a reward's unlimited stock became none),
// "" became null (an empty date read as "no date"). So the query's own values are typed here, by
// the schema, strictly: a plain decimal for a number, `true` or `false` for a boolean. Anything
// else stays text and fails validation with the field named. A parameter the schema does not
// name is refused (refuseUnknownQuery).

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)$/;

interface PropertySchema {
  readonly type?: unknown;
}

/** A route's querystring schema, as far as the query's values are read by it. */
export interface QuerySchema {
  readonly properties?: Readonly<Record<string, PropertySchema>>;
}

/**
 * A query parameter the route does not read is refused, not ignored: `?asof=…` for `?as_of=…`
 * would otherwise answer as of now, and look like an answer to the question asked.
 */
export function refuseUnknownQuery(req: FastifyRequest, schema: QuerySchema | undefined): void {
  if (isOpenRoute(req)) return;
  const known = Object.keys(schema?.properties ?? {});
  const unknown = Object.keys((req.query ?? {}) as Record<string, unknown>).find((k) => !known.includes(k));
  if (unknown === undefined) return;
  throw new AppError(
    'INVALID_REQUEST',
    `querystring.${unknown}: not a parameter of ${req.method} ${req.routeOptions.url}` +
      (known.length > 0 ? ` (it takes ${known.join(', ')})` : ' (it takes none)'),
    { field: `querystring.${unknown}` },
  );
}

/** The query's values typed by its schema's properties (a new object; the input is not changed). */
export function typedQueryValues(
  schema: QuerySchema | undefined,
  query: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...query };
  const properties = schema?.properties;
  if (!properties) return out;
  for (const [k, v] of Object.entries(query)) {
    if (typeof v !== 'string' || !Object.hasOwn(properties, k)) continue;
    const type = properties[k]!.type;
    if ((type === 'integer' || type === 'number') && DECIMAL.test(v)) out[k] = Number(v);
    else if (type === 'boolean' && (v === 'true' || v === 'false')) out[k] = v === 'true';
  }
  return out;
}
