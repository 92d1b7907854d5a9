import { withStore, type CliEnv } from './context.ts';
import { EXIT_OK } from './errors.ts';

/** `pointpool migrate`: applies pending migrations and names them. */
export async function migrateCommand(env: CliEnv): Promise<number> {
  return withStore(env, async ({ store, migrations }) => {
    if (migrations.applied.length === 0) process.stdout.write(`${store.describe}: already up to date\n`);
    for (const name of migrations.applied) process.stdout.write(`applied ${name}\n`);
    if (migrations.applied.length > 0) process.stdout.write(`${store.describe}: up to date\n`);
    return EXIT_OK;
  });
}
