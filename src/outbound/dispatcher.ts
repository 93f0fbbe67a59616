import { randomUUID } from 'node:crypto';
import type { Span } from '@opentelemetry/api';
import type { Clock } from '../clock.js';
import type { Job, JobQueue, NewJob } from '../jobs/queue.js';
import type { JobResult } from '../jobs/worker.js';
import type { Attempt, AttemptOutcome, AttemptTrigger, Delivery } from '../store/deliveries.js';
import type { Endpoint } from '../store/endpoints.js';
import type { EventContent } from '../store/events.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { contextFrom, inSpan } from '../telemetry/trace-context.js';
import { observeAttempt } from './failure-monitor.js';
import type { HttpSender, SendResult } from './http-sender.js';
import { disabledEmail, errorWebhookBody, failureEmail } from './messages.js';
import type { Notifier } from './notifier.js';
import { nextRetryDelay, type RetrySchedule } from './retry-schedule.js';
import { signatureHeaders } from './signer.js';
import { traceHeaders } from './trace-header.js';

export const DELIVERY_JOB = 'delivery.send';

/** The job that sends one delivery: every place that queues a delivery builds it here. */
export function deliveryJob(ref: string, maxAttempts: number, requestId: string | null, traceContext: Record<string, string> | null = null): NewJob {
  return { queue: 'deliveries', kind: DELIVERY_JOB, ref, maxAttempts, requestId, traceContext };
}

/** What the dispatcher needs of the queue. */
export type DeliveryJobs = Pick<JobQueue, 'enqueue' | 'get' | 'replay' | 'deleteDead'>;

export interface DispatcherOptions {
  timeoutMs: number;
  retrySchedule: RetrySchedule;
  allowPrivateDestinations: boolean;
  /** Scheduled attempts an endpoint whose last attempt failed may have in flight at once. */
  failingEndpointSlots: number;
}

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

/** A manual attempt that shutdown cut off: not the endpoint's failure, so it is not recorded. */
export class CutOffError extends Error {
  override readonly name = 'CutOffError';
}

/**
 * The body every endpoint receives, in the Standard Webhooks payload shape. `data` is JSON text
 * (an event's payload as stored), spliced in as it is rather than parsed and serialised again.
 */
export function messageBody(type: string, timestamp: number, data: string): string {
  return `{"type":${JSON.stringify(type)},"timestamp":"${new Date(timestamp).toISOString()}","data":${data}}`;
}

/**
 * Sends deliveries: one attempt per claimed job (or per manual retry), recorded with the
 * delivery's new state, the failure monitor's new state and any notification in one
 * transaction, so a crash leaves either all of it or none (an attempt cut short by a crash
 * is not recorded and is sent again: delivery is at least once, and receivers de-duplicate
 * by webhook-id, which is the event's id on every attempt).
 */
export class Dispatcher {
  /** Deliveries with a scheduled attempt on the wire in this process; a manual retry waits its turn. */
  private readonly inFlight = new Set<string>();
  /**
   * Manual attempts until they are recorded, not only while on the wire, by delivery: the
   * delivery's job waits for its own (run between the two, it would find the delivery still
   * pending and send it again), and a second manual retry is refused meanwhile.
   */
  private readonly manualAttempts = new Map<string, Promise<unknown>>();
  /**
   * Scheduled attempts in flight per endpoint: each has a job whose end releases a parked
   * delivery, which a manual attempt has not.
   */
  private readonly perEndpoint = new Map<string, number>();
  /** Endpoints whose last attempt in this process failed. */
  private readonly failing = new Set<string>();
  /** Endpoints with deliveries parked for failing (see releaseNextParked). */
  private readonly held = new Set<string>();
  /** Set as shutdown cuts off the attempts still on the wire (see stopping()). */
  private cuttingOff = false;

  constructor(
    private readonly store: Store,
    private readonly jobs: DeliveryJobs,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly sender: HttpSender,
    private readonly notifier: Notifier,
    private readonly options: DispatcherOptions,
  ) {}

  /**
   * Called before shutdown closes the connections of attempts still on the wire: their jobs have
   * been given back and are sent again after the restart, so their failure is not the endpoint's
   * and is neither counted nor logged as one. A manual attempt cut off is not recorded either;
   * its caller is told to retry after the restart.
   */
  stopping(): void {
    this.cuttingOff = true;
  }

