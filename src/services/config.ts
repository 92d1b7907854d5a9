import { sql, type Kysely } from 'kysely';
import { compileGroup } from '../domain/config/compile.ts';
import type { Group } from '../domain/config/group.ts';
import type { Config } from '../domain/config/schema.ts';
import { validateConfig, type ConfigProblem } from '../domain/config/validate.ts';
import { AppError } from '../errors.ts';
import { MEMBER_KINDS, systemAccount, type AccountRef } from '../ledger/accounts.ts';
import { loadSystemAccounts } from '../ledger/post.ts';
import type { DB } from '../store/schema.ts';
import type { Actor, Ctx, GroupSource } from './context.ts';
import { inTransaction } from './transaction.ts';

/** Validates the whole document, stores it as the next version and makes it current. */
export async function applyConfig(ctx: Ctx, doc: unknown, actor: Actor): Promise<{ version: number }> {
  const result = validateConfig(doc);
  if (!result.ok) {
    throw new AppError('INVALID_CONFIG', `The configuration has ${result.errors.length} problem(s)`, {
      problems: result.errors,
    });
  }
  const config = result.config;
  const version = await inTransaction(ctx.db, async (trx) => {
    // Serialize applies: two concurrent applies must not both take version N+1.
    await sql`lock table config_versions in exclusive mode`.execute(trx);
    const max = await trx
      .selectFrom('config_versions')
      .select((eb) => eb.fn.max('version').as('v'))
      .executeTakeFirst();
    const next = (max?.v ?? 0) + 1;
    if (max?.v) await assertHistoryKept(trx, (await getConfigVersion(trx, max.v)).config, config);
    await trx
      .insertInto('config_versions')
      .values({
        version: next,
        document: JSON.stringify(config) as never,
        created_at: ctx.clock.now(),
        created_by: actor.key_id,
      })
      .execute();
    const accounts = systemAccountsFor(config);
    await trx
      .insertInto('accounts')
      .values(accounts.map((a) => ({ program_id: a.program_id, kind: a.kind, owner_id: a.owner_id })))
      .onConflict((oc) => oc.columns(['program_id', 'kind', 'owner_id']).doNothing())
      .execute();
    return next;
  });
  await loadSystemAccounts(ctx.db);
  ctx.groups.invalidate();
  return { version };
}

/**
 * A program members have held points in stays in every later version with its currency: its
 * lots, balances and reversals are read through it (valuation, expiry, refunds), and a point
 * valued in another currency would silently change what members hold. Its rules, point value
 * and brand routing may change; a brand may move to a new program.
 */
async function assertHistoryKept(trx: Kysely<DB>, before: Config, after: Config): Promise<void> {
  const now = new Map(after.programs.map((p, i) => [p.id, { currency: p.currency, i }]));
  const changed = before.programs.filter((p) => now.get(p.id)?.currency !== p.currency);
  if (changed.length === 0) return;
  const used = await trx
    .selectFrom('accounts')
    .select('program_id')
    .distinct()
    .where('kind', 'in', MEMBER_KINDS)
    .where(
      'program_id',
      'in',
      changed.map((p) => p.id),
    )
    .execute();
  if (used.length === 0) return;
  const problems: ConfigProblem[] = used.map(({ program_id }) => {
    const kept = now.get(program_id);
    const was = before.programs.find((p) => p.id === program_id)!;
    return kept
      ? {
          path: `/programs/${kept.i}/currency`,
          message: `members hold points in ${program_id}: its currency stays ${was.currency}`,
        }
      : {
          path: '/programs',
          message: `members hold points in ${program_id}: it cannot be removed (a brand may use another program)`,
        };
  });
  throw new AppError('INVALID_CONFIG', `The configuration has ${problems.length} problem(s)`, { problems });
}

/** Every system account the configuration can post to, created at apply time. */
function systemAccountsFor(config: Config): AccountRef[] {
  const out: AccountRef[] = [];
  for (const p of config.programs) {
    for (const b of config.brands) {
      for (const kind of ['issuance', 'redemption', 'breakage', 'writeoff'] as const)
        out.push(systemAccount(p.id, kind, b.id));
    }
    for (const kind of ['transfer', 'conversion', 'adjustment'] as const)
      out.push(systemAccount(p.id, kind, config.group.id));
  }
  return out;
}

export async function getConfigVersion(
  db: Kysely<DB>,
  version?: number,
): Promise<{ version: number; created_at: Date; config: Config }> {
  let q = db.selectFrom('config_versions').selectAll();
  q = version === undefined ? q.orderBy('version', 'desc').limit(1) : q.where('version', '=', version);
  const row = await q.executeTakeFirst();
  if (!row)
    throw new AppError(
      version === undefined ? 'CONFIG_NOT_FOUND' : 'NOT_FOUND',
      undefined,
      version === undefined ? {} : { version },
    );
  return { version: row.version, created_at: row.created_at, config: row.document as unknown as Config };
}

export async function listConfigVersions(
  db: Kysely<DB>,
): Promise<{ version: number; created_at: Date; created_by: string | null }[]> {
  return db
    .selectFrom('config_versions')
    .select(['version', 'created_at', 'created_by'])
    .orderBy('version', 'desc')
    .limit(1000)
    .execute();
}

/**
 * The compiled configuration in force, cached. Another server instance may apply a newer
 * version, so the cache re-reads the version number at most once per `recheck_ms`.
 */
export function groupSource(db: Kysely<DB>, recheck_ms = 1000): GroupSource {
  let cached: Group | null = null;
  let checkedAt = 0;
  return {
    async current() {
      const now = Date.now();
      if (cached && now - checkedAt < recheck_ms) return cached;
      const head = await db
        .selectFrom('config_versions')
        .select('version')
        .orderBy('version', 'desc')
        .limit(1)
        .executeTakeFirst();
      checkedAt = now;
      if (!head) return (cached = null);
      if (cached?.version === head.version) return cached;
      const { config, version } = await getConfigVersion(db, head.version);
      cached = compileGroup(config, version);
      await loadSystemAccounts(db);
      return cached;
    },
    invalidate() {
      checkedAt = 0;
    },
  };
}

export async function requireGroup(ctx: Ctx): Promise<Group> {
  const g = await ctx.groups.current();
  if (!g) throw new AppError('NO_CONFIG');
  return g;
}
