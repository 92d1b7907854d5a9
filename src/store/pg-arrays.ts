// A column of a set-based statement as one PostgreSQL array literal ('{"a","b",NULL}'), sent as a
// single text parameter and cast in SQL ($1::text[], unnest(...)). A 1,000-row insert then has a
// handful of parameters instead of one per value: far less to build here (no query-builder node
// per value) and to parse in the server (no 1,000-row VALUES list). Every parameter stays a plain
// string, so such a statement can still travel as a deferred write (store/write-behind.ts inlines
// strings, not arrays). Lives in the store layer: any set-based statement may use it.

const SPECIAL = /["\\]/;
const SPECIALS = /["\\]/g;

/** text[]: every element quoted, `"` and `\` escaped; null is NULL. */
export function textArray(values: readonly (string | null)[]): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    parts[i] =
      v === null || v === undefined
        ? 'NULL'
        : SPECIAL.test(v)
          ? `"${v.replace(SPECIALS, '\\$&')}"`
          : `"${v}"`;
  }
  return `{${parts.join(',')}}`;
}

/** int8[] (or int4[]): integers as decimal text; null is NULL. */
export function intArray(values: readonly (bigint | number | null)[]): string {
  const parts = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts[i] = 'NULL';
    else if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`intArray: ${v}`);
    else parts[i] = String(v);
  }
  return `{${parts.join(',')}}`;
}

/** timestamptz[] from epoch milliseconds: ISO-8601 UTC text, exact to the millisecond. */
export function timestampArray(values: readonly (number | null)[]): string {
  const parts = new Array<string>(values.length);
  // Neighbours often share an instant (one purchase's programs): format it once.
  let lastMs = NaN;
  let last = '';
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === null || v === undefined) parts[i] = 'NULL';
    else {
      if (v !== lastMs) {
        lastMs = v;
        last = `"${new Date(v).toISOString()}"`;
      }
      parts[i] = last;
    }
  }
  return `{${parts.join(',')}}`;
}
