import { sql } from 'kysely';
import type { Trx } from '../../ledger/post.ts';

// What an event's idempotency key answers when the event is sent again. The claim stores
// {event_id} with status 0. An accepted event leaves it so: its events row, recorded under the key
// in the same transaction, holds the answer (its outcome, stored once; the service never rewrites
// it), which spares every accepted event a second version of its key row. Any other outcome (a
// duplicate) is written into the key itself. A rejected event rolls its claim back. So a committed
// key of status 0 always has its events row; verify checks it (event_keys_answered).

export interface EventKeyAnswer {
  readonly request_hash: string;
  /** {event_id, body}: the first answer's body. */
  readonly response: Record<string, unknown>;
}

/** The answer stored for an event key already claimed and committed. */
export async function eventKeyAnswer(trx: Trx, key: string): Promise<EventKeyAnswer> {
  const row = (
    await sql<{
      request_hash: string;
      status_code: number;
      response: Record<string, unknown>;
      outcome: Record<string, unknown> | null;
    }>`
      select k.request_hash, k.status_code, k.response, e.outcome
      from idempotency_keys k
      left join events e on e.idempotency_key = k.key and e.event_id = k.response ->> 'event_id'
      where k.scope = 'event' and k.key = ${key}`.execute(trx)
  ).rows[0];
  if (!row) throw new Error(`event key ${key} was claimed but is not there`);
  if (row.status_code !== 0) return row;
  if (!row.outcome) throw new Error(`event key ${key} has no answer and no event recorded under it`);
  return { request_hash: row.request_hash, response: { ...row.response, body: row.outcome } };
}
