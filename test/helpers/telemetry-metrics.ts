/** Reading /metrics in tests: a small parser for the text exposition formats, and the contract list. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
  /** The exemplar's labels, when the line carries one (OpenMetrics only). */
  exemplar?: Record<string, string>;
}

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** DESIGN.md's contract table: the name (as queried in PromQL), type and label names of every metric. */
export const CONTRACT_METRICS: readonly { name: string; type: MetricType; labels: readonly string[] }[] = [
  { name: 'webhook_requests_total', type: 'counter', labels: ['source', 'status'] },
  { name: 'webhook_errors_total', type: 'counter', labels: ['source', 'type'] },
  { name: 'webhook_request_duration_seconds', type: 'histogram', labels: ['source', 'status'] },
  { name: 'webhook_concurrent_requests', type: 'gauge', labels: [] },
  { name: 'webhook_events_processed_total', type: 'counter', labels: ['event_type', 'status'] },
  { name: 'webhook_event_processing_duration_seconds', type: 'histogram', labels: ['event_type'] },
  { name: 'webhook_events_by_type_total', type: 'counter', labels: ['source', 'event_type'] },
  { name: 'webhook_queue_size', type: 'gauge', labels: ['queue'] },
  { name: 'webhook_end_to_end_seconds', type: 'histogram', labels: ['event_type'] },
  { name: 'webhook_dead_letter_queue_size', type: 'gauge', labels: [] },
  { name: 'webhook_memory_usage_bytes', type: 'gauge', labels: ['type'] },
  { name: 'webhook_cpu_usage_percent', type: 'gauge', labels: [] },
  { name: 'webhook_db_connections', type: 'gauge', labels: ['state'] },
  { name: 'webhook_db_query_duration_seconds', type: 'histogram', labels: ['operation'] },
  { name: 'webhook_cache_hits_total', type: 'counter', labels: ['cache'] },
  { name: 'webhook_cache_misses_total', type: 'counter', labels: ['cache'] },
  { name: 'webhook_cache_operation_duration_seconds', type: 'histogram', labels: ['cache', 'operation'] },
  { name: 'webhook_signature_failures_total', type: 'counter', labels: ['source', 'reason'] },
  { name: 'webhook_rate_limited_total', type: 'counter', labels: ['source'] },
  { name: 'webhook_deliveries_total', type: 'counter', labels: ['endpoint'] },
  { name: 'webhook_delivery_failures_total', type: 'counter', labels: ['endpoint', 'reason'] },
  { name: 'webhook_delivery_duration_seconds', type: 'histogram', labels: ['endpoint'] },
  { name: 'webhook_delivery_retries_total', type: 'counter', labels: ['endpoint'] },
  { name: 'webhook_endpoint_up', type: 'gauge', labels: ['endpoint'] },
];

/** The series names a metric produces in the TSDB (a histogram: _bucket, _sum, _count). */
export function seriesNames(metric: { name: string; type: MetricType }): string[] {
  return metric.type === 'histogram' ? [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`] : [metric.name];
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*?)\})?\s+(\S+)(?:\s+\S+)?(?:\s+#\s+\{(.*?)\}\s+\S+(?:\s+\S+)?)?\s*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseLabels(text: string | undefined): Record<string, string> {
  const labels: Record<string, string> = {};
  if (!text) return labels;
  for (const match of text.matchAll(LABEL)) {
    const [, name, raw] = match;
    if (name !== undefined && raw !== undefined) labels[name] = raw.replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
  }
  return labels;
}

/** Parses the Prometheus text format or OpenMetrics (samples and exemplars; comments are skipped). */
export function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = LINE.exec(line);
    if (!match) throw new Error(`unparseable exposition line: ${line}`);
    const [, name = '', labels, value = 'NaN', exemplar] = match;
    const sample: Sample = { name, labels: parseLabels(labels), value: Number(value === '+Inf' ? Infinity : value) };
    if (exemplar !== undefined) sample.exemplar = parseLabels(exemplar);
    samples.push(sample);
  }
  return samples;
}

const matches = (sample: Sample, name: string, labels: Record<string, string>): boolean =>
  sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value);

/** The value of the one sample with this name whose labels include `labels`; fails if there is not exactly one. */
export function valueOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((sample) => matches(sample, name, labels));
  if (found.length !== 1) throw new Error(`expected one sample ${name}${JSON.stringify(labels)}, found ${found.length}`);
  return (found[0] as Sample).value;
}

/** The sum over every sample with this name whose labels include `labels` (0 when there is none). */
export function sumOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter((sample) => matches(sample, name, labels)).reduce((total, sample) => total + sample.value, 0);
}

export function samplesOf(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((sample) => matches(sample, name, labels));
}

export const OPENMETRICS_ACCEPT = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

export async function scrape(baseUrl: string, accept?: string): Promise<{ contentType: string; body: string; samples: Sample[] }> {
  const response = await fetch(`${baseUrl}/metrics`, { headers: accept ? { accept } : {} });
  if (!response.ok) throw new Error(`GET /metrics answered ${response.status}`);
  const body = await response.text();
  return { contentType: response.headers.get('content-type') ?? '', body, samples: parseExposition(body) };
}
