import { AppError } from '../errors.ts';

// Keyset pagination over bigint ids, newest first. The cursor is opaque to callers.

export interface Page<T> {
  readonly data: T[];
  readonly next_cursor: string | null;
}

export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;

export const encodeCursor = (id: bigint): string => Buffer.from(`v1:${id}`).toString('base64url');

const INT8_MAX = 2n ** 63n - 1n;

export function decodeCursor(cursor: string): bigint {
  const raw = Buffer.from(cursor, 'base64url').toString();
  const m = /^v1:(\d{1,19})$/.exec(raw);
  // Ids are int8: a 19-digit number above its maximum names no row and would fail in the query.
  if (!m?.[1] || BigInt(m[1]) > INT8_MAX)
    throw new AppError('INVALID_CURSOR', undefined, { field: 'cursor' });
  return BigInt(m[1]);
}

/**
 * The page of a keyset query that fetched `limit + 1` rows newest first: the first `limit` rows,
 * mapped, and a cursor after the last one when the extra row shows there is more.
 */
export function toPage<R extends { id: bigint }, T>(
  rows: readonly R[],
  limit: number,
  map: (r: R) => T,
): Page<T> {
  const page = rows.slice(0, limit);
  const last = page[page.length - 1];
  return { data: page.map(map), next_cursor: rows.length > limit && last ? encodeCursor(last.id) : null };
}
