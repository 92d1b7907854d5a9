import { AppError } from '../errors.ts';

// Keyset pagination over bigint ids, newest first. The cursor is opaque to callers.

export interface Page<T> {
  readonly data: T[];
  readonly next_cursor: string | null;
}

export const MAX_PAGE_SIZE = 500;
export const DEFAULT_PAGE_SIZE = 50;

export const encodeCursor = (id: bigint): string => Buffer.from(`v1:${id}`).toString('base64url');

export function decodeCursor(cursor: string): bigint {
  const raw = Buffer.from(cursor, 'base64url').toString();
  const m = /^v1:(\d{1,19})$/.exec(raw);
  if (!m?.[1]) throw new AppError('INVALID_CURSOR', undefined, { field: 'cursor' });
  return BigInt(m[1]);
}
