import type { FastifyInstance, FastifyRequest } from 'fastify';
import { EARLIEST_INSTANT, EARLIEST_INSTANT_MS } from '../domain/timestamp.ts';
import { AppError } from '../errors.ts';

// The earliest instant any request may name (as_of, from, to, paid_at …) is EARLIEST_INSTANT
// (domain/timestamp.ts); before this bound year 0000 reached PostgreSQL and failed with a 500
// ("date/time field value out of range"). One bound for every endpoint, checked here against each
// route's schema, so no route can forget it: every top-level `date-time` field of a querystring
// or body, after schema validation.

interface SchemaNode {
  readonly format?: string;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly anyOf?: readonly SchemaNode[];
  readonly oneOf?: readonly SchemaNode[];
}

const isInstant = (s: SchemaNode | undefined): boolean =>
  s !== undefined &&
  (s.format === 'date-time' || [...(s.anyOf ?? []), ...(s.oneOf ?? [])].some((x) => isInstant(x)));

/** The names of a request schema's top-level instant fields. */
function instantFields(schema: unknown): string[] {
  const props = (schema as SchemaNode | undefined)?.properties ?? {};
  return Object.entries(props).flatMap(([name, s]) => (isInstant(s) ? [name] : []));
}

function check(where: 'querystring' | 'body', fields: readonly string[], values: unknown): void {
  if (fields.length === 0 || typeof values !== 'object' || values === null) return;
  for (const name of fields) {
    const v = (values as Record<string, unknown>)[name];
    if (typeof v !== 'string') continue;
    const ms = Date.parse(v);
    if (!(ms >= EARLIEST_INSTANT_MS))
      throw new AppError('INVALID_REQUEST', `${where}.${name}: must be ${EARLIEST_INSTANT} or later`, {
        field: `${where}.${name}`,
        earliest: EARLIEST_INSTANT,
      });
  }
}

/** Refuses, with 400 INVALID_REQUEST naming the field, any request instant before the bound. */
export function installInstantBounds(app: FastifyInstance): void {
  const byRoute = new WeakMap<object, { query: string[]; body: string[] }>();
  const fieldsOf = (req: FastifyRequest) => {
    const schema = req.routeOptions.schema;
    if (!schema) return null;
    let f = byRoute.get(schema);
    if (!f) {
      f = { query: instantFields(schema.querystring), body: instantFields(schema.body) };
      byRoute.set(schema, f);
    }
    return f;
  };
  app.addHook('preHandler', async (req) => {
    const f = fieldsOf(req);
    if (!f) return;
    check('querystring', f.query, req.query);
    check('body', f.body, req.body);
  });
}
