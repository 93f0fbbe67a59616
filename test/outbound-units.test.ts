import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { isPrivateAddress } from '../src/outbound/destination-guard.js';
import { observeAttempt, windowFires, WINDOW_MS } from '../src/outbound/failure-monitor.js';
import { parseRetryAfter, statusReason } from '../src/outbound/http-sender.js';
import { MAX_RETRY_AFTER_MS, nextRetryDelay, parseRetrySchedule } from '../src/outbound/retry-schedule.js';
import { disabledEmail, errorWebhookBody, failureEmail } from '../src/outbound/messages.js';
import { ERROR_WEBHOOK_JOB, Notifier } from '../src/outbound/notifier.js';
import { HttpSender } from '../src/outbound/http-sender.js';
import { createLogger } from '../src/telemetry/logger.js';
import { EVENT_PATTERN } from '../src/event-types.js';
import { matchesType } from '../src/outbound/subscriptions.js';
import { HandlerRegistry } from '../src/inbound/handlers.js';
import { generateSecret, signatureHeaders } from '../src/outbound/signer.js';
import { messageBody } from '../src/outbound/dispatcher.js';
import { Webhook } from 'standardwebhooks';
import type { Endpoint } from '../src/store/endpoints.js';
import { emptyHealth, type EndpointHealth } from '../src/store/endpoint-health.js';

describe('signing', () => {
  it('signs exactly as the standardwebhooks package does, once per secret during a rotation', () => {
    const secrets = [generateSecret(), generateSecret()];
    const at = new Date();
    const body = messageBody('invoice.paid', at.getTime(), '{"amount": 1200,\n "currency":"eur"}');
    assert.deepEqual(JSON.parse(body), { type: 'invoice.paid', timestamp: at.toISOString(), data: { amount: 1200, currency: 'eur' } });
    const headers = signatureHeaders(secrets, 'evt_1', at, body);
    assert.equal(headers['webhook-timestamp'], String(Math.floor(at.getTime() / 1000)));
    assert.equal(headers['webhook-signature'], secrets.map((secret) => new Webhook(secret).sign('evt_1', at, body)).join(' '));
    for (const secret of secrets) assert.doesNotThrow(() => new Webhook(secret).verify(body, headers));
  });
});

describe('retry schedule', () => {
  it('parses lists and the exponential form, and rejects nonsense', () => {
    assert.deepEqual(parseRetrySchedule('2m,2m,2m'), [120_000, 120_000, 120_000]);
    assert.deepEqual(parseRetrySchedule('exp:30s*2x5'), [30_000, 60_000, 120_000, 240_000, 480_000]);
    assert.deepEqual(parseRetrySchedule('none'), []);
    assert.throws(() => parseRetrySchedule('2m,soon'));
    assert.throws(() => parseRetrySchedule('8d'));
  });

  it('gives the delay before each retry, then null', () => {
    const schedule = [120_000, 120_000, 120_000];
    assert.equal(nextRetryDelay(schedule, 1, null), 120_000);
    assert.equal(nextRetryDelay(schedule, 3, null), 120_000);
    assert.equal(nextRetryDelay(schedule, 4, null), null);
  });

  it('honours Retry-After within bounds: never sooner than the schedule, never past the cap', () => {
    const schedule = [120_000];
    assert.equal(nextRetryDelay(schedule, 1, 600_000), 600_000);
    assert.equal(nextRetryDelay(schedule, 1, 5_000), 120_000);
    assert.equal(nextRetryDelay(schedule, 1, 10 * 3_600_000), MAX_RETRY_AFTER_MS);
    assert.equal(nextRetryDelay(schedule, 2, 600_000), null, 'Retry-After adds no retries');
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    assert.equal(parseRetryAfter('120', 0), 120_000);
    assert.equal(parseRetryAfter(new Date(60_000).toUTCString(), 0), 60_000);
    assert.equal(parseRetryAfter('soon', 0), null);
    assert.equal(parseRetryAfter(undefined, 0), null);
  });
});

