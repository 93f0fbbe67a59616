import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-node';
import type { AddressInfo } from 'node:net';
import type { TestService } from './helpers/service.js';
import { OPENMETRICS_ACCEPT, samplesOf, scrape } from './helpers/telemetry-metrics.js';
import { FakeLoki, OtlpReceiver } from './helpers/telemetry-servers.js';
import { spawnService } from './helpers/child.js';
import { bootstrapTestTracing, descendsFrom, parentOf, spanId, traceIdOf } from './helpers/telemetry-tracing.js';

// As preload.ts does in the real process: tracing first, then everything that imports express.
const { exporter, tracing } = bootstrapTestTracing();
const { ADMIN_TOKEN, STRIPE_SECRET, startTestService, tempDir, waitFor } = await import('./helpers/service.js');
const { stripeEvent, stripeHeaders } = await import('./helpers/signing.js');
const { createServer } = await import('node:http');

const HTTP_SCOPE = '@opentelemetry/instrumentation-http';
const EXPRESS_SCOPE = '@opentelemetry/instrumentation-express';

function only(spans: readonly ReadableSpan[], predicate: (span: ReadableSpan) => boolean, what: string): ReadableSpan {
  const found = spans.filter(predicate);
  assert.equal(found.length, 1, `expected one ${what}, found ${found.length}: ${spans.map((s) => s.name).join(', ')}`);
  return found[0] as ReadableSpan;
}
const named = (spans: readonly ReadableSpan[], name: string) => only(spans, (s) => s.name === name, name);

