import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import client from 'prom-client';
import { ExpositionRegistry } from '../src/telemetry/exposition.js';

/** A metric frozen as collected once: what a registry reads of it. */
interface Frozen {
  name: string;
  type: string;
  get(): Promise<{ name: string }>;
  getForPromString?(): Promise<{ name: string }>;
}

type AnyRegistry = client.Registry<client.PrometheusContentType> | client.Registry<client.OpenMetricsContentType>;

/**
 * Every kind of metric and sample prom-client renders: labels that need escaping, series shared
 * by histogram buckets, exemplars, values that are not finite, a summary. The same metric objects
 * sit in prom-client's registries and in ExpositionRegistry's, so both render the same state.
 */
function populated(): { ours: { text: AnyRegistry; open: AnyRegistry }; theirs: { text: AnyRegistry; open: AnyRegistry } } {
  const open = new ExpositionRegistry<client.OpenMetricsContentType>();
  open.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
  const registers = [open];
  const requests = new client.Counter({ name: 'demo_requests_total', help: 'Requests, with a "quoted" help\\text\nover two lines.', labelNames: ['source', 'status'], registers });
  requests.inc({ source: 'stripe', status: '202' }, 41);
  requests.inc({ source: 'a "quoted"\\back\nslash', status: '400' });
  requests.inc({ source: 'empty', status: '500' }, 0);
  const plain = new client.Counter({ name: 'demo_plain_total', help: 'A counter without labels.', registers });
  plain.inc(3);
  const up = new client.Gauge({ name: 'demo_up', help: 'A gauge.', labelNames: ['endpoint'], registers });
  up.set({ endpoint: 'ep_1' }, 1);
  up.set({ endpoint: 'ep_nan' }, Number.NaN);
  up.set({ endpoint: 'ep_inf' }, Number.POSITIVE_INFINITY);
  up.set({ endpoint: 'ep_minus_inf' }, Number.NEGATIVE_INFINITY);
  up.set({ endpoint: 'ep_fraction' }, 0.000125);
  const single = new client.Gauge({ name: 'demo_single', help: 'A gauge without labels.', registers });
  single.set(-7.5);
  new client.Gauge({ name: 'demo_collected', help: 'A gauge set at scrape time.', labelNames: ['queue'], registers, collect() {
    this.set({ queue: 'events' }, 12);
    this.set({ queue: 'deliveries' }, 0);
  } });
  const latency = new client.Histogram({ name: 'demo_duration_seconds', help: 'A histogram with exemplars.', labelNames: ['endpoint', 'status'], buckets: [0.01, 0.1, 1, 10], registers, enableExemplars: true });
  for (const [endpoint, status, value] of [['ep_1', '200', 0.004], ['ep_1', '200', 0.5], ['ep_2', '503', 12], ['ep "2"', '503', 0.02]] as const) {
    // prom-client types exemplar labels as the metric's own label names; they are a separate set.
    const exemplarLabels = { trace_id: `trace-${endpoint}-${value}` } as client.LabelValues<'endpoint' | 'status'>;
    latency.observe({ labels: { endpoint, status }, value, exemplarLabels });
  }
  latency.observe({ labels: { endpoint: 'ep_3', status: '200' }, value: 0.05, exemplarLabels: {} });
  latency.zero({ endpoint: 'ep_zero', status: '200' });
  const unlabelled = new client.Histogram({ name: 'demo_unlabelled_seconds', help: 'A histogram without labels.', buckets: [0.5, 5], registers });
  unlabelled.observe(0.7);
  unlabelled.observe(0.1);
  const sizes = new client.Summary({ name: 'demo_size_bytes', help: 'A summary.', labelNames: ['kind'], percentiles: [0.5, 0.9], registers });
  for (const value of [10, 20, 30, 400]) sizes.observe({ kind: 'body' }, value);

  const text = new ExpositionRegistry<client.PrometheusContentType>();
  const theirText = new client.Registry<client.PrometheusContentType>();
  const theirOpen = new client.Registry<client.OpenMetricsContentType>();
  theirOpen.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
  for (const metric of open.getMetricsAsArray()) {
    for (const registry of [text, theirText, theirOpen]) registry.registerMetric(metric as unknown as client.Metric);
  }
  return { ours: { text, open }, theirs: { text: theirText, open: theirOpen } };
}

