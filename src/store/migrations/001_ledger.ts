import { sql, type Kysely } from 'kysely';

// The ledger's schema. Invariants live here where SQL can hold them (DESIGN.md "Invariants"):
// - entries balance per program: a deferred constraint trigger checks each new entry at commit;
// - entries, postings and lot allocations are append-only: UPDATE/DELETE raise;
// - lots never go below zero nor above what they were awarded, holds never exceed what is left;
// - a member account never goes below its recorded floor (0, or a recorded reversal shortfall);
// - idempotency keys, purchase order ids and hold resolutions are unique.
// Amounts are bigint (points in 1/10,000 units, money in minor units): never a float.

// PGlite's extended protocol takes one statement per query, so statements run one by one.
async function run(db: Kysely<unknown>, script: string): Promise<void> {
  for (const stmt of script.split(/;\s*\n(?=\s*(?:--[^\n]*\n)?(?:create|alter|drop))/)) {
    if (stmt.trim()) await sql.raw(stmt).execute(db);
  }
}

export async function up(db: Kysely<unknown>): Promise<void> {
  await run(
    db,
    `
create table config_versions (
  version integer primary key,
  document jsonb not null,
  created_at timestamptz not null,
  created_by text
);

create table api_keys (
  id text primary key,
  name text not null,
  scope text not null,
  secret_hash text not null unique,
  created_at timestamptz not null,
  revoked_at timestamptz
);

create table audit_log (
  id bigserial primary key,
  at timestamptz not null,
  key_id text,
  request_id text,
  method text not null,
  path text not null,
  action text not null,
  target text,
  status_code integer not null,
  detail jsonb not null default '{}'
);
create index audit_log_key on audit_log (key_id, id);
create index audit_log_action on audit_log (action, id);

create table members (
  id text primary key,
  created_at timestamptz not null,
  referred_by text
);

create table enrollments (
  member_id text not null references members (id),
  program_id text not null,
  enrolled_at timestamptz not null,
  tier text,
  tier_since timestamptz,
  last_activity_at timestamptz not null,
  primary key (member_id, program_id)
);

create table accounts (
  id bigserial primary key,
  program_id text not null,
  kind text not null,
  owner_id text not null,
  balance_pt4 bigint not null default 0,
  floor_pt4 bigint not null default 0 check (floor_pt4 <= 0),
  unique (program_id, kind, owner_id),
  -- member accounts never go below their floor: 0, or a recorded reversal shortfall
  constraint member_balance_floor check (kind not like 'member_%' or balance_pt4 >= floor_pt4),
  constraint only_available_has_floor check (kind = 'member_available' or floor_pt4 = 0)
);
create index accounts_owner on accounts (owner_id, program_id);

create table entries (
  id bigserial primary key,
  kind text not null,
  member_id text,
  at timestamptz not null,
  event_id text,
  request_id text,
  key_id text,
  corrects_entry_id bigint references entries (id),
  ref_type text,
  ref_id text,
  detail jsonb not null default '{}'
);
create index entries_member on entries (member_id, id);
create index entries_ref on entries (ref_type, ref_id);

create table postings (
  id bigserial primary key,
  entry_id bigint not null references entries (id),
  account_id bigint not null references accounts (id),
  program_id text not null,
  amount_pt4 bigint not null check (amount_pt4 <> 0),
  at timestamptz not null
);
create index postings_entry on postings (entry_id);
create index postings_account_at on postings (account_id, at);

create table lots (
  id bigserial primary key,
  program_id text not null,
  member_id text not null,
  issuing_brand_id text not null,
  points_pt4 bigint not null check (points_pt4 > 0),
  remaining_pt4 bigint not null check (remaining_pt4 >= 0 and remaining_pt4 <= points_pt4),
  held_pt4 bigint not null default 0 check (held_pt4 >= 0 and held_pt4 <= remaining_pt4),
  state text not null check (state in ('pending', 'available')),
  awarded_at timestamptz not null,
  available_at timestamptz not null,
  expires_at timestamptz,
  source_entry_id bigint not null references entries (id),
  source_event_id text
);
create index lots_member_open on lots (member_id, program_id) where remaining_pt4 > 0;
create index lots_expiry_open on lots (expires_at) where remaining_pt4 > 0 and expires_at is not null;
create index lots_pending on lots (available_at) where state = 'pending' and remaining_pt4 > 0;
create index lots_source_event on lots (source_event_id);

create table lot_allocations (
  id bigserial primary key,
  entry_id bigint not null references entries (id),
  lot_id bigint not null references lots (id),
  program_id text not null,
  issuing_brand_id text not null,
  kind text not null,
  points_pt4 bigint not null check (points_pt4 > 0),
  value_common text
);
create index lot_allocations_entry on lot_allocations (entry_id);
create index lot_allocations_lot on lot_allocations (lot_id);

create table idempotency_keys (
  scope text not null,
  key text not null,
  request_hash text not null,
  status_code integer not null,
  response jsonb not null,
  created_at timestamptz not null,
  primary key (scope, key)
);

create table events (
  event_id text primary key,
  idempotency_key text not null unique,
  event_type text not null,
  member_id text not null,
  store_id text not null,
  brand_id text not null,
  channel text not null,
  order_id text,
  transaction_id text,
  transaction_ts timestamptz not null,
  reversal_of text,
  received_at timestamptz not null,
  request_hash text not null,
  payload jsonb not null,
  outcome jsonb not null,
  earn jsonb
);
-- BOPIS: one accrual per order per brand, whatever channel or key brings it
create unique index events_purchase_order on events (brand_id, order_id)
  where event_type = 'purchase_completed' and order_id is not null;
create index events_reversal_of on events (reversal_of) where reversal_of is not null;
create index events_member on events (member_id, transaction_ts);

create table rejections (
  id bigserial primary key,
  at timestamptz not null,
  code text not null,
  field text,
  message text not null,
  event_id text,
  store_id text,
  brand_id text,
  key_id text,
  payload jsonb
);
create index rejections_code on rejections (code, id);

create table reviews (
  id bigserial primary key,
  at timestamptz not null,
  kind text not null,
  member_id text not null,
  program_id text not null,
  points_pt4 bigint not null,
  entry_id bigint references entries (id),
  event_id text,
  status text not null default 'open',
  detail jsonb not null default '{}'
);

create table redemptions (
  id text primary key,
  member_id text not null,
  brand_id text not null,
  group_redemption boolean not null,
  program_id text,
  status text not null check (status in ('held', 'captured', 'released', 'expired', 'reversed')),
  points_pt4 bigint not null,
  order_id text,
  reward_id text,
  quantity integer,
  created_at timestamptz not null,
  hold_expires_at timestamptz,
  resolved_at timestamptz,
  entry_id bigint references entries (id),
  detail jsonb not null default '{}'
);
create index redemptions_hold_timeout on redemptions (hold_expires_at) where status = 'held';
create index redemptions_member on redemptions (member_id, created_at);

create table transfers (
  id text primary key,
  from_member_id text not null,
  to_member_id text not null,
  program_id text,
  group_transfer boolean not null,
  points_pt4 bigint not null,
  created_at timestamptz not null,
  entry_id bigint not null references entries (id)
);
create index transfers_from on transfers (from_member_id, created_at);

create table rewards (
  id text primary key,
  brand_id text not null,
  program_id text not null,
  name text not null,
  points_cost_pt4 bigint not null check (points_cost_pt4 > 0),
  stock integer check (stock >= 0),
  valid_from timestamptz,
  valid_to timestamptz,
  active boolean not null default true,
  created_at timestamptz not null,
  updated_at timestamptz not null
);

create table settlement_flows (
  id bigserial primary key,
  entry_id bigint not null references entries (id),
  redemption_id text not null,
  issuer_brand_id text not null,
  redeemer_brand_id text not null,
  program_id text not null,
  points_pt4 bigint not null,
  value_common text not null,
  amount_minor bigint not null,
  at timestamptz not null,
  period_id bigint
);
create index settlement_flows_at on settlement_flows (at);

create table referrals (
  referred_member_id text primary key,
  referrer_member_id text not null,
  event_id text not null,
  at timestamptz not null,
  rewarded_entry_id bigint references entries (id)
);
`,
  );

  await run(
    db,
    `
create function pointpool_append_only() returns trigger language plpgsql as $$
begin
  raise exception 'pointpool: % is append-only; post a correcting entry instead', tg_table_name
    using errcode = 'P0001';
end $$;

create trigger entries_append_only before update or delete on entries
  for each row execute function pointpool_append_only();
create trigger postings_append_only before update or delete on postings
  for each row execute function pointpool_append_only();
create trigger lot_allocations_append_only before update or delete on lot_allocations
  for each row execute function pointpool_append_only();

create function pointpool_entry_balances() returns trigger language plpgsql as $$
declare
  bad record;
begin
  select program_id, sum(amount_pt4) as total into bad
    from postings where entry_id = new.id
    group by program_id having sum(amount_pt4) <> 0 limit 1;
  if found then
    raise exception 'pointpool: entry % does not balance in program % (sum %)', new.id, bad.program_id, bad.total
      using errcode = 'P0002';
  end if;
  return null;
end $$;

create constraint trigger entries_balance after insert on entries
  deferrable initially deferred
  for each row execute function pointpool_entry_balances();
`,
  );
}