describe('traces: one event from the HTTP request to its handler (in-memory exporter)', () => {
  let t: TestService;
  const handled: string[] = [];

  before(async () => {
    t = await startTestService({}, {
      registerHandlers(registry) {
        registry.register('charge.succeeded', 'notify', (event) => { handled.push(event.eventId); });
      },
    });
  });
  after(async () => {
    await t.close();
    await tracing.shutdown();
  });

  async function sendAndTrace(headers: Record<string, string> = {}): Promise<{ eventId: string; spans: ReadableSpan[]; traceId: string }> {
    const { id, body } = stripeEvent('charge.succeeded');
    const res = await fetch(`${t.url}/webhooks/stripe`, { method: 'POST', headers: { ...stripeHeaders(body), ...headers }, body });
    assert.equal(res.status, 202);
    await waitFor('the handler to run', () => handled.includes(id));
    const handler = await waitFor('the handler span', () => exporter.getFinishedSpans().find((s) => isNotify(s) && !seen.has(spanId(s))));
    seen.add(spanId(handler));
    const traceId = traceIdOf(handler);
    // The server span ends when the response is finished, and the job run's span after its
    // slowest handler (the forwarder waits for its group commit); wait for both.
    const spans = await waitFor('the server and job-run spans', () => {
      const inTrace = exporter.getFinishedSpans().filter((s) => traceIdOf(s) === traceId);
      return inTrace.some((s) => s.kind === SpanKind.SERVER) && inTrace.some((s) => s.name === 'webhook.process') ? inTrace : undefined;
    });
    return { eventId: id, spans, traceId };
  }
  const seen = new Set<string>();
  const isNotify = (s: ReadableSpan) => s.name === 'webhook.handler' && s.attributes['webhook.handler'] === 'notify';

  it('puts the request, verify, de-duplicate, store, the job run and the handler in one trace, in that tree', async () => {
    const { eventId, spans, traceId } = await sendAndTrace();

    const server = only(spans, (s) => s.kind === SpanKind.SERVER && s.instrumentationScope.name === HTTP_SCOPE, 'HTTP server span');
    assert.equal(server.name, 'POST /webhooks/:source', 'the route, not the raw path, names the span');
    assert.equal(parentOf(server), undefined, 'the request starts the trace');
    assert.ok(!spans.some((s) => s.instrumentationScope.name === EXPRESS_SCOPE), 'webhook ingestion is served ahead of Express');

    const verify = named(spans, 'webhook.verify');
    const deduplicate = named(spans, 'webhook.deduplicate');
    const store = named(spans, 'webhook.store');
    for (const span of [verify, deduplicate, store]) {
      assert.equal(parentOf(span), spanId(server), `${span.name} runs inside the request's span`);
    }
    const processSpan = named(spans, 'webhook.process');
    assert.equal(parentOf(processSpan), spanId(store), 'the job run joins the trace through the context stored with the job');
    assert.equal(processSpan.attributes['webhook.event_type'], 'charge.succeeded');
    // Every handler matching the type (ours, and the outbound forwarder when it is registered) is a child of the run.
    const handler = only(spans, isNotify, 'notify handler span');
    assert.equal(parentOf(handler), spanId(processSpan));
    for (const span of spans.filter((s) => s.name === 'webhook.handler')) assert.equal(parentOf(span), spanId(processSpan));
    for (const span of spans) assert.equal(traceIdOf(span), traceId);
    assert.ok(spans.every((s) => s.resource.attributes['service.name'] === 'hookwatch'));

    // The log lines of the event link to the same trace.
    const received = await waitFor('the received line', () => t.logs.find('event received').find((l) => l.event_id === eventId));
    assert.equal(received.trace_id, traceId);
    assert.ok(spans.some((s) => spanId(s) === received.span_id));
    const processed = await waitFor('the processed line', () => t.logs.find('event processed').find((l) => l.event_id === eventId));
    assert.equal(processed.trace_id, traceId);
    assert.equal(processed.span_id, spanId(processSpan));

    // And so do the exemplars of the latency histograms in the OpenMetrics exposition.
    const { samples } = await scrape(t.url, OPENMETRICS_ACCEPT);
    const exemplarTraces = (name: string, labels: Record<string, string>) =>
      samplesOf(samples, name, labels).flatMap((s) => (s.exemplar?.trace_id ? [s.exemplar.trace_id] : []));
    assert.deepEqual(exemplarTraces('webhook_request_duration_seconds_bucket', { source: 'stripe', status: '202' }), [traceId]);
    assert.deepEqual(exemplarTraces('webhook_event_processing_duration_seconds_bucket', { event_type: 'charge.succeeded' }), [traceId]);
    assert.deepEqual(exemplarTraces('webhook_end_to_end_seconds_bucket', { event_type: 'charge.succeeded' }), [traceId]);
    const text = await scrape(t.url);
    assert.ok(text.samples.every((s) => s.exemplar === undefined), 'the Prometheus text format carries no exemplars');
  });

  it("continues the caller's W3C trace context, through the job", async () => {
    const callerTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const callerSpan = '00f067aa0ba902b7';
    const { spans, traceId } = await sendAndTrace({ traceparent: `00-${callerTrace}-${callerSpan}-01` });
    assert.equal(traceId, callerTrace);
    const server = only(spans, (s) => s.kind === SpanKind.SERVER, 'server span');
    assert.equal(parentOf(server), callerSpan);
    assert.ok(descendsFrom(only(spans, isNotify, 'notify handler span'), server, spans));
  });

  it('does not trace metric scrapes or health probes', async () => {
    const servers = () => exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER).length;
    const before = servers();
    await scrape(t.url);
    await (await fetch(`${t.url}/health`)).arrayBuffer();
    const after = await fetch(`${t.url}/api/v1/events?limit=1`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    await after.arrayBuffer();
    // The admin call is traced; once its span is in, the two before it would have been too.
    await waitFor('the admin request span', () => servers() === before + 1);
    const adminSpan = exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.SERVER).at(-1);
    assert.equal(adminSpan?.name, 'GET /api/v1/events', 'Express names the admin span by its route');
    assert.ok(exporter.getFinishedSpans().some((s) => s.instrumentationScope.name === EXPRESS_SCOPE && s.spanContext().traceId === adminSpan?.spanContext().traceId), 'Express spans for the admin request');
  });
});

