import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, it } from 'node:test';
import { PermanentError, TemporaryError } from '../src/inbound/handlers.js';
import { negotiateFormat } from '../src/telemetry/metrics.js';
import { DEMO_SECRET, startTestService, waitFor, type TestService } from './helpers/service.js';
import { standardEvent, standardHeaders, stripeEvent, stripeHeaders } from './helpers/signing.js';
import { CONTRACT_METRICS, OPENMETRICS_ACCEPT, parseExposition, samplesOf, scrape, sumOf, valueOf, type Sample } from './helpers/telemetry-metrics.js';

const FLOOD_SECRET = 'whsec_Zmxvb2Qtc291cmNlLXNlY3JldC0xMjM0NTY=';
const RATE_LIMIT = 20;

/**
 * Drives every kind of traffic through the running service (signed, duplicate, rejected,
 * rate-limited, failing, slow) and checks the value each contract metric ends at.
 */
describe('telemetry: every contract metric moves with real traffic', () => {
  let t: TestService;
  let releaseOrders: () => void = () => undefined;
  const ordersGate = new Promise<void>((resolve) => { releaseOrders = resolve; });
  let ordersEntered = 0;
  const customerAttempts = new Map<string, number>();
  const sentIds: string[] = [];
  let samples: Sample[] = [];

  before(async () => {
    t = await startTestService({
      WEBHOOK_SECRET_FLOOD: FLOOD_SECRET,
      RATE_LIMIT_MAX: String(RATE_LIMIT),
      RATE_LIMIT_WINDOW: '10m',
      WORKER_CONCURRENCY: '1',
    }, {
      registerHandlers(registry) {
        registry.register('order.created', 'fulfil', async () => { ordersEntered += 1; await ordersGate; });
        registry.register('invoice.payment_failed', 'dunning', () => { throw new PermanentError('card permanently declined'); });
        registry.register('customer.created', 'crm', (event) => {
          const attempts = (customerAttempts.get(event.eventId) ?? 0) + 1;
          customerAttempts.set(event.eventId, attempts);
          if (attempts === 1) throw new TemporaryError('crm busy');
        });
      },
    });
  });
  after(async () => {
    releaseOrders();
    await t.close();
  });

  async function stripe(type: string, options: { id?: string; secret?: string; unsigned?: boolean } = {}): Promise<number> {
    const { id, body } = stripeEvent(type, options.id);
    sentIds.push(id);
    const headers = options.unsigned ? { 'content-type': 'application/json' } : stripeHeaders(body, { secret: options.secret });
    const res = await fetch(`${t.url}/webhooks/stripe`, { method: 'POST', headers, body });
    await res.arrayBuffer();
    return res.status;
  }

  async function standard(source: string, type: string, options: { secret?: string; timestamp?: Date; signature?: string } = {}): Promise<number> {
    const { id, body } = standardEvent(type);
    sentIds.push(id);
    const headers = standardHeaders(id, body, { secret: options.secret ?? (source === 'flood' ? FLOOD_SECRET : DEMO_SECRET), timestamp: options.timestamp });
    if (options.signature) headers['webhook-signature'] = options.signature;
    const res = await fetch(`${t.url}/webhooks/${source}`, { method: 'POST', headers, body });
    await res.arrayBuffer();
    return res.status;
  }

  it('counts a request in flight in webhook_concurrent_requests while its body is still arriving', async () => {
    const { id, body } = stripeEvent('charge.succeeded');
    sentIds.push(id);
    const { port } = new URL(t.url);
    const status = new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/webhooks/stripe', headers: { ...stripeHeaders(body), 'content-length': Buffer.byteLength(body) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.write(body.slice(0, 10));
      void waitFor('the slow request to be counted in flight', async () => valueOf((await scrape(t.url)).samples, 'webhook_concurrent_requests') === 1)
        .then(() => req.end(body.slice(10)), reject);
    });
    assert.equal(await status, 202);
    await waitFor('the request to be counted as finished', async () => valueOf((await scrape(t.url)).samples, 'webhook_concurrent_requests') === 0);
  });

  it('shows jobs waiting and running in webhook_queue_size', async () => {
    assert.equal(await stripe('order.created'), 202);
    assert.equal(await stripe('order.created'), 202);
    // One worker: the first order holds it inside its handler, the second waits behind it.
    await waitFor('both orders queued, one of them running', async () =>
      ordersEntered === 1 && valueOf((await scrape(t.url)).samples, 'webhook_queue_size', { queue: 'events' }) === 2);
    releaseOrders();
    await waitFor('the queue to drain', async () => valueOf((await scrape(t.url)).samples, 'webhook_queue_size', { queue: 'events' }) === 0);
  });

  it('drives successful, duplicate, rejected, failing, unknown-type and rate-limited traffic', async () => {
    assert.equal(await stripe('charge.succeeded'), 202);
    assert.equal(await stripe('charge.succeeded'), 202);
    assert.equal(await standard('demo', 'user.created'), 202);
    assert.equal(await standard('demo', 'user.created'), 202);

    // One event delivered three times: stored once, then two duplicates (the second answered from the cache).
    const { id: dupId } = stripeEvent('charge.succeeded');
    assert.equal(await stripe('charge.succeeded', { id: dupId }), 202);
    assert.equal(await stripe('charge.succeeded', { id: dupId }), 200);
    assert.equal(await stripe('charge.succeeded', { id: dupId }), 200);

    assert.equal(await stripe('weird.unlisted_type'), 202, 'a type outside the allow-list is accepted and counted as other');

    assert.equal(await stripe('charge.succeeded', { secret: 'whsec_not_the_right_secret' }), 400);
    assert.equal(await stripe('charge.succeeded', { unsigned: true }), 400);
    assert.equal(await standard('demo', 'user.created', { timestamp: new Date(Date.now() - 3_600_000) }), 400);
    assert.equal(await standard('demo', 'user.created', { signature: 'not-a-signature' }), 400);

    assert.equal(await stripe('invoice.payment_failed'), 202);
    assert.equal(await stripe('customer.created'), 202);

    const statuses: number[] = [];
    for (let i = 0; i < RATE_LIMIT + 2; i++) statuses.push(await standard('flood', 'test.ping'));
    assert.deepEqual(statuses, [...Array<number>(RATE_LIMIT).fill(202), 429, 429]);

    const unknown = await fetch(`${t.url}/webhooks/nope-${Date.now()}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(unknown.status, 404);

    // Deliveries: the sending side is not wired into the service yet, so its facade calls are made here
    // exactly as src/outbound/dispatcher.ts makes them.
    const { metrics } = t.service;
    metrics.endpointRegistered('ep_metrics_test');
    metrics.deliveryAttempted('ep_metrics_test', { ok: true, retry: false }, 0.05);
    metrics.deliveryAttempted('ep_metrics_test', { ok: false, reason: 'timeout', retry: false }, 30);
    metrics.deliveryAttempted('ep_metrics_test', { ok: false, reason: 'http_5xx', retry: true }, 0.2);
    metrics.deliveryAttempted('ep_metrics_test', { ok: true, retry: true }, 0.1);

    samples = await waitFor('every accepted event to be processed', async () => {
      const current = (await scrape(t.url)).samples;
      const done = sumOf(current, 'webhook_events_processed_total', { status: 'success' }) === 30
        && sumOf(current, 'webhook_events_processed_total', { status: 'dead_letter' }) === 1
        && valueOf(current, 'webhook_queue_size', { queue: 'events' }) === 0;
      return done ? current : undefined;
    });
  });

  // 31 events accepted: 9 stripe, 2 demo, 20 flood; 30 processed successfully, 1 dead-lettered, 1 retried.
  it('ends with the exact value of every inbound metric', () => {
    const v = (name: string, labels: Record<string, string> = {}) => valueOf(samples, name, labels);
    // 9 stripe events accepted (4 charge.succeeded, 2 orders, 1 other, 1 invoice, 1 customer), 2 duplicates, 2 bad signatures.
    assert.equal(v('webhook_requests_total', { source: 'stripe', status: '202' }), 9);
    assert.equal(v('webhook_requests_total', { source: 'stripe', status: '200' }), 2);
    assert.equal(v('webhook_requests_total', { source: 'stripe', status: '400' }), 2);
    assert.equal(v('webhook_requests_total', { source: 'demo', status: '202' }), 2);
    assert.equal(v('webhook_requests_total', { source: 'demo', status: '400' }), 2);
    assert.equal(v('webhook_requests_total', { source: 'flood', status: '202' }), RATE_LIMIT);
    assert.equal(v('webhook_requests_total', { source: 'flood', status: '429' }), 2);
    assert.equal(v('webhook_requests_total', { source: 'unknown', status: '404' }), 1);
    assert.equal(sumOf(samples, 'webhook_requests_total'), 9 + 2 + 2 + 2 + 2 + RATE_LIMIT + 2 + 1);

    assert.equal(v('webhook_request_duration_seconds_count', { source: 'stripe', status: '202' }), 9);
    assert.equal(v('webhook_request_duration_seconds_count', { source: 'flood', status: '429' }), 2);
    assert.ok(v('webhook_request_duration_seconds_sum', { source: 'stripe', status: '202' }) > 0);
    for (const le of ['0.5', '1']) {
      assert.equal(samplesOf(samples, 'webhook_request_duration_seconds_bucket', { le }).length > 0, true, `bucket le=${le} exists`);
    }
    assert.equal(v('webhook_request_duration_seconds_bucket', { source: 'stripe', status: '202', le: '+Inf' }), 9);
    assert.equal(v('webhook_concurrent_requests'), 0);

    assert.equal(v('webhook_errors_total', { source: 'stripe', type: 'signature' }), 2);
    assert.equal(v('webhook_errors_total', { source: 'stripe', type: 'processing' }), 2, 'the dead-lettered run and the run that was retried');
    assert.equal(v('webhook_errors_total', { source: 'demo', type: 'signature' }), 2);
    assert.equal(v('webhook_errors_total', { source: 'flood', type: 'rate_limited' }), 2);
    assert.equal(v('webhook_errors_total', { source: 'unknown', type: 'bad_request' }), 1);
    assert.equal(sumOf(samples, 'webhook_errors_total'), 9);

    assert.equal(v('webhook_signature_failures_total', { source: 'stripe', reason: 'mismatch' }), 1);
    assert.equal(v('webhook_signature_failures_total', { source: 'stripe', reason: 'missing' }), 1);
    assert.equal(v('webhook_signature_failures_total', { source: 'demo', reason: 'expired' }), 1);
    assert.equal(v('webhook_signature_failures_total', { source: 'demo', reason: 'malformed' }), 1);
    assert.equal(sumOf(samples, 'webhook_signature_failures_total'), 4);
    assert.equal(v('webhook_rate_limited_total', { source: 'flood' }), 2);
    assert.equal(v('webhook_rate_limited_total', { source: 'stripe' }), 0, 'created at 0 for every configured source');
    assert.equal(v('webhook_rate_limit_per_second', { source: 'flood' }), RATE_LIMIT / 600);

    assert.equal(v('webhook_events_by_type_total', { source: 'stripe', event_type: 'charge.succeeded' }), 4);
    assert.equal(v('webhook_events_by_type_total', { source: 'stripe', event_type: 'order.created' }), 2);
    assert.equal(v('webhook_events_by_type_total', { source: 'stripe', event_type: 'other' }), 1);
    assert.equal(v('webhook_events_by_type_total', { source: 'stripe', event_type: 'invoice.payment_failed' }), 1);
    assert.equal(v('webhook_events_by_type_total', { source: 'stripe', event_type: 'customer.created' }), 1);
    assert.equal(v('webhook_events_by_type_total', { source: 'demo', event_type: 'user.created' }), 2);
    assert.equal(v('webhook_events_by_type_total', { source: 'flood', event_type: 'test.ping' }), RATE_LIMIT);

    assert.equal(v('webhook_events_processed_total', { event_type: 'charge.succeeded', status: 'success' }), 4);
    assert.equal(v('webhook_events_processed_total', { event_type: 'order.created', status: 'success' }), 2);
    assert.equal(v('webhook_events_processed_total', { event_type: 'other', status: 'success' }), 1, 'no handler matched: still a success');
    assert.equal(v('webhook_events_processed_total', { event_type: 'customer.created', status: 'retry' }), 1);
    assert.equal(v('webhook_events_processed_total', { event_type: 'customer.created', status: 'success' }), 1);
    assert.equal(v('webhook_events_processed_total', { event_type: 'invoice.payment_failed', status: 'dead_letter' }), 1);
    assert.equal(v('webhook_events_processed_total', { event_type: 'test.ping', status: 'success' }), RATE_LIMIT);
    assert.equal(sumOf(samples, 'webhook_events_processed_total'), 30 + 1 + 1, '30 successes, 1 retry, 1 dead letter');
    assert.equal(v('webhook_event_processing_duration_seconds_count', { event_type: 'customer.created' }), 2, 'one observation per run');
    assert.equal(sumOf(samples, 'webhook_event_processing_duration_seconds_count'), 32);
    assert.ok(v('webhook_event_processing_duration_seconds_sum', { event_type: 'order.created' }) > 0);
    assert.equal(v('webhook_end_to_end_seconds_count', { event_type: 'customer.created' }), 1, 'observed when processing is done');
    assert.equal(sumOf(samples, 'webhook_end_to_end_seconds_count'), 30);
    assert.equal(samplesOf(samples, 'webhook_end_to_end_seconds_count', { event_type: 'invoice.payment_failed' }).length, 0);

    assert.equal(v('webhook_queue_size', { queue: 'events' }), 0);
    assert.equal(v('webhook_queue_size', { queue: 'deliveries' }), 0);
    assert.equal(v('webhook_dead_letter_queue_size'), 1);
    assert.equal(v('webhook_db_up'), 1);
    assert.equal(v('webhook_cache_up'), 1);

    // Every event looks in the cache before its transaction and again inside it, where a miss asks
    // the store: a new event misses twice and asks once; the first redelivery likewise, and its
    // answer fills the cache; the second redelivery is a hit before any transaction.
    assert.equal(v('webhook_cache_misses_total', { cache: 'idempotency' }), 2 * 31 + 2);
    assert.equal(v('webhook_cache_hits_total', { cache: 'idempotency' }), 1);
    assert.equal(v('webhook_cache_operation_duration_seconds_count', { cache: 'idempotency', operation: 'get' }), 2 * 31 + 3);
    assert.equal(v('webhook_cache_operation_duration_seconds_count', { cache: 'idempotency', operation: 'set' }), 1);
    assert.equal(v('webhook_db_query_duration_seconds_count', { operation: 'idempotency_lookup' }), 31 + 1);
    assert.equal(v('webhook_db_query_duration_seconds_count', { operation: 'job_enqueue' }), 31);
    // First runs read their event from memory, where storing it put it moments before. No endpoint
    // is subscribed, so each first run lets the content go: the one retry reads its event back.
    assert.equal(v('webhook_cache_hits_total', { cache: 'events' }), 31, 'one look-up per first run');
    assert.equal(v('webhook_cache_operation_duration_seconds_count', { cache: 'events', operation: 'delete' }), 31, 'let go by every first run');
    assert.equal(v('webhook_cache_misses_total', { cache: 'events' }), 1, 'the retry');
    assert.equal(v('webhook_db_query_duration_seconds_count', { operation: 'event_get' }), 1, 'only the retry read its event back');
    assert.equal(v('webhook_db_connections', { state: 'open' }), 1);

    for (const type of ['rss', 'heap_used', 'heap_total', 'external']) assert.ok(v('webhook_memory_usage_bytes', { type }) > 0, type);
    const cpu = v('webhook_cpu_usage_percent');
    assert.ok(cpu >= 0 && Number.isFinite(cpu));
  });

  it('ends with the exact value of every delivery metric', () => {
    const v = (name: string, labels: Record<string, string>) => valueOf(samples, name, labels);
    const endpoint = 'ep_metrics_test';
    assert.equal(v('webhook_deliveries_total', { endpoint }), 4);
    assert.equal(v('webhook_delivery_retries_total', { endpoint }), 2);
    assert.equal(v('webhook_delivery_failures_total', { endpoint, reason: 'timeout' }), 1);
    assert.equal(v('webhook_delivery_failures_total', { endpoint, reason: 'http_5xx' }), 1);
    assert.equal(v('webhook_delivery_failures_total', { endpoint, reason: 'http_4xx' }), 0, 'created at 0 when the endpoint is registered');
    assert.equal(v('webhook_delivery_failures_total', { endpoint, reason: 'connection' }), 0);
    assert.equal(v('webhook_delivery_duration_seconds_count', { endpoint }), 4);
    assert.equal(v('webhook_delivery_duration_seconds_bucket', { endpoint, le: '1' }), 3);
    assert.equal(v('webhook_endpoint_up', { endpoint }), 1);
  });

  it('exposes every contract metric with its type and labels, and no ids or raw paths as label values', async () => {
    const { body } = await scrape(t.url);
    for (const metric of CONTRACT_METRICS) {
      assert.match(body, new RegExp(`^# TYPE ${metric.name} ${metric.type}$`, 'm'), metric.name);
      const series = samplesOf(samples, metric.type === 'histogram' ? `${metric.name}_count` : metric.name);
      assert.ok(series.length > 0, `${metric.name} has samples`);
      for (const sample of series) assert.deepEqual(Object.keys(sample.labels).sort(), [...metric.labels].sort(), metric.name);
    }
    const values = new Set(samples.flatMap((sample) => Object.values(sample.labels)));
    for (const id of sentIds) assert.ok(!values.has(id), `event id ${id} must not be a label value`);
    for (const value of values) assert.doesNotMatch(value, /^(evt_|nope-|\/|https?:)/, `label value ${value}`);
  });

  it('serves OpenMetrics only to a scraper that asks for it, with the same values', async () => {
    const open = await scrape(t.url, OPENMETRICS_ACCEPT);
    assert.match(open.contentType, /^application\/openmetrics-text; version=1\.0\.0/);
    assert.match(open.body, /# EOF\n$/);
    assert.match(open.body, /^# TYPE webhook_requests counter$/m);
    assert.equal(valueOf(open.samples, 'webhook_requests_total', { source: 'flood', status: '429' }), 2);
    assert.equal(valueOf(open.samples, 'webhook_cache_hits_total', { cache: 'idempotency' }), 1);

    // Rendering OpenMetrics must not rename the counters of the Prometheus text exposition.
    const text = await scrape(t.url, 'text/plain;version=0.0.4');
    assert.match(text.contentType, /^text\/plain; version=0\.0\.4/);
    assert.match(text.body, /^# TYPE webhook_requests_total counter$/m);
    assert.doesNotMatch(text.body, /# EOF/);
    assert.equal(valueOf(parseExposition(text.body), 'webhook_requests_total', { source: 'flood', status: '429' }), 2);

    // Both formats render from the same metric objects: scrapes of both at once each see their own names.
    const both = await Promise.all([scrape(t.url, OPENMETRICS_ACCEPT), scrape(t.url), scrape(t.url, OPENMETRICS_ACCEPT), scrape(t.url)]);
    both.forEach((result, i) => assert.match(result.body, i % 2 === 0 ? /^# TYPE webhook_requests counter$/m : /^# TYPE webhook_requests_total counter$/m));

    assert.equal(negotiateFormat(undefined), 'prometheus');
    assert.equal(negotiateFormat('*/*'), 'prometheus');
    assert.equal(negotiateFormat('text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5'), 'prometheus');
    assert.equal(negotiateFormat('application/openmetrics-text; version=1.0.0'), 'openmetrics');
    assert.equal(negotiateFormat(OPENMETRICS_ACCEPT), 'openmetrics');
  });
});

describe('telemetry: series that exist before traffic, and requests nobody waited for', () => {
  let t: TestService;
  before(async () => { t = await startTestService(); });
  after(() => t.close());

  it('starts the 500 and 503 request counters and the accepted requests\' latency at 0, so a first burst is counted by increase()', async () => {
    const { samples } = await scrape(t.url);
    for (const status of ['500', '503']) assert.equal(valueOf(samples, 'webhook_requests_total', { source: 'demo', status }), 0);
    for (const status of ['200', '202']) {
      assert.equal(valueOf(samples, 'webhook_request_duration_seconds_bucket', { source: 'stripe', status, le: '+Inf' }), 0);
      assert.equal(valueOf(samples, 'webhook_request_duration_seconds_count', { source: 'stripe', status }), 0);
    }
  });

  it('starts every allow-listed event type\'s accepted and processed counters at 0, so the first events of a type are counted by increase()', async () => {
    const { samples } = await scrape(t.url);
    for (const event_type of ['charge.succeeded', 'invoice.paid', 'test.ping', 'other']) {
      for (const source of ['stripe', 'demo']) assert.equal(valueOf(samples, 'webhook_events_by_type_total', { source, event_type }), 0, `${source} ${event_type}`);
      for (const status of ['success', 'retry', 'dead_letter']) assert.equal(valueOf(samples, 'webhook_events_processed_total', { event_type, status }), 0, `${event_type} ${status}`);
    }
  });

  it('records a request whose client went away mid-body as 499, not as a 200', async () => {
    const { body } = stripeEvent('charge.succeeded');
    const { port } = new URL(t.url);
    await new Promise<void>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/webhooks/stripe', headers: { ...stripeHeaders(body), 'content-length': Buffer.byteLength(body) } });
      req.on('error', () => resolve());
      req.write(body.slice(0, 10), () => setTimeout(() => { req.destroy(); resolve(); }, 50));
    });
    await waitFor('the abandoned request to be counted', async () => valueOf((await scrape(t.url)).samples, 'webhook_requests_total', { source: 'stripe', status: '499' }) === 1);
    const { samples } = await scrape(t.url);
    assert.equal(valueOf(samples, 'webhook_requests_total', { source: 'stripe', status: '200' }), 0);
    assert.equal(valueOf(samples, 'webhook_concurrent_requests'), 0);
  });
});
