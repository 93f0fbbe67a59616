import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { tempDir, waitFor, type TestService } from './helpers/service.js';
import { standardEvent, standardHeaders } from './helpers/signing.js';
import { scrape, sumOf } from './helpers/telemetry-metrics.js';
import { admin, publish, Receiver, registerEndpoint, settled, startOutboundService, TestClock, type Reply } from './helpers/outbound-harness.js';

const MINUTE = 60_000;

interface AttemptBody { number: number; trigger: string; ok: boolean; status_code: number | null; reason: string | null; error: string | null; response_body: string | null }
interface DeliveryBody { id: string; endpoint_id: string; status: string; parked: boolean; attempts: number; next_attempt_at: string | null; attempt_log: AttemptBody[]; latest_response: { status_code: number | null; body: string | null } | null }

describe('outbound delivery', () => {
  const clock = new TestClock();
  let t: TestService;
  const receivers: Receiver[] = [];
  const receiver = async (...args: Parameters<typeof Receiver.start>) => {
    const r = await Receiver.start(...args);
    receivers.push(r);
    return r;
  };

  before(async () => {
    t = await startOutboundService({ DELIVERY_TIMEOUT: '300ms' }, clock);
  });
  after(async () => {
    await t.close();
    for (const r of receivers) await r.close();
  });

  const delivery = async (id: string): Promise<DeliveryBody> => (await admin(t, 'get', `/api/v1/deliveries/${id}`)).body as DeliveryBody;
  const waitSettled = (id: string, attempts: number) => waitFor(`delivery ${id} after ${attempts} attempt(s)`, () => settled(t, id, attempts));
  /**
   * A receiver registered for `type` that deletes its own endpoint when its `at`-th request
   * arrives, answering each request (numbered from 1) as `reply` says; `deleted` is the DELETE's status.
   */
  const deletedOnRequest = async (type: string, at: number, reply: (request: number) => Reply) => {
    const scene = { endpointId: '', deleted: null as Promise<number> | null };
    let requests = 0;
    const r = await receiver(() => {
      requests += 1;
      if (requests === at) scene.deleted = admin(t, 'delete', `/api/v1/webhooks/${scene.endpointId}`).then((res) => res.status);
      return reply(requests);
    });
    scene.endpointId = (await registerEndpoint(t, r, [type])).id;
    return scene;
  };

  it('rejects bad endpoint definitions with field-level details', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ url: 'ftp://example.com/hook', events: ['*'] }, 'url'],
      [{ url: 'not a url', events: ['*'] }, 'url'],
      [{ url: 'https://example.com:0/hook', events: ['*'] }, 'url'],
      [{ url: 'https://example.com/hook', events: [] }, 'events'],
      [{ url: 'https://example.com/hook', events: 'order.created' }, 'events'],
      [{ url: 'https://example.com/hook', events: ['*'], owner_emails: ['nobody'] }, 'owner_emails.0'],
      [{ url: 'https://example.com/hook', events: ['*'], description: 42 }, 'description'],
      [{ url: 'https://example.com/hook', events: ['*'], colour: 'blue' }, '(root)'],
    ];
    for (const [body, field] of cases) {
      const res = await admin(t, 'post', '/api/v1/webhooks').send(body);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error, 'invalid_request');
      const fields = (res.body.details as { field: string }[]).map((d) => d.field);
      assert.ok(fields.includes(field), `${JSON.stringify(body)} → ${JSON.stringify(res.body.details)}`);
    }
    assert.equal((await request(t.url).post('/api/v1/webhooks').send({ url: 'https://example.com', events: ['*'] })).status, 401);
  });

  it('registers, lists, shows, updates and deletes endpoints; the secret is shown once', async () => {
    const created = await admin(t, 'post', '/api/v1/webhooks').set('x-request-id', 'req-register-1').send({ url: 'https://example.com/a', events: ['order.*'], description: 'orders', owner_emails: ['ops@example.com'] });
    assert.equal(created.status, 201);
    assert.match(created.body.id, /^ep_/);
    assert.match(created.body.secret, /^whsec_[A-Za-z0-9+/=]{40,}$/);
    const id = created.body.id as string;

    const shown = await admin(t, 'get', `/api/v1/webhooks/${id}`);
    assert.equal(shown.status, 200);
    assert.equal(shown.body.secret, undefined, 'the secret is not shown again');
    assert.deepEqual(shown.body.owner_emails, ['ops@example.com']);
    const listed = await admin(t, 'get', '/api/v1/webhooks');
    assert.ok((listed.body.data as { id: string }[]).some((e) => e.id === id));

    const updated = await admin(t, 'patch', `/api/v1/webhooks/${id}`).set('x-request-id', 'req-update-1').send({ events: ['order.created', 'invoice.*'], description: 'billing', paused: true });
    assert.equal(updated.status, 200);
    assert.deepEqual(updated.body.events, ['order.created', 'invoice.*']);
    assert.equal(updated.body.paused, true);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${id}`).send({ url: 'mailto:x@example.com' })).status, 400);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${id}`).send({})).status, 400);

    assert.equal((await admin(t, 'delete', `/api/v1/webhooks/${id}`).set('x-request-id', 'req-delete-1')).status, 204);
    assert.equal((await admin(t, 'get', `/api/v1/webhooks/${id}`)).status, 404);
    assert.equal((await admin(t, 'delete', `/api/v1/webhooks/${id}`)).status, 404);

    // Each change's log line names the request that made it.
    for (const [message, requestId] of [['endpoint registered', 'req-register-1'], ['endpoint updated', 'req-update-1'], ['endpoint deleted', 'req-delete-1']] as const) {
      const line = t.logs.find(message).find((l) => l.endpoint === id);
      assert.equal(line?.request_id, requestId, `${message} carries the request id`);
    }
  });

  it('delivers a published event, signed, to every subscribed endpoint, once per event id', async () => {
    const primary = await receiver();
    const backup = await receiver();
    const other = await receiver();
    await registerEndpoint(t, primary, ['order.placed']);
    await registerEndpoint(t, backup, ['order.*']);
    await registerEndpoint(t, other, ['invoice.paid']);

    const published = await publish(t, 'order.placed', { order: 42 }, 'order-42');
    assert.equal(published.duplicate, false);
    assert.equal(published.deliveries.length, 2);
    await waitFor('both delivered', () => primary.requests.length === 1 && backup.requests.length === 1);
    for (const r of [primary, backup]) {
      const got = r.requests[0];
      assert.ok(got);
      assert.equal(got.verified, true, 'the signature verifies with the standardwebhooks library');
      assert.equal(got.id, published.id);
      assert.deepEqual(JSON.parse(got.body), { type: 'order.placed', timestamp: JSON.parse(got.body).timestamp, data: { order: 42 } });
      assert.match(String(got.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
      assert.ok(got.headers['x-request-id']);
    }
    assert.equal(other.requests.length, 0);

    const again = await publish(t, 'order.placed', { order: 42 }, 'order-42');
    assert.equal(again.duplicate, true);
    assert.equal(again.id, published.id);
    await waitFor('all deliveries done', () => published.deliveries.every((d) => t.service.store.deliveries.get(d.id)?.status === 'delivered'));
    assert.equal(primary.requests.length, 1, 'publishing the same id again sends nothing new');

    const event = await admin(t, 'get', `/api/v1/events/${published.id}`);
    assert.equal(event.status, 200);
    const deliveries = event.body.deliveries as DeliveryBody[];
    assert.equal(deliveries.length, 2);
    for (const d of deliveries) {
      assert.equal(d.status, 'delivered');
      assert.equal(d.attempt_log.length, 1);
      assert.equal(d.attempt_log[0]?.trigger, 'scheduled');
      assert.equal(d.latest_response?.status_code, 200);
      assert.equal(d.latest_response?.body, 'ok');
    }

    const lines = t.logs.find('delivery attempt').filter((line) => line.event_id === 'order-42');
    assert.equal(lines.length, 2, 'one log line per attempt');
    for (const line of lines) {
      for (const field of ['request_id', 'endpoint', 'delivery_id', 'event_id', 'event_type']) assert.ok(line[field], `log line has ${field}`);
      assert.equal(line.level, 'info');
    }
  });

  it('rejects bad publish requests', async () => {
    assert.equal((await admin(t, 'post', '/api/v1/events').send({ data: {} })).status, 400);
    assert.equal((await admin(t, 'post', '/api/v1/events').send({ type: 'a.b' })).status, 400);
    assert.equal((await admin(t, 'post', '/api/v1/events').send({ type: 'a b', data: 1 })).status, 400);
    // A type no subscription could name exactly: empty parts, a wildcard.
    for (const type of ['a..b', '.a', 'a.', 'order.*', '*']) {
      const res = await admin(t, 'post', '/api/v1/events').send({ type, data: 1 });
      assert.deepEqual([res.status, res.body.details?.[0]?.field], [400, 'type'], type);
    }
    // JSON.parse reads nesting that JSON.stringify cannot write back: a 400 naming the field, not a 500.
    const depth = 20_000;
    const deep = await admin(t, 'post', '/api/v1/events').set('content-type', 'application/json')
      .send(`{"type":"deep.thing","data":${'['.repeat(depth)}${']'.repeat(depth)}}`);
    assert.equal(deep.status, 400, JSON.stringify(deep.body));
    assert.deepEqual(deep.body.details, [{ field: 'data', problem: 'nested too deeply to store' }]);
    // Read as Infinity, it would be stored and sent as null.
    const huge = await admin(t, 'post', '/api/v1/events').set('content-type', 'application/json').send('{"type":"huge.thing","id":"huge-1","data":{"n":1e400}}');
    assert.equal(huge.status, 400, JSON.stringify(huge.body));
    assert.deepEqual(huge.body.details, [{ field: 'data', problem: 'holds a number too large to store (send it as a string)' }]);
    assert.equal(t.service.store.events.findByKey('api', 'huge-1'), null, 'nothing stored');
  });

  it('forwards processed inbound events to subscribed endpoints', async () => {
    const r = await receiver();
    await registerEndpoint(t, r, ['user.*']);
    const contentReads = async () => {
      const { samples } = await scrape(t.url);
      return { released: sumOf(samples, 'webhook_cache_operation_duration_seconds_count', { cache: 'events', operation: 'delete' }), readBack: sumOf(samples, 'webhook_db_query_duration_seconds_count', { operation: 'event_get' }) };
    };
    const before = await contentReads();
    const { id, body } = standardEvent('user.created');
    const res = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
    assert.equal(res.status, 202);
    await waitFor('forwarded', () => r.requests.length === 1);
    // The content stays in memory for the delivery (an event no endpoint wants is let go once processed).
    assert.deepEqual(await contentReads(), before, 'the delivery was sent from memory');
    assert.equal(r.requests[0]?.verified, true);
    assert.deepEqual(JSON.parse(r.requests[0]?.body ?? '{}').data, JSON.parse(body));
    const again = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
    assert.equal(again.status, 200, 'a redelivery is a duplicate');
    const shown = await waitFor('event detail shows the delivery', async () => {
      const detail = await admin(t, 'get', `/api/v1/events/${res.body.id as string}`);
      const list = detail.body.deliveries as DeliveryBody[];
      return list.length === 1 && list[0]?.status === 'delivered' ? list : undefined;
    });
    assert.equal(shown.length, 1);
    assert.equal(r.requests.length, 1);
  });

  it('retries on the schedule (2 minutes apart by default) until a 2xx, moved by a test clock', async () => {
    const r = await receiver((req) => (req.previous < 2 ? { status: 500, body: 'database unavailable' } : { status: 200, body: 'finally' }));
    const ep = await registerEndpoint(t, r, ['flaky.thing']);
    const published = await publish(t, 'flaky.thing', { n: 1 });
    const id = published.deliveries[0]?.id ?? '';

    await waitSettled(id, 1);
    let d = await delivery(id);
    assert.equal(d.status, 'pending');
    assert.equal(d.next_attempt_at, new Date(clock.now() + 2 * MINUTE).toISOString());
    assert.equal(r.requests.length, 1);
    const job = t.service.jobs.get(t.service.store.deliveries.get(id)?.jobId ?? 0);
    assert.equal(job?.runAt, clock.now() + 2 * MINUTE, 'not due before two minutes have passed');

    clock.advance(2 * MINUTE);
    await waitSettled(id, 2);
    assert.equal(r.requests.length, 2);
    clock.advance(2 * MINUTE);
    await waitSettled(id, 3);
    d = await delivery(id);
    assert.equal(d.status, 'delivered');
    assert.deepEqual(d.attempt_log.map((a) => [a.number, a.status_code, a.reason]), [[1, 500, 'http_5xx'], [2, 500, 'http_5xx'], [3, 200, null]]);
    assert.equal(d.attempt_log[0]?.response_body, 'database unavailable');
    assert.ok(r.requests.every((req) => req.verified && req.id === published.id), 'the same webhook-id on every attempt');

    const list = await admin(t, 'get', `/api/v1/webhooks/${ep.id}/deliveries?status=delivered`);
    assert.deepEqual((list.body.data as { id: string }[]).map((x) => x.id), [id]);
    assert.deepEqual((await admin(t, 'get', `/api/v1/webhooks/${ep.id}/deliveries?status=failed`)).body.data, []);
    assert.equal((await admin(t, 'get', `/api/v1/webhooks/${ep.id}/deliveries?status=lost`)).status, 400);

    const metrics = (await request(t.url).get('/metrics')).text;
    assert.match(metrics, new RegExp(`webhook_deliveries_total\\{endpoint="${ep.id}"\\} 3`));
    assert.match(metrics, new RegExp(`webhook_delivery_retries_total\\{endpoint="${ep.id}"\\} 2`));
    assert.match(metrics, new RegExp(`webhook_delivery_failures_total\\{endpoint="${ep.id}",reason="http_5xx"\\} 2`));
    assert.match(metrics, new RegExp(`webhook_delivery_failures_total\\{endpoint="${ep.id}",reason="timeout"\\} 0`));
    assert.match(metrics, new RegExp(`webhook_endpoint_up\\{endpoint="${ep.id}"\\} 1`));
  });

  /**
   * A delivery whose scheduled retry waits while a manual attempt fails it with 410, then what
   * the 410 email tells the owner: the endpoint answers again (500 here), re-enable, recover.
   * `meanwhile` runs before the re-enable.
   */
  async function failedBy410ThenRecovered(type: string, meanwhile: (retryJob: number) => void = () => undefined): Promise<{ id: string; retryJob: number }> {
    let status = 500;
    const r = await receiver(() => ({ status }));
    const ep = await registerEndpoint(t, r, [type]);
    const id = (await publish(t, type, {})).deliveries[0]?.id ?? '';
    await waitSettled(id, 1);
    const retryJob = t.service.store.deliveries.get(id)?.jobId ?? 0;
    assert.equal(t.service.jobs.get(retryJob)?.status, 'pending', 'the retry is scheduled');
    status = 410;
    assert.equal((await admin(t, 'post', `/api/v1/deliveries/${id}/retry`)).body.delivery.status, 'failed');
    meanwhile(retryJob);
    status = 500;
    const refused = await admin(t, 'post', `/api/v1/webhooks/${ep.id}/recover`).send({ since: new Date(clock.now() - MINUTE).toISOString() });
    assert.equal(refused.status, 409, 'a disabled endpoint is re-enabled before its deliveries are recovered');
    assert.match(refused.body.message, /re-enable it first/);
    assert.equal((await delivery(id)).status, 'failed', 'nothing was re-queued');
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ disabled: false })).status, 200);
    const recovered = await admin(t, 'post', `/api/v1/webhooks/${ep.id}/recover`).send({ since: new Date(clock.now() - MINUTE).toISOString() });
    assert.equal(recovered.body.requeued, 1);
    await waitSettled(id, 3);
    return { id, retryJob };
  }

  it('recovers a delivery a manual attempt failed with 410 before its retry ran with one job, on a fresh schedule', async () => {
    const { id, retryJob } = await failedBy410ThenRecovered('gone.thing');
    assert.equal(t.service.store.deliveries.get(id)?.jobId, retryJob, 'the waiting retry job was reused, not joined by a second one');
    const d = await delivery(id);
    assert.equal(d.status, 'pending');
    assert.equal(d.next_attempt_at, new Date(clock.now() + 2 * MINUTE).toISOString(), 'the fresh schedule starts over');
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal((await delivery(id)).attempts, 3, 'no second job sent it again meanwhile');
  });

  it('drives a recovered delivery with one job when its old job was claimed elsewhere: that job finds itself replaced', async () => {
    // Its retry job claimed by another worker process, which has not started it yet.
    const { id, retryJob: oldJob } = await failedBy410ThenRecovered('claimed.thing', (retryJob) => {
      t.service.store.db.prepare("UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = 'other-process', lease_expires_at = ? WHERE id = ?").run(clock.now() + 3 * MINUTE, retryJob);
    });
    // The other process dies; its claim runs out as the recovered job's retry falls due.
    clock.advance(3 * MINUTE);
    await waitFor('the old job ended', () => t.service.jobs.get(oldJob) === null, 10_000);
    await waitSettled(id, 4);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await delivery(id)).attempts, 4, 'the first, the manual 410, the recovered one and its one retry: the old job sent nothing');
  });

  it('gives up after the schedule, dead-letters the delivery, and a manual retry or recover sends it again', async () => {
    let healthy = false;
    const r = await receiver(() => (healthy ? { status: 204 } : { status: 503, body: 'down' }));
    const ep = await registerEndpoint(t, r, ['doomed.thing']);
    const first = (await publish(t, 'doomed.thing', { n: 1 })).deliveries[0]?.id ?? '';
    const second = (await publish(t, 'doomed.thing', { n: 2 })).deliveries[0]?.id ?? '';
    for (let attempt = 1; attempt <= 4; attempt++) {
      await waitSettled(first, attempt);
      await waitSettled(second, attempt);
      if (attempt < 4) clock.advance(2 * MINUTE);
    }
    for (const id of [first, second]) {
      const d = await delivery(id);
      assert.equal(d.status, 'failed');
      assert.equal(d.attempts, 4, 'the first attempt and three retries');
    }
    const dead = (await admin(t, 'get', '/api/v1/dead-letters?queue=deliveries')).body.data as { kind: string; delivery?: { id: string } }[];
    assert.ok(dead.some((job) => job.kind === 'delivery.send' && job.delivery?.id === first));

    healthy = true;
    const retried = await admin(t, 'post', `/api/v1/deliveries/${first}/retry`);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.attempt.trigger, 'manual');
    assert.equal(retried.body.attempt.ok, true);
    assert.equal(retried.body.delivery.status, 'delivered');
    const deadAfter = (await admin(t, 'get', '/api/v1/dead-letters?queue=deliveries')).body.data as { delivery?: { id: string } }[];
    assert.ok(!deadAfter.some((job) => job.delivery?.id === first), 'a delivered delivery leaves the dead-letter queue');
    assert.equal((await admin(t, 'post', '/api/v1/deliveries/dlv_nope/retry')).status, 404);

    const recovered = await admin(t, 'post', `/api/v1/webhooks/${ep.id}/recover`).send({ since: new Date(clock.now() - 60 * MINUTE).toISOString() });
    assert.equal(recovered.status, 202);
    assert.equal(recovered.body.requeued, 1);
    await waitFor('recovered delivery delivered', () => t.service.store.deliveries.get(second)?.status === 'delivered');
    const d = await delivery(second);
    assert.equal(d.attempts, 5);
    assert.equal(d.attempt_log.at(-1)?.trigger, 'scheduled');
    assert.equal((await admin(t, 'post', `/api/v1/webhooks/${ep.id}/recover`).send({ since: 'yesterday' })).status, 400);
  });

  it('records a timeout when the endpoint hangs past DELIVERY_TIMEOUT', async () => {
    const r = await receiver(() => 'hang');
    await registerEndpoint(t, r, ['slow.thing']);
    const id = (await publish(t, 'slow.thing', {})).deliveries[0]?.id ?? '';
    await waitSettled(id, 1);
    const d = await delivery(id);
    assert.equal(d.attempt_log[0]?.reason, 'timeout');
    assert.equal(d.attempt_log[0]?.status_code, null);
    assert.equal(d.status, 'pending');
  });

  it('keeps the status of a response whose body stalls past DELIVERY_TIMEOUT', async () => {
    const stalling = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    });
    await new Promise<void>((resolve) => stalling.listen(0, '127.0.0.1', resolve));
    try {
      const url = `http://127.0.0.1:${(stalling.address() as AddressInfo).port}/hook`;
      assert.equal((await admin(t, 'post', '/api/v1/webhooks').send({ url, events: ['stall.thing'] })).status, 201);
      const id = (await publish(t, 'stall.thing', {})).deliveries[0]?.id ?? '';
      await waitSettled(id, 1);
      const attempt = (await delivery(id)).attempt_log[0];
      assert.equal(attempt?.reason, 'timeout');
      assert.equal(attempt?.status_code, 200);
      assert.equal(attempt?.ok, false);
    } finally {
      stalling.closeAllConnections();
      await new Promise<void>((resolve) => stalling.close(() => resolve()));
    }
  });

  it('records a connection error and honours Retry-After on 429 within bounds', async () => {
    const closed = await receiver();
    const url = closed.url;
    await closed.close();
    const created = await admin(t, 'post', '/api/v1/webhooks').send({ url, events: ['nowhere.thing'] });
    const id = (await publish(t, 'nowhere.thing', {})).deliveries[0]?.id ?? '';
    await waitSettled(id, 1);
    assert.equal((await delivery(id)).attempt_log[0]?.reason, 'connection');
    assert.equal((await admin(t, 'delete', `/api/v1/webhooks/${created.body.id as string}`)).status, 204);
    assert.equal(t.service.store.deliveries.get(id)?.status, 'cancelled');

    const limited = await receiver((req) => req.previous === 0
      ? { status: 429, headers: { 'retry-after': '600' } }
      : req.previous === 1 ? { status: 429, headers: { 'retry-after': '86400' } } : { status: 200 });
    await registerEndpoint(t, limited, ['busy.thing']);
    const busy = (await publish(t, 'busy.thing', {})).deliveries[0]?.id ?? '';
    await waitSettled(busy, 1);
    assert.equal((await delivery(busy)).next_attempt_at, new Date(clock.now() + 10 * MINUTE).toISOString(), 'Retry-After: 600 beats the 2-minute schedule');
    clock.advance(10 * MINUTE);
    await waitSettled(busy, 2);
    assert.equal((await delivery(busy)).next_attempt_at, new Date(clock.now() + 60 * MINUTE).toISOString(), 'a day is capped at an hour');
    clock.advance(60 * MINUTE);
    await waitSettled(busy, 3);
    assert.equal((await delivery(busy)).status, 'delivered');
  });

  it('keeps deliveries of a paused endpoint queued and sends them in order on resume', async () => {
    const r = await receiver();
    const ep = await registerEndpoint(t, r, ['queue.thing']);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: true })).status, 200);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await publish(t, 'queue.thing', { i })).id);
    const pending = await admin(t, 'get', `/api/v1/webhooks/${ep.id}/deliveries?status=pending`);
    assert.equal(pending.body.data.length, 8);
    assert.ok((pending.body.data as { parked: boolean }[]).every((d) => d.parked));
    assert.equal(r.requests.length, 0);

    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: false })).status, 200);
    ids.push((await publish(t, 'queue.thing', { i: 8 })).id);
    await waitFor('all sent after resume', () => r.requests.length === 9);
    assert.deepEqual(r.requests.map((req) => req.id), ids, 'in the order they were published');
  });

  it('keeps a resumed backlog to one delivery at a time when the endpoint is changed meanwhile', async () => {
    let onTheWire = 0;
    let most = 0;
    const r = await receiver(() => {
      onTheWire += 1;
      most = Math.max(most, onTheWire);
      setTimeout(() => { onTheWire -= 1; }, 100);
      return { status: 200, delayMs: 100 };
    });
    const ep = await registerEndpoint(t, r, ['order.kept']);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: true })).status, 200);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await publish(t, 'order.kept', { i })).id);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: false })).status, 200);
    await waitFor('the first on the wire', () => r.requests.length === 1);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ description: 'renamed' })).status, 200);
    await waitFor('the backlog sent', () => r.answered === 4);
    assert.equal(most, 1, 'a change that does not resume starts no second release');
    assert.deepEqual(r.requests.map((req) => req.id), ids, 'in the order they were published');
  });

  /** A receiver that answers after `delayMs` and records the most requests it had on the wire at once. */
  const countingReceiver = async (delayMs: number) => {
    const seen = { onTheWire: 0, most: 0 };
    const r = await receiver(() => {
      seen.onTheWire += 1;
      seen.most = Math.max(seen.most, seen.onTheWire);
      setTimeout(() => { seen.onTheWire -= 1; }, delayMs);
      return { status: 200, delayMs };
    });
    return { r, seen };
  };

  it('keeps a resumed backlog to one delivery at a time when it is paused and resumed again meanwhile', async () => {
    const { r, seen } = await countingReceiver(250);
    const ep = await registerEndpoint(t, r, ['resumed.twice']);
    const pause = async (paused: boolean) => assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused })).status, 200);
    await pause(true);
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await publish(t, 'resumed.twice', { i })).id);
    await pause(false);
    await waitFor('the first on the wire', () => r.requests.length === 1);
    // Each resume would have released one more, while the first still had its end to release the next.
    for (let i = 0; i < 3; i++) {
      await pause(true);
      await pause(false);
    }
    await waitFor('the backlog sent', () => r.answered === 4);
    assert.equal(seen.most, 1, 'one release at a time');
    assert.deepEqual(r.requests.map((req) => req.id), ids, 'in the order they were published');
  });

  it('starts no second release while a manual attempt holds the delivery released first', async () => {
    // Under this suite's DELIVERY_TIMEOUT (300 ms), so the manual attempt succeeds.
    const { r, seen } = await countingReceiver(250);
    const ep = await registerEndpoint(t, r, ['resumed.manual']);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: true })).status, 200);
    const ids: string[] = [];
    const deliveries: string[] = [];
    for (let i = 0; i < 5; i++) {
      const published = await publish(t, 'resumed.manual', { i });
      ids.push(published.id);
      deliveries.push(published.deliveries[0]?.id ?? '');
    }
    const manual = admin(t, 'post', `/api/v1/deliveries/${deliveries[0]}/retry`).then((res) => res);
    await waitFor('the manual attempt on the wire', () => r.requests.length === 1);
    const pause = async (paused: boolean) => assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused })).status, 200);
    // Resuming releases the delivery on the wire; its job waits for the manual attempt. Paused and
    // resumed again meanwhile, nothing more is released: that job is still to release the next.
    await pause(false);
    await pause(true);
    await pause(false);
    assert.equal(r.requests.length, 1, 'still only the manual attempt');
    assert.equal((await manual).status, 200);
    await waitFor('the backlog sent', () => r.answered === 5);
    
    assert.equal(seen.most, 1, 'one delivery on the wire at a time');
    assert.deepEqual(r.requests.map((req) => req.id), ids, 'each once, in the order published');
  });

  it('refuses a second manual retry while the first is still under way', async () => {
    const { r } = await countingReceiver(200);
    const ep = await registerEndpoint(t, r, ['manual.twice']);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: true })).status, 200);
    const id = (await publish(t, 'manual.twice', {})).deliveries[0]?.id ?? '';
    const first = admin(t, 'post', `/api/v1/deliveries/${id}/retry`).then((res) => res);
    await waitFor('the first on the wire', () => r.requests.length === 1);
    const second = await admin(t, 'post', `/api/v1/deliveries/${id}/retry`);
    assert.equal(second.status, 409);
    assert.match(second.body.message, /an attempt of this delivery is in progress/);
    assert.equal((await first).status, 200);
    assert.equal(r.requests.length, 1, 'sent once');
  });

  it('no longer shows a parked delivery as parked once a manual attempt delivered it', async () => {
    const r = await receiver();
    const ep = await registerEndpoint(t, r, ['manual.parked']);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: true })).status, 200);
    const id = (await publish(t, 'manual.parked', {})).deliveries[0]?.id ?? '';
    assert.equal((await delivery(id)).parked, true);
    const retried = await admin(t, 'post', `/api/v1/deliveries/${id}/retry`);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.delivery.status, 'delivered');
    assert.equal(retried.body.delivery.parked, false, 'delivered, so not waiting behind the pause');
    const listed = (await admin(t, 'get', `/api/v1/webhooks/${ep.id}/deliveries?status=delivered`)).body.data as { id: string; parked: boolean }[];
    assert.deepEqual(listed.map((d) => [d.id, d.parked]), [[id, false]]);
  });

  it('releases the rest of a parked backlog when a manual retry settled the delivery released first', async () => {
    const r = await receiver(() => ({ status: 200, delayMs: 150 }));
    const ep = await registerEndpoint(t, r, ['backlog.thing']);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: true })).status, 200);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await publish(t, 'backlog.thing', { i })).id);
    const parked = (await admin(t, 'get', `/api/v1/webhooks/${ep.id}/deliveries?status=pending`)).body.data as { id: string }[];
    const oldest = parked.at(-1)?.id ?? '';
    // The manual attempt is under way when resuming releases the same delivery: its job waits for
    // the attempt, finds the delivery delivered, and releases the next.
    const manual = admin(t, 'post', `/api/v1/deliveries/${oldest}/retry`).then((res) => res);
    await waitFor('the manual attempt reaching the endpoint', () => r.requests.length === 1);
    assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ paused: false })).status, 200);
    assert.equal((await manual).status, 200);
    assert.equal((await delivery(oldest)).status, 'delivered');
    await waitFor('the rest of the backlog delivered', () => r.answered === 3);
    assert.deepEqual(r.requests.map((req) => req.id), ids, 'each event once, in the order published');
  });

  it('keeps a delivery cancelled when its endpoint is deleted while an attempt is on the wire, leaving no dead letter, health or metric series behind', async () => {
    // The last scheduled attempt fails, and the endpoint is deleted while it is held open.
    const scene = await deletedOnRequest('gone.midway', 4, (request) => ({ status: 500, body: 'down', delayMs: request === 4 ? 150 : 0 }));
    const endpointId = scene.endpointId;
    const id = (await publish(t, 'gone.midway', { n: 1 })).deliveries[0]?.id ?? '';
    for (let attempt = 1; attempt <= 3; attempt++) {
      await waitSettled(id, attempt);
      clock.advance(2 * MINUTE);
    }
    await waitSettled(id, 4);
    assert.equal(await scene.deleted, 204);
    const stored = t.service.store.deliveries.get(id);
    assert.equal(stored?.status, 'cancelled');
    assert.equal(stored?.nextAttemptAt, null);
    assert.equal(stored?.attempts, 4, 'the attempt is still recorded');
    const dead = (await admin(t, 'get', '/api/v1/dead-letters?queue=deliveries')).body.data as { delivery?: { id: string } }[];
    assert.ok(!dead.some((job) => job.delivery?.id === id), 'no dead letter for a deleted endpoint');
    const health = t.service.store.db.prepare('SELECT count(*) AS n FROM endpoint_health WHERE endpoint_id = ?').get(endpointId) as { n: number };
    assert.equal(health.n, 0, 'the deleted endpoint has no failure-monitor state again');
    const series = (await request(t.url).get('/metrics')).text.split('\n').filter((line) => !line.startsWith('#') && line.includes(endpointId));
    assert.deepEqual(series, [], 'the attempt that came back does not bring the deleted endpoint\'s series back');
  });

  it('leaves no failure-monitor state behind when the endpoint is deleted while a manual re-send of a delivered delivery is on the wire', async () => {
    // The first attempt delivers; the manual re-send is held while the endpoint is deleted, then fails.
    const scene = await deletedOnRequest('gone.resent', 2, (request) => (request === 1 ? { status: 200 } : { status: 500, body: 'down', delayMs: 150 }));
    const endpointId = scene.endpointId;
    const id = (await publish(t, 'gone.resent', { n: 1 })).deliveries[0]?.id ?? '';
    await waitSettled(id, 1);
    const retried = await admin(t, 'post', `/api/v1/deliveries/${id}/retry`);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.attempt.ok, false);
    assert.equal(await scene.deleted, 204);
    assert.equal(t.service.store.deliveries.get(id)?.status, 'delivered', 'a delivered delivery stays delivered');
    for (const table of ['endpoint_health', 'endpoint_minutes']) {
      const rows = t.service.store.db.prepare(`SELECT count(*) AS n FROM ${table} WHERE endpoint_id = ?`).get(endpointId) as { n: number };
      assert.equal(rows.n, 0, `no ${table} row for the deleted endpoint`);
    }
  });

  it('refuses a manual retry asked for once shutdown has begun cutting attempts off, with 503 and nothing sent', async () => {
    const own = await startOutboundService({ DELIVERY_TIMEOUT: '300ms' }, new TestClock());
    const r = await receiver(() => ({ status: 500, body: 'down' }));
    try {
      await registerEndpoint(own, r, ['late.retry']);
      const id = (await publish(own, 'late.retry', { n: 1 })).deliveries[0]?.id ?? '';
      await waitFor('the first attempt recorded', () => settled(own, id, 1));
      own.service.outbound.dispatcher.stopping();
      const retried = await admin(own, 'post', `/api/v1/deliveries/${id}/retry`);
      assert.equal(retried.status, 503);
      assert.equal(retried.body.error, 'shutting_down');
      assert.match(retried.body.message, /nothing was sent/);
      assert.equal(r.requests.length, 1, 'the endpoint saw only the first attempt');
      assert.equal(own.service.store.deliveries.get(id)?.attempts, 1);
    } finally {
      await own.close();
    }
  });

  it('keeps a delivered delivery delivered when a manual re-send fails, so recover does not send it again', async () => {
    let answer = 200;
    const r = await receiver(() => ({ status: answer }));
    const ep = await registerEndpoint(t, r, ['once.only']);
    const id = (await publish(t, 'once.only', { n: 1 })).deliveries[0]?.id ?? '';
    await waitSettled(id, 1);
    const deliveredAt = t.service.store.deliveries.get(id)?.deliveredAt;
    assert.ok(deliveredAt);
    answer = 503;
    const retried = await admin(t, 'post', `/api/v1/deliveries/${id}/retry`);
    assert.equal(retried.status, 200);
    assert.equal(retried.body.attempt.ok, false);
    assert.equal(retried.body.delivery.status, 'delivered');
    assert.equal(t.service.store.deliveries.get(id)?.deliveredAt, deliveredAt, 'delivered_at is when it was delivered');
    const recovered = await admin(t, 'post', `/api/v1/webhooks/${ep.id}/recover`).send({ since: new Date(clock.now() - 60 * MINUTE).toISOString() });
    assert.equal(recovered.body.requeued, 0);
    assert.equal(r.requests.length, 2);
  });

  it('records a scheduled attempt after one recorded meanwhile, from the delivery as it then stood', async () => {
    const store = t.service.store;
    let endpointId = '';
    // While the scheduled attempt is on the wire, another attempt of the same delivery gets
    // recorded (as a manual retry finishing first would): the scheduled one must not be lost.
    const r = await receiver(() => {
      const [current] = store.deliveries.list({ endpointId, limit: 1 });
      assert.ok(current);
      store.transaction(() => store.deliveries.recordAttempt(current, {
        trigger: 'manual', at: clock.now(), durationMs: 1, ok: false, statusCode: 503, reason: 'http_5xx', error: 'HTTP 503', responseBody: null,
      }, { status: 'pending', scheduleStep: current.scheduleStep, nextAttemptAt: current.nextAttemptAt }));
      return { status: 200, body: 'ok' };
    });
    endpointId = (await registerEndpoint(t, r, ['race.thing'])).id;
    const published = await publish(t, 'race.thing', { n: 1 });
    const id = published.deliveries[0]?.id ?? '';
    await waitSettled(id, 2);
    const shown = await delivery(id);
    assert.equal(shown.status, 'delivered');
    assert.deepEqual(shown.attempt_log.map((a) => [a.number, a.trigger, a.ok]), [[1, 'manual', false], [2, 'scheduled', true]]);
    const stale = store.deliveries.get(id);
    assert.ok(stale);
    assert.equal(store.transaction(() => store.deliveries.recordAttempt({ ...stale, attempts: 1 }, {
      trigger: 'manual', at: clock.now(), durationMs: 1, ok: true, statusCode: 200, reason: null, error: null, responseBody: null,
    }, { status: 'delivered', scheduleStep: 1, nextAttemptAt: null })), null, 'an attempt against a delivery read before a change writes nothing');
    assert.equal((await delivery(id)).attempts, 2);
  });

  it('signs with both secrets for 24 hours after a rotation', async () => {
    const r = await receiver();
    const ep = await registerEndpoint(t, r, ['rotate.thing']);
    const rotated = await admin(t, 'post', `/api/v1/webhooks/${ep.id}/rotate-secret`);
    assert.equal(rotated.status, 200);
    const next = rotated.body.secret as string;
    assert.notEqual(next, ep.secret);
    await publish(t, 'rotate.thing', {});
    await waitFor('delivered', () => r.requests.length === 1);
    const got = r.requests[0];
    assert.ok(got);
    for (const secret of [ep.secret, next]) {
      assert.doesNotThrow(() => new Webhook(secret).verify(got.body, got.headers as Record<string, string>));
    }
    clock.advance(24 * 60 * MINUTE + 1);
    await publish(t, 'rotate.thing', {});
    await waitFor('delivered again', () => r.requests.length === 2);
    const later = r.requests[1];
    assert.ok(later);
    assert.doesNotThrow(() => new Webhook(next).verify(later.body, later.headers as Record<string, string>));
    assert.throws(() => new Webhook(ep.secret).verify(later.body, later.headers as Record<string, string>));
  });

  it('keeps signing with a secret through its own 24 hours when a second rotation follows within them', async () => {
    const r = await receiver();
    const ep = await registerEndpoint(t, r, ['rerotate.thing']);
    const first = ep.secret as string;
    const firstExpires = clock.now() + 24 * 60 * MINUTE;
    const second = (await admin(t, 'post', `/api/v1/webhooks/${ep.id}/rotate-secret`)).body.secret as string;
    clock.advance(60 * MINUTE);
    const rotated = await admin(t, 'post', `/api/v1/webhooks/${ep.id}/rotate-secret`);
    assert.equal(rotated.status, 200);
    const third = rotated.body.secret as string;
    assert.deepEqual(rotated.body.earlier_secrets_expire_at, [new Date(firstExpires).toISOString()], 'the first secret is listed with its own expiry');
    assert.equal(rotated.body.previous_secret_expires_at, new Date(clock.now() + 24 * 60 * MINUTE).toISOString());
    const verifies = (secret: string, message: { body: string; headers: Record<string, unknown> }) => {
      try {
        new Webhook(secret).verify(message.body, message.headers as Record<string, string>);
        return true;
      } catch {
        return false;
      }
    };

    await publish(t, 'rerotate.thing', {});
    await waitFor('delivered', () => r.requests.length === 1);
    const got = r.requests[0];
    assert.ok(got);
    assert.deepEqual([first, second, third].map((secret) => verifies(secret, got)), [true, true, true], 'a receiver still on the first secret keeps verifying');

    // 24 hours after the first rotation, to the millisecond: the first secret's grace is over, the second's is not.
    clock.advance(23 * 60 * MINUTE);
    assert.equal(clock.now(), firstExpires);
    await publish(t, 'rerotate.thing', {});
    await waitFor('delivered again', () => r.requests.length === 2);
    const later = r.requests[1];
    assert.ok(later);
    assert.deepEqual([first, second, third].map((secret) => verifies(secret, later)), [false, true, true]);

    // Rotating again and again signs with at most four replaced secrets beside the current one.
    for (let i = 0; i < 6; i++) await admin(t, 'post', `/api/v1/webhooks/${ep.id}/rotate-secret`);
    await publish(t, 'rerotate.thing', {});
    await waitFor('delivered a third time', () => r.requests.length === 3);
    const signatures = String(r.requests[2]?.headers['webhook-signature']).split(' ');
    assert.equal(signatures.length, 5);
  });

  it('refuses an endpoint URL whose user-info does not percent-decode, which could never be sent to', async () => {
    const r = await receiver(() => ({ status: 200 }));
    const bad = `http://user:%ZZ@127.0.0.1:${r.port}/hook`;
    const created = await admin(t, 'post', '/api/v1/webhooks').send({ url: bad, events: ['*'] });
    assert.equal(created.status, 400);
    assert.equal(created.body.details[0].field, 'url');
    assert.match(created.body.details[0].problem, /not valid percent-encoding/);
    const ep = await registerEndpoint(t, r, ['never.sent']);
    const patched = await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ url: bad });
    assert.equal(patched.status, 400);
    assert.equal(patched.body.details[0].field, 'url');
  });

  it('sends a signed test event on request and returns the result', async () => {
    const r = await receiver(() => ({ status: 202, body: 'thanks' }));
    const ep = await registerEndpoint(t, r, ['never.sent']);
    const res = await admin(t, 'post', `/api/v1/webhooks/${ep.id}/test`);
    assert.equal(res.status, 200);
    assert.equal(res.body.ok, true);
    assert.equal(res.body.status_code, 202);
    assert.equal(res.body.response_body, 'thanks');
    assert.equal(r.requests[0]?.verified, true);
    assert.equal(JSON.parse(r.requests[0]?.body ?? '{}').type, 'webhook.test');
  });
});

