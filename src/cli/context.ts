// How every command reaches the store: DATABASE_URL (PostgreSQL) wins, else the embedded PGlite
// store in --data. Commands open the store, apply migrations, do one thing and close it.

import { systemClock } from '../clock.ts';
import { createService, type Service, type ServiceOptions } from '../service.ts';
import type { Actor, Ctx } from '../services/context.ts';
import { groupSource } from '../services/config.ts';
import { migrateToLatest, type MigrateResult } from '../store/migrate.ts';
import { openStore, type Store } from '../store/connect.ts';

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

/** Opens the store and migrates it, without building the HTTP app; closes it after `fn`. */
export async function withStore<T>(env: CliEnv, fn: (o: Opened) => Promise<T>): Promise<T> {
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