describe('failure classification and destinations', () => {
  it('classifies statuses', () => {
    assert.equal(statusReason(200), null);
    assert.equal(statusReason(204), null);
    assert.equal(statusReason(301), 'http_4xx');
    assert.equal(statusReason(404), 'http_4xx');
    assert.equal(statusReason(503), 'http_5xx');
  });

  it('knows private, loopback and link-local addresses', () => {
    for (const address of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '0.0.0.0', '100.64.0.1', '::1', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', '::127.0.0.1', '::a00:1', '::ffff:0:127.0.0.1', '::']) {
      assert.equal(isPrivateAddress(address), true, address);
    }
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111', '172.32.0.1']) {
      assert.equal(isPrivateAddress(address), false, address);
    }
  });

  it('matches event type patterns', () => {
    assert.equal(matchesType(['*'], 'a.b'), true);
    assert.equal(matchesType(['invoice.*'], 'invoice.paid'), true);
    assert.equal(matchesType(['invoice.*'], 'invoices.paid'), false);
    assert.equal(matchesType(['order.created'], 'order.created'), true);
    assert.equal(matchesType(['order.created'], 'order.updated'), false);
  });

  it('lets handlers and endpoints take the same patterns and match them alike', () => {
    const registry = new HandlerRegistry();
    const patterns = ['*', 'invoice.*', 'order.created'];
    patterns.forEach((pattern, i) => registry.register(pattern, `h${i}`, () => undefined));
    for (const type of ['invoice.paid', 'invoices.paid', 'order.created', 'order.updated']) {
      assert.deepEqual(registry.match(type).map((h) => h.pattern), patterns.filter((p) => matchesType([p], type)), type);
    }
    for (const bad of ['invoice.', '.paid', 'a..b', 'invoice.*.paid', '']) {
      assert.throws(() => registry.register(bad, `bad-${bad}`, () => undefined), /invalid handler pattern/, bad);
      assert.equal(EVENT_PATTERN.test(bad), false, bad);
    }
  });
});

