import { sql } from 'kysely';
import type { Group } from '../../domain/config/group.ts';
import type { StoreConfig } from '../../domain/config/schema.ts';
import type { CanonicalEvent } from '../../domain/events/canonical.ts';
import { AppError, ERRORS } from '../../errors.ts';
import type { Trx } from '../../ledger/post.ts';
import { checkTime, claimKey, twinOf, twinQuery } from './intake.ts';
import { EventRejected } from './rejected.ts';

/** What POST /v1/events would answer for this event now, in intake's order of checks. */
export type IntakeVerdict =
  | { readonly status: 'accepted' }
  | { readonly status: 'duplicate'; readonly duplicate_of: string }
  | {
      readonly status: 'rejected';
      readonly http_status: number;
      readonly code: string;
      readonly field: string | null;
      readonly message: string;
    };

// Simulate computes what an event would earn under the rules at its own time, whatever its date:
// that is how a rule is tried out on a past or coming day. So it does not refuse an event intake
// would refuse; it says so beside the figures, by running intake's own checks (key, twin, time)
// read-only.
export async function intakeVerdict(
  trx: Trx,
  group: Group,
  ev: CanonicalEvent,
  store: StoreConfig,
  hash: string,
  now: Date,
): Promise<IntakeVerdict> {
  try {
    const keyUsed = await sql<{ one: number }>`
      select 1 as one from idempotency_keys where scope = 'event' and key = ${ev.idempotency_key}`.execute(
      trx,
    );
    if (keyUsed.rows.length > 0) {
      const replay = await claimKey(trx, ev, hash, []);
      return { status: 'duplicate', duplicate_of: String(replay!.body.duplicate_of) };
    }
    const twin = twinOf(await twinQuery(trx, ev, store.brand).execute(), ev);
    if (twin) return { status: 'duplicate', duplicate_of: twin };
    checkTime(group, ev, store, now);
    return { status: 'accepted' };
  } catch (e) {
    if (e instanceof EventRejected) return rejected(e.problem.code, e.problem.field, e.message);
    if (e instanceof AppError && (e.code === 'IDEMPOTENCY_KEY_REUSED' || e.code === 'EVENT_ID_REUSED'))
      return rejected(e.code, (e.details.field as string | undefined) ?? null, e.message);
    throw e;
  }
}

function rejected(code: keyof typeof ERRORS, field: string | null, message: string): IntakeVerdict {
  return { status: 'rejected', http_status: ERRORS[code].status, code, field, message };
}
