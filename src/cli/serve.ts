// `pointpool serve`: the HTTP service. Migrates, loads the demo group into an empty store,
// makes sure an admin key exists, listens, and shuts down cleanly on SIGTERM/SIGINT.

import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { createService, type Service } from '../service.ts';
import { cliEnv, type StoreFlags } from './context.ts';
import { applyDemoConfig } from './demo.ts';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from './errors.ts';

export interface ServeFlags extends StoreFlags {
  readonly port?: string | undefined;
  readonly host?: string | undefined;
  /** commander's --no-demo sets this false. */
  readonly demo?: boolean | undefined;
}

export const DEFAULT_PORT = 8080;
/** How long in-flight requests get to finish on shutdown before the process exits anyway. */
export const SHUTDOWN_TIMEOUT_MS = 10_000;

export function parsePort(value: string, from: string): number {
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value.trim()) || !Number.isInteger(n) || n > 65535)
    throw new CliError(`${from} must be a port number 0-65535, got "${value}"`, { exitCode: EXIT_USAGE });
  return n;
}

/** The in-process job scheduler's period: POINTPOOL_JOB_INTERVAL_MS, default one minute, 0 = off. */
function jobInterval(): number {
  const raw = process.env.POINTPOOL_JOB_INTERVAL_MS;
  if (raw === undefined || raw === '') return 60_000;
  if (!/^\d{1,9}$/.test(raw))
    throw new CliError(`POINTPOOL_JOB_INTERVAL_MS must be a whole number of milliseconds, got "${raw}"`, {
      exitCode: EXIT_USAGE,
    });
  return Number(raw);
}

/** Runs until a signal arrives; resolves with the process exit code once shut down. */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  const env = cliEnv(flags);
  const port =
    flags.port !== undefined
      ? parsePort(flags.port, '--port')
      : process.env.PORT
        ? parsePort(process.env.PORT, 'PORT')
        : DEFAULT_PORT;
  const host = flags.host ?? process.env.HOST ?? '0.0.0.0';
  const givenKey = process.env.POINTPOOL_ADMIN_KEY || undefined;
  const adminKey = givenKey ?? `pp_admin_${randomBytes(24).toString('base64url')}`;

  const service = await createService({
    databaseUrl: env.databaseUrl,
    dataDir: env.dataDir,
    adminKey,
    logger: { level: process.env.LOG_LEVEL ?? 'info' },
    jobIntervalMs: jobInterval(),
  });
  let demoVersion: number | null = null;
  try {
    if (flags.demo !== false && !(await service.ctx.groups.current()))
      demoVersion = (await applyDemoConfig(service.ctx)).version;
    await service.app.listen({ port, host });
  } catch (e) {
    await service.close().catch(() => undefined);
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE')
      throw new CliError(`port ${port} is already in use`, {
        hint: 'stop the other process or choose another port with --port N or PORT=N',
        cause: e,
      });
    throw e;
  }
  printBanner(service, { host, adminKey, generated: givenKey === undefined, demoVersion });
  return waitForShutdown(service);
}

function printBanner(
  service: Service,
  o: { host: string; adminKey: string; generated: boolean; demoVersion: number | null },
): void {
  const addr = service.app.server.address() as AddressInfo;
  const local = ['0.0.0.0', '::', '127.0.0.1', '::1', 'localhost'].includes(o.host);
  const url = `http://${local ? 'localhost' : o.host.includes(':') ? `[${o.host}]` : o.host}:${addr.port}`;
  const key = o.generated ? o.adminKey : '$POINTPOOL_ADMIN_KEY';
  const lines = [
    '',
    `pointpool is running on ${service.store.describe}`,
    ...(o.demoVersion !== null
      ? [
          `  Config:     the store was empty: loaded the demo group (demo/group.yaml) as version ${o.demoVersion}`,
        ]
      : []),
    `  URL:        ${url}`,
    `  API docs:   ${url}/docs`,
    o.generated
      ? `  Admin key:  ${o.adminKey}\n              (generated for this run; set POINTPOOL_ADMIN_KEY to keep one across restarts)`
      : '  Admin key:  the secret in POINTPOOL_ADMIN_KEY',
    `  Try:        curl -s -H "Authorization: Bearer ${key}" ${url}/v1/config`,
    '',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

function waitForShutdown(service: Service): Promise<number> {
  return new Promise((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`${signal} again: exiting without waiting\n`);
        process.exit(EXIT_FAILURE);
      }
      stopping = true;
      service.app.log.info({ signal }, 'shutting down');
      const timer = setTimeout(() => {
        process.stderr.write(`shutdown took longer than ${SHUTDOWN_TIMEOUT_MS} ms: exiting\n`);
        process.exit(EXIT_FAILURE);
      }, SHUTDOWN_TIMEOUT_MS);
      timer.unref();
      service.close().then(
        () => resolve(EXIT_OK),
        (err: unknown) => {
          service.app.log.error({ err }, 'shutdown failed');
          resolve(EXIT_FAILURE);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
