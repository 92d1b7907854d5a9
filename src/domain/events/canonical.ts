import type { ErrorCode } from '../../errors.ts';
import { EARLIEST_INSTANT, EARLIEST_INSTANT_MS, parseRfc3339, RFC3339 } from '../timestamp.ts';

// The canonical event (CONTRACT.md "Events"), validated by hand rather than by a schema
// library so that each problem gets a stable code, the exact offending field, and so that a
// rejected event is still kept with its payload. Pure: no I/O, no clock.

export const EVENT_TYPES = [
  'purchase_completed',
  'purchase_voided',
  'purchase_refunded',
  'member_referred',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const MAX_LINE_ITEMS = 500;
const MAX_CENTS = 10n ** 13n; // 100 billion in major units: above any real basket
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.:@#/-]{0,127}$/;
// A member id is also a URL path segment (/v1/members/{member_id}/…), so it has no '#' or '/':
// an id the paths cannot name would hold points nobody can read or spend.
export const MEMBER_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:@-]*$';
const MEMBER_ID_RE = new RegExp(MEMBER_ID_PATTERN);

export interface LineItem {
  readonly sku: string;
  readonly category?: string;
  readonly unit_price_cents: bigint;
  readonly quantity: number;
  readonly eligible_for_points: boolean;
  readonly [field: string]: unknown;
}

export interface CanonicalEvent {
  readonly event_id: string;
  readonly event_type: EventType;
  readonly member_id: string;
  readonly channel: string;
  readonly store_id: string;
  readonly transaction_id: string;
  readonly transaction_ts: string;
  readonly transaction_ms: number;
  readonly idempotency_key: string;
  readonly currency: string;
  readonly order_id: string | null;
  readonly reversal_of: string | null;
  readonly referrer_member_id: string | null;
  readonly line_items: readonly LineItem[];
  readonly subtotal_cents: bigint;
  readonly eligible_subtotal_cents: bigint;
  readonly raw: Readonly<Record<string, unknown>>;
}

export interface EventProblem {
  readonly code: ErrorCode;
  readonly field: string | null;
  readonly message: string;
}

export type Parsed = { ok: true; event: CanonicalEvent } | { ok: false; problem: EventProblem };

const fail = (field: string | null, message: string, code: ErrorCode = 'INVALID_EVENT'): Parsed => ({
  ok: false,
  problem: { code, field, message },
});

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Best-effort identifiers of a payload, for listing a rejection even when the payload is bad. */
export function payloadIds(raw: unknown): { event_id: string | null; store_id: string | null } {
  if (!isObject(raw)) return { event_id: null, store_id: null };
  const s = (v: unknown) => (typeof v === 'string' && v.length <= 128 ? v : null);
  return { event_id: s(raw.event_id), store_id: s(raw.store_id) };
}

function str(
  o: Record<string, unknown>,
  field: string,
  opts: { required: boolean; re?: RegExp; max?: number },
): string | null | EventProblem {
  const v = o[field];
  if (v === undefined || v === null)
    return opts.required ? { code: 'INVALID_EVENT', field, message: `${field} is required` } : null;
  if (typeof v !== 'string') return { code: 'INVALID_EVENT', field, message: `${field} must be a string` };
  if (v.length === 0 || v.length > (opts.max ?? 128))
    return { code: 'INVALID_EVENT', field, message: `${field} must be 1..${opts.max ?? 128} characters` };
  if (opts.re && !opts.re.test(v))
    return { code: 'INVALID_EVENT', field, message: `${field} has an invalid format` };
  return v;
}

const isProblem = (v: unknown): v is EventProblem => isObject(v) && 'code' in v && 'message' in v;

/** Whole minor units: a JSON integer, non-negative, within range. */
function cents(v: unknown, field: string): bigint | EventProblem {
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    return { code: 'INVALID_EVENT', field, message: `${field} must be an integer number of minor units` };
  if (v < 0) return { code: 'INVALID_EVENT', field, message: `${field} must not be negative` };
  const b = BigInt(v);
  if (b > MAX_CENTS) return { code: 'INVALID_EVENT', field, message: `${field} is out of range` };
  return b;
}

function lineItem(v: unknown, i: number): LineItem | EventProblem {
  const at = `line_items[${i}]`;
  if (!isObject(v)) return { code: 'INVALID_EVENT', field: at, message: `${at} must be an object` };
  const sku = str(v, 'sku', { required: true });
  if (isProblem(sku)) return { ...sku, field: `${at}.sku` };
  const category = str(v, 'category', { required: false });
  if (isProblem(category)) return { ...category, field: `${at}.category` };
  const price = cents(v.unit_price_cents, `${at}.unit_price_cents`);
  if (isProblem(price)) return price;
  const q = v.quantity;
  if (
    typeof q !== 'number' ||
    !Number.isFinite(q) ||
    q <= 0 ||
    q > 1_000_000 ||
    !/^\d+(\.\d{1,6})?$/.test(String(q))
  ) {
    return {
      code: 'INVALID_EVENT',
      field: `${at}.quantity`,
      message: `${at}.quantity must be a positive number with at most 6 decimals`,
    };
  }
  const eligible = v.eligible_for_points ?? true;
  if (typeof eligible !== 'boolean')
    return { code: 'INVALID_EVENT', field: `${at}.eligible_for_points`, message: 'must be a boolean' };
  return {
    ...v,
    sku: sku!,
    ...(category ? { category } : {}),
    unit_price_cents: price,
    quantity: q,
    eligible_for_points: eligible,
  };
}

