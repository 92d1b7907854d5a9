import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';

// Loaded by `npm test` before every test file (--import). A failing property then names the
// assertion that failed in its report, which the test runner prints; by default fast-check
// attaches it as the error's cause, which the runner leaves out, and a property that failed by
// timing alone cannot be replayed to find it.
fc.configureGlobal({ includeErrorInReport: true });

// Every test process starts the embedded database, and V8 then spends more CPU recompiling its
// WebAssembly for speed (in background threads, on this 2-core machine) than a test file runs it
// for: with the baseline compiler only, the embedded-store pass took 26% less CPU and 363 s
// instead of 486 s back to back (README, Tests). Set here, before anything compiles it. The
// service is not run this way: a server runs long enough for the optimized code to pay.
export const WASM_BASELINE_ONLY = '--liftoff-only';
setFlagsFromString(WASM_BASELINE_ONLY);
