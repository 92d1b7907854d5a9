import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

// The embedded store (PGlite) is one process's database: a second process opening the same data
// directory does not wait or fail, it hangs or corrupts the files. So the process that opens a
// --data directory holds a lock file naming its pid, and another one is refused at once with
// who holds it. A lock left by a process that died (SIGKILL, a crash) names a pid that no longer
// runs and is taken over.

export class StoreInUseError extends Error {
  constructor(
    readonly dir: string,
    readonly pid: number,
  ) {
    super(`the embedded store in ${dir} is in use by process ${pid}`);
    this.name = 'StoreInUseError';
  }
}

const LOCK_FILE = 'pointpool.lock';

const codeOf = (e: unknown): unknown => (e as { code?: unknown } | null)?.code;

function running(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return codeOf(e) === 'EPERM'; // alive, owned by another user
  }
}

/** Takes the directory's lock or throws StoreInUseError; returns its release (idempotent). */
export function lockDataDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      let held = true;
      const release = () => {
        if (!held) return;
        held = false;
        process.off('exit', release);
        try {
          if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
        } catch {
          // already gone: nothing to release
        }
      };
      process.once('exit', release);
      return release;
    } catch (e) {
      if (codeOf(e) !== 'EEXIST') throw e;
    }
    let pid: number;
    try {
      pid = Number(readFileSync(path, 'utf8').trim());
    } catch (e) {
      if (codeOf(e) === 'ENOENT') continue; // released meanwhile: try again
      throw e;
    }
    if (Number.isSafeInteger(pid) && pid > 0 && running(pid)) throw new StoreInUseError(dir, pid);
    try {
      unlinkSync(path); // stale: its process is gone
    } catch (e) {
      if (codeOf(e) !== 'ENOENT') throw e;
    }
  }
  throw new Error(`could not take the lock ${path}: other processes keep taking it`);
}