  /** Resolves once the manual attempts under way have ended (shutdown waits for them before the store closes). */
  async manualAttemptsSettled(): Promise<void> {
    await Promise.allSettled([...this.manualAttempts.values()]);
  }

  get maxAttempts(): number {
    return this.options.retrySchedule.length + 1;
  }

  /** An endpoint whose last attempt failed before a restart starts out limited, its parked backlog as parked for failing. */
  markFailing(endpointId: string): void {
    this.failing.add(endpointId);
    this.held.add(endpointId);
  }

  private atFailingLimit(endpointId: string): boolean {
    return this.failing.has(endpointId) && (this.perEndpoint.get(endpointId) ?? 0) >= this.options.failingEndpointSlots;
  }

  /**
   * Runs one delivery job (queue 'deliveries', kind delivery.send). A paused endpoint's backlog is
   * released one delivery per delivery job that ends, whatever the job came to (an attempt, a
   * delivery settled meanwhile by a manual attempt, its event gone): in the transaction that
   * settles the job, after what the job itself records.
   */
  run = async (job: Job): Promise<JobResult> => {
    const delivery = this.store.deliveries.get(job.ref);
    if (!delivery) return { outcome: 'done' };
    // A delivery has one live job, the one it names: every place that queues a job for it records
    // the job. An older job (re-queued by /recover while claimed elsewhere) ends without sending,
    // or two jobs would drive one delivery and use its schedule up twice as fast.
    if (delivery.jobId !== null && delivery.jobId !== job.id) return { outcome: 'done' };
    if (delivery.status === 'pending' && this.atFailingLimit(delivery.endpointId)) {
      // A failing endpoint, hanging most likely, would fill every slot with attempts waiting for
      // their timeout and hold up every other endpoint. Past its few slots, its deliveries are
      // parked in order, as behind a paused endpoint: no job, no attempt used, nothing claimed
      // again and again. Each of its jobs that ends releases the next (below), so it keeps its
      // slots busy, no more.
      this.held.add(delivery.endpointId);
      return { outcome: 'done', persist: () => this.store.deliveries.park(delivery.id, delivery.endpointId) };
    }
    const manual = this.manualAttempts.get(delivery.id);
    if (manual) {
      // The job waits for the manual attempt (DELIVERY_TIMEOUT at most) and goes on from the
      // delivery as that left it. Running all the while, it shows a resume that the backlog is
      // being released, and it releases the next parked delivery once, when it ends.
      await manual.catch(() => undefined);
      return this.run(job);
    }
    const result = await this.runDelivery(job, delivery);
    return {
      ...result,
      persist: () => {
        result.persist?.();
        const endpoint = this.store.endpoints.get(delivery.endpointId);
        if (endpoint) this.releaseNextParked(endpoint);
      },
    };
  };

  private async runDelivery(job: Job, delivery: Delivery): Promise<JobResult> {
    if (delivery.status !== 'pending') return { outcome: 'done' };
    const endpoint = this.store.endpoints.get(delivery.endpointId);
    if (!endpoint) {
      this.store.deliveries.setStatus(delivery.id, 'cancelled', 'endpoint deleted');
      return { outcome: 'done' };
    }
    if (endpoint.disabledAt !== null) {
      this.store.deliveries.setStatus(delivery.id, 'failed', `endpoint disabled: ${endpoint.disabledReason ?? ''}`.trim());
      return { outcome: 'dead', error: 'endpoint disabled' };
    }
    if (endpoint.paused) {
      // Parked without a job until the endpoint resumes; resuming releases them in order.
      this.store.deliveries.park(delivery.id, delivery.endpointId);
      return { outcome: 'done' };
    }
    const event = this.store.events.content(delivery.eventPk);
    if (!event) {
      const error = 'the event no longer exists';
      return { outcome: 'dead', error, persist: () => this.store.deliveries.setStatus(delivery.id, 'failed', error) };
    }
    const { at, result, requestId, outcome } = await this.send(delivery, endpoint, event, 'scheduled', job.requestId, job.traceContext);
    // The attempt is recorded in the transaction that settles the job, and only while this
    // process still holds the job's lease.
    const persist = (dead: boolean) => () => {
      const saved = this.record(delivery, outcome, endpoint, 'scheduled', at, result, requestId);
      // The endpoint was deleted while the attempt was on the wire: its delivery stays cancelled,
      // and a dead letter for it is what deleting the endpoint clears away. (A retry job left
      // pending finds the delivery settled and ends without sending.)
      if (dead && saved.delivery.status === 'cancelled') this.jobs.deleteDead(job.id);
    };
    if (outcome.status === 'delivered') return { outcome: 'done', persist: persist(false) };
    const error = result.error ?? 'failed';
    if (outcome.status === 'pending' && outcome.nextAttemptAt !== null) return { outcome: 'retry', runAt: outcome.nextAttemptAt, error, persist: persist(false) };
    return { outcome: 'dead', error, persist: persist(true) };
  }