describe('traces and logs leave the real process (preload bootstrap, OTLP/HTTP, Loki)', () => {
  const otlp = new OtlpReceiver();
  const loki = new FakeLoki();
  before(async () => {
    await otlp.start();
    await loki.start();
  });
  after(async () => {
    await otlp.stop();
    await loki.stop();
  });

  it('exports the HTTP, Express and hookwatch spans of one event over OTLP, and ships its log lines to Loki', async () => {
    const child = await spawnService({
      DATA_DIR: tempDir(),
      ADMIN_TOKEN,
      STRIPE_WEBHOOK_SECRET: STRIPE_SECRET,
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      LOKI_URL: loki.url,
      DEPLOYMENT_ENVIRONMENT: 'otlp-test',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
    }, { preload: true });
    // An endpoint whose URL carries a credential in its query: it must not reach the collector.
    let delivered = 0;
    const endpoint = createServer((req, res) => { req.resume(); req.on('end', () => { delivered += 1; res.end('ok'); }); });
    await new Promise<void>((resolve) => endpoint.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = endpoint.address() as AddressInfo;
      const registered = await fetch(`${child.url}/api/v1/webhooks`, {
        method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ url: `http://127.0.0.1:${port}/hook?api_key=TOPSECRETKEY`, events: ['*'] }),
      });
      assert.equal(registered.status, 201);
      const { id, body } = stripeEvent('charge.succeeded');
      const res = await fetch(`${child.url}/webhooks/stripe`, { method: 'POST', headers: stripeHeaders(body), body });
      assert.equal(res.status, 202);
      await waitFor('the event to be processed', () => child.stdout.some((line) => line.includes('"message":"event processed"') && line.includes(id)));
      await waitFor('the event delivered', () => delivered === 1);
      // The admin API is served by Express (webhook ingestion is not), so this request shows its spans.
      const listed = await fetch(`${child.url}/api/v1/events?limit=1`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(listed.status, 200);
    } finally {
      child.proc.kill('SIGTERM');
      endpoint.close();
    }
    assert.equal(await child.exited, 0, child.stderr.join(''));

    // The graceful shutdown flushed the batched spans.
    assert.ok(otlp.spans.some((s) => s.name === 'webhook.deliver'), 'the delivery has its span');
    assert.ok(otlp.bodies.every((exported) => !exported.includes('TOPSECRETKEY')), 'no span carries the endpoint URL\'s query');
    assert.ok(otlp.requests.length > 0, 'spans were exported');
    for (const request of otlp.requests) {
      assert.equal(request.path, '/v1/traces');
      assert.match(request.contentType, /^application\/json/);
    }
    const server = otlp.spans.find((s) => s.scope === HTTP_SCOPE && s.name === 'POST /webhooks/:source');
    assert.ok(server, `an HTTP server span; got ${otlp.spans.map((s) => `${s.scope} ${s.name}`).join(', ')}`);
    const trace = otlp.spans.filter((s) => s.traceId === server.traceId);
    for (const name of ['webhook.verify', 'webhook.deduplicate', 'webhook.store', 'webhook.process']) {
      assert.ok(trace.some((s) => s.name === name), `${name} in the request's trace`);
    }
    const adminSpan = otlp.spans.find((s) => s.scope === HTTP_SCOPE && s.name === 'GET /api/v1/events');
    assert.ok(adminSpan, 'an HTTP server span named by the Express route');
    assert.ok(otlp.spans.some((s) => s.scope === EXPRESS_SCOPE && s.traceId === adminSpan.traceId), 'Express spans: the ESM loader hook patched express');
    assert.equal(server.resource['service.name'], 'hookwatch');
    assert.equal(server.resource['deployment.environment.name'], 'otlp-test');

    // The same lines as stdout reached Loki, labelled only with service and environment.
    const lines = loki.lines;
    assert.ok(lines.length > 0, 'log lines were shipped');
    assert.ok(loki.paths.every((p) => p === '/loki/api/v1/push'));
    for (const { labels, line } of lines) {
      assert.deepEqual(labels, { service: 'hookwatch', environment: 'otlp-test' });
      assert.ok(child.stdout.includes(line), `shipped line is a stdout line: ${line}`);
    }
    const received = lines.map((l) => JSON.parse(l.line) as Record<string, unknown>).find((l) => l.message === 'event received');
    assert.equal(received?.trace_id, server.traceId, 'the log line links to the exported trace');
    assert.ok(lines.some((l) => l.line.includes('"message":"stopped"')), 'lines logged during shutdown were flushed');
    assert.ok(!child.stdout.some((line) => line.includes('"level":"error"')), 'a healthy run logs no error line');
  });
});
