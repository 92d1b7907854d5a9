import { sql, type Kysely } from 'kysely';

// Settlement periods, their immutable statements and the payments made against them.
//
// - A closed period is a row in settlement_periods; its flows carry its id in
//   settlement_flows.period_id. The statement's figures (per pair and net) are frozen in `lines`
//   and fingerprinted by `hash`; `verify` recomputes both from the flows.
// - Periods and payments are append-only (the same trigger function as the ledger's tables).
// - settlement_flows gains a guard: a flow's figures never change, and the only update allowed is
//   assigning a period once (null → id). A closed period therefore cannot be rewritten by SQL the
//   application issues; `verify` catches what an operator with DDL rights might still do.

export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table settlement_periods (
    id bigserial primary key,
    from_at timestamptz,
    to_at timestamptz not null unique,
    closed_at timestamptz not null,
    closed_by text,
    currency text not null,
    flow_count integer not null,
    hash text not null,
    lines jsonb not null,
    check (from_at is null or from_at < to_at)
  )`.execute(db);
  await sql`create table settlement_payments (
    id bigserial primary key,
    period_id bigint not null references settlement_periods (id),
    issuer_brand_id text not null,
    redeemer_brand_id text not null,
    amount_minor bigint not null check (amount_minor <> 0),
    currency text not null,
    reference text,
    paid_at timestamptz not null,
    recorded_at timestamptz not null,
    key_id text,
    check (issuer_brand_id <> redeemer_brand_id)
  )`.execute(db);
  await sql`create index settlement_payments_period on settlement_payments (period_id, id)`.execute(db);
  await sql`create index settlement_flows_period on settlement_flows (period_id, id)`.execute(db);
  await sql`create index settlement_flows_open on settlement_flows (at) where period_id is null`.execute(db);
  await sql`create index settlement_flows_redemption on settlement_flows (redemption_id, id)`.execute(db);
  await sql`create trigger settlement_periods_append_only before update or delete on settlement_periods
    for each row execute function pointpool_append_only()`.execute(db);
  await sql`create trigger settlement_payments_append_only before update or delete on settlement_payments
    for each row execute function pointpool_append_only()`.execute(db);
  await sql`create function pointpool_settlement_flow_guard() returns trigger language plpgsql as $$
begin
  if tg_op = 'DELETE' then
    raise exception 'pointpool: settlement flows are never deleted' using errcode = 'P0001';
  end if;
  if old.period_id is not null or new.period_id is null
     or (to_jsonb(new) - 'period_id') <> (to_jsonb(old) - 'period_id') then
    raise exception 'pointpool: a settlement flow only ever gets its period assigned, once' using errcode = 'P0001';
  end if;
  return new;
end $$`.execute(db);
  await sql`create trigger settlement_flows_guard before update or delete on settlement_flows
    for each row execute function pointpool_settlement_flow_guard()`.execute(db);
}
