import { randomUUID } from 'node:crypto';
import type { Clock } from '../clock.js';
import type { Config } from '../config.js';
import type { HandlerRegistry } from '../inbound/handlers.js';
import type { Job, JobQueue } from '../jobs/queue.js';
import { WorkerPool, type JobResult } from '../jobs/worker.js';
import type { Endpoint, EndpointPatch } from '../store/endpoints.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { DELIVERY_JOB, Dispatcher, deliveryJob } from './dispatcher.js';
import { HttpSender } from './http-sender.js';
import { ERROR_WEBHOOK_JOB, NOTIFICATION_CONCURRENCY, NOTIFICATION_QUEUE, Notifier, OWNER_EMAIL_JOB } from './notifier.js';
import { FORWARD_HANDLER, Publisher } from './publisher.js';
import { generateSecret } from './signer.js';

/** How the admin API's dead-letter routes describe and replay a kind of job (structurally api's DeadLetterHooks). */
interface JobHooks {
  describe(job: Job): Record<string, unknown>;
  replayed(job: Job): void;
}

/** How long a rotated-out secret keeps signing alongside the new one. */
export const SECRET_GRACE_MS = 24 * 3_600_000;

export interface OutboundDeps {
  config: Config;
  store: Store;
  jobs: JobQueue;
  metrics: Metrics;
  logger: Logger;
  clock: Clock;
  registry: HandlerRegistry;
}

export const newEndpointId = (): string => `ep_${randomUUID().replaceAll('-', '')}`;

/**
 * The sending side, assembled: endpoints, publishing, the delivery worker pool on queue
 * 'deliveries', notifications and their pool on queue 'notifications'. The composition root
 * wires it in with a handful of lines.
 */
export class Outbound {
  readonly publisher: Publisher;
  readonly dispatcher: Dispatcher;
  private readonly notifier: Notifier;
  private readonly sender = new HttpSender();
  private readonly pool: WorkerPool;
  /**
   * Error webhooks and owner emails have slots of their own: they report an endpoint that is
   * failing, often by hanging, and would otherwise queue behind its backlog of timing-out attempts.
   */
  private readonly notificationPool: WorkerPool;
  private readonly store: Store;
  private readonly jobs: JobQueue;
  private readonly metrics: Metrics;
  private readonly logger: Logger;

  constructor(deps: OutboundDeps) {
    const { config, store, jobs, metrics, logger, clock } = deps;
    this.store = store;
    this.jobs = jobs;
    this.metrics = metrics;
    this.logger = logger;
    this.notifier = new Notifier({
      errorWebhookUrl: config.delivery.errorWebhookUrl,
      smtpUrl: config.email.smtpUrl,
      from: config.email.from,
      alwaysTo: config.email.to,
      timeoutMs: config.delivery.timeoutMs,
      maxAttempts: config.worker.maxAttempts,
      backoff: { baseMs: config.worker.backoffBaseMs, factor: config.worker.backoffFactor, maxMs: config.worker.backoffMaxMs },
    }, jobs, this.sender, logger, clock);
    this.dispatcher = new Dispatcher(store, jobs, metrics, logger, clock, this.sender, this.notifier, {
      timeoutMs: config.delivery.timeoutMs,
      retrySchedule: config.delivery.retrySchedule,
      allowPrivateDestinations: config.delivery.allowPrivateDestinations,
      failingEndpointSlots: Math.max(1, Math.floor(config.delivery.concurrency / 8)),
    });
    this.publisher = new Publisher(store, jobs, logger, clock, { maxAttempts: this.dispatcher.maxAttempts, idempotencyTtlMs: config.idempotencyTtlMs });
    deps.registry.register('*', FORWARD_HANDLER, this.publisher.forward);
    this.pool = new WorkerPool(jobs, {
      queue: 'deliveries', concurrency: config.delivery.concurrency, leaseMs: config.worker.leaseMs, pollMs: config.worker.pollMs, run: this.run, logger,
      runnerFailed: this.runnerFailed,
    });
    this.publisher.handOffTo(this.pool);
    this.notificationPool = new WorkerPool(jobs, {
      queue: NOTIFICATION_QUEUE, concurrency: NOTIFICATION_CONCURRENCY, leaseMs: config.worker.leaseMs, pollMs: config.worker.pollMs, run: this.run, logger,
    });
    // Every known endpoint's counters exist at 0 from start-up, so its first failure is counted.
    for (const endpoint of store.endpoints.list()) {
      const { lastOk } = store.endpointHealth.get(endpoint.id);
      metrics.endpointRegistered(endpoint.id, lastOk);
      if (lastOk === false) this.dispatcher.markFailing(endpoint.id);
    }
  }

  /** A delivery whose job was dead-lettered because its runner threw is failed with it, not left pending. */
  private runnerFailed = (job: Job, error: string, dead: boolean): void => {
    if (dead && job.kind === DELIVERY_JOB) this.store.deliveries.setStatus(job.ref, 'failed', error);
  };

  // Both pools run any kind: notifications queued on 'deliveries' by an earlier version still go out.
  private run = (job: Job): Promise<JobResult> => {
    if (job.kind === DELIVERY_JOB) return this.dispatcher.run(job);
    if (job.kind === ERROR_WEBHOOK_JOB || job.kind === OWNER_EMAIL_JOB) return this.notifier.run(job);
    return Promise.resolve({ outcome: 'dead', error: `unknown job kind ${job.kind}` });
  };

  start(): void {
    this.pool.start();
    this.notificationPool.start();
  }

