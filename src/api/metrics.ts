import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { SharedReadStats } from '../services/balances-current.ts';
import type { SharedEventStats } from '../services/events/shared-accrual.ts';
import type { SharedStats } from '../services/redemptions/shared.ts';

export interface Metrics {
  readonly registry: Registry;
  readonly requests: Counter<'method' | 'route' | 'status'>;
  readonly duration: Histogram<'method' | 'route'>;
}

/** One registry per app instance, so tests that build several apps never share counters. */
export function createMetrics(
  shared: () => SharedStats,
  sharedEvents: () => SharedEventStats,
  sharedReads: () => SharedReadStats,
): Metrics {
  const registry = new Registry();
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  gauge(
    'pointpool_redemption_shared_transactions',
    'Transactions that carried several concurrent redemptions (since start)',
    () => shared().transactions,
  );
  gauge(
    'pointpool_redemptions_shared',
    'Redemptions that ran in a transaction shared with others (since start)',
    () => shared().redemptions,
  );
  gauge(
    'pointpool_redemption_shared_fallbacks',
    'Redemptions run again alone after their shared transaction failed (since start)',
    () => shared().fallbacks,
  );
  gauge(
    'pointpool_redemptions_read_together',
    "Redemptions planned against one read of their member's lots shared with others (since start)",
    () => shared().read_together,
  );
  gauge(
    'pointpool_event_shared_transactions',
    'Transactions that carried several concurrent single events of POST /v1/events (since start)',
    () => sharedEvents().transactions,
  );
  gauge(
    'pointpool_events_shared',
    'Single events answered in a transaction shared with others (since start)',
    () => sharedEvents().events,
  );
  gauge(
    'pointpool_event_shared_fallbacks',
    'Single events run again alone after their shared transaction failed (since start)',
    () => sharedEvents().fallbacks,
  );
  gauge(
    'pointpool_balance_read_shared_statements',
    'Statements that answered several concurrent balance reads (since start)',
    () => sharedReads().statements,
  );
  gauge(
    'pointpool_balance_reads_shared',
    'Balance reads answered by a statement shared with others (since start)',
    () => sharedReads().reads,
  );
  collectDefaultMetrics({ register: registry, prefix: 'pointpool_' });
  return {
    registry,
    requests: new Counter({
      name: 'pointpool_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'pointpool_http_request_duration_seconds',
      help: 'HTTP request latency by route',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
  };
}
