// The CLI as a user runs it: child processes against a temporary embedded store.

import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { WASM_BASELINE_ONLY } from '../setup.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(ROOT, 'src/cli/main.ts');

interface Run {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The child's environment: always the embedded store, whatever the test run was given. */
function childEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', ...extra };
  delete env.DATABASE_URL;
  delete env.POINTPOOL_ADMIN_KEY;
  delete env.PORT;
  delete env.NODE_TEST_CONTEXT; // the child is a program, not a test file
  return { ...env, ...extra };
}

function start(args: string[], env: NodeJS.ProcessEnv = childEnv()) {
  // Compiled as in this process (test/setup.ts): the children start a store from scratch.
  const child = spawn(process.execPath, [WASM_BASELINE_ONLY, '--import', 'tsx', MAIN, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<Run>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, out: () => stdout };
}

const cli = (...args: string[]): Promise<Run> => start(args).done;

// The children always use the embedded store (childEnv), so the PostgreSQL pass of the suite
// would run the same thing again: it runs once, in the embedded pass.
const SAME_IN_BOTH = process.env.DATABASE_URL ? 'store-independent: runs in the embedded-store pass' : false;

void describe('pointpool CLI', { skip: SAME_IN_BOTH }, () => {
  let dir = '';
  let data = '';
  // Runs that never open the store start at once, alongside the first apply, to keep this fast.
  let invalid: Promise<Run>;
  let missing: Promise<Run>;
  let usage: Promise<Run>;
  let noStore: Promise<Run>;
  let badInstants: Promise<Run[]>;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pointpool-cli-'));
    data = join(dir, 'store');
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      'group: { id: acme, common_currency: USD, default_program: nope }\nbrands: []\nstores: []\nprograms: []\n',
    );
    invalid = cli('apply', bad, '--data', data);
    missing = cli('apply', join(dir, 'nope.yaml'), '--data', data);
    usage = cli('keys', 'create', '--scope', 'admin');
    noStore = cli('verify', '--data', join(dir, 'typo'));
    badInstants = Promise.all(
      ['0000-01-01T00:00:00Z', '2026-11-31T00:00:00Z', '2026-11-30'].map((to) =>
        cli('settle', 'close', '--to', to, '--data', data),
      ),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  void it('apply demo/group.yaml stores version 1', async () => {
    const r = await cli('apply', 'demo/group.yaml', '--data', data);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout.trim()), { version: 1 });
  });

  void it('apply of an invalid file exits 1 and names the path of each problem', async () => {
    const r = await invalid;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^\/group\/default_program: /m);
  });

  void it('apply of a missing file exits 1 and says so; a usage error exits 2', async () => {
    const m = await missing;
    assert.equal(m.code, 1);
    assert.match(m.stderr, /file not found/);
    assert.equal((await usage).code, 2);
  });

  void it('verify of a --data directory that holds no store exits 1 without creating it', async () => {
    const r = await noStore;
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /no pointpool store in .*typo/);
    assert.match(r.stderr, /check --data/);
    assert.equal(existsSync(join(dir, 'typo')), false);
  });

  void it('settle close refuses an instant that is malformed, does not exist or predates 1970 (exit 2)', async () => {
    for (const r of await badInstants) {
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.match(r.stderr, /--to must be an RFC 3339 timestamp from 1970-01-01T00:00:00.000Z/);
    }
  });

  void it('verify exits 0 with every check ✓', async () => {
    const r = await cli('verify', '--data', data);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const checks = r.stdout.split('\n').filter((l) => /^[✓✗] /.test(l));
    assert.ok(checks.length >= 5, r.stdout);
    assert.ok(
      checks.every((l) => l.startsWith('✓ ')),
      r.stdout,
    );
  });

  void it('serve answers /healthz and exits 0 on SIGTERM', async () => {
    const key = 'test-admin-key-0123456789';
    const s = start(
      ['serve', '--port', '0', '--host', '127.0.0.1', '--data', data],
      childEnv({ POINTPOOL_ADMIN_KEY: key }),
    );
    try {
      const url = await waitFor(() => /URL:\s+(http:\/\/\S+)/.exec(s.out())?.[1], 15_000);
      const health = await fetch(`${url}/healthz`);
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { config_version: number }).config_version, 1);
      const config = await fetch(`${url}/v1/config`, { headers: { authorization: `Bearer ${key}` } });
      assert.equal(config.status, 200);
      assert.ok(!s.out().includes(key), 'a secret given in the environment is never printed');
      // The embedded store serves one process: a command on the same directory is refused at once.
      const busy = await cli('verify', '--data', data);
      assert.equal(busy.code, 1, busy.stdout + busy.stderr);
      assert.match(busy.stderr, new RegExp(`in use by process ${s.child.pid}`));
      assert.match(busy.stderr, /stop that process/);
    } finally {
      s.child.kill('SIGTERM');
    }
    const r = await s.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(existsSync(join(data, 'pointpool.lock')), false, 'the lock is released on exit');
  });

  void it('a lock left by a process that no longer runs is taken over', async () => {
    writeFileSync(join(data, 'pointpool.lock'), '2147483646\n');
    const r = await cli('verify', '--data', data);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.equal(existsSync(join(data, 'pointpool.lock')), false);
  });
});

async function waitFor<T>(probe: () => T | undefined, timeout_ms: number): Promise<T> {
  const until = Date.now() + timeout_ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('timed out waiting for the server to print its URL');
    await new Promise((r) => setTimeout(r, 50));
  }
}
