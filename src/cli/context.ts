// How every command reaches the store: DATABASE_URL (PostgreSQL) wins, else the embedded PGlite
// store in --data. Commands open the store, apply migrations, do one thing and close it.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../clock.ts';
import { createService, type Service, type ServiceOptions } from '../service.ts';
import type { Actor, Ctx } from '../services/context.ts';
import { groupSource } from '../services/config.ts';
import { migrateToLatest, type MigrateResult } from '../store/migrate.ts';
import { openStore, type Store } from '../store/connect.ts';
import { CliError } from './errors.ts';

export const DEFAULT_DATA_DIR = './.pointpool';

export interface StoreFlags {
  readonly data?: string | undefined;
}

export interface CliEnv {
  readonly databaseUrl: string | undefined;
  readonly dataDir: string;
}

export function cliEnv(flags: StoreFlags): CliEnv {
  const databaseUrl = process.env.DATABASE_URL?.trim() || undefined;
  return { databaseUrl, dataDir: flags.data ?? DEFAULT_DATA_DIR };
}

/** Changes made from the command line are recorded with no API key behind them. */
export const CLI_ACTOR: Actor = { key_id: null, request_id: null };

export interface Opened {
  readonly store: Store;
  readonly ctx: Ctx;
  readonly migrations: MigrateResult;
}

/**
 * Commands that read what a store holds (verify, settle, report) refuse an embedded store
 * directory that holds no store: opening one creates an empty store, so a mistyped --data would
 * report an empty ledger as ok. Commands that set a store up (serve, migrate, apply, demo, keys)
 * create it.
 */
function requireExistingStore(env: CliEnv): void {
  if (env.databaseUrl || env.dataDir.startsWith('memory://')) return;
  // PGlite, like PostgreSQL, writes PG_VERSION when it initialises a data directory.
  if (existsSync(join(env.dataDir, 'PG_VERSION'))) return;
  throw new CliError(`no pointpool store in ${env.dataDir}`, {
    hint: existsSync(env.dataDir)
      ? 'that directory is not an embedded store: check --data, or set DATABASE_URL for PostgreSQL'
      : `check --data (default ${DEFAULT_DATA_DIR}); \`pointpool serve --data DIR\` or \`pointpool apply FILE --data DIR\` creates a store`,
  });
}

/**
 * Opens the store and migrates it, without building the HTTP app; closes it after `fn`. With
 * `existing`, an embedded store must already exist (requireExistingStore).
 */
export async function withStore<T>(
  env: CliEnv,
  fn: (o: Opened) => Promise<T>,
  opts: { readonly existing?: boolean } = {},
): Promise<T> {
  if (opts.existing) requireExistingStore(env);
  const store = await openStore({ databaseUrl: env.databaseUrl, dataDir: env.dataDir, poolSize: 2 });
  try {
    const migrations = await migrateToLatest(store.db as never);
    const ctx: Ctx = {
      db: store.db,
      storeKind: store.kind,
      clock: systemClock,
      groups: groupSource(store.db),
    };
    return await fn({ store, ctx, migrations });
  } finally {
    await store.close();
  }
}

/** The whole service (store, migrations, app not listening); closes it after `fn`. */
export async function withService<T>(
  env: CliEnv,
  extra: Omit<ServiceOptions, 'databaseUrl' | 'dataDir'>,
  fn: (s: Service) => Promise<T>,
): Promise<T> {
  const service = await createService({ ...extra, databaseUrl: env.databaseUrl, dataDir: env.dataDir });
  try {
    return await fn(service);
  } finally {
    await service.close();
  }
}