describe('failure monitor rules', () => {
  const run = (outcomes: boolean[], start = 0, initial: EndpointHealth = emptyHealth('ep')) => {
    let health = initial;
    let emails = 0;
    let webhooks = 0;
    outcomes.forEach((ok, i) => {
      const decision = observeAttempt(health, { ok, at: start + i * 1000, reason: ok ? null : 'http_5xx', statusCode: ok ? 200 : 500, error: ok ? null : 'HTTP 500' });
      health = decision.health;
      if (decision.ownerEmail) emails += 1;
      if (decision.errorWebhook) webhooks += 1;
    });
    return { health, emails, webhooks };
  };

  it('counts whole attempts: 5 of 5 sends nothing, 6 of 6 sends one, 50 never by volume, 51 does', () => {
    assert.equal(windowFires(5, 5), false);
    assert.equal(windowFires(6, 6), true);
    assert.equal(windowFires(100, 50), false);
    assert.equal(windowFires(85, 51), true);
    assert.equal(run(Array(5).fill(false)).emails, 0);
    assert.equal(run(Array(6).fill(false)).emails, 1);
    assert.equal(run(Array(40).fill(false)).emails, 1, 'one email per window');
  });

  it('sends one email for 51 failures at a 60 % failure rate, at the 51st failure', () => {
    const pattern = Array.from({ length: 85 }, (_, i) => i % 5 >= 3);
    assert.equal(run(pattern.slice(0, 82)).emails, 0);
    const { emails, health } = run(pattern);
    assert.equal(emails, 1);
    assert.equal(health.windowFailures, 51);
  });

  it('counts the last hour by minute, successes too, and lets go of minutes older than that', () => {
    const first = run([true, true, false], 0);
    assert.equal(first.health.windowStart, 0);
    assert.equal(first.health.windowAttempts, 3);
    assert.equal(first.health.windowFailures, 1);
    // A minute leaves once all of it lies more than an hour back.
    const later = run([false], WINDOW_MS + 60_000, first.health);
    assert.equal(later.health.windowStart, WINDOW_MS + 60_000);
    assert.equal(later.health.windowAttempts, 1);
    const justInside = run([false], WINDOW_MS + 60_000 - 1, first.health);
    assert.equal(justInside.health.windowAttempts, 4, 'a minute part of which lies within the hour still counts');
  });

  it('counts a failure 59.8 minutes old: 51 failures within the last hour email', () => {
    let health = emptyHealth('ep');
    const emails: number[] = [];
    const attempt = (ok: boolean, at: number) => {
      const decision = observeAttempt(health, { ok, at, reason: ok ? null : 'http_5xx', statusCode: ok ? 200 : 500, error: null });
      health = decision.health;
      if (decision.ownerEmail) emails.push(at);
    };
    attempt(false, 30_000);
    for (let i = 0; i < 20; i++) attempt(true, 30 * 60_000 + i);
    for (let i = 0; i < 50; i++) attempt(false, 60 * 60_000 + i * 400);
    assert.equal(emails.length, 1);
  });

  it('drops the minutes a clock set back has not reached again, and runs the quiet hour of an email dated ahead from now', () => {
    const hour = WINDOW_MS;
    let health = emptyHealth('ep');
    let emails = 0;
    const attempt = (ok: boolean, at: number) => {
      const decision = observeAttempt(health, { ok, at, reason: ok ? null : 'timeout', statusCode: null, error: null });
      health = decision.health;
      if (decision.ownerEmail) emails += 1;
    };
    // The clock runs 2 hours ahead: 6 failures email, dated then.
    for (let i = 0; i < 6; i++) attempt(false, 2 * hour + i * 1000);
    assert.equal(emails, 1);
    // Set right again: the minutes ahead are dropped, and the email does not quiet the real hour.
    attempt(true, 10_000);
    assert.equal(health.windowAttempts, 1);
    assert.equal(health.windowNotifiedAt, 10_000);
    // One failure every 2 minutes beside 2 successes for 2 hours never makes an hour above 80 % or 50.
    for (let m = 1; m < 120; m += 2) {
      attempt(false, m * 60_000);
      attempt(true, m * 60_000 + 1);
      attempt(true, m * 60_000 + 2);
    }
    assert.equal(emails, 1);
    assert.ok(health.windowAttempts <= 93, `at most 61 minutes counted, got ${health.windowAttempts}`);
    for (let i = 0; i < 6; i++) attempt(false, 120 * 60_000 + i);
    assert.equal(emails, 1, '6 more failures among 90 attempts stay under 80 %');
  });

  it('sends no second email when the clock steps back a little over a minute after one', () => {
    let health = emptyHealth('ep');
    let emails = 0;
    const attempt = (at: number) => {
      const decision = observeAttempt(health, { ok: false, at, reason: 'timeout', statusCode: null, error: null });
      health = decision.health;
      if (decision.ownerEmail) emails += 1;
    };
    for (let i = 0; i < 6; i++) attempt(10 * 60 * 60_000 + 55_000 + i * 500);
    assert.equal(emails, 1);
    attempt(10 * 60 * 60_000 + 57_500 - 70_000);
    assert.equal(emails, 1, 'the same failures are not reported twice');
    assert.equal(health.windowFailures, 7);
  });

  it('keeps the totals equal to the sum of the minutes still in the hour, through gaps and a clock stepped back', () => {
    let health = emptyHealth('ep');
    let at = 0;
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let i = 0; i < 3000; i++) {
      const r = random();
      at += r < 0.02 ? -30_000 : r < 0.05 ? 20 * 60_000 : Math.floor(random() * 20_000);
      const ok = random() < 0.5;
      health = observeAttempt(health, { ok, at, reason: ok ? null : random() < 0.5 ? 'timeout' : 'http_5xx', statusCode: null, error: null }).health;
      const reasons: Record<string, number> = {};
      for (const bucket of health.windowBuckets) for (const [reason, n] of Object.entries(bucket.reasons)) reasons[reason] = (reasons[reason] ?? 0) + n;
      assert.equal(health.windowAttempts, health.windowBuckets.reduce((sum, b) => sum + b.attempts, 0));
      assert.equal(health.windowFailures, health.windowBuckets.reduce((sum, b) => sum + b.failures, 0));
      assert.deepEqual(health.windowReasons, reasons);
      assert.ok(health.windowBuckets.every((b, k, all) => k === 0 || b.start > (all[k - 1]?.start ?? 0)), 'minutes in order, each once');
      assert.ok((health.windowBuckets[0]?.start ?? Infinity) > Math.max(...health.windowBuckets.map((b) => b.start)) - WINDOW_MS - 60_000);
    }
  });

  it('emails for 60 failures within 20 minutes that span the turn of an hour counted from the first failure', () => {
    const minute = 60_000;
    let health = emptyHealth('ep');
    let emails = 0;
    const attempt = (ok: boolean, at: number) => {
      const decision = observeAttempt(health, { ok, at, reason: ok ? null : 'timeout', statusCode: ok ? 200 : null, error: ok ? null : 'timed out' });
      health = decision.health;
      if (decision.ownerEmail) emails += 1;
      return decision;
    };
    attempt(false, 0);
    for (let i = 0; i < 100; i++) attempt(true, minute + i);
    // 30 failures and 30 successes in minutes 50–59, then the same in minutes 61–70: 50 % failing,
    // never more than 31 failures in an hour that begins at the first failure.
    for (let i = 0; i < 60; i++) attempt(i % 2 === 0, 50 * minute + i * 10_000);
    assert.equal(emails, 0);
    let fired = null;
    for (let i = 0; i < 60; i++) fired = attempt(i % 2 === 0, 61 * minute + i * 10_000).ownerEmail ?? fired;
    assert.equal(emails, 1);
    assert.ok(fired);
    assert.equal(fired.failures, 51, 'fires at the 51st failure of the hour');
    assert.equal(fired.start, 50 * minute, 'the first failure and the early successes have left the window');
    // Failing on: the next email waits an hour from this one.
    for (let i = 0; i < 60; i++) attempt(false, 71 * minute + i * 50_000);
    assert.equal(emails, 1, 'quiet for the hour after an email');
    attempt(false, fired.end + WINDOW_MS);
    assert.equal(emails, 2);
  });

  it('fires the error webhook at the third consecutive failure, once per streak', () => {
    assert.equal(run([false, false]).webhooks, 0);
    assert.equal(run([false, false, false, false, false]).webhooks, 1);
    assert.equal(run([false, false, false, true, false, false, false]).webhooks, 2);
    assert.equal(run([false, false, true, false, false]).webhooks, 0);
  });
});

