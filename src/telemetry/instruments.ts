import { getHeapStatistics } from 'node:v8';
import client from 'prom-client';

/**
 * The definitions of every metric (the design's contract table plus a few extras), registered in
 * both exposition formats' registries (see metrics.ts). Only the facade in metrics.ts touches these.
 */

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PROCESSING_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const END_TO_END_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const DELIVERY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1];

export type AnyRegistry = client.Registry<client.PrometheusContentType> | client.Registry<client.OpenMetricsContentType>;

export const QUEUES = ['events', 'deliveries', 'notifications'] as const;
export type QueueName = (typeof QUEUES)[number];

/** Values read at scrape time, so the gauges are current at every scrape. */
export interface GaugeSources {
  queueSizes(): Record<QueueName, number>;
  deadLetterSize(): number;
  oldestPendingDeliveryAgeSeconds(): number;
  parkedDeliveries(): number;
  dbConnections(): Record<string, number>;
  dbUp(): boolean;
  cacheUp(): boolean;
}

export class InstrumentSet {
  private lastCpu = process.cpuUsage();
  private lastCpuAt = process.hrtime.bigint();

  readonly requests: client.Counter<'source' | 'status'>;
  readonly errors: client.Counter<'source' | 'type'>;
  readonly requestDuration: client.Histogram<'source' | 'status'>;
  readonly concurrent: client.Gauge;
  readonly processed: client.Counter<'event_type' | 'status'>;
  readonly processingDuration: client.Histogram<'event_type'>;
  readonly byType: client.Counter<'source' | 'event_type'>;
  readonly endToEnd: client.Histogram<'event_type'>;
  readonly dbQuery: client.Histogram<'operation'>;
  readonly cacheHits: client.Counter<'cache'>;
  readonly cacheMisses: client.Counter<'cache'>;
  readonly cacheDuration: client.Histogram<'cache' | 'operation'>;
  readonly signatureFailures: client.Counter<'source' | 'reason'>;
  readonly rateLimited: client.Counter<'source'>;
  readonly rateLimitPerSecond: client.Gauge<'source'>;
  readonly deliveries: client.Counter<'endpoint'>;
  readonly deliveryFailures: client.Counter<'endpoint' | 'reason'>;
  readonly deliveryDuration: client.Histogram<'endpoint'>;
  readonly deliveryRetries: client.Counter<'endpoint'>;
  readonly endpointUp: client.Gauge<'endpoint'>;

