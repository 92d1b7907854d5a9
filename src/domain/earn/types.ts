import type { CompiledProgram } from '../config/group.ts';
import type { Ratio } from '../decimal.ts';
import type { Pt4 } from '../points.ts';

// Inputs and outputs of the earn calculation. The result carries an `explanation`: the same
// facts as plain JSON (bigints and ratios as strings), to be stored on the ledger entry as is.
// A refund or void is computed from that stored explanation alone, so it keeps working after
// the program's rules change.

export interface EarnLineItem {
  readonly sku: string;
  readonly category?: string;
  readonly unit_price_cents: bigint;
  /** Integral in practice; a decimal (weighed goods) is handled exactly through its decimal string. */
  readonly quantity: number;
  readonly eligible_for_points: boolean;
  /** Any further fields of the canonical line item, visible to CEL as `item.<field>`. */
  readonly [field: string]: unknown;
}

export interface EarnEvent {
  readonly event_id: string;
  readonly channel: string;
  readonly store_id: string;
  readonly transaction_ts: string; // RFC 3339
  readonly currency: string;
  readonly subtotal_cents: bigint;
  /** What the till says earns points: already without ineligible lines, gift cards, points-paid part. */
  readonly eligible_subtotal_cents: bigint;
  readonly line_items: readonly EarnLineItem[];
  /** The event as received; CEL sees it as `event.*` (the typed fields above take precedence). */
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface EarnInput {
  readonly program: CompiledProgram;
  readonly event: EarnEvent;
  readonly store: { readonly id: string; readonly brand: string; readonly channel: string };
  readonly member: { readonly id: string; readonly tier: string | null };
  /**
   * Event-currency minor units × this = program-currency minor units, at transaction_ts.
   * Compute it with `fxFactor(event.currency, program.currency, group, at_ms)` (config/fx.ts);
   * it is ONE when the currencies match.
   */
  readonly fx_to_program: Ratio;
}

export interface EarnLine {
  /** Index into event.line_items; null for the synthetic line used when no line is eligible. */
  readonly line_index: number | null;
  readonly sku: string | null;
  readonly eligible: boolean;
  /** This line's exact share of the eligible subtotal, in program-currency minor units. */
  readonly amount_minor: Ratio;
  readonly base_pt4: Pt4;
  readonly multiplier: string; // decimal string, after stacking and the cap
  readonly rules_applied: readonly string[];
  /** Points of this line excluding bonuses; lines + bonuses sum exactly to the total. */
  readonly points_pt4: Pt4;
}

export interface EarnBonus {
  readonly rule_id: string;
  readonly line_index: number | null; // null: event-scoped
  readonly points_pt4: Pt4;
}

export interface EarnResult {
  readonly points_pt4: Pt4;
  readonly lines: readonly EarnLine[];
  readonly bonuses: readonly EarnBonus[];
  readonly rules_applied: readonly string[]; // deduped, in priority order
  readonly capped: boolean;
  readonly explanation: EarnExplanation;
}

/** JSON form of an EarnResult plus what a refund needs. Ratios are "num/den", pt4 decimal strings of integers. */
export interface EarnExplanation {
  readonly version: 1;
  readonly program_id: string;
  readonly rounding: 'floor' | 'nearest' | 'accumulate';
  readonly stacking: 'highest' | 'additive';
  readonly event_currency: string;
  readonly program_currency: string;
  readonly fx_to_program: string;
  readonly eligible_amount_minor: string;
  readonly base_pt4: string;
  readonly points_pt4: string;
  readonly capped: boolean;
  readonly rules_applied: readonly string[];
  readonly lines: readonly ExplainedLine[];
  readonly bonuses: readonly {
    readonly rule_id: string;
    readonly line_index: number | null;
    readonly points_pt4: string;
  }[];
}

export interface ExplainedLine {
  readonly line_index: number | null;
  readonly sku: string | null;
  readonly quantity: string; // exact decimal
  readonly weight_minor: string; // unit_price × quantity, event currency, exact ratio: refund proration
  readonly eligible: boolean;
  readonly amount_minor: string;
  readonly base_pt4: string;
  readonly multiplier: string;
  readonly rules_applied: readonly string[];
  readonly points_pt4: string;
}
