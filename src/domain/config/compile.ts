import { Environment } from '@marcbachmann/cel-js';
import { parseDecimal } from '../decimal.ts';
import { ratioToPt4, type Pt4 } from '../points.ts';
import type { CompiledProgram, CompiledRule, FxRate, Group, RuleContext } from './group.ts';
import {
  PROGRAM_DEFAULTS,
  type Config,
  type ExpiryConfig,
  type ProgramConfig,
  type RuleConfig,
} from './schema.ts';

// Turns a validated config document into the Group the hot path reads. Everything that can be
// parsed or compiled is done here, once per config version: decimals, timestamps and above all
// the CEL rule conditions (compiling one is orders of magnitude dearer than evaluating it).

// Two environments so an event-scoped rule that mentions `item` fails the type check at apply
// time instead of silently never matching at run time.
function environment(scope: 'event' | 'line'): Environment {
  const env = new Environment({ unlistedVariablesAreDyn: false })
    .registerVariable('event', 'map')
    .registerVariable('member', 'map')
    .registerVariable('store', 'map');
  return scope === 'line' ? env.registerVariable('item', 'map') : env;
}

const ENVIRONMENTS = { event: environment('event'), line: environment('line') } as const;

type CelProgram = (ctx: RuleContext) => unknown;

/** A rule condition compiled and type-checked, or the reason it cannot be. */
export type ConditionCompilation =
  { readonly ok: true; readonly evaluate: CelProgram } | { readonly ok: false; readonly message: string };

export function compileCondition(when: string, scope: 'event' | 'line'): ConditionCompilation {
  const env = ENVIRONMENTS[scope];
  let program: CelProgram & { check(): { valid: boolean; type?: string; error?: Error } };
  try {
    program = env.parse(when) as typeof program;
  } catch (err) {
    return { ok: false, message: firstLine(err) };
  }
  const checked = program.check();
  if (!checked.valid) return { ok: false, message: firstLine(checked.error) };
  // `dyn` is allowed: `member.tier` alone is dyn; a non-boolean at run time counts as false.
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return { ok: false, message: `condition must be a boolean, not ${checked.type ?? 'unknown'}` };
  }
  return { ok: true, evaluate: program };
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}

/**
 * Converts a plain JSON-ish value for CEL: integral JS numbers become BigInt (CEL `int`), so
 * `item.unit_price_cents * item.quantity` type-checks at run time instead of mixing int and
 * double. Callers prepare a context once per event, not once per rule.
 */
export function toCelValue(value: unknown): unknown {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? BigInt(value) : value;
  if (Array.isArray(value)) return value.map(toCelValue);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = toCelValue(v);
    return out;
  }
  return value;
}

const parseTs = (ts: string | undefined): number | null => (ts === undefined ? null : Date.parse(ts));

const pointsPt4 = (s: string): Pt4 => ratioToPt4(parseDecimal(s), 'floor');

function compileRule(programId: string, rule: RuleConfig): CompiledRule {
  const scope = rule.scope ?? 'event';
  const condition = compileCondition(rule.when, scope);
  if (!condition.ok) {
    // validateConfig rejects this first; reaching it means an unvalidated document.
    throw new Error(`program ${programId} rule ${rule.id}: ${condition.message}`);
  }
  const evaluate = condition.evaluate;
  return Object.freeze({
    id: rule.id,
    scope,
    priority: rule.priority ?? 0,
    multiplier: rule.multiplier === undefined ? null : parseDecimal(rule.multiplier),
    bonus_pt4: rule.bonus_points === undefined ? null : pointsPt4(rule.bonus_points),
    valid_from_ms: parseTs(rule.valid_from),
    valid_to_ms: parseTs(rule.valid_to),
    when: rule.when,
    test: (ctx: RuleContext): boolean => {
      // A missing field (`item.category` on a line without one) throws inside the evaluator;
      // that is a routine "no match", so skip capturing a stack trace nobody will read.
      const stackTraceLimit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        return evaluate(ctx) === true;
      } catch {
        return false; // a missing field or a type clash is "does not match", never a failed event
      } finally {
        Error.stackTraceLimit = stackTraceLimit;
      }
    },
  });
}

