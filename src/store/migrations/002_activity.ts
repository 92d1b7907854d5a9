import { sql, type Kysely } from 'kysely';

// Tier qualification reads a member's activity per program over a window, and rules read the
// tier in force at an event's transaction time: both need history, kept here append-only.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table program_activity (
    id bigserial primary key,
    member_id text not null,
    program_id text not null,
    at timestamptz not null,
    spend_minor bigint not null,
    points_pt4 bigint not null,
    event_id text not null,
    entry_id bigint references entries (id)
  )`.execute(db);
  await sql`create index program_activity_member on program_activity (member_id, program_id, at)`.execute(db);
  await sql`create table tier_history (
    id bigserial primary key,
    member_id text not null,
    program_id text not null,
    tier text,
    from_at timestamptz not null,
    recorded_at timestamptz not null,
    reason text not null
  )`.execute(db);
  await sql`create index tier_history_member on tier_history (member_id, program_id, from_at)`.execute(db);
}