  /** POST /deliveries/:id/retry: one attempt now, recorded as manual, outside the schedule. */
  async retryNow(deliveryId: string, requestId: string): Promise<{ delivery: Delivery; attempt: Attempt }> {
    const delivery = this.store.deliveries.get(deliveryId);
    if (!delivery) throw new ConflictError('gone');
    const endpoint = this.store.endpoints.get(delivery.endpointId);
    if (!endpoint) throw new ConflictError(`endpoint ${delivery.endpointId} was deleted`);
    if (endpoint.disabledAt !== null) throw new ConflictError(`endpoint ${endpoint.id} is disabled; re-enable it first`);
    if (this.inFlight.has(delivery.id) || this.manualAttempts.has(delivery.id)) throw new ConflictError('an attempt of this delivery is in progress');
    if (this.cuttingOff) throw new CutOffError('the service is shutting down; nothing was sent, retry it after the restart');
    const event = this.store.events.content(delivery.eventPk);
    if (!event) throw new ConflictError('the event of this delivery no longer exists');
    const attempt = (async () => {
      const sent = await this.send(delivery, endpoint, event, 'manual', requestId, null);
      if (sent.cutOff) throw new CutOffError('shutdown cut the attempt off before the endpoint answered; it was not recorded, retry it after the restart');
      return this.store.grouped(() => this.record(delivery, sent.outcome, endpoint, 'manual', sent.at, sent.result, sent.requestId));
    })();
    this.manualAttempts.set(delivery.id, attempt);
    try {
      return await attempt;
    } finally {
      this.manualAttempts.delete(delivery.id);
    }
  }

  /** POST /webhooks/:id/test: a signed test event now; nothing is stored or counted. */
  async sendTest(endpoint: Endpoint, requestId: string): Promise<SendResult & { messageId: string; body: string }> {
    const messageId = `msg_test_${randomUUID().replaceAll('-', '')}`;
    const body = messageBody('webhook.test', this.clock.now(), JSON.stringify({ endpoint_id: endpoint.id, message: 'This is a test event sent by hookwatch.' }));
    return inSpan('webhook.deliver.test', { 'webhook.endpoint': endpoint.id }, async (span) => {
      const result = await this.post(endpoint, messageId, body, span, requestId);
      this.logger.info('test delivery attempt', {
        request_id: requestId, endpoint: endpoint.id, event_id: messageId, event_type: 'webhook.test',
        outcome: result.ok ? 'delivered' : 'failed', status_code: result.statusCode, reason: result.reason, error: result.error, duration_ms: round(result.durationMs),
      });
      return { ...result, messageId, body };
    });
  }

  /**
   * Enqueues the oldest parked delivery of an endpoint that is active; call inside a transaction.
   * One for one keeps a paused endpoint's backlog strictly in order and a failing one at its few
   * slots. A backlog parked for failing, once its endpoint answers again, is released two for
   * one: it ramps back up to the free slots, so it drains and new deliveries stop queueing behind it.
   */
  releaseNextParked(endpoint: Endpoint): void {
    if (endpoint.paused || endpoint.disabledAt !== null) return;
    const count = this.held.has(endpoint.id) && !this.failing.has(endpoint.id) ? 2 : 1;
    for (let i = 0; i < count; i++) {
      const next = this.store.deliveries.oldestParked(endpoint.id);
      if (!next) {
        this.held.delete(endpoint.id);
        return;
      }
      const jobId = this.jobs.enqueue(deliveryJob(next.id, this.maxAttempts, next.requestId));
      this.store.deliveries.unpark(next.id, jobId);
    }
  }

