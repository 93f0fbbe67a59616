import client from 'prom-client';
import { ExpositionRegistry } from './exposition.js';
import { InstrumentSet, type GaugeSources, type QueueName } from './instruments.js';
import { activeTraceId } from './trace-context.js';

/**
 * Every metric of the design's contract (CONTRACT_METRICS in test/helpers/telemetry-metrics.ts),
 * defined once (instruments.ts), behind a typed facade.
 * Request handlers and workers call the methods below and never touch prom-client.
 *
 * Two expositions are served from the same metric objects: Prometheus text (the default) and
 * OpenMetrics, when the scraper's Accept header prefers it, whose latency histograms carry the
 * trace id of a recent observation as an exemplar. prom-client fixes one content type per
 * registry, so each format has its own registry holding the same metrics, and every observation
 * is recorded once. Both registries render with ExpositionRegistry (exposition.ts).
 */

export type { GaugeSources, QueueName } from './instruments.js';
export { QUEUES } from './instruments.js';

export type SignatureFailureReason = 'missing' | 'malformed' | 'mismatch' | 'expired';
export type InboundErrorType = 'signature' | 'bad_request' | 'rate_limited' | 'processing' | 'internal';
export type ProcessingStatus = 'success' | 'retry' | 'dead_letter';
export type DeliveryFailureReason = 'timeout' | 'connection' | 'http_4xx' | 'http_5xx';
export type ExpositionFormat = 'prometheus' | 'openmetrics';

export const SIGNATURE_FAILURE_REASONS: readonly SignatureFailureReason[] = ['missing', 'malformed', 'mismatch', 'expired'];
export const INBOUND_ERROR_TYPES: readonly InboundErrorType[] = ['signature', 'bad_request', 'rate_limited', 'processing', 'internal'];
export const DELIVERY_FAILURE_REASONS: readonly DeliveryFailureReason[] = ['timeout', 'connection', 'http_4xx', 'http_5xx'];
export const PROCESSING_STATUSES: readonly ProcessingStatus[] = ['success', 'retry', 'dead_letter'];

export interface DeliveryOutcome {
  ok: boolean;
  /** Set when ok is false. */
  reason?: DeliveryFailureReason;
  /** True for every attempt after the first of a delivery. */
  retry: boolean;
}

export class Metrics {
  /** The Prometheus text registry (the default exposition). */
  readonly registry = new ExpositionRegistry<client.PrometheusContentType>();
  /** The OpenMetrics registry: the same metrics, rendered with the exemplars of the latency histograms. */
  readonly openMetricsRegistry = openMetricsRegistry();
  private readonly set: InstrumentSet;
  private readonly allowedTypes: ReadonlySet<string>;
  /**
   * Endpoints deleted in this process: an attempt still on the wire when its endpoint went would
   * otherwise bring the series back, and dashboards would show a deleted endpoint as down.
   * Endpoint ids are never reused.
   */
  private readonly removedEndpoints = new Set<string>();
  private gaugeSources: GaugeSources | null = null;

  constructor(options: { eventTypeAllowlist: readonly string[]; defaultMetrics?: boolean }) {
    this.allowedTypes = new Set(options.eventTypeAllowlist);
    // Created on the OpenMetrics registry: prom-client only allows exemplars there.
    this.set = new InstrumentSet(this.openMetricsRegistry, true, () => this.gaugeSources);
    if (options.defaultMetrics !== false) client.collectDefaultMetrics({ register: this.openMetricsRegistry });
    // Every type label there can be, at 0: the report and dashboards take increase() of these, which
    // never counts a series' first sample, so a type's first burst of events would show as none.
    for (const event_type of [...this.allowedTypes, 'other']) {
      for (const status of PROCESSING_STATUSES) this.set.processed.inc({ event_type, status }, 0);
    }
    const all = this.openMetricsRegistry.getMetricsAsArray();
    for (const metric of all) this.registry.registerMetric(metric as unknown as client.Metric);
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
    const set = this.set;
    set.rateLimitPerSecond.set({ source }, ratePerSecond);
    for (const status of ['200', '202', '400', '404', '413', '415', '429', '500', '503']) set.requests.inc({ source, status }, 0);
    // The latency of accepted requests too: a first burst before the first scrape would otherwise be
    // the series' starting value, which increase() and rate() never count.
    for (const status of ['200', '202']) set.requestDuration.zero({ source, status });
    for (const type of INBOUND_ERROR_TYPES) set.errors.inc({ source, type }, 0);
    for (const reason of SIGNATURE_FAILURE_REASONS) set.signatureFailures.inc({ source, reason }, 0);
    set.rateLimited.inc({ source }, 0);
    // WebhookUnlistedEventTypes takes increase() of the `other` series, and the report and dashboards
    // of every type's: each must exist before its first event.
    for (const event_type of [...this.allowedTypes, 'other']) set.byType.inc({ source, event_type }, 0);
  }

  /** `lastOk`: how the endpoint's last attempt went, as saved before a restart (null: none yet). */
  endpointRegistered(endpoint: string, lastOk: boolean | null = null): void {
    const set = this.set;
    if (lastOk !== null) set.endpointUp.set({ endpoint }, lastOk ? 1 : 0);
    set.deliveries.inc({ endpoint }, 0);
    set.deliveryRetries.inc({ endpoint }, 0);
    for (const reason of DELIVERY_FAILURE_REASONS) set.deliveryFailures.inc({ endpoint, reason }, 0);
  }

