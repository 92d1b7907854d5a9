import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import type { Group } from '../../domain/config/group.ts';
import type { StoreConfig } from '../../domain/config/schema.ts';
import {
  canonicalJson,
  parseEvent,
  type CanonicalEvent,
  type EventProblem,
} from '../../domain/events/canonical.ts';
import { AppError, ERRORS } from '../../errors.ts';
import { pgCode, type Trx } from '../../ledger/post.ts';
import { deferWrite, prefetch, together } from '../../store/write-behind.ts';
import { requireGroup } from '../config.ts';
import type { Actor, Ctx } from '../context.ts';
import { enroll, ensureMember, lockQuery } from '../members.ts';
import { claimQuery, priorAnswer, storeOutcome } from '../idempotency.ts';
import { inTransaction, PREPARED } from '../transaction.ts';
import { accruePurchase, programsForStore } from './accrue.ts';
import { eventKeyAnswer } from './event-keys.ts';
import { linkReferral, maybeReferralBonus, referrerQuery } from './referral.ts';
import { clawBackReferralBonus, referralOfQuery } from './referral-clawback.ts';
import { EventRejected } from './rejected.ts';
import { recordRejection } from './rejections.ts';
import { loadPurchase, reversePurchase, storedEarn } from './reverse.ts';

// One event in, exactly once. Inside one transaction: claim the idempotency key, recognise a
// duplicate (same key, same event_id, or a second purchase of an already accrued order), lock the
// member, post the entry, store the event and its outcome. A rejection rolls all of that back and
// is then kept in `rejections`.

export interface EventOutcome {
  readonly http_status: number;
  readonly body: Record<string, unknown>;
}

/** Checks the caller may post for the store's brand; throws FORBIDDEN otherwise. */
export type BrandGuard = (brand_id: string) => void;

const FUTURE_TOLERANCE_MS = 5 * 60_000;
const MAX_ATTEMPTS = 3;

export async function submitEvent(
  ctx: Ctx,
  raw: unknown,
  actor: Actor,
  guard: BrandGuard,
): Promise<EventOutcome> {
  const admitted = await admitEvent(ctx, raw, actor, guard);
  return isAdmitted(admitted) ? processAdmitted(ctx, admitted, actor) : admitted;
}

/** An event that parsed, names a known store and may be posted by the caller. */
export interface Admitted {
  readonly group: Group;
  readonly raw: unknown;
  readonly ev: CanonicalEvent;
  readonly store: StoreConfig;
  /** sha256 of the canonical body: the idempotency key's fingerprint. */
  readonly hash: string;
}

export const isAdmitted = (a: Admitted | EventOutcome): a is Admitted => 'ev' in a;

/**
 * Parses the event and checks the caller may post for its store's brand (FORBIDDEN is thrown).
 * An event that does not parse, or names an unknown store, is rejected here: kept and answered.
 */
export async function admitEvent(
  ctx: Ctx,
  raw: unknown,
  actor: Actor,
  guard: BrandGuard,
): Promise<Admitted | EventOutcome> {
  const group = await requireGroup(ctx);
  const parsed = parseEvent(raw);
  if (!parsed.ok) return reject(ctx, raw, parsed.problem, null, actor);
  const ev = parsed.event;
  const store = group.stores.get(ev.store_id);
  if (!store)
    return reject(
      ctx,
      raw,
      {
        code: 'UNKNOWN_STORE',
        field: 'store_id',
        message: `Store ${ev.store_id} is not in the configuration`,
      },
      null,
      actor,
    );
  await guardKept(ctx, raw, store, actor, guard);
  return { group, raw, ev, store, hash: eventHash(raw) };
}

/**
 * The caller's brand guard; an event it refuses is kept like any other rejected event, under the
 * sender's brand (the till with the wrong key is the sender's to fix), and still answered 403.
 */
