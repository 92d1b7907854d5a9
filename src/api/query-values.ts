// Query values arrive as text; the route's querystring schema says which are numbers or booleans.
// Validation runs with type coercion off (app.ts), because ajv's coercion also rewrote JSON
// bodies: `null` became 0 in an integer-or-null field (a reward's unlimited stock became none),
// "" became null (an empty date read as "no date"). So the query's own values are typed here, by
// the schema, strictly: a plain decimal for a number, `true` or `false` for a boolean. Anything
// else stays text and fails validation with the field named.

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)$/;

interface PropertySchema {
  readonly type?: unknown;
}

/** The query's values typed by its schema's properties (a new object; the input is not changed). */
export function typedQueryValues(
  schema: { readonly properties?: Readonly<Record<string, PropertySchema>> } | undefined,
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
