import { FormatRegistry, type TSchema } from '@sinclair/typebox';
import { Value, ValueErrorType, type ValueError } from '@sinclair/typebox/value';
import { cmp, fromInt, parseDecimal, ZERO, type Ratio } from '../decimal.ts';
import { isRfc3339 } from '../timestamp.ts';
import { compileCondition } from './compile.ts';
import {
  BrandSchema,
  ConfigSchema,
  FxRateSchema,
  ProgramSchema,
  RuleSchema,
  StoreSchema,
  type BrandConfig,
  type Config,
  type FxRateConfig,
  type ProgramConfig,
  type RuleConfig,
  type StoreConfig,
  type TierConfig,
} from './schema.ts';

// Validates a whole config document and reports every problem with a JSON pointer, so an
// operator fixes a document in one round trip. Shape errors come from TypeBox; the semantic
// checks run on every element that is itself well shaped, so one bad store does not hide a
// bad rule elsewhere.

export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

export type ConfigValidation =
  { readonly ok: true; readonly config: Config } | { readonly ok: false; readonly errors: ConfigProblem[] };

// A hostile or broken document (100k bad stores) must not produce an unbounded response.
const MAX_PROBLEMS = 500;

// TypeBox knows no formats by itself; without this every timestamp fails "Unknown format".
if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', isRfc3339);

