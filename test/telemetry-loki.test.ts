import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { createLogger, shutdownLogShipping, type Logger } from '../src/telemetry/logger.js';
import { OUTAGE_MESSAGES, OutageReporter, type OutageEvent } from '../src/telemetry/outage.js';
import { startTracing } from '../src/telemetry/tracing.js';
import { captureTraceContext, inSpan } from '../src/telemetry/trace-context.js';
import { DEMO_SECRET, LogCapture, STRIPE_SECRET, startTestService, waitFor, type TestService } from './helpers/service.js';
import { standardEvent, standardHeaders, stripeEvent, stripeHeaders } from './helpers/signing.js';
import { FakeLoki } from './helpers/telemetry-servers.js';

/**
 * One service, one Loki that answers, then refuses connections, answers again, then hangs, then
 * answers again. Requests succeed throughout; each outage is one error line, its recovery one info line.
 */
describe('logs shipped to Loki, whatever Loki does', () => {
  const loki = new FakeLoki();
  const stdout = new LogCapture();
  let logger: Logger;
  let t: TestService;
  const signatures: string[] = [];

  before(async () => {
    await loki.start();
    // Short intervals so each phase sees several push attempts; production uses the defaults (2 s, 5 s, 60 s).
    logger = createLogger({ level: 'debug', service: 'hookwatch', environment: 'loki-test', stream: stdout, loki: { url: `${loki.url}/`, intervalSeconds: 0.05, timeoutMs: 250, retryIntervalMs: 50 } });
    t = await startTestService({}, { logger });
  });
  after(async () => {
    await t.close();
    await shutdownLogShipping(logger);
    await loki.stop();
  });

  async function sendEvents(count: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const stripe = i % 2 === 0;
      const { id, body } = stripe ? stripeEvent('charge.succeeded') : standardEvent('user.created');
      const headers = stripe ? stripeHeaders(body) : standardHeaders(id, body);
      signatures.push(headers['stripe-signature'] ?? headers['webhook-signature'] ?? '');
      const res = await fetch(`${t.url}/webhooks/${stripe ? 'stripe' : 'demo'}`, { method: 'POST', headers, body });
      assert.equal(res.status, 202, 'a webhook request succeeds whatever Loki does');
      ids.push(id);
    }
    return ids;
  }

  const errorLines = () => stdout.lines.filter((line) => line.level === 'error');
  const downLines = () => stdout.find(OUTAGE_MESSAGES.down);
  const upLines = () => stdout.find(OUTAGE_MESSAGES.up);
  const stillDown = () => stdout.find(OUTAGE_MESSAGES.still_down);
  const shipped = (eventId: string) => loki.lines.some((l) => l.line.includes(`"event_id":"${eventId}"`) && l.line.includes('"message":"event received"'));

  it('ships the stdout lines, batched, labelled only with service and environment, with no secrets', async () => {
    const ids = await sendEvents(4);
    await waitFor('the lines to reach Loki', () => ids.every(shipped));
    assert.ok(loki.paths.every((p) => p === '/loki/api/v1/push'), 'a trailing slash in LOKI_URL is tolerated');
    assert.ok(loki.streams.some((s) => s.values.length > 1), 'lines are batched, several per push');
    for (const { labels, line, metadata } of loki.lines) {
      assert.deepEqual(labels, { service: 'hookwatch', environment: 'loki-test' }, 'no level, id or other label');
      assert.deepEqual(metadata ?? {}, {}, 'ids stay in the line, not in structured metadata');
      assert.ok(stdout.raw.includes(line), 'the shipped line is exactly the stdout line');
      for (const secret of [STRIPE_SECRET, DEMO_SECRET, ...signatures]) assert.ok(!line.includes(secret), 'no secret or signature in a shipped line');
    }
    const received = loki.lines.map((l) => JSON.parse(l.line) as Record<string, unknown>).filter((l) => l.message === 'event received');
    for (const line of received) {
      for (const field of ['timestamp', 'level', 'request_id', 'source', 'event_id', 'event_type']) assert.ok(line[field], `${field} in the line`);
    }
    assert.equal(errorLines().length, 0);
  });

  it('keeps serving while Loki refuses connections, and reports the outage once, then its recovery', async () => {
    await loki.switchTo('refuse');
    await sendEvents(4);
    await waitFor('the outage to be reported', () => downLines().length === 1);
    await sendEvents(2);
    await waitFor('several failed pushes in this outage', () => stillDown().length >= 3);
    assert.equal(downLines().length, 1, 'one report per outage, not per push or per line');
    assert.equal(errorLines().length, 1);
    assert.match(String(downLines()[0]?.error), /ECONNREFUSED/);

    await loki.switchTo('accept');
    const ids = await sendEvents(2);
    await waitFor('the recovery to be reported', () => upLines().length === 1);
    const up = upLines()[0] ?? {};
    assert.ok(Number(up.failed_attempts) >= 4, 'the recovery line counts the failed pushes of the outage');
    await waitFor('lines to reach Loki again', () => ids.every(shipped));
    assert.equal(errorLines().length, 1);
  });

  it('keeps serving while Loki accepts connections and never answers, and reports that outage once', async () => {
    await loki.switchTo('hang');
    await sendEvents(4);
    await waitFor('the second outage to be reported', () => downLines().length === 2);
    const before = stillDown().length;
    await sendEvents(2);
    await waitFor('several timed-out pushes in this outage', () => stillDown().length >= before + 3);
    assert.equal(downLines().length, 2, 'one report for this outage');
    assert.equal(errorLines().length, 2);
    assert.match(String(downLines()[1]?.error), /timed out/);

    await loki.switchTo('accept');
    const ids = await sendEvents(2);
    await waitFor('the second recovery', () => upLines().length === 2);
    await waitFor('lines to reach Loki again', () => ids.every(shipped));
    assert.equal(errorLines().length, 2, 'one error line per outage in all');
  });

  it('flushes what is still batched at shutdown', async () => {
    logger.info('last line before shutdown', { marker: 'flush-check' });
    await shutdownLogShipping(logger);
    assert.ok(loki.lines.some((l) => l.line.includes('flush-check')));
  });
});