describe('telemetry: the exposition registry', () => {
  it('renders the Prometheus text format byte for byte as prom-client does', async () => {
    const { ours, theirs } = populated();
    const expected = await theirs.text.metrics();
    assert.match(expected, /demo_duration_seconds_bucket\{le="0.1",endpoint="ep_1",status="200"\} 1/);
    assert.equal(await ours.text.metrics(), expected);
  });

  it('renders OpenMetrics, exemplars included, byte for byte as prom-client does', async () => {
    const { ours, theirs } = populated();
    const rendered = await ours.open.metrics();
    // prom-client's renames counters while it renders OpenMetrics, so it goes second.
    const expected = await theirs.open.metrics();
    assert.match(expected, /demo_duration_seconds_bucket\{le="0.01",endpoint="ep_1",status="200"\} 1 # \{trace_id="trace-ep_1-0.004"\} 0.004 \d/);
    assert.match(expected, /^demo_requests_total\{source="stripe",status="202"\} 41$/m);
    assert.equal(rendered, expected);
  });

  it('renders the default process metrics and the odd cases (numeric and missing label values, no samples, a counter without _total) as prom-client does', async () => {
    // Default metrics read the process afresh on every collect, so each is collected once and its
    // samples frozen; both registries then render the same frozen copies.
    const source = new client.Registry<client.OpenMetricsContentType>();
    source.setContentType(client.Registry.OPENMETRICS_CONTENT_TYPE);
    client.collectDefaultMetrics({ register: source });
    const registers = [source];
    const odd = new client.Counter({ name: 'demo_odd', help: 'A counter named without _total.', labelNames: ['n'], registers });
    odd.inc({ n: 5 }, 2);
    odd.inc({ n: undefined }, 1);
    new client.Gauge({ name: 'demo_unset', help: 'A gauge with no samples.', labelNames: ['x'], registers });
    const exemplified = new client.Counter({ name: 'demo_exemplified_total', help: 'A counter with an exemplar without labels.', registers, enableExemplars: true });
    exemplified.inc({ value: 1, labels: {}, exemplarLabels: {} });
    await source.metrics();
    const frozen: client.Metric[] = [];
    for (const metric of source.getMetricsAsArray() as unknown as Frozen[]) {
      const data = structuredClone(metric.getForPromString ? await metric.getForPromString() : await metric.get());
      const copy: Frozen = { name: metric.name, type: metric.type, get: async () => ({ ...structuredClone(data), name: copy.name }) };
      if (metric.getForPromString) copy.getForPromString = copy.get;
      frozen.push(copy as unknown as client.Metric);
    }
    for (const contentType of [client.Registry.PROMETHEUS_CONTENT_TYPE, client.Registry.OPENMETRICS_CONTENT_TYPE]) {
      const ours = new ExpositionRegistry<client.RegistryContentType>();
      const theirs = new client.Registry<client.RegistryContentType>();
      for (const registry of [ours, theirs]) {
        registry.setContentType(contentType);
        for (const metric of frozen) registry.registerMetric(metric);
      }
      const rendered = await ours.metrics();
      const expected = await theirs.metrics();
      assert.match(expected, /^nodejs_version_info\{.*major="\d+"/m);
      assert.match(expected, /^demo_odd(_total)?\{n="undefined"\} 1$/m);
      assert.equal(rendered, expected, contentType);
    }
  });

  it('leaves counter names alone while rendering OpenMetrics, so the text format that follows keeps _total', async () => {
    const { ours } = populated();
    await ours.open.metrics();
    const text = await ours.text.metrics();
    assert.match(text, /^# TYPE demo_requests_total counter$/m);
    assert.match(text, /^demo_plain_total 3$/m);
  });

  it('refuses default labels instead of leaving them out', () => {
    assert.throws(() => new ExpositionRegistry().setDefaultLabels({ service: 'hookwatch' }), /default labels/);
  });
});