export function validateConfig(doc: unknown): ConfigValidation {
  const problems = [...shapeProblems(doc), ...(isRecord(doc) ? semanticProblems(doc) : [])];
  if (problems.length === 0) return { ok: true, config: doc as Config };
  const seen = new Set<string>();
  const unique = problems.filter((p) => {
    const key = `${p.path}\u0000${p.message}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
  const errors = unique.slice(0, MAX_PROBLEMS);
  if (unique.length > MAX_PROBLEMS) {
    errors.push({ path: '', message: `${unique.length - MAX_PROBLEMS} more problems not shown` });
  }
  return { ok: false, errors };
}

// ---------------------------------------------------------------------------------------------
// Shape

function shapeProblems(doc: unknown): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const e of Value.Errors(ConfigSchema, doc)) {
    out.push(...flattenError(e));
    if (out.length > MAX_PROBLEMS) break;
  }
  return out;
}

// TypeBox reports a failed union as "Expected union value". When exactly one variant is
// plausible (its literal discriminant matched), its own errors are what the author needs.
function flattenError(e: ValueError): ConfigProblem[] {
  if (e.type !== ValueErrorType.Union) return [{ path: e.path, message: e.message }];
  const variants = e.errors.map((it) => [...it]);
  const plausible = variants.filter((v) => !v.some((x) => x.type === ValueErrorType.Literal));
  if (plausible.length === 1) return plausible[0]!.flatMap(flattenError);
  const options = literalOptions(e.schema);
  return [{ path: e.path, message: options ? `expected one of: ${options.join(', ')}` : e.message }];
}

function literalOptions(schema: TSchema): string[] | null {
  const anyOf: unknown = schema.anyOf;
  if (!Array.isArray(anyOf)) return null;
  const values: unknown[] = anyOf.map((s: { const?: unknown }) => s.const);
  return values.every((v): v is string => typeof v === 'string') ? values : null;
}

// ---------------------------------------------------------------------------------------------
// Semantics

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

const list = (v: unknown): readonly unknown[] => (Array.isArray(v) ? v : []);

/** [index, element] for each element of `v` that matches `schema`. */
function wellShaped<T>(v: unknown, schema: TSchema): [number, T][] {
  const out: [number, T][] = [];
  list(v).forEach((el, i) => {
    if (Value.Check(schema, el)) out.push([i, el as T]);
  });
  return out;
}

/** Ids of every element that has a string id, well shaped or not, so a shape error elsewhere
 * in an element does not also turn every reference to it into an "unknown id" problem. */
function idsOf(v: unknown): Set<string> {
  const ids = new Set<string>();
  for (const el of list(v)) if (isRecord(el) && typeof el.id === 'string') ids.add(el.id);
  return ids;
}

function duplicateIds(v: unknown, base: string, kind: string): ConfigProblem[] {
  const first = new Map<string, number>();
  const out: ConfigProblem[] = [];
  list(v).forEach((el, i) => {
    if (!isRecord(el) || typeof el.id !== 'string') return;
    const prior = first.get(el.id);
    if (prior === undefined) first.set(el.id, i);
    else
      out.push({
        path: `${base}/${i}/id`,
        message: `duplicate ${kind} id "${el.id}" (first at ${base}/${prior})`,
      });
  });
  return out;
}

interface GroupHeader {
  readonly common_currency: string;
  readonly default_program: string;
}

function groupHeader(doc: Record<string, unknown>): GroupHeader | null {
  const g = doc.group;
  return Value.Check(ConfigSchema.properties.group, g) ? g : null;
}

function semanticProblems(doc: Record<string, unknown>): ConfigProblem[] {
  const group = groupHeader(doc);
  const programIds = idsOf(doc.programs);
  const fxCurrencies = new Set(
    wellShaped<FxRateConfig>(doc.fx_rates, FxRateSchema).map(([, r]) => r.currency),
  );
  const out = [
    ...duplicateIds(doc.brands, '/brands', 'brand'),
    ...duplicateIds(doc.stores, '/stores', 'store'),
    ...duplicateIds(doc.programs, '/programs', 'program'),
  ];
  if (group && !programIds.has(group.default_program)) {
    out.push({
      path: '/group/default_program',
      message: `default program "${group.default_program}" is not configured`,
    });
  }
  const needsFx = (currency: string): boolean =>
    group !== null && currency !== group.common_currency && !fxCurrencies.has(currency);
  out.push(...brandProblems(doc.brands, programIds, group, needsFx));
  out.push(...storeProblems(doc.stores, idsOf(doc.brands)));
  out.push(...fxProblems(doc.fx_rates, group));
  for (const [i, p] of wellShaped<ProgramConfig>(doc.programs, ProgramSchema)) {
    const base = `/programs/${i}`;
    if (needsFx(p.currency)) {
      out.push({ path: `${base}/currency`, message: `no fx rate for program currency ${p.currency}` });
    }
    out.push(...programProblems(p, base, group?.default_program === p.id));
  }
  // A program with a shape error elsewhere still has its rules checked (their conditions most of
  // all), so the author sees every problem in one round trip.
  list(doc.programs).forEach((p, i) => {
    if (isRecord(p) && !Value.Check(ProgramSchema, p))
      out.push(...rulesProblems(p.rules, `/programs/${i}/rules`));
  });
  return out;
}

function brandProblems(
  brands: unknown,
  programIds: ReadonlySet<string>,
  group: GroupHeader | null,
  needsFx: (currency: string) => boolean,
): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const owner = new Map<string, string>();
  for (const [i, b] of wellShaped<BrandConfig>(brands, BrandSchema)) {
    const path = `/brands/${i}/program`;
    if (!programIds.has(b.program)) out.push({ path, message: `program "${b.program}" is not configured` });
    else if (group?.default_program === b.program) {
      out.push({ path, message: `brand "${b.id}" cannot use the group's default program "${b.program}"` });
    } else if (owner.has(b.program)) {
      // One issuing brand per program: settlement charges a program's lots to that brand.
      out.push({
        path,
        message: `program "${b.program}" already belongs to brand "${owner.get(b.program)}"`,
      });
    } else owner.set(b.program, b.id);
    if (needsFx(b.currency)) {
      out.push({ path: `/brands/${i}/currency`, message: `no fx rate for brand currency ${b.currency}` });
    }
  }
  return out;
}

function storeProblems(stores: unknown, brandIds: ReadonlySet<string>): ConfigProblem[] {
  return wellShaped<StoreConfig>(stores, StoreSchema)
    .filter(([, s]) => !brandIds.has(s.brand))
    .map(([i, s]) => ({ path: `/stores/${i}/brand`, message: `brand "${s.brand}" is not configured` }));
}

