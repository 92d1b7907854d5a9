import type { ColumnType, Generated, GeneratedAlways, JSONColumnType } from 'kysely';

// Row types of the tables created in migrations/. Ids from bigserial come back as bigint
// (int8 is parsed to BigInt, see connect.ts); timestamps as Date.

type Json = JSONColumnType<Record<string, unknown>, Record<string, unknown>, Record<string, unknown>>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;

export interface ConfigVersionsTable {
  version: number;
  document: Json;
  created_at: Timestamp;
  created_by: string | null;
}

export interface ApiKeysTable {
  id: string;
  name: string;
  scope: string;
  secret_hash: string;
  created_at: Timestamp;
  revoked_at: Timestamp | null;
}

export interface AuditLogTable {
  id: Generated<bigint>;
  at: Timestamp;
  key_id: string | null;
  request_id: string | null;
  method: string;
  path: string;
  action: string;
  target: string | null;
  status_code: number | null;
  detail: Json;
}

export interface MembersTable {
  id: string;
  created_at: Timestamp;
  referred_by: string | null;
}

export interface EnrollmentsTable {
  member_id: string;
  program_id: string;
  enrolled_at: Timestamp;
  tier: string | null;
  tier_since: Timestamp | null;
  last_activity_at: Timestamp;
}

export interface AccountsTable {
  id: Generated<bigint>;
  program_id: string;
  kind: string;
  owner_id: string;
  balance_pt4: Generated<bigint>;
  floor_pt4: Generated<bigint>;
}

export interface EntriesTable {
  id: Generated<bigint>;
  kind: string;
  member_id: string | null;
  at: Timestamp;
  event_id: string | null;
  request_id: string | null;
  key_id: string | null;
  corrects_entry_id: bigint | null;
  ref_type: string | null;
  ref_id: string | null;
  detail: Json;
}

export interface PostingsTable {
  id: Generated<bigint>;
  entry_id: bigint;
  account_id: bigint;
  program_id: string;
  amount_pt4: bigint;
  at: Timestamp;
}

export interface LotsTable {
  id: Generated<bigint>;
  program_id: string;
  member_id: string;
  issuing_brand_id: string;
  points_pt4: bigint;
  remaining_pt4: bigint;
  held_pt4: Generated<bigint>;
  state: 'pending' | 'available';
  awarded_at: Timestamp;
  available_at: Timestamp;
  expires_at: Timestamp | null;
  source_entry_id: bigint;
  source_event_id: string | null;
  /** remaining_pt4 > 0, stored: the open-lot indexes name it so that lot updates stay in place. */
  open: GeneratedAlways<boolean>;
}

export interface LotAllocationsTable {
  id: Generated<bigint>;
  entry_id: bigint;
  lot_id: bigint;
  program_id: string;
  issuing_brand_id: string;
  kind: string;
  points_pt4: bigint;
  value_common: string | null;
}

export interface IdempotencyKeysTable {
  scope: string;
  key: string;
  request_hash: string;
  status_code: number;
  response: Json;
  created_at: Timestamp;
}

export interface EventsTable {
  event_id: string;
  idempotency_key: string;
  event_type: string;
  member_id: string;
  store_id: string;
  brand_id: string;
  channel: string;
  order_id: string | null;
  transaction_id: string | null;
  transaction_ts: Timestamp;
  reversal_of: string | null;
  received_at: Timestamp;
  request_hash: string;
  payload: Json;
  outcome: Json;
  earn: Json | null;
}

export interface RejectionsTable {
  id: Generated<bigint>;
  at: Timestamp;
  code: string;
  field: string | null;
  message: string;
  event_id: string | null;
  store_id: string | null;
  brand_id: string | null;
  key_id: string | null;
  payload: Json | null;
}

export interface ReviewsTable {
  id: Generated<bigint>;
  at: Timestamp;
  kind: string;
  member_id: string;
  program_id: string;
  points_pt4: bigint;
  entry_id: bigint | null;
  event_id: string | null;
  status: Generated<string>;
  detail: Json;
}

export interface RedemptionsTable {
  id: string;
  member_id: string;
  brand_id: string;
  group_redemption: boolean;
  program_id: string | null;
  status: 'held' | 'captured' | 'released' | 'expired' | 'reversed';
  points_pt4: bigint;
  order_id: string | null;
  reward_id: string | null;
  quantity: number | null;
  created_at: Timestamp;
  hold_expires_at: Timestamp | null;
  resolved_at: Timestamp | null;
  entry_id: bigint | null;
  detail: Json;
}

export interface TransfersTable {
  id: string;
  from_member_id: string;
  to_member_id: string;
  program_id: string | null;
  group_transfer: boolean;
  points_pt4: bigint;
  created_at: Timestamp;
  entry_id: bigint;
}

export interface RewardsTable {
  id: string;
  brand_id: string;
  program_id: string;
  name: string;
  points_cost_pt4: bigint;
  stock: number | null;
  valid_from: Timestamp | null;
  valid_to: Timestamp | null;
  active: boolean;
  created_at: Timestamp;
  updated_at: Timestamp;
}

export interface SettlementFlowsTable {
  id: Generated<bigint>;
  entry_id: bigint;
  redemption_id: string;
  issuer_brand_id: string;
  redeemer_brand_id: string;
  program_id: string;
  points_pt4: bigint;
  value_common: string;
  amount_minor: bigint;
  at: Timestamp;
  period_id: bigint | null;
}

export interface ReferralsTable {
  referred_member_id: string;
  referrer_member_id: string;
  event_id: string;
  at: Timestamp;
  rewarded_entry_id: bigint | null;
}

export interface ProgramActivityTable {
  id: Generated<bigint>;
  member_id: string;
  program_id: string;
  at: Timestamp;
  spend_minor: bigint;
  points_pt4: bigint;
  event_id: string;
  entry_id: bigint | null;
}

export interface TierHistoryTable {
  id: Generated<bigint>;
  member_id: string;
  program_id: string;
  tier: string | null;
  from_at: Timestamp;
  recorded_at: Timestamp;
  reason: string;
}

export interface SettlementPeriodsTable {
  id: Generated<bigint>;
  from_at: Timestamp | null;
  to_at: Timestamp;
  closed_at: Timestamp;
  closed_by: string | null;
  currency: string;
  flow_count: number;
  hash: string;
  lines: Json;
}

export interface SettlementPaymentsTable {
  id: Generated<bigint>;
  period_id: bigint;
  issuer_brand_id: string;
  redeemer_brand_id: string;
  amount_minor: bigint;
  currency: string;
  reference: string | null;
  paid_at: Timestamp;
  recorded_at: Timestamp;
  key_id: string | null;
}

export interface DB {
  program_activity: ProgramActivityTable;
  tier_history: TierHistoryTable;
  config_versions: ConfigVersionsTable;
  api_keys: ApiKeysTable;
  audit_log: AuditLogTable;
  members: MembersTable;
  enrollments: EnrollmentsTable;
  accounts: AccountsTable;
  entries: EntriesTable;
  postings: PostingsTable;
  lots: LotsTable;
  lot_allocations: LotAllocationsTable;
  idempotency_keys: IdempotencyKeysTable;
  events: EventsTable;
  rejections: RejectionsTable;
  reviews: ReviewsTable;
  redemptions: RedemptionsTable;
  transfers: TransfersTable;
  rewards: RewardsTable;
  settlement_flows: SettlementFlowsTable;
  referrals: ReferralsTable;
  settlement_periods: SettlementPeriodsTable;
  settlement_payments: SettlementPaymentsTable;
}
