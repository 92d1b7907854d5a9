import { CompiledQuery } from 'kysely';
import type { Group } from '../domain/config/group.ts';
import type { Ctx } from './context.ts';

// The current balances read (no as_of, or as_of not in the past) in one statement. It is the
// hottest read of the API and each round trip costs ~0.4 ms of CPU on each side
// (docs/performance.md), so the member check, running balances, enrollments, expiring lots and
// pending lots come back as one row of json columns, or no row when the member does not exist.
// The query is the function pointpool_current_balances (migration 006_balances_read), whose plan
// PostgreSQL keeps per connection: planning it on each read cost more than running it.
// Lot lists are rendered in SQL into the contract's shape, so a member with hundreds of lots
// costs one JSON.parse instead of a BigInt and a Date per lot. The test
// balances.current-vs-history pins this rendering to the historical path's JavaScript one.

export interface CurrentRead {
  /** [program_id, account kind, balance in pt4 as decimal text] for the member's accounts. */
  readonly accounts: readonly (readonly [string, string, string])[];
  /** [program_id, tier] per enrollment. */
  readonly enrollments: readonly (readonly [string, string | null])[];
  /** program_id → lots expiring within that program's window, by expiry then id. */
  readonly expiring: Readonly<Record<string, { points: number; expires_at: string }[]>>;
  /** program_id → up to 100 pending lots, by availability then id. */
  readonly pending: Readonly<Record<string, { points: number; available_at: string }[]>>;
}

// A constant text with no query building per read. $3 is the programs in force with their
// expiring windows: a lot of a program outside the configuration is not shown.
const CURRENT_READ =
  'select accounts, enrollments, expiring, pending from pointpool_current_balances($1, $2, $3)';

interface Row {
  accounts: CurrentRead['accounts'] | null;
  enrollments: CurrentRead['enrollments'] | null;
  expiring: CurrentRead['expiring'] | null;
  pending: CurrentRead['pending'] | null;
}

/** The member's current state in one round trip, or null when the member does not exist. */
export async function readCurrent(ctx: Ctx, group: Group, member_id: string, at_iso: string) {
  const { rows } = await ctx.db.executeQuery<Row>(
    CompiledQuery.raw(CURRENT_READ, [member_id, at_iso, expiryWindows(group)]),
  );
  const r = rows[0];
  if (!r) return null;
  return {
    accounts: r.accounts ?? [],
    enrollments: r.enrollments ?? [],
    expiring: r.expiring ?? {},
    pending: r.pending ?? {},
  } satisfies CurrentRead;
}

// Each program's expiring window, as the $3 parameter. A configuration is immutable once
// compiled, so this is built once per version, not per read.
const windows = new WeakMap<Group, string>();
function expiryWindows(group: Group): string {
  let w = windows.get(group);
  if (w === undefined) {
    w = JSON.stringify(
      [...group.programs.values()].map((p) => ({
        program_id: p.id,
        window_seconds: p.expiring_window_days * 86_400,
      })),
    );
    windows.set(group, w);
  }
  return w;
}