async function guardKept(
  ctx: Ctx,
  raw: unknown,
  store: StoreConfig,
  actor: Actor,
  guard: BrandGuard,
): Promise<void> {
  try {
    guard(store.brand);
  } catch (e) {
    if (!(e instanceof AppError) || e.code !== 'FORBIDDEN') throw e;
    throw await keptRefusal(ctx, raw, e, 'store_id', actor.brand_id ?? null, actor);
  }
}

/** Keeps an event refused with an error status like every rejection; the error to answer with. */
async function keptRefusal(
  ctx: Ctx,
  raw: unknown,
  e: AppError,
  field: string,
  brand_id: string | null,
  actor: Actor,
): Promise<AppError> {
  const id = await recordRejection(ctx.db, {
    at: ctx.clock.now(),
    problem: { code: e.code, field, message: e.message },
    payload: raw,
    brand_id,
    key_id: actor.key_id,
  });
  return new AppError(e.code, e.message, { ...e.details, field, rejection_id: id.toString() });
}

/** The idempotency key's fingerprint of an event body. */
export const eventHash = (raw: unknown): string =>
  createHash('sha256').update(canonicalJson(raw)).digest('hex');

/** The event in a transaction of its own (retried when a concurrent twin committed first). */
export async function processAdmitted(ctx: Ctx, a: Admitted, actor: Actor): Promise<EventOutcome> {
  const { group, raw, ev, store, hash } = a;
  for (let attempt = 1; ; attempt++) {
    try {
      return await inTransaction(ctx.db, (trx) => process(trx, ctx, group, ev, hash, actor), PREPARED);
    } catch (e) {
      if (e instanceof EventRejected) return reject(ctx, raw, e.problem, store.brand, actor);
      if (e instanceof AppError && (e.code === 'IDEMPOTENCY_KEY_REUSED' || e.code === 'EVENT_ID_REUSED')) {
        const field = e.code === 'EVENT_ID_REUSED' ? 'event_id' : 'idempotency_key';
        throw await keptRefusal(ctx, raw, e, field, store.brand, actor);
      }
      // A concurrent twin (same key, event or order) committed first: the retry answers duplicate.
      if (pgCode(e) === '23505' && attempt < MAX_ATTEMPTS) continue;
      throw e;
    }
  }
}

async function reject(
  ctx: Ctx,
  raw: unknown,
  problem: EventProblem,
  brand_id: string | null,
  actor: Actor,
): Promise<EventOutcome> {
  const id = await recordRejection(ctx.db, {
    at: ctx.clock.now(),
    problem,
    payload: raw,
    // An event that does not parse or names no known store has no brand of its own: it is kept
    // under the brand key that sent it, so that brand can find and fix it.
    brand_id: brand_id ?? actor.brand_id ?? null,
    key_id: actor.key_id,
  });
  return {
    http_status: ERRORS[problem.code].status,
    body: {
      error: {
        code: problem.code,
        message: problem.message,
        details: { field: problem.field, rejection_id: id.toString() },
      },
    },
  };
}