  /**
   * @param exemplars latency histograms keep the trace id of a recent observation per bucket
   *   (only possible on an OpenMetrics registry, and only rendered there).
   */
  constructor(readonly registry: AnyRegistry, readonly exemplars: boolean, sources: () => GaugeSources | null) {
    const registers = [registry];
    const latency = { registers, enableExemplars: exemplars };
    this.requests = new client.Counter({ name: 'webhook_requests_total', help: 'Inbound webhook HTTP requests by source and response status.', labelNames: ['source', 'status'], registers });
    this.errors = new client.Counter({ name: 'webhook_errors_total', help: 'Inbound requests or processing runs that failed, by source and error type.', labelNames: ['source', 'type'], registers });
    this.requestDuration = new client.Histogram({ name: 'webhook_request_duration_seconds', help: 'Inbound webhook request latency in seconds.', labelNames: ['source', 'status'], buckets: LATENCY_BUCKETS, ...latency });
    this.concurrent = new client.Gauge({ name: 'webhook_concurrent_requests', help: 'Inbound webhook requests in flight.', registers });
    this.processed = new client.Counter({ name: 'webhook_events_processed_total', help: 'Processing runs of accepted events by type and status (success, retry, dead_letter).', labelNames: ['event_type', 'status'], registers });
    this.processingDuration = new client.Histogram({ name: 'webhook_event_processing_duration_seconds', help: 'Time spent in the handlers of one processing run, in seconds.', labelNames: ['event_type'], buckets: PROCESSING_BUCKETS, ...latency });
    this.byType = new client.Counter({ name: 'webhook_events_by_type_total', help: 'Accepted events by source and type (types outside the allow-list are recorded as other).', labelNames: ['source', 'event_type'], registers });
    this.endToEnd = new client.Histogram({ name: 'webhook_end_to_end_seconds', help: 'Time from an event being accepted to its processing being done, in seconds.', labelNames: ['event_type'], buckets: END_TO_END_BUCKETS, ...latency });
    this.dbQuery = new client.Histogram({ name: 'webhook_db_query_duration_seconds', help: 'Store calls by operation, in seconds.', labelNames: ['operation'], buckets: FAST_BUCKETS, registers });
    this.cacheHits = new client.Counter({ name: 'webhook_cache_hits_total', help: 'In-process cache look-ups that found the key.', labelNames: ['cache'], registers });
    this.cacheMisses = new client.Counter({ name: 'webhook_cache_misses_total', help: 'In-process cache look-ups that did not find the key.', labelNames: ['cache'], registers });
    this.cacheDuration = new client.Histogram({ name: 'webhook_cache_operation_duration_seconds', help: 'In-process cache calls by cache and operation, in seconds.', labelNames: ['cache', 'operation'], buckets: FAST_BUCKETS, registers });
    this.signatureFailures = new client.Counter({ name: 'webhook_signature_failures_total', help: 'Rejected webhook signatures by source and reason (missing, malformed, mismatch, expired).', labelNames: ['source', 'reason'], registers });
    this.rateLimited = new client.Counter({ name: 'webhook_rate_limited_total', help: 'Inbound requests refused with 429 by source.', labelNames: ['source'], registers });
    this.rateLimitPerSecond = new client.Gauge({ name: 'webhook_rate_limit_per_second', help: 'Configured inbound rate limit per source, in requests per second.', labelNames: ['source'], registers });
    this.deliveries = new client.Counter({ name: 'webhook_deliveries_total', help: 'Outbound delivery attempts by endpoint.', labelNames: ['endpoint'], registers });
    this.deliveryFailures = new client.Counter({ name: 'webhook_delivery_failures_total', help: 'Failed outbound delivery attempts by endpoint and reason (timeout, connection, http_4xx, http_5xx).', labelNames: ['endpoint', 'reason'], registers });
    this.deliveryDuration = new client.Histogram({ name: 'webhook_delivery_duration_seconds', help: 'Endpoint response time of outbound delivery attempts, in seconds.', labelNames: ['endpoint'], buckets: DELIVERY_BUCKETS, ...latency });
    this.deliveryRetries = new client.Counter({ name: 'webhook_delivery_retries_total', help: 'Outbound delivery attempts after the first, by endpoint.', labelNames: ['endpoint'], registers });
    this.endpointUp = new client.Gauge({ name: 'webhook_endpoint_up', help: '1 if the endpoint\'s last delivery attempt succeeded, 0 if it failed.', labelNames: ['endpoint'], registers });

    const self = this;
    // These read the store: should it be unreachable they keep their last values, so the scrape
    // still succeeds and carries webhook_db_up 0 instead of failing whole.
    new client.Gauge({ name: 'webhook_queue_size', help: 'Jobs waiting or running, by queue.', labelNames: ['queue'], registers, collect() {
      const sizes = whileReadable(() => sources()?.queueSizes() ?? Object.fromEntries(QUEUES.map((queue) => [queue, 0])));
      for (const [queue, size] of Object.entries(sizes ?? {})) this.set({ queue }, size);
    } });
    new client.Gauge({ name: 'webhook_dead_letter_queue_size', help: 'Jobs in the dead-letter queue.', registers, collect() {
      const size = whileReadable(() => sources()?.deadLetterSize() ?? 0);
      if (size !== undefined) this.set(size);
    } });
    new client.Gauge({ name: 'webhook_oldest_pending_delivery_age_seconds', help: 'How long the most overdue delivery job has waited past its due time, in seconds (0 when the sender keeps up; a delivery waiting for its next scheduled retry is not overdue).', registers, collect() {
      const age = whileReadable(() => sources()?.oldestPendingDeliveryAgeSeconds() ?? 0);
      if (age !== undefined) this.set(age);
    } });
    new client.Gauge({ name: 'webhook_parked_deliveries', help: 'Deliveries parked behind a paused endpoint or one held to a few slots for failing; they have no job, so webhook_queue_size does not count them.', registers, collect() {
      const parked = whileReadable(() => sources()?.parkedDeliveries() ?? 0);
      if (parked !== undefined) this.set(parked);
    } });
    new client.Gauge({ name: 'webhook_db_connections', help: 'Open database connections by state.', labelNames: ['state'], registers, collect() {
      for (const [state, count] of Object.entries(sources()?.dbConnections() ?? {})) this.set({ state }, count);
    } });
    new client.Gauge({ name: 'webhook_db_up', help: '1 when the store answers, 0 when it does not.', registers, collect() {
      this.set(sources()?.dbUp() ? 1 : 0);
    } });
    new client.Gauge({ name: 'webhook_cache_up', help: '1 when the in-process cache answers, 0 when it does not.', registers, collect() {
      this.set(sources()?.cacheUp() ? 1 : 0);
    } });
    new client.Gauge({ name: 'webhook_memory_usage_bytes', help: 'Process memory by type (rss, heap_used, heap_total, external), in bytes.', labelNames: ['type'], registers, collect() {
      // process.memoryUsage() took milliseconds per call in a busy process (measured in the scrape
      // benchmark); these two give the same figures for a few microseconds.
      const heap = getHeapStatistics();
      this.set({ type: 'rss' }, process.memoryUsage.rss());
      this.set({ type: 'heap_used' }, heap.used_heap_size);
      this.set({ type: 'heap_total' }, heap.total_heap_size);
      this.set({ type: 'external' }, heap.external_memory);
    } });
    new client.Gauge({ name: 'webhook_cpu_usage_percent', help: 'Process CPU use since the previous scrape, in percent of one core.', registers, collect() {
      this.set(self.sampleCpuPercent());
    } });
  }

  /** CPU since the previous scrape, of either format. */
  private sampleCpuPercent(): number {
    const now = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const elapsedMicros = Number(now - this.lastCpuAt) / 1000;
    const usedMicros = cpu.user - this.lastCpu.user + (cpu.system - this.lastCpu.system);
    this.lastCpu = cpu;
    this.lastCpuAt = now;
    return elapsedMicros > 0 ? Math.round((usedMicros / elapsedMicros) * 10_000) / 100 : 0;
  }
}

/** The value read, or undefined when reading it failed (the store is down). */
function whileReadable<T>(read: () => T): T | undefined {
  try {
    return read();
  } catch {
    return undefined;
  }
}
