import type { Clock } from '../clock.js';
import type { InboundEvent } from '../inbound/handlers.js';
import type { Job, JobHandoff, JobScheduler } from '../jobs/queue.js';
import type { Delivery } from '../store/deliveries.js';
import type { Endpoint } from '../store/endpoints.js';
import type { StoredEvent } from '../store/events.js';
import { API_SOURCE } from '../event-types.js';
import { timeOrderedId } from '../store/ids.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../telemetry/logger.js';
import { captureTraceContext } from '../telemetry/trace-context.js';
import { deliveryJob } from './dispatcher.js';
import { matchesType } from './subscriptions.js';

export const FORWARD_HANDLER = 'outbound.forward';

export const newDeliveryId = (): string => timeOrderedId('dlv');

export interface PublishResult {
  duplicate: boolean;
  event: StoredEvent;
  deliveries: Delivery[];
}

/**
 * Turns an event into one delivery per active endpoint subscribed to its type. Idempotent by
 * event: a delivery is unique per (event, endpoint), so running this twice for one event (a
 * handler retried after a crash) creates nothing new.
 */
export class Publisher {
  private handoff: JobHandoff | null = null;

  constructor(
    private readonly store: Store,
    private readonly jobs: JobScheduler,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly options: { maxAttempts: number; idempotencyTtlMs: number },
  ) {}

  /** The delivery workers of this process, to which new deliveries go directly when they have room. */
  handOffTo(workers: JobHandoff): void {
    this.handoff = workers;
  }

  /**
   * Creates the deliveries of a stored event; call inside a transaction, then give `leased` to
   * handOver() once it has committed.
   */
  createDeliveries(eventPk: string, type: string, requestId: string | null, traceContext: Record<string, string> | null): { created: number; leased: Job[] } {
    let created = 0;
    const leased: Job[] = [];
    for (const endpoint of this.subscribers(type)) {
      // Behind a paused endpoint, or behind a backlog still draining after a resume, a new
      // delivery queues up (parked) so the endpoint receives events in order.
      const parked = endpoint.paused || this.store.deliveries.oldestParked(endpoint.id) !== null;
      const id = newDeliveryId();
      if (parked) {
        if (this.store.deliveries.insert({ id, eventPk, endpointId: endpoint.id, parked, requestId })) created += 1;
        continue;
      }
      // The job first, so the delivery row is written once, already naming it. Should the event
      // have its delivery to this endpoint already (this run repeats one that committed), the job
      // goes again in this transaction and its lease is given back (rare: a forwarding run that
      // is repeated after a crash; a job that went to the table costs the workers one empty claim).
      const queued = this.jobs.enqueueFor(deliveryJob(id, this.options.maxAttempts, requestId, traceContext), this.handoff);
      if (!this.store.deliveries.insertQueued({ id, eventPk, endpointId: endpoint.id, requestId, jobId: queued.id })) {
        this.jobs.discard(queued.id);
        if (queued.leased) this.handoff?.forgo();
        continue;
      }
      created += 1;
      if (queued.leased) leased.push(queued.leased);
    }
    return { created, leased };
  }

  /** The endpoints that receive events of this type: enabled and subscribed to it. */
  private subscribers(type: string): Endpoint[] {
    return this.store.endpoints.list().filter((endpoint) => endpoint.disabledAt === null && matchesType(endpoint.events, type));
  }

  /** Gives the delivery workers the jobs created leased to them, after their transaction committed. */
  handOver(leased: readonly Job[]): void {
    for (const job of leased) this.handoff?.adopt(job);
  }

  /** The built-in '*' handler: forwards every processed inbound event to its subscribers. */
  forward = async (event: InboundEvent): Promise<void> => {
    // Most events of a receive-only setup match no endpoint: those skip the write altogether.
    // The check is repeated inside the transaction, which is what counts.
    if (this.subscribers(event.type).length === 0) {
      // No delivery will read the event, and a handler that does has it in hand already.
      this.store.events.releaseContent(event.id);
      return;
    }
    const traceContext = captureTraceContext();
    const { created, leased } = await this.store.grouped(() => this.createDeliveries(event.id, event.type, event.requestId, traceContext));
    this.handOver(leased);
    // Each delivery logs its own attempt at info; this line only matters when following one event.
    // winston formats a line before its transports drop it by level, hence the explicit check.
    if (created > 0 && this.logger.isDebugEnabled()) this.logger.debug('event forwarded to endpoints', { request_id: event.requestId ?? undefined, source: event.source, event_id: event.eventId, event_type: event.type, deliveries: created });
  };

  /** POST /api/v1/events: stores the event and its deliveries together; idempotent by id. `data` is JSON text. */
  publish(input: { id: string; type: string; data: string }, requestId: string): PublishResult {
    const existing = this.store.events.findByKey(API_SOURCE, input.id);
    if (existing) return this.result(existing, true);
    const traceContext = captureTraceContext();
    const outcome = this.store.transaction(() => {
      const raced = this.store.events.findByKey(API_SOURCE, input.id);
      if (raced) return { pk: raced, duplicate: true, leased: [] };
      const pk = this.store.events.insert({ source: API_SOURCE, eventId: input.id, type: input.type, rawPayload: input.data, requestId }, this.options.idempotencyTtlMs);
      this.store.events.setStatus(pk, 'processed', 0, null);
      const { leased } = this.createDeliveries(pk, input.type, requestId, traceContext);
      return { pk, duplicate: false, leased };
    });
    this.handOver(outcome.leased);
    const result = this.result(outcome.pk, outcome.duplicate);
    if (!outcome.duplicate) this.logger.info('event published', { request_id: requestId, event_id: input.id, event_type: input.type, stored_as: outcome.pk, deliveries: result.deliveries.length });
    return result;
  }

  private result(pk: string, duplicate: boolean): PublishResult {
    const event = this.store.events.get(pk);
    if (!event) throw new Error(`event ${pk} vanished`);
    return { duplicate, event, deliveries: this.store.deliveries.forEvent(pk) };
  }
}