async function process(
  trx: Trx,
  ctx: Ctx,
  group: Group,
  ev: CanonicalEvent,
  hash: string,
  actor: Actor,
): Promise<EventOutcome> {
  const now = ctx.clock.now();
  const store = group.stores.get(ev.store_id)!;
  // Claim, twin lookup and the pending referral in one round trip; each statement runs after the
  // one before it, so the twin lookup still follows the claim.
  const [claimed, twins, referral] = await together(trx, [
    claimQuery(trx, 'event', ev.idempotency_key, hash, now, { event_id: ev.event_id }),
    twinQuery(trx, ev, store.brand),
    referralOfQuery(trx, ev.member_id),
  ]);
  const replay = await claimKey(trx, ev, hash, claimed);
  if (replay) return replay;
  const twin = twinOf(twins, ev);
  if (twin)
    return finish(trx, ev, {
      http_status: 200,
      body: { status: 'duplicate', event_id: ev.event_id, duplicate_of: twin },
    });

  checkTime(group, ev, store, now);
  await ensureMember(trx, ev.member_id, now);
  // The referrer is locked too when this event may pay them the bonus (a purchase while it is
  // unpaid) or take it back (a reversal, once it is paid).
  const referralRow = referral[0];
  const referrer =
    referralRow &&
    (ev.event_type === 'purchase_completed'
      ? referralRow.rewarded_entry_id === null
      : ev.event_type !== 'member_referred' && referralRow.rewarded_entry_id !== null)
      ? referralRow.referrer_member_id
      : null;
  const locked = new Set([
    ev.member_id,
    ...(referrer ? [referrer] : []),
    ...(ev.referrer_member_id ? [ev.referrer_member_id] : []),
  ]);
  // The lock, the enrollment and the reads that follow them travel together (write-behind.ts):
  // each read takes its snapshot after the lock is granted.
  await deferWrite(trx, lockQuery(trx, [...locked]));
  await enroll(
    trx,
    ev.member_id,
    programsForStore(group, store).map((p) => p.id),
    now,
  );

  let body: Record<string, unknown>;
  let earn: object | null = null;
  // The purchase a reversal takes effect on (its reversal_of may name a duplicate of it).
  let reversal_of = ev.reversal_of;
  switch (ev.event_type) {
    case 'purchase_completed': {
      // Read again under the lock: a concurrent purchase may have paid the bonus meanwhile, or
      // a referral been linked.
      const link = await prefetch(trx, referrerQuery(trx, ev.member_id));
      const r = await accruePurchase(trx, group, ev, store, now, actor);
      const linked = (await link.rows())[0];
      const referral = linked
        ? await maybeReferralBonus(trx, group, ev, store, r.spend_minor, now, actor, linked)
        : null;
      earn = storedEarn(r.entry_id, r.earns);
      body = {
        status: 'accepted',
        event_id: ev.event_id,
        member_id: ev.member_id,
        accruals: r.accruals,
        reversed: [],
        ...(referral ? { referral_bonus: referral } : {}),
      };
      break;
    }
    case 'purchase_voided':
    case 'purchase_refunded': {
      const purchase = await loadPurchase(trx, ev, group, now);
      reversal_of = purchase.event_id;
      const r = await reversePurchase(trx, group, ev, purchase, now, actor);
      const clawed = await clawBackReferralBonus(trx, group, ev, purchase, r.after, locked, now, actor);
      earn = { entry_id: r.entry_id?.toString() ?? null, reversal_of: purchase.event_id };
      body = {
        status: 'accepted',
        event_id: ev.event_id,
        member_id: ev.member_id,
        accruals: [],
        reversed: r.reversed,
        ...(clawed ? { referral_bonus_reversed: clawed } : {}),
      };
      break;
    }
    case 'member_referred': {
      const r = await linkReferral(trx, ev, now);
      body = {
        status: 'accepted',
        event_id: ev.event_id,
        member_id: ev.member_id,
        accruals: [],
        reversed: [],
        referral: r,
      };
      break;
    }
  }
  const insertEvent = trx.insertInto('events').values({
    event_id: ev.event_id,
    idempotency_key: ev.idempotency_key,
    event_type: ev.event_type,
    member_id: ev.member_id,
    store_id: ev.store_id,
    brand_id: store.brand,
    channel: ev.channel,
    order_id: ev.order_id,
    transaction_id: ev.transaction_id,
    transaction_ts: new Date(ev.transaction_ms),
    reversal_of,
    received_at: now,
    request_hash: hash,
    payload: JSON.stringify(ev.raw) as never,
    outcome: JSON.stringify(body) as never,
    earn: earn === null ? null : (JSON.stringify(earn) as never),
  });
  await deferWrite(trx, insertEvent);
  // The events row answers the key from now on (event-keys.ts): the key is not written again.
  return { http_status: 201, body };
}