const byPriorityThenId = (a: CompiledRule, b: CompiledRule): number =>
  b.priority - a.priority || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

// Points never expire unless the program says so: expiring them silently is the worse error.
const NO_EXPIRY: ExpiryConfig = { kind: 'never' };

function compileProgram(p: ProgramConfig, brand_id: string | null): CompiledProgram {
  const d = PROGRAM_DEFAULTS;
  const maxPoints = p.caps?.max_points_per_event;
  const maxMultiplier = p.caps?.max_multiplier;
  const dailyLimit = p.transfer?.daily_limit_points;
  return Object.freeze({
    id: p.id,
    config: p,
    currency: p.currency,
    point_value: parseDecimal(p.point_value),
    earn_points: parseDecimal(p.earn.points),
    earn_per_amount_minor: BigInt(p.earn.per_amount_minor),
    rounding: p.rounding ?? d.rounding,
    stacking: p.stacking ?? d.stacking,
    rules: Object.freeze((p.rules ?? []).map((r) => compileRule(p.id, r)).sort(byPriorityThenId)),
    max_points_per_event_pt4: maxPoints === undefined ? null : pointsPt4(maxPoints),
    max_multiplier: maxMultiplier === undefined ? null : parseDecimal(maxMultiplier),
    pending_days: p.pending_days ?? d.pending_days,
    late_event_window_hours: p.late_event_window_hours ?? d.late_event_window_hours,
    reversal_lookback_days: p.reversal_lookback_days ?? d.reversal_lookback_days,
    absorb_up_to_pt4: pointsPt4(p.negative_balance?.absorb_up_to ?? d.absorb_up_to),
    reimbursement_rate: parseDecimal(p.settlement?.reimbursement_rate ?? d.reimbursement_rate),
    hold_timeout_minutes: p.hold_timeout_minutes ?? d.hold_timeout_minutes,
    expiry: p.expiry ?? NO_EXPIRY,
    tiers: Object.freeze([...(p.tiers ?? [])]),
    referral: p.referral
      ? { bonus_pt4: pointsPt4(p.referral.bonus_points), min_spend_minor: BigInt(p.referral.min_spend_minor) }
      : null,
    transfer_daily_limit_pt4: dailyLimit === undefined ? null : pointsPt4(dailyLimit),
    transfer_enabled: p.transfer?.enabled ?? true,
    expiring_window_days: p.expiring_window_days ?? d.expiring_window_days,
    brand_id,
  });
}

function compileFx(config: Config): Map<string, readonly FxRate[]> {
  const byCurrency = new Map<string, FxRate[]>();
  for (const r of config.fx_rates ?? []) {
    const rate: FxRate = {
      currency: r.currency,
      rate: parseDecimal(r.rate),
      effective_from_ms: Date.parse(r.effective_from),
    };
    const list = byCurrency.get(r.currency) ?? [];
    list.push(rate);
    byCurrency.set(r.currency, list);
  }
  for (const list of byCurrency.values()) list.sort((a, b) => a.effective_from_ms - b.effective_from_ms);
  return byCurrency;
}

/** Compiles a document that validateConfig accepted. Throws on a rule that does not compile. */
export function compileGroup(config: Config, version: number): Group {
  const brandOfProgram = new Map<string, string>();
  for (const b of config.brands) if (!brandOfProgram.has(b.program)) brandOfProgram.set(b.program, b.id);
  const programs = new Map<string, CompiledProgram>();
  for (const p of config.programs) {
    const brand = p.id === config.group.default_program ? null : (brandOfProgram.get(p.id) ?? null);
    programs.set(p.id, compileProgram(p, brand));
  }
  return Object.freeze({
    version,
    document: config,
    id: config.group.id,
    common_currency: config.group.common_currency,
    default_program_id: config.group.default_program,
    brands: new Map(config.brands.map((b) => [b.id, b])),
    stores: new Map(config.stores.map((s) => [s.id, s])),
    programs,
    fx: compileFx(config),
  });
}
