import { createHash } from 'node:crypto';
import { canonicalJson } from '../domain/events/canonical.ts';
import { AppError } from '../errors.ts';
import type { Trx } from '../ledger/post.ts';
import { deferWrite } from '../store/write-behind.ts';

// Idempotent writes other than events (redemptions, transfers, adjustments): the key is claimed
// in the command's own transaction, so it takes effect exactly when the command does. The same
// key with the same body answers the stored outcome (200, replayed: true); with another body 409.

export interface Replay {
  readonly http_status: 200;
  readonly body: Record<string, unknown>;
}

export const requestHash = (body: unknown): string =>
  createHash('sha256').update(canonicalJson(body)).digest('hex');

/**
 * Claims (scope, key) with `initial` as its provisional response, or returns the response stored
 * under the key by the earlier request with the same body; another body is 409.
 */
export async function claimOrPrior(
  trx: Trx,
  scope: string,
  key: string,
  hash: string,
  now: Date,
  initial: Record<string, unknown> = {},
): Promise<Record<string, unknown> | null> {
  const claimed = await claimQuery(trx, scope, key, hash, now, initial).execute();
  return priorUnlessClaimed(trx, scope, key, hash, claimed);
}

/** The claim itself (a conditional insert answering the key when it was free), to send with others. */
export function claimQuery(
  trx: Trx,
  scope: string,
  key: string,
  hash: string,
  now: Date,
  initial: Record<string, unknown> = {},
) {
  return claimWithAnswersQuery(trx, scope, [{ key, hash, status: 0, response: initial, at: now }])
    .onConflict((oc) => oc.columns(['scope', 'key']).doNothing())
    .returning('key');
}

/**
 * Claims keys with the responses stored under them (status 0: provisional). As it is, a plain
 * insert: for keys read as free in the same transaction (priorsQuery), a concurrent claim of any
 * of them fails it with a unique violation rather than passing silently.
 */
export function claimWithAnswersQuery(
  trx: Trx,
  scope: string,
  rows: readonly { key: string; hash: string; status: number; response: unknown; at: Date }[],
) {
  return trx.insertInto('idempotency_keys').values(
    rows.map((r) => ({
      scope,
      key: r.key,
      request_hash: r.hash,
      status_code: r.status,
      response: JSON.stringify(r.response) as never,
      created_at: r.at,
    })),
  );
}

/** The keys of a scope already used, with their request hash and stored answer. */
export function priorsQuery(trx: Trx, scope: string, keys: readonly string[]) {
  return trx
    .selectFrom('idempotency_keys')
    .select(['key', 'request_hash', 'response'])
    .where('scope', '=', scope)
    .where('key', 'in', keys);
}

/** After claimQuery: null when it claimed the key, else as claimOrPrior. */
export async function priorUnlessClaimed(
  trx: Trx,
  scope: string,
  key: string,
  hash: string,
  claimed: readonly unknown[],
): Promise<Record<string, unknown> | null> {
  if (claimed.length > 0) return null;
  const prior = await trx
    .selectFrom('idempotency_keys')
    .selectAll()
    .where('scope', '=', scope)
    .where('key', '=', key)
    .executeTakeFirstOrThrow();
  return priorAnswer(prior, key, hash);
}

/** The answer stored under a used key, to replay: only to the same request (else 409). */
export function priorAnswer(
  prior: { request_hash: string; response: Record<string, unknown> },
  key: string,
  hash: string,
): Record<string, unknown> {
  if (prior.request_hash !== hash) {
    throw new AppError('IDEMPOTENCY_KEY_REUSED', `idempotency_key ${key} was used with a different request`, {
      field: 'idempotency_key',
    });
  }
  return prior.response;
}

/** Claims (scope, key) or returns the earlier outcome to replay. */
export async function claimIdempotencyKey(
  trx: Trx,
  scope: string,
  key: string,
  hash: string,
  now: Date,
): Promise<Replay | null> {
  const prior = await claimOrPrior(trx, scope, key, hash, now);
  return prior ? { http_status: 200, body: { ...prior, replayed: true } } : null;
}

/** Stores the outcome under the claimed key, in the same transaction. */
export async function storeOutcome(
  trx: Trx,
  scope: string,
  key: string,
  status: number,
  body: Record<string, unknown>,
): Promise<void> {
  await deferWrite(
    trx,
    trx
      .updateTable('idempotency_keys')
      .set({ status_code: status, response: JSON.stringify(body) as never })
      .where('scope', '=', scope)
      .where('key', '=', key),
  );
}