/** Claims the key, or answers the earlier outcome (same body) or 409 (different body). */
export async function claimKey(
  trx: Trx,
  ev: CanonicalEvent,
  hash: string,
  claimed: readonly unknown[],
): Promise<EventOutcome | null> {
  if (claimed.length > 0) return null;
  const prior = priorAnswer(await eventKeyAnswer(trx, ev.idempotency_key), ev.idempotency_key, hash);
  const original = prior as { event_id?: string; body?: Record<string, unknown> };
  const first =
    typeof original.body?.duplicate_of === 'string'
      ? original.body.duplicate_of
      : (original.event_id ?? ev.event_id);
  return {
    http_status: 200,
    body: {
      status: 'duplicate',
      event_id: ev.event_id,
      duplicate_of: first,
      replayed: true,
      original: original.body ?? null,
    },
  };
}

/** Events already in the ledger under the same event_id, or the same order (BOPIS). */
export function twinQuery(trx: Trx, ev: CanonicalEvent, brand_id: string) {
  // One query for both: the same event_id, or (purchases) the same order at this brand.
  const byOrder = ev.event_type === 'purchase_completed' && ev.order_id !== null;
  return trx
    .selectFrom('events')
    .select(['event_id', 'payload'])
    .where((eb) =>
      byOrder
        ? eb.or([
            eb('event_id', '=', ev.event_id),
            eb.and([
              eb('brand_id', '=', brand_id),
              eb('order_id', '=', ev.order_id),
              // In the text, not a parameter: it selects the partial index events_purchase_order,
              // which a prepared statement's generic plan can use only so (store/write-behind.ts).
              eb('event_type', '=', sql<string>`'purchase_completed'`),
            ]),
          ])
        : eb('event_id', '=', ev.event_id),
    )
    .limit(2);
}

/** The event twinQuery found, if any; a reused event_id with another body is a conflict. */
export function twinOf(
  rows: readonly { event_id: string; payload: unknown }[],
  ev: CanonicalEvent,
): string | null {
  const same = rows.find((r) => r.event_id === ev.event_id);
  if (same) {
    // A retry under a new key is a duplicate; another event reusing the id is a conflict, not
    // something to drop silently (a refund sent with its purchase's event_id, say).
    if (!sameEventBody(same.payload, ev.raw)) {
      throw new AppError(
        'EVENT_ID_REUSED',
        `event_id ${ev.event_id} was already used for a different event`,
        {
          field: 'event_id',
        },
      );
    }
    return same.event_id;
  }
  return rows[0]?.event_id ?? null;
}

/** The same event whatever key it came under: bodies compared without their idempotency_key. */
export function sameEventBody(stored: unknown, raw: unknown): boolean {
  const strip = (v: unknown) =>
    typeof v === 'object' && v !== null ? { ...(v as Record<string, unknown>), idempotency_key: null } : v;
  return canonicalJson(strip(stored)) === canonicalJson(strip(raw));
}

async function finish(trx: Trx, ev: CanonicalEvent, outcome: EventOutcome): Promise<EventOutcome> {
  await storeOutcome(trx, 'event', ev.idempotency_key, outcome.http_status, {
    event_id: ev.event_id,
    body: outcome.body,
  });
  return outcome;
}

export function checkTime(group: Group, ev: CanonicalEvent, store: { brand: string }, now: Date): void {
  if (ev.transaction_ms > now.getTime() + FUTURE_TOLERANCE_MS) {
    throw new EventRejected(
      'FUTURE_EVENT',
      'transaction_ts',
      `transaction_ts ${ev.transaction_ts} is in the future`,
    );
  }
  if (ev.event_type !== 'purchase_completed') return;
  const program = group.programs.get(group.brands.get(store.brand)?.program ?? '');
  const hours = program?.late_event_window_hours ?? 72;
  if (now.getTime() - ev.transaction_ms > hours * 3_600_000) {
    throw new EventRejected(
      'LATE_EVENT',
      'transaction_ts',
      `transaction_ts ${ev.transaction_ts} is older than the ${hours}-hour late-event window`,
    );
  }
}
