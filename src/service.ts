import type { RequestListener } from 'node:http';
import type { Router } from 'express';
import { eventsRouter, type EventDetailExtension } from './api/events.js';
import { deadLettersRouter, type DeadLetterHooks } from './api/dead-letters.js';
import { healthRouter, type HealthCheck } from './api/health.js';
import { createApp } from './app.js';
import { systemClock, type Clock } from './clock.js';
import { ConfigError, type Config } from './config.js';
import { AcceptService, PROCESS_EVENT_JOB } from './inbound/accept.js';
import { HandlerRegistry } from './inbound/handlers.js';
import { EventProcessor } from './inbound/processor.js';
import { ingestHandler, ingestSource } from './inbound/ingest.js';
import { StandardWebhooksVerifier } from './inbound/verifiers/standard-webhooks.js';
import { StripeVerifier } from './inbound/verifiers/stripe.js';
import type { Verifier } from './inbound/verifiers/verifier.js';
import { SqliteJobQueue } from './jobs/sqlite-queue.js';
import { WorkerPool } from './jobs/worker.js';
import { deliveriesRouter, eventDeliveriesExtension } from './api/deliveries.js';
import { webhooksRouter } from './api/webhooks.js';
import { Outbound } from './outbound/outbound.js';
import { FORWARD_HANDLER } from './outbound/publisher.js';
import { Store } from './store/store.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { Metrics, QUEUES, type QueueName } from './telemetry/metrics.js';

export interface ServiceOptions {
  clock?: Clock;
  logger?: Logger;
  /** Registers extra handlers (tests, embedding applications). */
  registerHandlers?: (registry: HandlerRegistry) => void | Promise<void>;
  /** Skip prom-client's process metrics (they are global and tests build many services). */
  defaultMetrics?: boolean;
}

export interface Service {
  app: RequestListener;
  config: Config;
  logger: Logger;
  metrics: Metrics;
  store: Store;
  jobs: SqliteJobQueue;
  registry: HandlerRegistry;
  outbound: Outbound;
  /** Starts the workers and the periodic purge. */
  start(): void;
  /** Stops the workers (waiting for running jobs up to `deadlineMs`, SHUTDOWN_TIMEOUT unless given) and closes the store. */
  stop(deadlineMs?: number): Promise<{ unfinished: number }>;
  shuttingDown(): boolean;
}

/**
 * The composition root: builds every part from the configuration, in dependency order
 * (telemetry → store → jobs → inbound → api → app). Tests swap the clock or logger here.
 */
