import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { TestService } from './helpers/service.js';
import { CONTRACT_METRICS, seriesNames } from './helpers/telemetry-metrics.js';
import { startPrometheus, type RunningPrometheus } from './helpers/telemetry-prometheus.js';
import { bootstrapTestTracing } from './helpers/telemetry-tracing.js';

// Tracing on (in-memory), so the OpenMetrics exposition Prometheus scrapes carries exemplars.
const { tracing } = bootstrapTestTracing();
const { startTestService, waitFor } = await import('./helpers/service.js');
const { standardEvent, standardHeaders, stripeEvent, stripeHeaders } = await import('./helpers/signing.js');
const { PermanentError } = await import('../src/inbound/handlers.js');

interface VectorSample { metric: Record<string, string>; value: [number, string] }
interface ExemplarSeries { seriesLabels: Record<string, string>; exemplars: { labels: Record<string, string>; value: string }[] }

describe('a real Prometheus scraping the service', () => {
  let t: TestService;
  let prometheus: RunningPrometheus;

  before(async () => {
    t = await startTestService({ RATE_LIMIT_MAX: '10', RATE_LIMIT_WINDOW: '10m' }, {
      registerHandlers(registry) {
        registry.register('invoice.payment_failed', 'dunning', () => { throw new PermanentError('declined'); });
      },
    });
    prometheus = await startPrometheus(new URL(t.url).host, { features: ['exemplar-storage'] });
  });
  after(async () => {
    await prometheus?.stop();
    await t?.close();
    await tracing.shutdown();
  });

  async function post(path: string, headers: Record<string, string>, body: string): Promise<number> {
    const res = await fetch(`${t.url}${path}`, { method: 'POST', headers, body });
    await res.arrayBuffer();
    return res.status;
  }

  it('finds every contract metric in its TSDB, with the values the traffic produced', async () => {
    const statuses: number[] = [];
    for (const type of ['charge.succeeded', 'charge.succeeded', 'invoice.payment_failed']) {
      const { body } = stripeEvent(type);
      statuses.push(await post('/webhooks/stripe', stripeHeaders(body), body));
    }
    const dup = stripeEvent('charge.succeeded');
    for (let i = 0; i < 3; i++) statuses.push(await post('/webhooks/stripe', stripeHeaders(dup.body), dup.body));
    const bad = stripeEvent('charge.succeeded');
    statuses.push(await post('/webhooks/stripe', stripeHeaders(bad.body, { secret: 'whsec_wrong' }), bad.body));
    for (let i = 0; i < 12; i++) {
      const { id, body } = standardEvent('user.created');
      statuses.push(await post('/webhooks/demo', standardHeaders(id, body), body));
    }
    assert.deepEqual(statuses, [202, 202, 202, 202, 200, 200, 400, ...Array<number>(10).fill(202), 429, 429]);
    // Deliveries through the facade, as the dispatcher records them.
    t.service.metrics.endpointRegistered('ep_prometheus_test');
    t.service.metrics.deliveryAttempted('ep_prometheus_test', { ok: false, reason: 'http_5xx', retry: false }, 0.3);
    t.service.metrics.deliveryAttempted('ep_prometheus_test', { ok: true, retry: true }, 0.1);

    const wanted = CONTRACT_METRICS.flatMap(seriesNames);
    await waitFor('every contract metric in the TSDB', async () => {
      const stored = new Set(await prometheus.query<string[]>('/api/v1/label/__name__/values', {}));
      return wanted.every((name) => stored.has(name)) ? stored : undefined;
    }, 30_000).catch((error: Error) => { throw new Error(`${error.message}\nprometheus output:\n${prometheus.output.join('').slice(-2000)}`); });

    const up = await prometheus.query<{ result: VectorSample[] }>('/api/v1/query', { query: 'up{job="hookwatch"}' });
    assert.equal(up.result[0]?.value[1], '1');

    const valueIs = async (query: string, expected: number) => {
      await waitFor(`${query} == ${expected}`, async () => {
        const { result } = await prometheus.query<{ result: VectorSample[] }>('/api/v1/query', { query });
        return result.length === 1 && Number(result[0]?.value[1]) === expected;
      });
    };
    await valueIs('webhook_requests_total{source="stripe",status="202"}', 4);
    await valueIs('webhook_requests_total{source="stripe",status="200"}', 2);
    await valueIs('webhook_rate_limited_total{source="demo"}', 2);
    await valueIs('webhook_signature_failures_total{source="stripe",reason="mismatch"}', 1);
    await valueIs('webhook_cache_hits_total{cache="idempotency"}', 1);
    await valueIs('sum(webhook_events_processed_total{status="dead_letter"})', 1);
    await valueIs('webhook_dead_letter_queue_size', 1);
    await valueIs('webhook_delivery_failures_total{endpoint="ep_prometheus_test",reason="http_5xx"}', 1);
    await valueIs('webhook_endpoint_up{endpoint="ep_prometheus_test"}', 1);
    await valueIs('sum(webhook_request_duration_seconds_count{source="demo"})', 12);
  });

  it('stores the trace-id exemplars of the OpenMetrics exposition', async () => {
    const exemplars = await waitFor('request-latency exemplars', async () => {
      const now = Date.now() / 1000;
      const series = await prometheus.query<ExemplarSeries[]>('/api/v1/query_exemplars', {
        query: 'webhook_request_duration_seconds_bucket{source="stripe"}', start: String(now - 600), end: String(now + 60),
      });
      const found = series.flatMap((s) => s.exemplars);
      return found.length > 0 ? found : undefined;
    });
    for (const exemplar of exemplars) assert.match(exemplar.labels.trace_id ?? '', /^[0-9a-f]{32}$/);
  });
});