describe('outage reporting and tracing off', () => {
  it('reports down once, every further failure at debug level, and up once', () => {
    const events: OutageEvent[] = [];
    let now = 1000;
    const reporter = new OutageReporter('loki', 'http://loki:3100', (event) => events.push(event), () => now);
    reporter.succeeded();
    reporter.failed(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:3100'), { code: 'ECONNREFUSED' }));
    reporter.failed(new Error('again'));
    now = 4000;
    reporter.succeeded();
    reporter.succeeded();
    assert.deepEqual(events.map((e) => e.state), ['down', 'still_down', 'up']);
    assert.deepEqual(events[2], { state: 'up', backend: 'loki', url: 'http://loki:3100', failed_attempts: 2, outage_seconds: 3 });
  });

  it('registers nothing without an OTLP endpoint: spans are the no-op API', () => {
    assert.equal(startTracing({ serviceName: 'hookwatch', environment: 'test', endpoint: null }), null);
    const span = trace.getTracer('test').startSpan('noop');
    assert.equal(span.isRecording(), false);
    span.end();
    const seen = inSpan('webhook.verify', { 'webhook.source': 'stripe' }, (inner) => ({ recording: inner.isRecording(), valid: isSpanContextValid(inner.spanContext()) }));
    assert.deepEqual(seen, { recording: false, valid: false }, 'our spans run their work with a span that records nothing');
    assert.deepEqual(captureTraceContext(), {}, 'and nothing to propagate');
  });
});

describe('log lines', () => {
  it('are one JSON object per line, with what JSON cannot hold (a cycle, a BigInt) still written', async () => {
    const stdout = new LogCapture();
    const logger = createLogger({ level: 'info', service: 'hookwatch', environment: 'test', stream: stdout });
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    logger.info('plain', { count: 3, nested: { token: 'never-shown', ok: true } });
    logger.info('odd values', { cyclic, big: 12345678901234567890n });
    await waitFor('both lines', () => stdout.lines.length === 2);
    assert.deepEqual([stdout.lines[0]?.message, stdout.lines[0]?.count, stdout.lines[0]?.nested], ['plain', 3, { token: '[redacted]', ok: true }]);
    assert.equal(stdout.lines[1]?.message, 'odd values');
    assert.match(stdout.raw[1] ?? '', /"big":"12345678901234567890"/);
    assert.match(stdout.raw[1] ?? '', /\[Circular\]/);
    logger.end();
  });
});
