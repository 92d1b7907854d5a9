import { buildApp, type App } from './api/app.ts';
import { startScheduler } from './jobs/scheduler.ts';
import { systemClock, type Clock } from './clock.ts';
import { bootstrapAdminKey } from './services/api-keys.ts';
import { groupSource } from './services/config.ts';
import type { Ctx } from './services/context.ts';
import { migrateToLatest } from './store/migrate.ts';
import { openStore, type Store, type StoreOptions } from './store/connect.ts';

export interface ServiceOptions extends StoreOptions {
  readonly adminKey?: string | undefined;
  readonly clock?: Clock;
  readonly logger?: boolean | Record<string, unknown>;
  readonly routes?: Parameters<typeof buildApp>[0]['routes'];
  /** Run the jobs in-process every this many ms (serve); absent or 0: never (tests, CLI). */
  readonly jobIntervalMs?: number | undefined;
}

export interface Service {
  readonly app: App;
  readonly store: Store;
  readonly ctx: Ctx;
  close(): Promise<void>;
}

/** Opens the store, applies migrations, bootstraps the admin key and builds the app (not listening). */
export async function createService(opts: ServiceOptions): Promise<Service> {
  const store = await openStore(opts);
  try {
    await migrateToLatest(store.db as never);
    const clock = opts.clock ?? systemClock;
    if (opts.adminKey) await bootstrapAdminKey(store.db, opts.adminKey, clock.now());
    const ctx: Ctx = { db: store.db, storeKind: store.kind, clock, groups: groupSource(store.db) };
    const app = await buildApp({ ctx, logger: opts.logger ?? false, routes: opts.routes });
    const stopJobs = opts.jobIntervalMs
      ? startScheduler(ctx, app.log, opts.jobIntervalMs)
      : async () => undefined;
    return {
      app,
      store,
      ctx,
      async close() {
        await stopJobs();
        await app.close();
        await store.close();
      },
    };
  } catch (e) {
    await store.close();
    throw e;
  }
}