  endpointRemoved(endpoint: string): void {
    this.removedEndpoints.add(endpoint);
    const set = this.set;
    set.deliveries.remove({ endpoint });
    set.deliveryRetries.remove({ endpoint });
    set.endpointUp.remove({ endpoint });
    set.deliveryDuration.remove({ endpoint });
    for (const reason of DELIVERY_FAILURE_REASONS) set.deliveryFailures.remove({ endpoint, reason });
  }

  requestStarted(): void {
    this.set.concurrent.inc();
  }

  /** Call exactly once per requestStarted(). */
  requestCompleted(source: string, status: number, seconds: number): void {
    this.set.concurrent.dec();
    const labels = { source, status: String(status) };
    this.set.requests.inc(labels);
    this.observeLatency((set) => set.requestDuration, labels, seconds);
  }

  inboundError(source: string, type: InboundErrorType): void {
    this.set.errors.inc({ source, type });
  }

  signatureRejected(source: string, reason: SignatureFailureReason): void {
    this.set.signatureFailures.inc({ source, reason });
  }

  rateLimited(source: string): void {
    this.set.rateLimited.inc({ source });
  }

  eventAccepted(source: string, eventType: string): void {
    const labels = { source, event_type: this.eventTypeLabel(eventType) };
    this.set.byType.inc(labels);
  }

  eventProcessed(eventType: string, status: ProcessingStatus, handlerSeconds: number, endToEndSeconds: number | null): void {
    const event_type = this.eventTypeLabel(eventType);
    this.set.processed.inc({ event_type, status });
    this.observeLatency((set) => set.processingDuration, { event_type }, handlerSeconds);
    if (endToEndSeconds !== null) this.observeLatency((set) => set.endToEnd, { event_type }, endToEndSeconds);
  }

  processingFailed(source: string): void {
    this.set.errors.inc({ source, type: 'processing' });
  }

  dbQueryTimed(operation: string, seconds: number): void {
    this.set.dbQuery.observe({ operation }, seconds);
  }

  cacheLookup(cache: string, hit: boolean, seconds: number): void {
    const set = this.set;
    (hit ? set.cacheHits : set.cacheMisses).inc({ cache });
    set.cacheDuration.observe({ cache, operation: 'get' }, seconds);
  }

  cacheOperation(cache: string, operation: string, seconds: number): void {
    this.set.cacheDuration.observe({ cache, operation }, seconds);
  }

  deliveryAttempted(endpoint: string, outcome: DeliveryOutcome, seconds: number): void {
    if (this.removedEndpoints.has(endpoint)) return;
    const set = this.set;
    set.deliveries.inc({ endpoint });
    if (outcome.retry) set.deliveryRetries.inc({ endpoint });
    if (!outcome.ok && outcome.reason) set.deliveryFailures.inc({ endpoint, reason: outcome.reason });
    set.endpointUp.set({ endpoint }, outcome.ok ? 1 : 0);
    this.observeLatency((set) => set.deliveryDuration, { endpoint }, seconds);
  }

  /** The exposition in the format the scraper asked for (OpenMetrics only when it prefers it). */
  async exposition(accept: string | undefined): Promise<{ contentType: string; body: string }> {
    const registry = negotiateFormat(accept) === 'openmetrics' ? this.openMetricsRegistry : this.registry;
    return { contentType: registry.contentType, body: await registry.metrics() };
  }

  /** Records a latency; the OpenMetrics exposition shows the active trace id as an exemplar. */
  private observeLatency<L extends string>(pick: (set: InstrumentSet) => client.Histogram<L>, labels: client.LabelValues<L>, seconds: number): void {
    const traceId = activeTraceId();
    // prom-client types exemplar labels as the metric's own label names; they are a separate set.
    const exemplarLabels = (traceId ? { trace_id: traceId } : {}) as client.LabelValues<L>;
    pick(this.set).observe({ labels, value: seconds, exemplarLabels });
  }
}

function openMetricsRegistry(): ExpositionRegistry<client.OpenMetricsContentType> {
  const registry = new ExpositionRegistry<client.OpenMetricsContentType>();
  // Before any metric is registered: prom-client refuses exemplars on a Prometheus-format registry.
  registry.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
  return registry;
}

/**
 * OpenMetrics when the Accept header ranks application/openmetrics-text at least as high as the
 * text format (Prometheus asks for it first by default); the Prometheus text format otherwise.
 */
export function negotiateFormat(accept: string | undefined): ExpositionFormat {
  if (!accept) return 'prometheus';
  let openMetrics = 0;
  let text = 0;
  for (const range of accept.split(',')) {
    const [type = '', ...params] = range.split(';').map((part) => part.trim().toLowerCase());
    const q = Number(params.find((param) => param.startsWith('q='))?.slice(2) ?? '1');
    if (!Number.isFinite(q)) continue;
    if (type === 'application/openmetrics-text') openMetrics = Math.max(openMetrics, q);
    else if (type === 'text/plain' || type === 'text/*' || type === '*/*') text = Math.max(text, q);
  }
  return openMetrics > 0 && openMetrics >= text ? 'openmetrics' : 'prometheus';
}
