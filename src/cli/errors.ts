// Errors the CLI reports to a person: what went wrong and what to do next. A CliError carries
// its exit code (1 failure, 2 usage); anything else is translated by `explain`.

import { StoreInUseError } from '../store/dir-lock.ts';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export class CliError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;

  constructor(message: string, opts: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, { cause: opts.cause });
    this.name = 'CliError';
    this.exitCode = opts.exitCode ?? EXIT_FAILURE;
    this.hint = opts.hint;
  }
}

/** The error and its causes, outermost first (bounded: cause chains can be cyclic). */
function chain(e: unknown): unknown[] {
  const out: unknown[] = [];
  for (let cur: unknown = e; cur !== undefined && cur !== null && out.length < 10;) {
    out.push(cur);
    if (cur instanceof AggregateError) out.push(...(cur.errors as unknown[]));
    cur = cur instanceof Error ? cur.cause : undefined;
  }
  return out;
}

const codeOf = (e: unknown): string | undefined =>
  typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string'
    ? (e as { code: string }).code
    : undefined;

/** Host, port and database of a connection string, without the password. */
export function describeDatabaseUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

const EMBEDDED = 'or unset DATABASE_URL to use the embedded store (--data, default ./.pointpool)';

/** Turns a connection failure to PostgreSQL into a CliError that names the next step. */
function explainPostgres(e: unknown, databaseUrl: string): CliError | null {
  const where = describeDatabaseUrl(databaseUrl);
  for (const c of chain(e)) {
    const code = codeOf(c);
    const msg = c instanceof Error ? c.message : String(c);
    if (code === 'ECONNREFUSED' || code === 'ETIMEDOUT' || code === 'EHOSTUNREACH')
      return new CliError(`cannot connect to PostgreSQL at ${where} (DATABASE_URL): ${code}`, {
        hint: `check that PostgreSQL is running and accepting connections there, ${EMBEDDED}`,
        cause: e,
      });
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      return new CliError(`cannot resolve the PostgreSQL host in DATABASE_URL (${where})`, {
        hint: `check the host name in DATABASE_URL, ${EMBEDDED}`,
        cause: e,
      });
    if (code === '28P01' || code === '28000')
      return new CliError(`PostgreSQL at ${where} refused the credentials in DATABASE_URL: ${msg}`, {
        hint: 'check the user and password in DATABASE_URL',
        cause: e,
      });
    if (code === '3D000')
      return new CliError(`PostgreSQL at ${where}: ${msg}`, {
        hint: `create it first (createdb ${where.split('/').pop() ?? ''}), or point DATABASE_URL at an existing database`,
        cause: e,
      });
  }
  return null;
}

/** Any error as a CliError with a message and, where we know one, the next step. */
export function explain(e: unknown, env: { databaseUrl?: string | undefined }): CliError {
  if (e instanceof CliError) return e;
  if (e instanceof StoreInUseError)
    return new CliError(e.message, {
      hint: `stop that process (a running \`pointpool serve\`?) or use its HTTP API: an embedded store serves one process at a time; PostgreSQL (DATABASE_URL) serves many`,
      cause: e,
    });
  if (env.databaseUrl) {
    const pg = explainPostgres(e, env.databaseUrl);
    if (pg) return pg;
    if (e instanceof TypeError && codeOf(e) === 'ERR_INVALID_URL')
      return new CliError('DATABASE_URL is not a valid URL', {
        hint: 'use the form postgres://user:password@host:5432/database',
        cause: e,
      });
  }
  const message = e instanceof Error ? e.message : String(e);
  return new CliError(message, { cause: e });
}

/** Prints the error (and its hint) on stderr and returns the exit code. */
export function report(e: unknown, env: { databaseUrl?: string | undefined }): number {
  const err = explain(e, env);
  process.stderr.write(`error: ${err.message}\n`);
  if (err.hint) process.stderr.write(`  → ${err.hint}\n`);
  if (process.env.POINTPOOL_DEBUG && err.cause !== undefined) console.error(err.cause);
  return err.exitCode;
}