describe('notification texts', () => {
  const endpoint: Endpoint = {
    id: 'ep_1', url: 'https://hooks.example.com/in', description: 'orders', events: ['*'], ownerEmails: ['a@example.com'],
    secret: 'whsec_x', retiredSecrets: [], paused: false, disabledAt: null, disabledReason: null, createdAt: 0, updatedAt: 0,
  };

  it('gives the error webhook code 0 when there was no status', () => {
    assert.deepEqual(errorWebhookBody(endpoint, 3, null, 'ECONNREFUSED: connect refused'), {
      code: 0, endpoint: 'https://hooks.example.com/in', message: '3 consecutive delivery attempts to endpoint ep_1 failed; last: ECONNREFUSED: connect refused',
    });
    assert.equal(errorWebhookBody(endpoint, 3, 502, 'HTTP 502').code, 502);
  });

  it('recommends an action for each failure reason it names', () => {
    const mail = failureEmail(endpoint, ['a@example.com'], { start: 0, end: 60_000, attempts: 9, failures: 9, reasons: { timeout: 5, connection: 3, http_5xx: 1 } }, 30_000);
    assert.match(mail.text, /timed out: 5[\s\S]*connection failed.*: 3[\s\S]*server error \(HTTP 5xx\): 1/);
    assert.match(mail.text, /waits 30s for an answer.*background job/);
    assert.match(mail.text, /reachable from the internet.*TLS certificate.*capacity/);
    assert.match(mail.text, /Period: +1970-01-01T00:00:00.000Z to 1970-01-01T00:01:00.000Z/);
  });

  it('tells the owners of a disabled endpoint what becomes of what is still owed to it', () => {
    const mail = disabledEmail(endpoint, ['a@example.com'], 0);
    assert.match(mail.text, /marked failed as their turn comes/);
    assert.match(mail.text, /parked while it was failing stay queued and go out, in order, once it is re-enabled/);
    assert.match(mail.text, /\{"disabled": false\}.*\/recover/);
  });

  it('keeps credentials of an endpoint URL out of emails and the error webhook (subjects reach logs when an email cannot be sent)', () => {
    const withCredentials = { ...endpoint, url: 'https://user:pa55word@hooks.example.com/in?token=t0ken' };
    const window = { start: 0, end: 60_000, attempts: 6, failures: 6, reasons: { http_5xx: 6 } };
    for (const mail of [failureEmail(withCredentials, [], window, 30_000), disabledEmail(withCredentials, [], 0)]) {
      assert.match(mail.subject, /https:\/\/hooks\.example\.com\/in$/);
      assert.doesNotMatch(`${mail.subject}\n${mail.text}`, /pa55word|t0ken/);
    }
    const body = errorWebhookBody(withCredentials, 3, 503, 'HTTP 503');
    assert.equal(body.endpoint, 'https://hooks.example.com/in');
    assert.doesNotMatch(JSON.stringify(body), /pa55word|t0ken/);
  });
});

