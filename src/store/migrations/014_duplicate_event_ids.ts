import { sql, type Kysely } from 'kysely';

// An event answered as a duplicate (a BOPIS order's second purchase event, say) is not an events
// row: its id lives only in its key's stored answer, {event_id, body: {duplicate_of}}. A till
// that later voids or refunds the sale names its own event id, so a reversal looks the id up
// there when no purchase has it (services/events/reverse.ts). Partial: only event keys answered
// 200 hold duplicates (an accepted event's key keeps status 0 and its events row answers).

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create index idempotency_keys_duplicate_event on idempotency_keys ((response ->> 'event_id'))
    where scope = 'event' and status_code = 200`.execute(db);
}
