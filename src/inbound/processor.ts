import type { Clock } from '../clock.js';
import { backoffDelay, type BackoffPolicy } from '../jobs/backoff.js';
import type { Job } from '../jobs/queue.js';
import type { JobResult } from '../jobs/worker.js';
import type { EventContent, EventStatus, HandlerRun } from '../store/events.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { contextFrom, inSpan } from '../telemetry/trace-context.js';
import { PermanentError, type HandlerRegistry, type InboundEvent } from './handlers.js';

/**
 * Runs one processing job: every handler matching the event's type (fan-out), skipping those
 * that already succeeded on an earlier run. A temporary error is retried with backoff; a
 * permanent one, or running out of attempts, dead-letters the job with its last error.
 */
export class EventProcessor {
  constructor(
    private readonly store: Store,
    private readonly registry: HandlerRegistry,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly backoff: BackoffPolicy,
    /** JOB_TIMEOUT: how long a run waits for its handlers before it counts them as failed. */
    private readonly runTimeoutMs: number,
  ) {}

  run = (job: Job): Promise<JobResult> => {
    const stored = this.store.events.content(job.ref);
    if (!stored) return Promise.resolve({ outcome: 'done' });
    // Every line of the run names its request, event and job.
    const log = this.logger.child({ request_id: job.requestId ?? undefined, source: stored.source, event_id: stored.eventId, event_type: stored.type, job_id: job.id });
    return inSpan('webhook.process', { 'webhook.source': stored.source, 'webhook.event_type': stored.type, 'job.attempt': job.attempts },
      () => this.process(job, stored, log), contextFrom(job.traceContext));
  };

  private async process(job: Job, stored: EventContent, log: Logger): Promise<JobResult> {
    if (job.attempts > job.maxAttempts) return this.abandon(job, stored, log);
    const started = process.hrtime.bigint();
    // Only a job that ran before can find handlers that already succeeded: a retry, or a replay
    // from the dead-letter queue (which starts counting attempts again but keeps the last error).
    const ranBefore = job.attempts > 1 || job.lastError !== null;
    const prior = ranBefore ? this.store.events.priorRuns(stored.id) : { succeeded: new Set<string>(), lastAttempt: 0 };
    // Handlers see the run's number in the event's history, so a replay does not say "1" again.
    const attempt = runNumber(job.attempts, prior.lastAttempt);
    // A handler stuck on a call without a timeout would hold its worker slot for ever (its lease
    // is extended while the process lives). Past JOB_TIMEOUT the run stops waiting for it: it
    // counts as a temporary error, and the signal tells the handler to give up.
    // The signal is made only for a handler that reads it: an AbortController costs about 6 µs,
    // 1 % of a forwarded event's CPU, and the built-in forwarder never looks.
    let abort: AbortController | undefined;
    let expired = false;
    const signal = (): AbortSignal => {
      abort ??= new AbortController();
      if (expired) abort.abort();
      return abort.signal;
    };
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
      timer = setTimeout(() => { expired = true; abort?.abort(); resolve(TIMED_OUT); }, this.runTimeoutMs);
    });
    const event = inboundEvent(stored, attempt, signal);
    const matching = this.registry.match(event.type);
    if (matching.length === 0 && log.isDebugEnabled()) log.debug('no handler matched the event type; recorded as processed', { handlers: 0 });
    const handlers = matching.filter((h) => !prior.succeeded.has(h.name));
    const runs: HandlerRun[] = [];
    await Promise.all(handlers.map(async (handler) => {
      const at = this.clock.now();
      const t0 = process.hrtime.bigint();
      try {
        const outcome = await Promise.race([inSpan('webhook.handler', { 'webhook.handler': handler.name, 'webhook.event_type': event.type }, () => handler.handle(event)), deadline]);
        if (outcome === TIMED_OUT) {
          runs.push({ attempt, handler: handler.name, outcome: 'temporary_error', error: `no result within ${this.runTimeoutMs} ms (JOB_TIMEOUT)`, durationMs: ms(t0), at });
        } else {
          runs.push({ attempt, handler: handler.name, outcome: 'success', error: null, durationMs: ms(t0), at });
        }
      } catch (error) {
        const err = error instanceof Error ? error : new Error(String(error));
        const outcome = err instanceof PermanentError ? 'permanent_error' : 'temporary_error';
        runs.push({ attempt, handler: handler.name, outcome, error: err.message, durationMs: ms(t0), at });
      }
    }));
    clearTimeout(timer);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    // The handler runs and the event's new state commit together with the job's outcome.
    const persist = (status: EventStatus, error: string | null) => () => {
      for (const run of runs) this.store.events.recordHandlerRun(event.id, run);
      this.store.events.setStatus(event.id, status, attempt, error);
    };

    const failures = runs.filter((run) => run.outcome !== 'success');
    if (failures.length === 0) {
      this.metrics.eventProcessed(event.type, 'success', seconds, (this.clock.now() - event.receivedAt) / 1000);
      log.info('event processed', { attempt, handlers: handlers.length, duration_ms: seconds * 1000 });
      return { outcome: 'done', persist: persist('processed', null) };
    }

    const summary = failures.map((f) => `${f.handler}: ${f.error ?? ''}`).join('; ');
    this.metrics.processingFailed(event.source);
    const permanent = failures.some((f) => f.outcome === 'permanent_error');
    if (permanent || job.attempts >= job.maxAttempts) {
      this.metrics.eventProcessed(event.type, 'dead_letter', seconds, null);
      log.error('event moved to the dead-letter queue', { attempt, reason: permanent ? 'permanent_error' : 'attempts_exhausted', error: summary });
      return { outcome: 'dead', error: summary, persist: persist('dead_letter', summary) };
    }
    const delay = backoffDelay(this.backoff, job.attempts);
    this.metrics.eventProcessed(event.type, 'retry', seconds, null);
    log.warn('event processing failed; will retry', { attempt, retry_in_ms: delay, error: summary });
    return { outcome: 'retry', runAt: this.clock.now() + delay, error: summary, persist: persist('retrying', summary) };
  }

  /** The event's record when the run itself threw (a bug, not a handler's error): see WorkerPoolOptions.runnerFailed. */
  runnerFailed = (job: Job, error: string, dead: boolean): void => {
    const attempt = runNumber(job.attempts, this.store.events.priorRuns(job.ref).lastAttempt);
    this.store.events.setStatus(job.ref, dead ? 'dead_letter' : 'retrying', attempt, error);
  };

  /**
   * A run that never settles (the process died during it, as a handler that crashes it would
   * make it) comes back once its lease runs out, counted. Once those runs have used up the
   * attempts the job is dead-lettered without running again: otherwise one such event would stop
   * the service after every restart, for ever.
   */
  private abandon(job: Job, event: EventContent, log: Logger): JobResult {
    const error = `gave up after ${job.maxAttempts} attempts: the last did not finish (the process stopped while it ran)`;
    this.metrics.eventProcessed(event.type, 'dead_letter', 0, null);
    log.error('event moved to the dead-letter queue', { attempt: job.attempts, reason: 'attempts_exhausted', error });
    // The run that did not finish was the job's previous one.
    const attempts = runNumber(job.attempts - 1, this.store.events.priorRuns(event.id).lastAttempt);
    return { outcome: 'dead', error, persist: () => this.store.events.setStatus(event.id, 'dead_letter', attempts, error) };
  }
}

