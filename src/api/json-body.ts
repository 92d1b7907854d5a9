import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';

// The JSON body parser. Stricter than JSON.parse on what the store cannot hold or the code cannot
// walk: NUL characters and lone UTF-16 surrogates (PostgreSQL's jsonb and text refuse them) and
// nesting deeper than MAX_DEPTH (recursive serialization would overflow the stack). Each is a
// 400 INVALID_JSON naming the problem, never a 500 from deep inside a transaction.

export const MAX_DEPTH = 64;

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Nesting depth of raw JSON text, counted outside strings, without parsing it. */
function depthExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 || c === 91) {
      if (++depth > max) return true;
    } else if (c === 125 || c === 93) depth--;
  }
  return false;
}

/** Walks the parsed value iteratively and returns the first unstorable string's path, if any. */
function badString(value: unknown): string | null {
  const stack: [unknown, string][] = [[value, '']];
  while (stack.length > 0) {
    const [v, path] = stack.pop()!;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return `${path || 'body'}: contains a NUL character`;
      if (LONE_SURROGATE.test(v)) return `${path || 'body'}: contains a lone UTF-16 surrogate`;
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => stack.push([x, `${path}[${i}]`]));
    } else if (typeof v === 'object' && v !== null) {
      for (const [k, x] of Object.entries(v)) {
        if (k.includes('\u0000') || LONE_SURROGATE.test(k))
          return `${path || 'body'}: a key contains an unstorable character`;
        stack.push([x, path ? `${path}.${k}` : k]);
      }
    }
  }
  return null;
}

export function parseJsonBody(text: string): unknown {
  if (depthExceeds(text, MAX_DEPTH))
    throw new AppError('INVALID_JSON', `JSON nested deeper than ${MAX_DEPTH} levels`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new AppError('INVALID_JSON', e instanceof Error ? e.message : 'The request body is not valid JSON');
  }
  const bad = badString(value);
  if (bad) throw new AppError('INVALID_JSON', bad, { field: bad.split(':')[0] });
  return value;
}

export function installJsonBody(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser(
    'application/json',
    { parseAs: 'string' },
    (_req: FastifyRequest, body: string | Buffer, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      // An empty body is no body: routes that need one say so (INVALID_REQUEST), others accept it.
      if (text.trim().length === 0) return done(null, undefined);
      try {
        done(null, parseJsonBody(text));
      } catch (e) {
        done(e as Error, undefined);
      }
    },
  );
}
