import client from 'prom-client';

/**
 * Every metric of the contract in DESIGN.md, defined once, behind a typed facade.
 * Request handlers and workers call the methods below and never touch prom-client.
 */

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const PROCESSING_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const END_TO_END_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
const DELIVERY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const FAST_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1];

export type SignatureFailureReason = 'missing' | 'malformed' | 'mismatch' | 'expired';
export type InboundErrorType = 'signature' | 'bad_request' | 'rate_limited' | 'processing' | 'internal';
export type ProcessingStatus = 'success' | 'retry' | 'dead_letter';
export type DeliveryFailureReason = 'timeout' | 'connection' | 'http_4xx' | 'http_5xx';
export type QueueName = 'events' | 'deliveries';

export const SIGNATURE_FAILURE_REASONS: readonly SignatureFailureReason[] = ['missing', 'malformed', 'mismatch', 'expired'];
export const INBOUND_ERROR_TYPES: readonly InboundErrorType[] = ['signature', 'bad_request', 'rate_limited', 'processing', 'internal'];
export const DELIVERY_FAILURE_REASONS: readonly DeliveryFailureReason[] = ['timeout', 'connection', 'http_4xx', 'http_5xx'];

export interface DeliveryOutcome {
  ok: boolean;
  /** Set when ok is false. */
  reason?: DeliveryFailureReason;
  /** True for every attempt after the first of a delivery. */
  retry: boolean;
}

/** Values read at scrape time, so the gauges are current at every scrape. */
export interface GaugeSources {
  queueSizes(): Record<QueueName, number>;
  deadLetterSize(): number;
  oldestPendingDeliveryAgeSeconds(): number;
  dbConnections(): Record<string, number>;
  dbUp(): boolean;
  cacheUp(): boolean;
}

export class Metrics {
  readonly registry = new client.Registry();
  private readonly allowedTypes: ReadonlySet<string>;
  private gaugeSources: GaugeSources | null = null;
  private lastCpu = process.cpuUsage();
  private lastCpuAt = process.hrtime.bigint();

  private readonly requests = new client.Counter({ name: 'webhook_requests_total', help: 'Inbound webhook HTTP requests by source and response status.', labelNames: ['source', 'status'], registers: [this.registry] });
  private readonly errors = new client.Counter({ name: 'webhook_errors_total', help: 'Inbound requests or processing runs that failed, by source and error type.', labelNames: ['source', 'type'], registers: [this.registry] });
  private readonly requestDuration = new client.Histogram({ name: 'webhook_request_duration_seconds', help: 'Inbound webhook request latency in seconds.', labelNames: ['source', 'status'], buckets: LATENCY_BUCKETS, registers: [this.registry] });
  private readonly concurrent = new client.Gauge({ name: 'webhook_concurrent_requests', help: 'Inbound webhook requests in flight.', registers: [this.registry] });
  private readonly processed = new client.Counter({ name: 'webhook_events_processed_total', help: 'Processing runs of accepted events by type and status (success, retry, dead_letter).', labelNames: ['event_type', 'status'], registers: [this.registry] });
  private readonly processingDuration = new client.Histogram({ name: 'webhook_event_processing_duration_seconds', help: 'Time spent in the handlers of one processing run, in seconds.', labelNames: ['event_type'], buckets: PROCESSING_BUCKETS, registers: [this.registry] });
  private readonly byType = new client.Counter({ name: 'webhook_events_by_type_total', help: 'Accepted events by source and type (types outside the allow-list are recorded as other).', labelNames: ['source', 'event_type'], registers: [this.registry] });
  private readonly endToEnd = new client.Histogram({ name: 'webhook_end_to_end_seconds', help: 'Time from an event being accepted to its processing being done, in seconds.', labelNames: ['event_type'], buckets: END_TO_END_BUCKETS, registers: [this.registry] });
  private readonly dbQuery = new client.Histogram({ name: 'webhook_db_query_duration_seconds', help: 'Store calls by operation, in seconds.', labelNames: ['operation'], buckets: FAST_BUCKETS, registers: [this.registry] });
  private readonly cacheHits = new client.Counter({ name: 'webhook_cache_hits_total', help: 'In-process cache look-ups that found the key.', labelNames: ['cache'], registers: [this.registry] });
  private readonly cacheMisses = new client.Counter({ name: 'webhook_cache_misses_total', help: 'In-process cache look-ups that did not find the key.', labelNames: ['cache'], registers: [this.registry] });
  private readonly cacheDuration = new client.Histogram({ name: 'webhook_cache_operation_duration_seconds', help: 'In-process cache calls by cache and operation, in seconds.', labelNames: ['cache', 'operation'], buckets: FAST_BUCKETS, registers: [this.registry] });
  private readonly signatureFailures = new client.Counter({ name: 'webhook_signature_failures_total', help: 'Rejected webhook signatures by source and reason (missing, malformed, mismatch, expired).', labelNames: ['source', 'reason'], registers: [this.registry] });
  private readonly rateLimitedCount = new client.Counter({ name: 'webhook_rate_limited_total', help: 'Inbound requests refused with 429 by source.', labelNames: ['source'], registers: [this.registry] });
  private readonly rateLimitPerSecond = new client.Gauge({ name: 'webhook_rate_limit_per_second', help: 'Configured inbound rate limit per source, in requests per second.', labelNames: ['source'], registers: [this.registry] });
  private readonly deliveries = new client.Counter({ name: 'webhook_deliveries_total', help: 'Outbound delivery attempts by endpoint.', labelNames: ['endpoint'], registers: [this.registry] });
  private readonly deliveryFailures = new client.Counter({ name: 'webhook_delivery_failures_total', help: 'Failed outbound delivery attempts by endpoint and reason (timeout, connection, http_4xx, http_5xx).', labelNames: ['endpoint', 'reason'], registers: [this.registry] });
  private readonly deliveryDuration = new client.Histogram({ name: 'webhook_delivery_duration_seconds', help: 'Endpoint response time of outbound delivery attempts, in seconds.', labelNames: ['endpoint'], buckets: DELIVERY_BUCKETS, registers: [this.registry] });
  private readonly deliveryRetries = new client.Counter({ name: 'webhook_delivery_retries_total', help: 'Outbound delivery attempts after the first, by endpoint.', labelNames: ['endpoint'], registers: [this.registry] });
  private readonly endpointUpGauge = new client.Gauge({ name: 'webhook_endpoint_up', help: '1 if the endpoint\'s last delivery attempt succeeded, 0 if it failed.', labelNames: ['endpoint'], registers: [this.registry] });