describe('destination guard and connection reuse', () => {
  it('never carries a guarded request over a socket an unguarded one opened to the same host', async () => {
    const paths: string[] = [];
    const server = http.createServer((req, res) => { paths.push(req.url ?? ''); res.end('internal'); });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const sender = new HttpSender();
    try {
      const base = { headers: {}, body: '{}', timeoutMs: 5000 };
      // The error webhook may be internal: it opens a keep-alive socket to localhost.
      const allowed = await sender.send({ ...base, url: `http://localhost:${port}/alerts`, allowPrivate: true });
      assert.equal(allowed.statusCode, 200);
      const guarded = await sender.send({ ...base, url: `http://localhost:${port}/admin`, allowPrivate: false });
      assert.equal(guarded.ok, false);
      assert.equal(guarded.reason, 'connection');
      assert.match(guarded.error ?? '', /refused to connect to localhost/);
      assert.deepEqual(paths, ['/alerts']);
    } finally {
      sender.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('the HTTP sender', () => {
  it('reports a URL node:http refuses to send to as a failed attempt instead of throwing, without its credentials', async () => {
    const result = await new HttpSender().send({ url: 'http://user:S3cret%ZZ@127.0.0.1:9/hook', headers: {}, body: '{}', timeoutMs: 1000, allowPrivate: true });
    assert.equal(result.ok, false);
    assert.equal(result.reason, 'connection');
    assert.match(result.error ?? '', /^request not sent: URI malformed/);
    assert.doesNotMatch(result.error ?? '', /S3cret/);
  });
});

describe('error webhook failures', () => {
  it('name the error webhook by its origin alone: credentials in its user-info, query or path (Slack-style) stay out of the message that is logged and kept with the job', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as AddressInfo;
    await new Promise((resolve) => closed.close(resolve));
    const logs: string[] = [];
    const notifier = new Notifier(
      { errorWebhookUrl: `http://alerts:S3cretHookPw@127.0.0.1:${port}/services/T000/B000/XoxbPathSecret?token=abc123`, smtpUrl: null, from: 'a@example.com', alwaysTo: [], timeoutMs: 2000, maxAttempts: 3, backoff: { baseMs: 1000, factor: 2, maxMs: 60_000 } },
      { enqueue: () => 1, enqueueFor: () => ({ id: 1, leased: null }), discard: () => false },
      new HttpSender(),
      createLogger({ level: 'debug', service: 'hookwatch', environment: 'test', stream: new Writable({ write(chunk, _encoding, done) { logs.push(String(chunk)); done(); } }) }),
      { now: () => Date.now() },
    );
    const job = { id: 1, queue: 'deliveries', kind: ERROR_WEBHOOK_JOB, ref: 'ep_1', payload: { body: { code: 500, endpoint: 'https://x.example', message: 'm' } }, status: 'running', attempts: 1, maxAttempts: 3, runAt: 0, leaseOwner: 'me', leaseExpiresAt: 0, lastError: null, requestId: null, traceContext: null, createdAt: 0, updatedAt: 0 } as const;
    const result = await notifier.run({ ...job, payload: { ...job.payload } });
    assert.equal(result.outcome, 'retry');
    const error = 'error' in result ? result.error : '';
    assert.match(error, new RegExp(`^error webhook http://127\\.0\\.0\\.1:${port}: `));
    for (const text of [error, ...logs]) assert.doesNotMatch(text, /S3cretHookPw|abc123|XoxbPathSecret/);
    assert.ok(logs.some((line) => line.includes('notification failed; will retry')));
  });

  it('are not queued without ERROR_WEBHOOK_URL or SMTP_URL, and the lines that say so name the request that decided them', () => {
    const logs: string[] = [];
    const notifier = new Notifier(
      { errorWebhookUrl: null, smtpUrl: null, from: 'a@example.com', alwaysTo: [], timeoutMs: 2000, maxAttempts: 3, backoff: { baseMs: 1000, factor: 2, maxMs: 60_000 } },
      { enqueue: () => assert.fail('nothing is queued'), enqueueFor: () => assert.fail('nothing is queued'), discard: () => false },
      new HttpSender(),
      createLogger({ level: 'debug', service: 'hookwatch', environment: 'test', stream: new Writable({ write(chunk, _encoding, done) { logs.push(String(chunk)); done(); } }) }),
      { now: () => Date.now() },
    );
    notifier.queueErrorWebhook('ep_1', { code: 500, endpoint: 'https://x.example', message: 'm' }, 'req-manual-1');
    notifier.queueEmail('ep_1', { to: ['ops@example.com'], subject: 's', text: 't' }, 'req-manual-1');
    const lines = logs.map((line) => JSON.parse(line) as Record<string, unknown>);
    assert.deepEqual(lines.map((line) => [line.message, line.request_id, line.endpoint]), [
      ['error webhook not sent: ERROR_WEBHOOK_URL is not set', 'req-manual-1', 'ep_1'],
      ['owner email not sent', 'req-manual-1', 'ep_1'],
    ]);
  });
});