export async function createService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger({
    level: config.logLevel, service: config.telemetry.serviceName, environment: config.telemetry.environment,
    loki: config.telemetry.lokiUrl ? { url: config.telemetry.lokiUrl } : null,
  });
  const metrics = new Metrics({ eventTypeAllowlist: config.eventTypeAllowlist, defaultMetrics: options.defaultMetrics });
  const store = Store.open(config.dbFile, config.dbSynchronous, clock, (operation, seconds) => metrics.dbQueryTimed(operation, seconds), {
    lookup: (cache, hit, seconds) => metrics.cacheLookup(cache, hit, seconds),
    operation: (cache, operation, seconds) => metrics.cacheOperation(cache, operation, seconds),
  });
  const jobs = new SqliteJobQueue(store.db, clock, (operation, seconds) => metrics.dbQueryTimed(operation, seconds));

  const verifiers = new Map<string, Verifier>();
  if (config.stripe) verifiers.set('stripe', new StripeVerifier(config.stripe.secret, config.stripe.toleranceSeconds));
  for (const [source, secrets] of config.sources) verifiers.set(source, new StandardWebhooksVerifier(secrets));
  const ratePerSecond = config.rateLimit.max / (config.rateLimit.windowMs / 1000);
  for (const source of verifiers.keys()) metrics.sourceConfigured(source, ratePerSecond);

  const registry = new HandlerRegistry();
  await options.registerHandlers?.(registry);
  if (registry.has(FORWARD_HANDLER)) {
    throw new ConfigError('HANDLERS_MODULE', `registers a handler named ${FORWARD_HANDLER}, the name of the built-in handler that forwards events to endpoints; give it another name`);
  }

  const accept = new AcceptService(store, jobs, metrics, logger, { idempotencyTtlMs: config.idempotencyTtlMs, maxAttempts: config.worker.maxAttempts });
  const processor = new EventProcessor(store, registry, metrics, logger, clock, {
    baseMs: config.worker.backoffBaseMs, factor: config.worker.backoffFactor, maxMs: config.worker.backoffMaxMs,
  }, config.worker.runTimeoutMs);
  const eventWorkers = new WorkerPool(jobs, {
    queue: 'events', concurrency: config.worker.concurrency, leaseMs: config.worker.leaseMs, pollMs: config.worker.pollMs, run: processor.run, logger,
    runnerFailed: processor.runnerFailed,
  });
  accept.handOffTo(eventWorkers);

  const deadLetterHooks = new Map<string, DeadLetterHooks>([[PROCESS_EVENT_JOB, {
    describe: (job) => {
      const event = store.events.get(job.ref);
      return event ? { event: { id: event.id, source: event.source, event_id: event.eventId, type: event.type } } : {};
    },
    replayed: (job) => store.events.setStatus(job.ref, 'pending', 0, null),
  }]]);
  const eventExtensions: EventDetailExtension[] = [];

  // ── outbound: endpoints, deliveries (queue 'deliveries'), notifications ──
  const outbound = new Outbound({ config, store, jobs, metrics, logger, clock, registry });
  eventExtensions.push(eventDeliveriesExtension(store));
  for (const [kind, hooks] of outbound.deadLetterHooks()) deadLetterHooks.set(kind, hooks);
  const outboundRouters: Router[] = [
    webhooksRouter(store, outbound, { allowPrivateDestinations: config.delivery.allowPrivateDestinations }),
    deliveriesRouter(store, outbound),
  ];
  // ── end outbound ──

  /** How long the most overdue job of a queue has been due: waiting in the table, or claimed by a pool and not started. */
  const oldestDueAgeMs = (queue: QueueName): number => {
    const now = clock.now();
    const claimed = queue === 'events' ? eventWorkers.waitingAgeMs(now) : outbound.waitingAgeMs(queue, now);
    return Math.max(jobs.oldestPendingAgeMs(queue), claimed);
  };
  metrics.setGaugeSources({
    queueSizes: () => Object.fromEntries(QUEUES.map((queue) => [queue, jobs.pendingCount(queue)])) as Record<QueueName, number>,
    deadLetterSize: () => jobs.deadCount(),
    oldestPendingDeliveryAgeSeconds: () => oldestDueAgeMs('deliveries') / 1000,
    parkedDeliveries: () => store.deliveries.parkedCount(),
    dbConnections: () => ({ open: store.isOpen ? 1 : 0 }),
    dbUp: () => store.ping() && store.writeFailure === null,
    cacheUp: () => true,
  });

  let stopping = false;
  const checks: HealthCheck[] = [
    // A failing background checkpoint does not stop writes, but the WAL grows: shown, not failed.
    { name: 'database', run: () => ({ ok: store.ping() && store.writeFailure === null, write_error: store.writeFailure, checkpoint_error: store.checkpointError }) },
    {
      name: 'queue',
      run: () => ({
        ok: true,
        pending: QUEUES.reduce((sum, queue) => sum + jobs.pendingCount(queue), 0),
        oldest_pending_age_seconds: Math.round(Math.max(...QUEUES.map(oldestDueAgeMs)) / 1000),
        dead_letter: jobs.deadCount(),
      }),
    },
    outbound.healthCheck(),
  ];
  const adminRouters: Router[] = [eventsRouter(store, eventExtensions), deadLettersRouter(jobs, deadLetterHooks), ...outboundRouters];
  const app = createApp({
    logger,
    metrics,
    adminToken: config.adminToken,
    ingest: {
      source: ingestSource,
      handle: ingestHandler({ verifiers, bodyLimitBytes: config.bodyLimitBytes, rateLimit: config.rateLimit, accept, metrics, logger }),
    },
    publicRouters: [healthRouter(checks, () => stopping)],
    adminRouters,
  });

  let purgeTimer: NodeJS.Timeout | null = null;
  return {
    app, config, logger, metrics, store, jobs, registry, outbound,
    start() {
      eventWorkers.start();
      outbound.start();
      const purge = () => {
        try {
          const purged = store.events.purgeExpiredKeys();
          if (purged > 0) logger.debug('purged expired idempotency keys', { purged });
        } catch (error) {
          logger.error('idempotency purge failed', { error: (error as Error).message });
        }
      };
      purge();
      purgeTimer = setInterval(purge, 60_000);
      purgeTimer.unref();
    },
    async stop(deadlineMs = config.shutdownTimeoutMs) {
      stopping = true;
      if (purgeTimer) clearInterval(purgeTimer);
      const [result, outboundResult] = await Promise.all([eventWorkers.stop(deadlineMs), outbound.stop(deadlineMs)]);
      await store.close();
      return { unfinished: result.unfinished + outboundResult.unfinished };
    },
    shuttingDown: () => stopping,
  };
}