  constructor(options: { eventTypeAllowlist: readonly string[]; defaultMetrics?: boolean }) {
    this.allowedTypes = new Set(options.eventTypeAllowlist);
    if (options.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.registry });
    const self = this;
    new client.Gauge({ name: 'webhook_queue_size', help: 'Jobs waiting to run, by queue.', labelNames: ['queue'], registers: [this.registry], collect() {
      const sizes = self.gaugeSources?.queueSizes() ?? { events: 0, deliveries: 0 };
      for (const [queue, size] of Object.entries(sizes)) this.set({ queue }, size);
    } });
    new client.Gauge({ name: 'webhook_dead_letter_queue_size', help: 'Jobs in the dead-letter queue.', registers: [this.registry], collect() {
      this.set(self.gaugeSources?.deadLetterSize() ?? 0);
    } });
    new client.Gauge({ name: 'webhook_oldest_pending_delivery_age_seconds', help: 'Age of the oldest outbound delivery not yet delivered, in seconds (0 when none).', registers: [this.registry], collect() {
      this.set(self.gaugeSources?.oldestPendingDeliveryAgeSeconds() ?? 0);
    } });
    new client.Gauge({ name: 'webhook_db_connections', help: 'Open database connections by state.', labelNames: ['state'], registers: [this.registry], collect() {
      for (const [state, count] of Object.entries(self.gaugeSources?.dbConnections() ?? {})) this.set({ state }, count);
    } });
    new client.Gauge({ name: 'webhook_db_up', help: '1 when the store answers, 0 when it does not.', registers: [this.registry], collect() {
      this.set(self.gaugeSources?.dbUp() ? 1 : 0);
    } });
    new client.Gauge({ name: 'webhook_cache_up', help: '1 when the in-process cache answers, 0 when it does not.', registers: [this.registry], collect() {
      this.set(self.gaugeSources?.cacheUp() ? 1 : 0);
    } });
    new client.Gauge({ name: 'webhook_memory_usage_bytes', help: 'Process memory by type (rss, heap_used, heap_total, external), in bytes.', labelNames: ['type'], registers: [this.registry], collect() {
      const usage = process.memoryUsage();
      this.set({ type: 'rss' }, usage.rss);
      this.set({ type: 'heap_used' }, usage.heapUsed);
      this.set({ type: 'heap_total' }, usage.heapTotal);
      this.set({ type: 'external' }, usage.external);
    } });
    new client.Gauge({ name: 'webhook_cpu_usage_percent', help: 'Process CPU use since the previous scrape, in percent of one core.', registers: [this.registry], collect() {
      this.set(self.sampleCpuPercent());
    } });
  }

  setGaugeSources(sources: GaugeSources): void {
    this.gaugeSources = sources;
  }

  /** Bounded cardinality: event types outside the allow-list are recorded as `other`. */
  eventTypeLabel(type: string): string {
    return this.allowedTypes.has(type) ? type : 'other';
  }

  /** Creates every label set alerts divide or threshold at 0, so the first failure is counted by increase(). */
  sourceConfigured(source: string, ratePerSecond: number): void {
    this.rateLimitPerSecond.set({ source }, ratePerSecond);
    for (const status of ['200', '202', '400', '404', '413', '415', '429']) this.requests.inc({ source, status }, 0);
    for (const type of INBOUND_ERROR_TYPES) this.errors.inc({ source, type }, 0);
    for (const reason of SIGNATURE_FAILURE_REASONS) this.signatureFailures.inc({ source, reason }, 0);
    this.rateLimitedCount.inc({ source }, 0);
  }

  endpointRegistered(endpoint: string): void {
    this.deliveries.inc({ endpoint }, 0);
    this.deliveryRetries.inc({ endpoint }, 0);
    for (const reason of DELIVERY_FAILURE_REASONS) this.deliveryFailures.inc({ endpoint, reason }, 0);
  }

  endpointRemoved(endpoint: string): void {
    this.deliveries.remove({ endpoint });
    this.deliveryRetries.remove({ endpoint });
    this.endpointUpGauge.remove({ endpoint });
    this.deliveryDuration.remove({ endpoint });
    for (const reason of DELIVERY_FAILURE_REASONS) this.deliveryFailures.remove({ endpoint, reason });
  }

  requestStarted(): () => void {
    this.concurrent.inc();
    let done = false;
    return () => {
      if (!done) this.concurrent.dec();
      done = true;
    };
  }

  requestCompleted(source: string, status: number, seconds: number): void {
    const labels = { source, status: String(status) };
    this.requests.inc(labels);
    this.requestDuration.observe(labels, seconds);
  }

  inboundError(source: string, type: InboundErrorType): void {
    this.errors.inc({ source, type });
  }

  signatureRejected(source: string, reason: SignatureFailureReason): void {
    this.signatureFailures.inc({ source, reason });
  }

  rateLimited(source: string): void {
    this.rateLimitedCount.inc({ source });
  }

  eventAccepted(source: string, eventType: string): void {
    this.byType.inc({ source, event_type: this.eventTypeLabel(eventType) });
  }

  eventProcessed(eventType: string, status: ProcessingStatus, handlerSeconds: number, endToEndSeconds: number | null): void {
    const event_type = this.eventTypeLabel(eventType);
    this.processed.inc({ event_type, status });
    this.processingDuration.observe({ event_type }, handlerSeconds);
    if (endToEndSeconds !== null) this.endToEnd.observe({ event_type }, endToEndSeconds);
  }

  processingFailed(source: string): void {
    this.errors.inc({ source, type: 'processing' });
  }

  dbQueryTimed(operation: string, seconds: number): void {
    this.dbQuery.observe({ operation }, seconds);
  }

  cacheLookup(cache: string, hit: boolean, seconds: number): void {
    (hit ? this.cacheHits : this.cacheMisses).inc({ cache });
    this.cacheDuration.observe({ cache, operation: 'get' }, seconds);
  }

  cacheOperation(cache: string, operation: string, seconds: number): void {
    this.cacheDuration.observe({ cache, operation }, seconds);
  }

  deliveryAttempted(endpoint: string, outcome: DeliveryOutcome, seconds: number): void {
    this.deliveries.inc({ endpoint });
    if (outcome.retry) this.deliveryRetries.inc({ endpoint });
    this.deliveryDuration.observe({ endpoint }, seconds);
    if (!outcome.ok && outcome.reason) this.deliveryFailures.inc({ endpoint, reason: outcome.reason });
    this.endpointUpGauge.set({ endpoint }, outcome.ok ? 1 : 0);
  }

  /** The exposition in the format the scraper asked for. */
  async exposition(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

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