/**
 * The number a job's run has in its event's history: the job counts from 1 again after a replay
 * from the dead-letter queue, while the history goes on from its last recorded run.
 */
/** Where an event's getters find their run: a slot that spreading or serialising the event skips. */
const RUN = Symbol('hookwatch.run');
type EventOfRun = InboundEvent & { [RUN]: { stored: EventContent; signal: () => AbortSignal } };

/**
 * `payload` and `signal` are own enumerable getters, not a class's, so a handler that spreads or
 * serialises the event keeps them; the payload is parsed only if a handler reads it (the built-in
 * forwarder does not). The getter functions are these two, shared by every event: V8 keeps an
 * accessor's functions in the object's hidden class, which lives in the old generation, so getters
 * made per event (closures over the run) kept every run's objects alive until the next full
 * collection. That was half of what the receive benchmark's young-generation collections copied.
 */
const EVENT_GETTERS: PropertyDescriptorMap = {
  payload: { get(this: EventOfRun) { return this[RUN].stored.payload; }, enumerable: true, configurable: true },
  signal: { get(this: EventOfRun) { return this[RUN].signal(); }, enumerable: true, configurable: true },
};

function inboundEvent(stored: EventContent, attempt: number, signal: () => AbortSignal): InboundEvent {
  const event = { id: stored.id, eventId: stored.eventId, source: stored.source, type: stored.type, requestId: stored.requestId, receivedAt: stored.receivedAt, attempt };
  Object.defineProperty(event, RUN, { value: { stored, signal } });
  return Object.defineProperties(event, EVENT_GETTERS) as InboundEvent;
}

const runNumber = (jobAttempt: number, lastRecorded: number): number => Math.max(jobAttempt, lastRecorded + 1);

const ms = (start: bigint): number => Number(process.hrtime.bigint() - start) / 1e6;

const TIMED_OUT = Symbol('timed out');
