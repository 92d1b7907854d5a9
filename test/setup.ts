import fc from 'fast-check';

// Loaded by `npm test` before every test file (--import). A failing property then names the
// assertion that failed in its report, which the test runner prints; by default fast-check
// attaches it as the error's cause, which the runner leaves out, and a property that failed by
// timing alone cannot be replayed to find it.
fc.configureGlobal({ includeErrorInReport: true });
