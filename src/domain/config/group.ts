import type { Ratio } from '../decimal.ts';
import type { Pt4 } from '../points.ts';
import type { BrandConfig, Config, ExpiryConfig, ProgramConfig, StoreConfig, TierConfig } from './schema.ts';

// The validated configuration compiled once at apply time into lookup maps, exact ratios and
// compiled CEL rules, so that the hot path (one event) never parses a decimal or a rule.

/** What a rule's CEL condition sees. */
export interface RuleContext {
  readonly event: Record<string, unknown>;
  readonly item?: Record<string, unknown>;
  readonly member: { readonly id: string; readonly tier: string | null };
  readonly store: { readonly id: string; readonly brand: string; readonly channel: string };
}

export interface CompiledRule {
  readonly id: string;
  readonly scope: 'event' | 'line';
  readonly priority: number;
  readonly multiplier: Ratio | null;
  readonly bonus_pt4: Pt4 | null;
  readonly valid_from_ms: number | null; // inclusive
  readonly valid_to_ms: number | null; // exclusive
  readonly when: string;
  /** Evaluates the compiled condition; a runtime error (missing field, bad type) counts as false. */
  readonly test: (ctx: RuleContext) => boolean;
}

export interface CompiledProgram {
  readonly id: string;
  readonly config: ProgramConfig;
  readonly currency: string;
  readonly point_value: Ratio; // money units of `currency` per point
  readonly earn_points: Ratio; // points per `earn_per_amount_minor`
  readonly earn_per_amount_minor: bigint;
  readonly rounding: 'floor' | 'nearest' | 'accumulate';
  readonly stacking: 'highest' | 'additive';
  readonly rules: readonly CompiledRule[]; // sorted by priority desc, then id
  readonly max_points_per_event_pt4: Pt4 | null;
  readonly max_multiplier: Ratio | null;
  readonly pending_days: number;
  readonly late_event_window_hours: number;
  readonly reversal_lookback_days: number;
  readonly absorb_up_to_pt4: Pt4;
  readonly reimbursement_rate: Ratio;
  readonly hold_timeout_minutes: number;
  readonly expiry: ExpiryConfig;
  readonly tiers: readonly TierConfig[]; // lowest first, as configured
  readonly referral: { readonly bonus_pt4: Pt4; readonly min_spend_minor: bigint } | null;
  readonly transfer_daily_limit_pt4: Pt4 | null;
  readonly transfer_enabled: boolean;
  readonly expiring_window_days: number;
  /** Brand whose program this is; null for the group's default program. */
  readonly brand_id: string | null;
}

export interface FxRate {
  readonly currency: string;
  readonly rate: Ratio; // units of common currency per unit of `currency`
  readonly effective_from_ms: number;
}

export interface Group {
  readonly version: number;
  readonly document: Config;
  readonly id: string;
  readonly common_currency: string;
  readonly default_program_id: string;
  readonly brands: ReadonlyMap<string, BrandConfig>;
  readonly stores: ReadonlyMap<string, StoreConfig>;
  readonly programs: ReadonlyMap<string, CompiledProgram>;
  /** Sorted by effective_from ascending per currency. */
  readonly fx: ReadonlyMap<string, readonly FxRate[]>;
}