function fxProblems(rates: unknown, group: GroupHeader | null): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seen = new Map<string, number>();
  for (const [i, r] of wellShaped<FxRateConfig>(rates, FxRateSchema)) {
    const rate = parseDecimal(r.rate);
    if (cmp(rate, ZERO) <= 0) out.push({ path: `/fx_rates/${i}/rate`, message: 'fx rate must be > 0' });
    if (r.currency === group?.common_currency && cmp(rate, fromInt(1)) !== 0) {
      out.push({
        path: `/fx_rates/${i}/rate`,
        message: `the common currency ${r.currency} always has rate 1`,
      });
    }
    const key = `${r.currency}@${Date.parse(r.effective_from)}`;
    const prior = seen.get(key);
    if (prior !== undefined) {
      out.push({
        path: `/fx_rates/${i}/effective_from`,
        message: `duplicate ${r.currency} rate at this instant (first at /fx_rates/${prior})`,
      });
    } else seen.set(key, i);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Programs

const decimalPlaces = (s: string): number => s.split('.')[1]?.length ?? 0;

interface Bound {
  readonly value: string | undefined;
  readonly path: string;
  readonly label: string;
  readonly min: 'positive' | 'non_negative';
  readonly max?: Ratio;
  readonly points?: boolean; // points amounts hold at most 4 decimals (pt4)
}

function boundProblems(b: Bound): ConfigProblem[] {
  if (b.value === undefined) return [];
  const v = parseDecimal(b.value);
  const out: ConfigProblem[] = [];
  const sign = cmp(v, ZERO);
  if (b.min === 'positive' && sign <= 0) out.push({ path: b.path, message: `${b.label} must be > 0` });
  if (b.min === 'non_negative' && sign < 0) out.push({ path: b.path, message: `${b.label} must be >= 0` });
  if (b.max && cmp(v, b.max) > 0) out.push({ path: b.path, message: `${b.label} must be <= ${b.max.num}` });
  if (b.points && decimalPlaces(b.value) > 4) {
    out.push({ path: b.path, message: `${b.label} has more than 4 decimal places` });
  }
  return out;
}

function programProblems(p: ProgramConfig, base: string, isDefault: boolean): ConfigProblem[] {
  const bounds: Bound[] = [
    { value: p.point_value, path: `${base}/point_value`, label: 'point_value', min: 'positive' },
    { value: p.earn.points, path: `${base}/earn/points`, label: 'earn.points', min: 'non_negative' },
    {
      value: p.caps?.max_points_per_event,
      path: `${base}/caps/max_points_per_event`,
      label: 'caps.max_points_per_event',
      min: 'positive',
      points: true,
    },
    {
      value: p.caps?.max_multiplier,
      path: `${base}/caps/max_multiplier`,
      label: 'caps.max_multiplier',
      min: 'positive',
    },
    {
      value: p.negative_balance?.absorb_up_to,
      path: `${base}/negative_balance/absorb_up_to`,
      label: 'absorb_up_to',
      min: 'non_negative',
      points: true,
    },
    {
      value: p.referral?.bonus_points,
      path: `${base}/referral/bonus_points`,
      label: 'referral.bonus_points',
      min: 'non_negative',
      points: true,
    },
    {
      value: p.settlement?.reimbursement_rate,
      path: `${base}/settlement/reimbursement_rate`,
      label: 'reimbursement_rate',
      min: 'non_negative',
      max: fromInt(10),
    },
    {
      value: p.transfer?.daily_limit_points,
      path: `${base}/transfer/daily_limit_points`,
      label: 'transfer.daily_limit_points',
      min: 'positive',
      points: true,
    },
  ];
  const out = bounds.flatMap(boundProblems);
  out.push(...rulesProblems(p.rules, `${base}/rules`));
  out.push(...duplicateIds(p.tiers, `${base}/tiers`, 'tier'));
  if (isDefault && (p.tiers?.length ?? 0) > 0) {
    out.push({ path: `${base}/tiers`, message: 'the default program has no tiers' });
  }
  out.push(...tierProblems(p.tiers ?? [], `${base}/tiers`));
  out.push(...pendingProblems(p, base));
  return out;
}

/**
 * Points must become spendable before they expire: a lot held pending for `pending_days` that
 * expires by then is never spendable, and the member loses it without a chance to use it. With
 * rolling or inactivity expiry (and a tier's expiry_days) the life must be longer than the wait;
 * with end_of_period expiry the lot lives past awarded + after_days, so after_days must cover it.
 */
function pendingProblems(p: ProgramConfig, base: string): ConfigProblem[] {
  const wait = p.pending_days ?? 0;
  if (wait === 0) return [];
  const out: ConfigProblem[] = [];
  const e = p.expiry;
  if ((e?.kind === 'rolling' || e?.kind === 'inactivity') && e.days <= wait)
    out.push({
      path: `${base}/expiry/days`,
      message: `points would expire before they leave pending: expiry days (${e.days}) must exceed pending_days (${wait})`,
    });
  if (e?.kind === 'end_of_period' && e.after_days < wait)
    out.push({
      path: `${base}/expiry/after_days`,
      message: `points earned late in a period would expire before they leave pending: after_days (${e.after_days}) must be at least pending_days (${wait})`,
    });
  (p.tiers ?? []).forEach((t, k) => {
    if (t.expiry_days !== undefined && t.expiry_days <= wait)
      out.push({
        path: `${base}/tiers/${k}/expiry_days`,
        message: `tier "${t.id}": points would expire before they leave pending: expiry_days (${t.expiry_days}) must exceed pending_days (${wait})`,
      });
  });
  return out;
}

/** Duplicate rule ids, and the problems of each well-shaped rule. */
function rulesProblems(rules: unknown, base: string): ConfigProblem[] {
  return [
    ...duplicateIds(rules, base, 'rule'),
    ...wellShaped<RuleConfig>(rules, RuleSchema).flatMap(([j, r]) => ruleProblems(r, `${base}/${j}`)),
  ];
}

function ruleProblems(r: RuleConfig, base: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  if (r.multiplier === undefined && r.bonus_points === undefined) {
    out.push({ path: base, message: `rule "${r.id}" needs a multiplier or bonus_points` });
  }
  out.push(
    ...boundProblems({
      value: r.multiplier,
      path: `${base}/multiplier`,
      label: `rule "${r.id}" multiplier`,
      min: 'positive',
    }),
    ...boundProblems({
      value: r.bonus_points,
      path: `${base}/bonus_points`,
      label: `rule "${r.id}" bonus_points`,
      min: 'non_negative',
      points: true,
    }),
  );
  if (
    r.valid_from !== undefined &&
    r.valid_to !== undefined &&
    !(Date.parse(r.valid_from) < Date.parse(r.valid_to))
  ) {
    out.push({ path: `${base}/valid_to`, message: `rule "${r.id}": valid_to must be after valid_from` });
  }
  const condition = compileCondition(r.when, r.scope ?? 'event');
  if (!condition.ok) out.push({ path: `${base}/when`, message: `rule "${r.id}": ${condition.message}` });
  return out;
}

function tierProblems(tiers: readonly TierConfig[], base: string): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const lastThreshold = new Map<string, number>(); // per metric: thresholds of different metrics do not compare
  tiers.forEach((t, k) => {
    if (!t.qualify) {
      if (k > 0)
        out.push({
          path: `${base}/${k}/qualify`,
          message: `tier "${t.id}": only the lowest tier may omit qualify`,
        });
      return;
    }
    const prior = lastThreshold.get(t.qualify.metric);
    if (prior !== undefined && t.qualify.at_least < prior) {
      out.push({
        path: `${base}/${k}/qualify/at_least`,
        message: `tier "${t.id}": thresholds must not decrease (previous ${prior})`,
      });
    }
    lastThreshold.set(t.qualify.metric, t.qualify.at_least);
  });
  return out;
}
