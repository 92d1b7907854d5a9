// The server's memory and CPU time, read from /proc/<pid> (Linux): VmRSS now, VmHWM the peak
// since start, utime + stime. A sampler polls VmRSS while a phase runs, to show whether memory
// stays flat during it. CPU time per operation is the figure that survives a busy machine best.

import { readdirSync, readFileSync } from 'node:fs';

export interface ProcMemory {
  readonly rss_bytes: number;
  readonly hwm_bytes: number;
}

export function procMemory(pid: number): ProcMemory | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) =>
      Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
    return { rss_bytes: kb('VmRSS'), hwm_bytes: kb('VmHWM') };
  } catch {
    return null; // not Linux, or the process is gone
  }
}

/** A process's name and the fields of /proc/<pid>/stat after it, or null when it is gone. */
function readStat(pid: number | string): { comm: string; fields: string[] } | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null; // not Linux, or the process has exited
  }
  const close = stat.lastIndexOf(')'); // the name may itself hold ") "
  return { comm: stat.slice(stat.indexOf('(') + 1, close), fields: stat.slice(close + 2).split(' ') };
}

/** Clock ticks (USER_HZ = 100) to seconds, summing the given fields of a stat line. */
const ticks = (fields: string[], ...at: number[]) => at.reduce((n, i) => n + Number(fields[i]), 0) / 100;

/** CPU seconds (user + system) the process has used so far, or NaN. */
export function procCpuSeconds(pid: number): number {
  const stat = readStat(pid);
  return stat ? ticks(stat.fields, 11, 12) : NaN; // utime, stime
}

/**
 * CPU seconds (user + system) used so far by the processes named postgres on this machine (the
 * PostgreSQL server's backends and helpers), or NaN when there are none (PGlite runs in the
 * server's own process). A backend that has exited counts too: the postmaster reaps it, and the
 * kernel adds its seconds to the postmaster's children's (cutime, cstime).
 */
export function postgresCpuSeconds(): number {
  let total = 0;
  let found = false;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(entry);
    if (stat?.comm !== 'postgres') continue;
    total += ticks(stat.fields, 11, 12, 13, 14); // utime, stime, cutime, cstime
    found = true;
  }
  return found ? total : NaN;
}

export interface PhaseMemory {
  readonly start_rss_bytes: number;
  readonly peak_rss_bytes: number;
  readonly end_rss_bytes: number;
  readonly samples: number;
}

export class RssSampler {
  #timer: NodeJS.Timeout;
  #start: number;
  #peak: number;
  #last: number;
  #samples = 0;
  #windowPeak: number;

  constructor(
    private readonly pid: number,
    interval_ms = 100,
  ) {
    const m = procMemory(pid);
    this.#start = this.#peak = this.#last = this.#windowPeak = m?.rss_bytes ?? NaN;
    this.#timer = setInterval(() => this.#sample(), interval_ms);
  }

  #sample(): void {
    const m = procMemory(this.pid);
    if (!m) return;
    this.#samples++;
    this.#last = m.rss_bytes;
    if (m.rss_bytes > this.#peak || Number.isNaN(this.#peak)) this.#peak = m.rss_bytes;
    if (m.rss_bytes > this.#windowPeak || Number.isNaN(this.#windowPeak)) this.#windowPeak = m.rss_bytes;
  }

  /** The peak RSS seen since the previous call (or the start), then starts a new window. */
  takePeak(): number {
    this.#sample();
    const peak = this.#windowPeak;
    this.#windowPeak = this.#last;
    return peak;
  }

  stop(): PhaseMemory {
    this.#sample();
    clearInterval(this.#timer);
    return {
      start_rss_bytes: this.#start,
      peak_rss_bytes: this.#peak,
      end_rss_bytes: this.#last,
      samples: this.#samples,
    };
  }
}

export const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