export function parseEvent(raw: unknown): Parsed {
  if (!isObject(raw)) return fail(null, 'the event must be a JSON object');
  const fields: Record<string, string | null> = {};
  const specs: [string, boolean, RegExp?][] = [
    ['event_id', true, ID_RE],
    ['event_type', true],
    ['member_id', true, MEMBER_ID_RE],
    ['channel', true, /^[a-z_]{1,32}$/],
    ['store_id', true, ID_RE],
    ['transaction_id', true, ID_RE],
    // The shape here (as_of and every other instant use the same); parseRfc3339 below refuses
    // instants that do not exist (2026-11-31).
    ['transaction_ts', true, RFC3339],
    ['idempotency_key', true, /^[\x21-\x7e]{1,200}$/],
    ['currency', true, /^[A-Z]{3}$/],
    ['order_id', false, ID_RE],
    ['reversal_of', false, ID_RE],
    ['referrer_member_id', false, MEMBER_ID_RE],
  ];
  for (const [field, required, re] of specs) {
    const v = str(raw, field, {
      required,
      ...(re ? { re } : {}),
      max: field === 'idempotency_key' ? 200 : 128,
    });
    if (isProblem(v)) return { ok: false, problem: v };
    fields[field] = v;
  }
  const type = fields.event_type as EventType;
  if (!EVENT_TYPES.includes(type))
    return fail('event_type', `event_type must be one of ${EVENT_TYPES.join(', ')}`);
  const ms = parseRfc3339(fields.transaction_ts!);
  if (ms === null)
    return fail('transaction_ts', 'transaction_ts is not a real instant (check the day of the month)');
  if (ms < EARLIEST_INSTANT_MS)
    return fail('transaction_ts', `transaction_ts must be ${EARLIEST_INSTANT} or later`);

  const needsLines = type === 'purchase_completed' || type === 'purchase_refunded';
  const items: LineItem[] = [];
  if (raw.line_items !== undefined || needsLines) {
    if (!Array.isArray(raw.line_items)) return fail('line_items', 'line_items must be an array');
    if (raw.line_items.length > MAX_LINE_ITEMS)
      return fail('line_items', `at most ${MAX_LINE_ITEMS} line items`);
    if (needsLines && raw.line_items.length === 0) return fail('line_items', 'line_items must not be empty');
    for (const [i, li] of raw.line_items.entries()) {
      const item = lineItem(li, i);
      if (isProblem(item)) return { ok: false, problem: item };
      items.push(item);
    }
  }
  let subtotal = 0n;
  let eligible = 0n;
  if (
    type === 'purchase_completed' ||
    raw.subtotal_cents !== undefined ||
    raw.eligible_subtotal_cents !== undefined
  ) {
    const s = cents(raw.subtotal_cents, 'subtotal_cents');
    if (isProblem(s)) return { ok: false, problem: s };
    const e = cents(raw.eligible_subtotal_cents, 'eligible_subtotal_cents');
    if (isProblem(e)) return { ok: false, problem: e };
    if (e > s)
      return fail('eligible_subtotal_cents', 'eligible_subtotal_cents must not exceed subtotal_cents');
    subtotal = s;
    eligible = e;
  }
  if ((type === 'purchase_voided' || type === 'purchase_refunded') && !fields.reversal_of) {
    return fail('reversal_of', `${type} needs reversal_of: the event_id of the purchase it reverses`);
  }
  if (type === 'member_referred') {
    if (!fields.referrer_member_id)
      return fail('referrer_member_id', 'member_referred needs referrer_member_id');
    if (fields.referrer_member_id === fields.member_id)
      return fail('referrer_member_id', 'a member cannot refer themselves');
  }
  return {
    ok: true,
    event: {
      event_id: fields.event_id!,
      event_type: type,
      member_id: fields.member_id!,
      channel: fields.channel!,
      store_id: fields.store_id!,
      transaction_id: fields.transaction_id!,
      transaction_ts: new Date(ms).toISOString(),
      transaction_ms: ms,
      idempotency_key: fields.idempotency_key!,
      currency: fields.currency!,
      order_id: fields.order_id ?? null,
      reversal_of: fields.reversal_of ?? null,
      referrer_member_id: fields.referrer_member_id ?? null,
      line_items: items,
      subtotal_cents: subtotal,
      eligible_subtotal_cents: eligible,
      raw,
    },
  };
}

/** Canonical JSON (sorted keys) of a payload: two bodies are "the same" when these match. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