  async stop(deadlineMs: number): Promise<{ unfinished: number }> {
    const [deliveries, notifications] = await Promise.all([this.pool.stop(deadlineMs), this.notificationPool.stop(deadlineMs)]);
    this.notifier.close();
    this.dispatcher.stopping();
    this.sender.close();
    // With their connections closed, manual attempts end at once; each is recorded, or refused
    // to its caller as cut off, before the store closes.
    await this.dispatcher.manualAttemptsSettled();
    return { unfinished: deliveries.unfinished + notifications.unfinished };
  }

  createEndpoint(input: { url: string; events: string[]; description: string; ownerEmails: string[] }, requestId: string): Endpoint {
    const endpoint = this.store.endpoints.create({ id: newEndpointId(), secret: generateSecret(), ...input });
    this.metrics.endpointRegistered(endpoint.id);
    this.logger.info('endpoint registered', { request_id: requestId, endpoint: endpoint.id, events: endpoint.events });
    return endpoint;
  }

  /**
   * Applies a change; resuming (or re-enabling) releases the parked deliveries, oldest first. Any
   * other change leaves them be: each release starts a chain (every job that ends releases the
   * next), and a second chain would break a paused backlog's order.
   */
  updateEndpoint(id: string, patch: EndpointPatch, requestId: string): Endpoint | null {
    const updated = this.store.transaction(() => {
      const before = this.store.endpoints.get(id);
      const endpoint = this.store.endpoints.update(id, patch);
      const reopened = before !== null && endpoint !== null
        && ((before.paused && !endpoint.paused) || (before.disabledAt !== null && endpoint.disabledAt === null));
      if (endpoint && reopened) this.dispatcher.resumeParked(endpoint);
      return endpoint;
    });
    if (updated) this.logger.info('endpoint updated', { request_id: requestId, endpoint: id, changed: Object.keys(patch) });
    return updated;
  }

  rotateSecret(id: string, requestId: string): Endpoint | null {
    const endpoint = this.store.endpoints.rotateSecret(id, generateSecret(), SECRET_GRACE_MS);
    if (endpoint) this.logger.info('endpoint secret rotated', { request_id: requestId, endpoint: id });
    return endpoint;
  }

  deleteEndpoint(id: string, requestId: string): boolean {
    const removed = this.store.transaction(() => {
      if (!this.store.endpoints.remove(id)) return false;
      for (const jobId of this.store.deliveries.cancelForEndpoint(id)) {
        if (this.jobs.get(jobId)?.status === 'dead') this.jobs.deleteDead(jobId);
      }
      this.store.endpointHealth.remove(id);
      return true;
    });
    if (removed) {
      this.metrics.endpointRemoved(id);
      this.logger.info('endpoint deleted', { request_id: requestId, endpoint: id });
    }
    return removed;
  }

  /** Re-queues every failed delivery of the endpoint created since `since`, with a fresh retry schedule. */
  recover(endpoint: Endpoint, since: number, requestId: string): number {
    const count = this.store.transaction(() => {
      const failed = this.store.deliveries.failedSince(endpoint.id, since);
      for (const delivery of failed) this.requeue(delivery.id, delivery.jobId);
      return failed.length;
    });
    this.logger.info('failed deliveries re-queued', { request_id: requestId, endpoint: endpoint.id, since: new Date(since).toISOString(), requeued: count });
    return count;
  }

  /**
   * Puts a failed delivery back on the queue: its dead job is replayed, a job of it still waiting
   * (a manual attempt's 410 failed the delivery before its scheduled retry ran) is made due now,
   * or a new one made. A job already claimed by a worker is left to find itself replaced: the
   * dispatcher only sends for the job the delivery names.
   */
  private requeue(deliveryId: string, jobId: number | null): void {
    const job = jobId === null ? null : this.jobs.get(jobId);
    const reused = job !== null && (job.status === 'dead' ? this.jobs.replay(job.id) : job.status === 'pending' && this.jobs.runNow(job.id));
    if (job && reused) {
      this.store.deliveries.requeue(deliveryId, job.id);
      return;
    }
    const delivery = this.store.deliveries.get(deliveryId);
    const newJob = this.jobs.enqueue(deliveryJob(deliveryId, this.dispatcher.maxAttempts, delivery?.requestId ?? null));
    this.store.deliveries.requeue(deliveryId, newJob);
  }

  /** How the dead-letter API describes and replays this module's jobs. */
  deadLetterHooks(): [string, JobHooks][] {
    const delivery: JobHooks = {
      describe: (job) => {
        const found = this.store.deliveries.get(job.ref);
        return found ? { delivery: { id: found.id, endpoint_id: found.endpointId, event: found.eventPk, status: found.status, attempts: found.attempts } } : {};
      },
      replayed: (job) => this.store.deliveries.requeue(job.ref, job.id),
    };
    const notification: JobHooks = { describe: (job) => ({ notification: { kind: job.kind, endpoint_id: job.ref } }), replayed: () => undefined };
    return [[DELIVERY_JOB, delivery], [ERROR_WEBHOOK_JOB, notification], [OWNER_EMAIL_JOB, notification]];
  }

  /** See WorkerPool.waitingAgeMs: deliveries or notifications claimed by this process, not started yet. */
  waitingAgeMs(queue: 'deliveries' | 'notifications', now: number): number {
    return (queue === 'deliveries' ? this.pool : this.notificationPool).waitingAgeMs(now);
  }

  /** The 'deliveries' entry of GET /health. */
  healthCheck(): { name: string; run(): { ok: boolean; [detail: string]: unknown } } {
    return {
      name: 'deliveries',
      run: () => {
        const endpoints = this.store.endpoints.list();
        return {
          ok: true,
          endpoints: endpoints.length,
          paused: endpoints.filter((e) => e.paused).length,
          disabled: endpoints.filter((e) => e.disabledAt !== null).length,
          workers_active: this.pool.activeCount,
          notifications_active: this.notificationPool.activeCount,
        };
      },
    };
  }
}
