import type { Job, JobHandoff, JobScheduler } from '../jobs/queue.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/logger.js';
import type { Metrics } from '../telemetry/metrics.js';
import { captureTraceContext, inSpan } from '../telemetry/trace-context.js';
import type { VerifiedEvent } from './verifiers/verifier.js';

export const PROCESS_EVENT_JOB = 'event.process';

export type AcceptResult = { duplicate: false; id: string } | { duplicate: true; id: string };

export interface AcceptOptions {
  idempotencyTtlMs: number;
  maxAttempts: number;
}


/**
 * De-duplicates a verified event by its sender id and, when it is new, stores it and its
 * processing job in one transaction, so the 202 is only sent for work that cannot be lost.
 * Events arriving in the same turn of the event loop share one commit (Store.grouped); each
 * request is answered only after that commit.
 */
export class AcceptService {
  private handoff: JobHandoff | null = null;

  constructor(
    private readonly store: Store,
    private readonly jobs: JobScheduler,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly options: AcceptOptions,
  ) {}

  /** The event workers of this process, to which new events go directly when they have room. */
  handOffTo(workers: JobHandoff): void {
    this.handoff = workers;
  }

  async accept(source: string, event: VerifiedEvent, requestId: string): Promise<AcceptResult> {
    // A repeat of a recent event is answered from memory; every other event is checked against
    // the store inside its transaction only, so a new event costs one look-up, not two.
    const existing = inSpan('webhook.deduplicate', { 'webhook.source': source }, () => this.store.events.findCachedKey(source, event.eventId));
    if (existing) {
      this.logger.info('duplicate event ignored', { request_id: requestId, source, event_id: event.eventId, event_type: event.type, stored_as: existing });
      return { duplicate: true, id: existing };
    }
    const result = await inSpan('webhook.store', { 'webhook.source': source, 'webhook.event_type': event.type }, () => {
      // Captured inside the store span, so the worker's processing span becomes its child.
      const traceContext = captureTraceContext();
      return this.store.grouped((): AcceptResult & { job?: Job | null } => {
        // The authoritative check, inside the transaction: two deliveries of one id racing both
        // pass the first look, and one group may hold the same id twice.
        const raced = this.store.events.findByKey(source, event.eventId);
        if (raced) return { duplicate: true, id: raced };
        const id = this.store.events.insert({ source, eventId: event.eventId, type: event.type, rawPayload: event.rawPayload, requestId }, this.options.idempotencyTtlMs);
        const job = { queue: 'events' as const, kind: PROCESS_EVENT_JOB, ref: id, maxAttempts: this.options.maxAttempts, requestId, traceContext };
        // Straight to this process's workers when they have room, which spares claiming it.
        const { leased } = this.jobs.enqueueFor(job, this.handoff);
        return { duplicate: false, id, job: leased };
      });
    });
    if (result.job) this.handoff?.adopt(result.job);
    if (result.duplicate) {
      this.logger.info('duplicate event ignored', { request_id: requestId, source, event_id: event.eventId, event_type: event.type, stored_as: result.id });
      return { duplicate: true, id: result.id };
    }
    this.metrics.eventAccepted(source, event.type);
    this.logger.info('event received', { request_id: requestId, source, event_id: event.eventId, event_type: event.type, stored_as: result.id });
    return { duplicate: false, id: result.id };
  }
}