describe('outbound destinations', () => {
  it('refuses private and loopback destinations, checked on the resolved address, unless allowed', async () => {
    const r = await Receiver.start();
    const t = await startOutboundService({ ALLOW_PRIVATE_DESTINATIONS: 'false' });
    try {
      const literal = await admin(t, 'post', '/api/v1/webhooks').send({ url: r.url, events: ['*'] });
      assert.equal(literal.status, 400);
      assert.equal(literal.body.details[0].field, 'url');

      // A name, so registration cannot tell; the connection's lookup refuses what it resolves to.
      const named = await admin(t, 'post', '/api/v1/webhooks').send({ url: `http://localhost:${r.port}/hook`, events: ['*'] });
      assert.equal(named.status, 201);
      const id = (await publish(t, 'ssrf.thing', {})).deliveries[0]?.id ?? '';
      await waitFor('attempt recorded', () => (t.service.store.deliveries.get(id)?.attempts ?? 0) >= 1);
      const attempt = t.service.store.deliveries.attempts(id)[0];
      assert.equal(attempt?.reason, 'connection');
      assert.match(attempt?.error ?? '', /refused to connect to localhost/);
      const test = await admin(t, 'post', `/api/v1/webhooks/${named.body.id as string}/test`);
      assert.equal(test.body.ok, false);
      assert.equal(r.requests.length, 0, 'nothing reached the loopback receiver');
    } finally {
      await t.close();
      await r.close();
    }
  });

  it('does not follow redirects, and shows their Location without credentials', async () => {
    const target = await Receiver.start();
    const secretLocation = target.url.replace('http://', 'http://user:pa55word@') + '?token=s3cret-api-key';
    const r = await Receiver.start(() => ({ status: 307, headers: { location: secretLocation } }));
    const t = await startOutboundService();
    try {
      await registerEndpoint(t, r, ['*']);
      const id = (await publish(t, 'moved.thing', {})).deliveries[0]?.id ?? '';
      await waitFor('attempt recorded', () => (t.service.store.deliveries.get(id)?.attempts ?? 0) >= 1);
      const attempt = t.service.store.deliveries.attempts(id)[0];
      assert.equal(attempt?.statusCode, 307);
      assert.equal(attempt?.error, `HTTP 307 (redirect to ${target.url} not followed)`);
      assert.equal(target.requests.length, 0);
    } finally {
      await t.close();
      await r.close();
      await target.close();
    }
  });

  it('holds a hanging endpoint to a few slots, so other endpoints\' deliveries do not wait behind its backlog', async () => {
    const hanging = await Receiver.start(() => 'hang');
    const healthy = await Receiver.start();
    // 8 slots, a failing endpoint gets 1 of them. 20 deliveries to the hanging endpoint come first:
    // the first 8 time out together; then, without the limit, the next 8 would take every slot
    // again and the healthy endpoint's delivery would wait for that second round of timeouts.
    const t = await startOutboundService({ DELIVERY_CONCURRENCY: '8', DELIVERY_TIMEOUT: '1500ms', RETRY_SCHEDULE: 'none' });
    try {
      await registerEndpoint(t, hanging, ['stuck.*']);
      await registerEndpoint(t, healthy, ['fine.*']);
      const stuck: string[] = [];
      for (let i = 0; i < 20; i++) stuck.push((await publish(t, 'stuck.thing', { i })).deliveries[0]?.id ?? '');
      const fine = (await publish(t, 'fine.thing', {})).deliveries[0]?.id ?? '';
      await waitFor('the healthy endpoint\'s delivery', () => t.service.store.deliveries.get(fine)?.status === 'delivered', 30_000);
      const attempted = stuck.filter((id) => (t.service.store.deliveries.get(id)?.attempts ?? 0) > 0).length;
      assert.ok(attempted <= 8, `delivered before a second round of the hanging endpoint's attempts timed out (${attempted} recorded)`);
      // The rest wait parked, in order, without a job: nothing is claimed again and again, no attempt is used.
      const parked = stuck.map((id) => t.service.store.deliveries.get(id)).filter((d) => d?.parked);
      // 12 wait beyond the first round; the one slot left to the endpoint keeps releasing them, one per timeout.
      assert.ok(parked.length >= 8, `${parked.length} parked`);
      assert.ok(parked.every((d) => d?.jobId === null && d.attempts === 0));
      const gauge = /^webhook_parked_deliveries (\d+)$/m.exec(await (await fetch(`${t.url}/metrics`)).text())?.[1];
      assert.ok(Number(gauge) >= 1, `webhook_parked_deliveries ${gauge}`);
      // Once the endpoint answers again, each attempt that ends releases the next: none is left behind.
      // Then the backlog ramps back up (two released for each that ends) instead of trickling out one at a time.
      let answering = 0;
      let most = 0;
      hanging.behaviour = () => {
        answering += 1;
        most = Math.max(most, answering);
        setTimeout(() => { answering -= 1; }, 250);
        return { status: 200, body: 'ok', delayMs: 250 };
      };
      await waitFor('the parked deliveries sent', () => stuck.every((id) => t.service.store.deliveries.get(id)?.status !== 'pending'), 30_000);
      assert.ok(most >= 3, `at most ${most} at once after it recovered`);
      const failed = stuck.filter((id) => t.service.store.deliveries.get(id)?.status === 'failed').length;
      // The first round of 8 and the one attempt still hanging when it recovered timed out.
      assert.ok(failed <= 9, `${failed} failed`);
      assert.equal(stuck.filter((id) => t.service.store.deliveries.get(id)?.status === 'delivered').length, 20 - failed);
    } finally {
      await t.close();
      await hanging.close();
      await healthy.close();
    }
  });

  it('holds an endpoint whose last attempt failed before a restart to its few slots from the start', async () => {
    const r = await Receiver.start(() => ({ status: 500, body: 'down' }));
    const env = { DATA_DIR: tempDir('hookwatch-failing-restart-'), DELIVERY_CONCURRENCY: '8', DELIVERY_TIMEOUT: '1500ms', RETRY_SCHEDULE: 'none' };
    let t = await startOutboundService(env);
    try {
      await registerEndpoint(t, r, ['down.*']);
      const first = (await publish(t, 'down.thing', {})).deliveries[0]?.id ?? '';
      await waitFor('the failed attempt', () => t.service.store.deliveries.get(first)?.status === 'failed');
      await t.close();
      r.behaviour = () => 'hang';
      t = await startOutboundService(env);
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) ids.push((await publish(t, 'down.thing', { i })).deliveries[0]?.id ?? '');
      // Without the saved state the five would all be on the wire until their timeouts.
      const parked = () => ids.filter((id) => t.service.store.deliveries.get(id)?.parked).length;
      await waitFor('four parked behind the one slot on the wire', () => parked() === 4 && r.held === 1, 5_000)
        .catch((error: Error) => assert.fail(`${error.message}: ${parked()} parked, ${r.held} on the wire`));
    } finally {
      await t.close();
      await r.close();
    }
  });

  it('keeps a failing endpoint\'s parked deliveries while a 410 has it disabled, and sends them once re-enabled', async () => {
    const r = await Receiver.start(() => ({ status: 500, body: 'down' }));
    const t = await startOutboundService({ DELIVERY_CONCURRENCY: '8', RETRY_SCHEDULE: 'none' });
    try {
      const ep = await registerEndpoint(t, r, ['gone.*']);
      const first = (await publish(t, 'gone.thing', {})).deliveries[0]?.id ?? '';
      await waitFor('the failed attempt', () => t.service.store.deliveries.get(first)?.status === 'failed');
      r.behaviour = () => ({ status: 410, body: 'gone', delayMs: 500 });
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push((await publish(t, 'gone.thing', { i })).deliveries[0]?.id ?? '');
      await waitFor('disabled by the 410', () => t.service.store.endpoints.get(ep.id)?.disabledAt !== null);
      const waiting = () => ids.map((id) => t.service.store.deliveries.get(id)).filter((d) => d?.status === 'pending' && d.parked);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(waiting().length, 3, 'the three behind the one slot stay parked, neither sent nor failed');
      r.behaviour = () => ({ status: 200, body: 'ok' });
      assert.equal((await admin(t, 'patch', `/api/v1/webhooks/${ep.id}`).send({ disabled: false })).status, 200);
      await waitFor('the parked three delivered', () => ids.filter((id) => t.service.store.deliveries.get(id)?.status === 'delivered').length === 3);
    } finally {
      await t.close();
      await r.close();
    }
  });

  it('has a connection for every delivery slot, so no attempt waits for a socket inside its deadline', async () => {
    // 80 answers held 2 s each against a 3 s deadline: an attempt queued behind 64 pooled
    // sockets would wait 2 s for one and then time out.
    const r = await Receiver.start(() => ({ status: 200, body: 'ok', delayMs: 2000 }));
    const t = await startOutboundService({ DELIVERY_CONCURRENCY: '100', DELIVERY_TIMEOUT: '3s' });
    try {
      await registerEndpoint(t, r, ['wide.thing']);
      const published = await Promise.all(Array.from({ length: 80 }, (_, i) => publish(t, 'wide.thing', { i })));
      const ids = published.map((p) => p.deliveries[0]?.id ?? '');
      await waitFor('80 first attempts recorded', () => ids.every((id) => (t.service.store.deliveries.get(id)?.attempts ?? 0) >= 1));
      const failed = ids.map((id) => t.service.store.deliveries.attempts(id)[0]).filter((attempt) => !attempt?.ok);
      assert.deepEqual(failed.map((attempt) => attempt?.error), []);
      assert.equal(r.answered, 80);
    } finally {
      await t.close();
      await r.close();
    }
  });
});
