import { randomFillSync } from 'node:crypto';

// Ids of redemptions, transfers and adjustments: a prefix and 80 random bits in hex. Each call
// for fresh bytes costs a trip to the kernel's random source (~45 µs on the project's VM, more
// than the rest of building a redemption's rows), so bytes are drawn 4 KiB at a time.

const POOL_BYTES = 4096;
const ID_BYTES = 10;
const pool = Buffer.alloc(POOL_BYTES);
let offset = POOL_BYTES;

/** `${prefix}_` and 20 hex digits from a cryptographically secure source. */
export function newId(prefix: string): string {
  if (offset + ID_BYTES > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + ID_BYTES);
  offset += ID_BYTES;
  return `${prefix}_${hex}`;
}