  /**
   * Resuming (or re-enabling): starts releasing the backlog unless a delivery of the endpoint is
   * already being sent or due, whose end releases the next: a pause and resume while a released
   * delivery is on the wire would otherwise send two at once, and out of order.
   */
  resumeParked(endpoint: Endpoint): void {
    if (!this.store.deliveries.releasing(endpoint.id)) this.releaseNextParked(endpoint);
  }

  /**
   * Sends one attempt and reports it (metrics, log line) as the delivery stood before it; the
   * caller records it. `outcome` is what the attempt makes of that delivery.
   */
  private async send(
    delivery: Delivery, endpoint: Endpoint, event: EventContent, trigger: AttemptTrigger,
    requestId: string | null, traceContext: Record<string, string> | null,
  ): Promise<{ at: number; result: SendResult; requestId: string; outcome: AttemptOutcome; cutOff: boolean }> {
    const rid = requestId ?? randomUUID();
    const number = delivery.attempts + 1;
    const counted = trigger === 'scheduled';
    if (counted) {
      this.inFlight.add(delivery.id);
      this.perEndpoint.set(endpoint.id, (this.perEndpoint.get(endpoint.id) ?? 0) + 1);
    }
    try {
      return await inSpan('webhook.deliver', { 'webhook.endpoint': endpoint.id, 'webhook.event_type': event.type, 'webhook.delivery_id': delivery.id, 'webhook.attempt': number }, async (span) => {
        const at = this.clock.now();
        const body = messageBody(event.type, event.receivedAt, event.rawPayload);
        const result = await this.post(endpoint, event.id, body, span, rid);
        span.setAttribute('http.response.status_code', result.statusCode ?? 0);
        const outcome = this.decide(delivery, trigger, result);
        // Cut off: no answer came (an answer whose body was still arriving counts as the endpoint's).
        if (this.cuttingOff && !result.ok && result.statusCode === null) {
          const message = counted ? 'delivery attempt cut off by shutdown; it is sent again after the restart' : 'manual delivery attempt cut off by shutdown; not recorded';
          this.logger.info(message, {
            request_id: rid, endpoint: endpoint.id, delivery_id: delivery.id, event_id: event.eventId, attempt: number, error: result.error,
          });
          return { at, result, requestId: rid, outcome, cutOff: true };
        }
        if (result.ok) this.failing.delete(endpoint.id);
        else this.failing.add(endpoint.id);
        this.metrics.deliveryAttempted(endpoint.id, { ok: result.ok, reason: result.reason ?? undefined, retry: number > 1 }, result.durationMs / 1000);
        const level = result.ok ? 'info' : 'warn';
        this.logger[level]('delivery attempt', {
          request_id: rid, endpoint: endpoint.id, delivery_id: delivery.id, event_id: event.eventId, event_type: event.type,
          attempt: number, trigger, outcome: result.ok ? 'delivered' : 'failed', status_code: result.statusCode,
          reason: result.reason, error: result.error, duration_ms: round(result.durationMs), delivery_status: outcome.status,
          next_attempt_at: outcome.nextAttemptAt ? new Date(outcome.nextAttemptAt).toISOString() : null,
        });
        return { at, result, requestId: rid, outcome, cutOff: false };
      }, contextFrom(traceContext));
    } finally {
      if (counted) {
        this.inFlight.delete(delivery.id);
        const left = (this.perEndpoint.get(endpoint.id) ?? 1) - 1;
        if (left > 0) this.perEndpoint.set(endpoint.id, left);
        else this.perEndpoint.delete(endpoint.id);
      }
    }
  }

  /** POSTs one signed message to the endpoint, in the current span's trace. */
  private post(endpoint: Endpoint, messageId: string, body: string, span: Span, requestId: string): Promise<SendResult> {
    // Signed with wall-clock time, not the injected clock: the receiver checks the
    // timestamp against its own clock (Standard Webhooks allows five minutes).
    const headers = {
      ...signatureHeaders(this.store.endpoints.signingSecrets(endpoint), messageId, new Date(), body),
      ...traceHeaders(span),
      'x-request-id': requestId,
    };
    return this.sender.send({ url: endpoint.url, headers, body, timeoutMs: this.options.timeoutMs, allowPrivate: this.options.allowPrivateDestinations });
  }

