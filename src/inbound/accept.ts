import type { JobScheduler } from '../jobs/queue.js';
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
 */
export class AcceptService {
  constructor(
    private readonly store: Store,
    private readonly jobs: JobScheduler,
    private readonly metrics: Metrics,
    private readonly logger: Logger,
    private readonly options: AcceptOptions,
  ) {}

  accept(source: string, event: VerifiedEvent, requestId: string): AcceptResult {
    const existing = inSpan('webhook.deduplicate', { 'webhook.source': source }, () => this.store.events.findByKey(source, event.eventId));
    if (existing) {
      this.logger.info('duplicate event ignored', { source, event_id: event.eventId, event_type: event.type, stored_as: existing });
      return { duplicate: true, id: existing };
    }
    const id = inSpan('webhook.store', { 'webhook.source': source, 'webhook.event_type': event.type }, () => {
      const traceContext = captureTraceContext();
      return this.store.transaction(() => {
        // Checked again inside the transaction: two deliveries of one id racing both pass the first look.
        const raced = this.store.events.findByKey(source, event.eventId);
        if (raced) return null;
        const stored = this.store.events.insert({ source, eventId: event.eventId, type: event.type, rawPayload: event.rawPayload, requestId }, this.options.idempotencyTtlMs);
        this.jobs.enqueue({ queue: 'events', kind: PROCESS_EVENT_JOB, ref: stored, maxAttempts: this.options.maxAttempts, requestId, traceContext });
        return stored;
      });
    });
    if (id === null) {
      const winner = this.store.events.findByKey(source, event.eventId) ?? '';
      return { duplicate: true, id: winner };
    }
    this.metrics.eventAccepted(source, event.type);
    this.logger.info('event received', { source, event_id: event.eventId, event_type: event.type, stored_as: id });
    return { duplicate: false, id };
  }
}
