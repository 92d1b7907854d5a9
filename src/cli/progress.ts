// A dependency-free progress bar on stderr. On a terminal it redraws one line; elsewhere (CI,
// pipes) it prints a line only when the step changes or every 10 %, so logs stay short.

export interface Progress {
  readonly step: string;
  readonly done: number;
  readonly total: number;
}

const WIDTH = 30;

export function renderBar(p: Progress): string {
  const ratio = p.total > 0 ? Math.min(1, Math.max(0, p.done / p.total)) : 1;
  const filled = Math.round(ratio * WIDTH);
  const pct = String(Math.floor(ratio * 100)).padStart(3);
  return `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${pct}% ${p.step} (${p.done}/${p.total})`;
}

export function progressBar(out: NodeJS.WriteStream = process.stderr): {
  update(p: Progress): void;
  finish(): void;
} {
  const tty = out.isTTY === true;
  let lastStep = '';
  let lastDecile = -1;
  let drawn = false;
  return {
    update(p) {
      const line = renderBar(p);
      if (tty) {
        out.write(`\r${line}\u001b[K`);
        drawn = true;
        return;
      }
      const decile = p.total > 0 ? Math.floor((p.done / p.total) * 10) : 10;
      if (p.step !== lastStep || decile !== lastDecile) out.write(`${line}\n`);
      lastStep = p.step;
      lastDecile = decile;
    },
    finish() {
      if (tty && drawn) out.write('\n');
      drawn = false;
    },
  };
}