  /**
   * Records one attempt and everything it decides, from the delivery as it stands now; call
   * inside a transaction, so all of it commits or none does. `read` is the delivery as read
   * before the attempt and `decided` what send() made of it; should the delivery have changed
   * since (a manual attempt recorded meanwhile), it is read again and the attempt decided from that.
   */
  private record(
    read: Delivery, decided: AttemptOutcome, endpoint: Endpoint, trigger: AttemptTrigger, at: number, result: SendResult, requestId: string,
  ): { delivery: Delivery; attempt: Attempt } {
    const attemptRow = { trigger, at, durationMs: round(result.durationMs), ok: result.ok, statusCode: result.statusCode, reason: result.reason, error: result.error, responseBody: result.responseBody };
    let current: Delivery | null = read;
    let saved = this.store.deliveries.recordAttempt(read, attemptRow, decided);
    if (!saved) {
      current = this.store.deliveries.get(read.id);
      saved = current && this.store.deliveries.recordAttempt(current, attemptRow, this.decide(current, trigger, result));
    }
    if (!saved || !current) throw new Error(`delivery ${read.id} vanished`);
    const { attempt, delivery: after } = saved;
    if (trigger === 'manual' && result.ok && current.jobId !== null && this.jobs.get(current.jobId)?.status === 'dead') this.jobs.deleteDead(current.jobId);
    // A cancelled delivery's endpoint has been deleted, and so may a delivered one's be whose manual
    // re-send was on the wire meanwhile (deleting cancels only what is still owed): nobody is left
    // to tell, and its health is gone with it.
    if (after.status === 'cancelled' || (trigger === 'manual' && !this.store.endpoints.get(endpoint.id))) return { delivery: after, attempt };

    const decision = observeAttempt(this.store.endpointHealth.get(endpoint.id), { ok: result.ok, at, reason: result.reason, statusCode: result.statusCode, error: result.error });
    this.store.endpointHealth.save(decision.health);
    if (decision.errorWebhook) {
      this.notifier.queueErrorWebhook(endpoint.id, errorWebhookBody(endpoint, decision.health.streak, result.statusCode, result.error), requestId);
    }
    if (decision.ownerEmail) {
      this.notifier.queueEmail(endpoint.id, failureEmail(endpoint, endpoint.ownerEmails, decision.ownerEmail, this.options.timeoutMs), requestId);
    }
    if (result.statusCode === 410 && this.store.endpoints.disable(endpoint.id, 'the endpoint answered 410 Gone')) {
      this.logger.warn('endpoint disabled: it answered 410 Gone', { request_id: requestId, endpoint: endpoint.id, delivery_id: read.id });
      this.notifier.queueEmail(endpoint.id, disabledEmail(endpoint, endpoint.ownerEmails, at), requestId);
    }
    return { delivery: after, attempt };
  }

  private decide(current: Delivery, trigger: AttemptTrigger, result: SendResult): AttemptOutcome {
    // Settled stays settled: a delivery cancelled (its endpoint deleted) while the attempt was on
    // the wire, and a delivered one that a manual re-send failed to reach again.
    const settled = current.status === 'cancelled' || (current.status === 'delivered' && !result.ok);
    if (settled) return { status: current.status, scheduleStep: current.scheduleStep, nextAttemptAt: null };
    if (result.ok) return { status: 'delivered', scheduleStep: current.scheduleStep + (trigger === 'scheduled' ? 1 : 0), nextAttemptAt: null };
    if (trigger === 'manual') {
      // A manual attempt leaves the schedule as it was: a delivery still being retried keeps its next attempt.
      const live = current.status === 'pending' && result.statusCode !== 410;
      return { status: live ? 'pending' : 'failed', scheduleStep: current.scheduleStep, nextAttemptAt: live ? current.nextAttemptAt : null };
    }
    const step = current.scheduleStep + 1;
    const delay = result.statusCode === 410 ? null : nextRetryDelay(this.options.retrySchedule, step, result.retryAfterMs);
    if (delay === null) return { status: 'failed', scheduleStep: step, nextAttemptAt: null };
    return { status: 'pending', scheduleStep: step, nextAttemptAt: this.clock.now() + delay };
  }
}

const round = (ms: number): number => Math.round(ms * 1000) / 1000;
