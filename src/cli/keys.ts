import { configuredBrands, createApiKey, parseScope } from '../services/api-keys.ts';
import { withStore, type CliEnv } from './context.ts';
import { CliError, EXIT_OK, EXIT_USAGE } from './errors.ts';

/** `pointpool keys create`: creates a key and prints its secret, the only time it is shown. */
export async function createKeyCommand(env: CliEnv, opts: { scope: string; name: string }): Promise<number> {
  if (!parseScope(opts.scope))
    throw new CliError(`invalid scope "${opts.scope}"`, {
      hint: 'use admin, read or brand:<brand_id>',
      exitCode: EXIT_USAGE,
    });
  if (opts.name.trim() === '' || opts.name.length > 200)
    throw new CliError('--name must be 1 to 200 characters', { exitCode: EXIT_USAGE });
  return withStore(env, async ({ ctx }) => {
    const key = await createApiKey(
      ctx.db,
      { name: opts.name, scope: opts.scope },
      await configuredBrands(ctx),
      ctx.clock.now(),
    );
    process.stdout.write(
      `id:     ${key.id}\nscope:  ${key.scope}\nname:   ${key.name}\nsecret: ${key.secret}\n`,
    );
    process.stderr.write(
      'The secret is shown only now; store it safely. Use it as: Authorization: Bearer <secret>\n',
    );
    return EXIT_OK;
  });
}
