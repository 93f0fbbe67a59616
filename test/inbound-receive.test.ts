import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { gzipSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { ADMIN_TOKEN, startTestService, waitFor, type TestService } from './helpers/service.js';
import { standardEvent, standardHeaders, stripeEvent, stripeHeaders, uniqueId } from './helpers/signing.js';
import { StandardWebhooksVerifier } from '../src/inbound/verifiers/standard-webhooks.js';

const ROTATED_SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';

describe('receiving webhooks', () => {
  let t: TestService;
  before(async () => {
    t = await startTestService({ BODY_LIMIT: '4kb', WEBHOOK_SECRET_ROTATING: `whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw ${ROTATED_SECRET}` });
  });
  after(() => t.close());

  const admin = (path: string) => request(t.url).get(path).set('authorization', `Bearer ${ADMIN_TOKEN}`);

  it('accepts a Stripe event signed with the SDK test helper, processes it once and shows it in the admin API', async () => {
    const { id, body } = stripeEvent('invoice.paid');
    const res = await request(t.url).post('/webhooks/stripe').set(stripeHeaders(body)).send(body);
    assert.equal(res.status, 202);
    assert.equal(res.body.duplicate, false);
    assert.match(res.body.id, /^evt_[0-9a-f]{32}$/);
    const stored = await waitFor('processing', async () => {
      const shown = await admin(`/api/v1/events/${res.body.id}`);
      return shown.body.status === 'processed' ? shown.body : undefined;
    });
    assert.equal(stored.event_id, id);
    assert.equal(stored.type, 'invoice.paid');
    assert.equal(stored.source, 'stripe');
    assert.equal(stored.attempts, 1);
    assert.equal((stored.payload as { id: string }).id, id);
    const list = await admin('/api/v1/events?source=stripe&type=invoice.paid');
    assert.equal(list.status, 200);
    assert.ok(list.body.data.some((e: { id: string }) => e.id === res.body.id));
  });

  it('answers a duplicate Stripe delivery with 200 and duplicate: true, and stores it once', async () => {
    const { id, body } = stripeEvent();
    const first = await request(t.url).post('/webhooks/stripe').set(stripeHeaders(body)).send(body);
    const second = await request(t.url).post('/webhooks/stripe').set(stripeHeaders(body)).send(body);
    assert.equal(first.status, 202);
    assert.equal(second.status, 200);
    assert.deepEqual(second.body, { received: true, duplicate: true, id: first.body.id });
    const rows = t.service.store.db.prepare('SELECT count(*) AS n FROM events WHERE event_id = ?').get(id) as { n: number };
    assert.equal(rows.n, 1);
  });

  it('rejects a tampered Stripe body as a signature mismatch and never stores it', async () => {
    const { id, body } = stripeEvent();
    const headers = stripeHeaders(body);
    const tampered = body.replace('"amount":2000', '"amount":1');
    const res = await request(t.url).post('/webhooks/stripe').set(headers).send(tampered);
    assert.equal(res.status, 400);
    assert.equal(res.body.error, 'invalid_signature');
    assert.deepEqual(res.body.details, [{ reason: 'mismatch' }]);
    const rows = t.service.store.db.prepare('SELECT count(*) AS n FROM events WHERE event_id = ?').get(id) as { n: number };
    assert.equal(rows.n, 0);
  });

  it('rejects a stale Stripe signature (older than the 300 s tolerance) as expired', async () => {
    const { body } = stripeEvent();
    const res = await request(t.url).post('/webhooks/stripe').set(stripeHeaders(body, { timestamp: Math.floor(Date.now() / 1000) - 301 })).send(body);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.details, [{ reason: 'expired' }]);
  });

  it('rejects a Stripe signature dated past the tolerance in the future as expired, and accepts one just within it', async () => {
    // Signed for two days ahead, a captured request would outlive the idempotency key that stops its replay.
    const ahead = stripeEvent();
    const res = await request(t.url).post('/webhooks/stripe').set(stripeHeaders(ahead.body, { timestamp: Math.floor(Date.now() / 1000) + 2 * 86_400 })).send(ahead.body);
    assert.equal(res.status, 400);
    assert.deepEqual(res.body.details, [{ reason: 'expired' }]);
    assert.match(res.body.message, /too far in the future/);
    const rows = t.service.store.db.prepare('SELECT count(*) AS n FROM events WHERE event_id = ?').get(ahead.id) as { n: number };
    assert.equal(rows.n, 0, 'nothing stored');
    const skewed = stripeEvent();
    const ok = await request(t.url).post('/webhooks/stripe').set(stripeHeaders(skewed.body, { timestamp: Math.floor(Date.now() / 1000) + 240 })).send(skewed.body);
    assert.equal(ok.status, 202, 'a sender clock a few minutes ahead is tolerated');
  });

  it('takes a webhook sent with an absolute-form request target, as a forward proxy sends it', async () => {
    const { id, body } = stripeEvent();
    const { port } = new URL(t.url);
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      // path: the whole URL, so the request line reads POST http://127.0.0.1:PORT/webhooks/stripe HTTP/1.1.
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: `${t.url}/webhooks/stripe`, headers: { ...stripeHeaders(body), 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => { text += chunk.toString(); });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    assert.equal(answer.status, 202, answer.body);
    const rows = t.service.store.db.prepare('SELECT count(*) AS n FROM events WHERE event_id = ?').get(id) as { n: number };
    assert.equal(rows.n, 1);
  });

  it('names missing and malformed Stripe signature headers', async () => {
    const { body } = stripeEvent();
    const missing = await request(t.url).post('/webhooks/stripe').set('content-type', 'application/json').send(body);
    assert.equal(missing.status, 400);
    assert.deepEqual(missing.body.details, [{ reason: 'missing' }]);
    const malformed = await request(t.url).post('/webhooks/stripe').set({ 'content-type': 'application/json', 'stripe-signature': 'garbage' }).send(body);
    assert.equal(malformed.status, 400);
    assert.deepEqual(malformed.body.details, [{ reason: 'malformed' }]);
  });

  it('counts signature failures per source and reason', async () => {
    const text = (await request(t.url).get('/metrics')).text;
    const value = (reason: string) => Number(new RegExp(`webhook_signature_failures_total\\{source="stripe",reason="${reason}"\\} (\\d+)`).exec(text)?.[1]);
    assert.ok(value('mismatch') >= 1);
    assert.ok(value('expired') >= 1);
    assert.ok(value('missing') >= 1);
    assert.ok(value('malformed') >= 1);
  });

  it('accepts a Standard Webhooks event and uses webhook-id as the idempotency key', async () => {
    const { id, body } = standardEvent('order.created');
    const first = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
    assert.equal(first.status, 202);
    const again = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
  });

  it('accepts a header with several signatures when one matches, and either secret during a rotation', async () => {
    const { id, body } = standardEvent();
    const headers = standardHeaders(id, body);
    headers['webhook-signature'] = `v1,bm90LXRoZS1yaWdodC1zaWduYXR1cmUtYXQtYWxsLi4u ${headers['webhook-signature']}`;
    const res = await request(t.url).post('/webhooks/demo').set(headers).send(body);
    assert.equal(res.status, 202);
    const rotated = standardEvent();
    const withNewKey = await request(t.url).post('/webhooks/rotating').set(standardHeaders(rotated.id, rotated.body, { secret: ROTATED_SECRET })).send(rotated.body);
    assert.equal(withNewKey.status, 202);
    const old = standardEvent();
    const withOldKey = await request(t.url).post('/webhooks/rotating').set(standardHeaders(old.id, old.body)).send(old.body);
    assert.equal(withOldKey.status, 202);
  });

  it('rejects Standard Webhooks timestamps too old or too far in the future, and wrong secrets', async () => {
    const { id, body } = standardEvent();
    const old = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body, { timestamp: new Date(Date.now() - 10 * 60_000) })).send(body);
    assert.deepEqual([old.status, old.body.details], [400, [{ reason: 'expired' }]]);
    const future = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body, { timestamp: new Date(Date.now() + 10 * 60_000) })).send(body);
    assert.deepEqual([future.status, future.body.details], [400, [{ reason: 'expired' }]]);
    const wrong = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body, { secret: ROTATED_SECRET })).send(body);
    assert.deepEqual([wrong.status, wrong.body.details], [400, [{ reason: 'mismatch' }]]);
    const missing = await request(t.url).post('/webhooks/demo').set({ 'content-type': 'application/json', 'webhook-id': id }).send(body);
    assert.deepEqual([missing.status, missing.body.details], [400, [{ reason: 'missing' }]]);
    const malformed = await request(t.url).post('/webhooks/demo').set({ ...standardHeaders(id, body), 'webhook-signature': 'v2 nonsense' }).send(body);
    assert.deepEqual([malformed.status, malformed.body.details], [400, [{ reason: 'malformed' }]]);
    // An unsigned request is refused for its signature before anything else about it is judged.
    const longId = 'x'.repeat(300);
    const forgedLong = await request(t.url).post('/webhooks/demo').set({ ...standardHeaders(longId, body), 'webhook-signature': 'v1,AAAA' }).send(body);
    assert.deepEqual([forgedLong.status, forgedLong.body.details], [400, [{ reason: 'mismatch' }]]);
    const signedLong = await request(t.url).post('/webhooks/demo').set(standardHeaders(longId, body)).send(body);
    assert.deepEqual([signedLong.status, signedLong.body.error], [400, 'invalid_event_id']);
    // None of them reached processing.
    const rows = t.service.store.db.prepare('SELECT count(*) AS n FROM events WHERE event_id = ?').get(id) as { n: number };
    assert.equal(rows.n, 0);
  });

  it('takes a gzip-compressed body, refuses other encodings and bodies that do not inflate, and keeps the connection usable', async () => {
    // One socket for every request, so a request left half-read would stall the next one.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const post = (headers: Record<string, string>, body: Buffer) => new Promise<{ status: number; body: { error?: string; received?: boolean } }>((resolve, reject) => {
      const req = http.request(`${t.url}/webhooks/demo`, { method: 'POST', agent, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as { error?: string } }));
      });
      req.on('error', reject);
      req.setTimeout(5_000, () => req.destroy(new Error('no answer on the kept-alive connection')));
      req.end(body);
    });
    try {
      const { id, body } = standardEvent();
      const ok = await post({ ...standardHeaders(id, body), 'content-encoding': 'gzip' }, gzipSync(body));
      assert.deepEqual([ok.status, ok.body.received], [202, true]);

      const big = JSON.stringify({ type: 'user.created', data: 'x'.repeat(5000) });
      const bomb = await post({ ...standardHeaders(id, big), 'content-encoding': 'gzip' }, gzipSync(big));
      assert.deepEqual([bomb.status, bomb.body.error], [413, 'payload_too_large'], 'the limit applies to the inflated body');

      const other = standardEvent();
      const broken = await post({ ...standardHeaders(other.id, other.body), 'content-encoding': 'gzip' }, Buffer.from(other.body));
      assert.deepEqual([broken.status, broken.body.error], [400, 'malformed_body']);

      const zstd = await post({ ...standardHeaders(other.id, other.body), 'content-encoding': 'zstd' }, Buffer.from(other.body));
      assert.deepEqual([zstd.status, zstd.body.error], [415, 'unsupported_encoding']);

      const after = await post(standardHeaders(other.id, other.body), Buffer.from(other.body));
      assert.equal(after.status, 202, 'the same connection still answers');
    } finally {
      agent.destroy();
    }
  });

  it('answers 404 with a JSON error for an unknown source', async () => {
    const res = await request(t.url).post('/webhooks/nobody').set('content-type', 'application/json').send('{}');
    assert.equal(res.status, 404);
    assert.equal(res.body.error, 'unknown_source');
  });

  it('answers bad input with a 4xx JSON error, never a 500', async () => {
    const { id, body } = standardEvent();
    const wrongType = await request(t.url).post('/webhooks/demo').set({ ...standardHeaders(id, body), 'content-type': 'text/plain' }).send(body);
    assert.deepEqual([wrongType.status, wrongType.body.error], [415, 'unsupported_media_type']);

    const empty = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, ''));
    assert.deepEqual([empty.status, empty.body.error], [400, 'empty_body']);

    const notJson = '{"type": "user.created",';
    const malformed = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, notJson)).send(notJson);
    assert.deepEqual([malformed.status, malformed.body.error], [400, 'malformed_json']);

    const big = JSON.stringify({ type: 'user.created', data: 'x'.repeat(5000) });
    const tooBig = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, big)).send(big);
    assert.deepEqual([tooBig.status, tooBig.body.error], [413, 'payload_too_large']);

    const noType = JSON.stringify({ data: {} });
    const missingType = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, noType)).send(noType);
    assert.deepEqual([missingType.status, missingType.body.error], [400, 'missing_event_type']);

    const noId = JSON.stringify({ object: 'event', type: 'charge.succeeded' });
    const missingId = await request(t.url).post('/webhooks/stripe').set(stripeHeaders(noId)).send(noId);
    assert.deepEqual([missingId.status, missingId.body.error], [400, 'missing_event_id']);

    const array = '[1,2]';
    const notObject = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, array)).send(array);
    assert.deepEqual([notObject.status, notObject.body.error], [400, 'invalid_payload']);

    const text = (await request(t.url).get('/metrics')).text;
    assert.match(text, /webhook_requests_total\{source="demo",status="413"\} [1-9]/);
    assert.match(text, /webhook_requests_total\{source="demo",status="415"\} [1-9]/);
    assert.match(text, /webhook_errors_total\{source="demo",type="bad_request"\} ([5-9]|[1-9]\d+)\n/);
    assert.match(text, /webhook_requests_total\{source="demo",status="500"\} 0\n/);
    assert.doesNotMatch(text, /status="500"\} [1-9]/);
  });

  it('takes X-Request-ID from the request, echoes it, logs it and stores it with the job', async () => {
    const requestId = uniqueId('req');
    const { id, body } = standardEvent();
    const res = await request(t.url).post('/webhooks/demo').set({ ...standardHeaders(id, body), 'x-request-id': requestId }).send(body);
    assert.equal(res.headers['x-request-id'], requestId);
    const processed = await waitFor('processed log line', () => t.logs.find('event processed').find((line) => line.event_id === id));
    assert.equal(processed.request_id, requestId);
    const received = t.logs.find('event received').find((line) => line.event_id === id);
    assert.equal(received?.request_id, requestId);
    const event = t.service.store.events.get(res.body.id);
    assert.equal(event?.requestId, requestId);

    // A refusal's line names the request too, and the event once its signature held.
    const refusedId = uniqueId('req');
    const forged = await request(t.url).post('/webhooks/demo').set({ ...standardHeaders(id, body), 'webhook-signature': 'v1,AAAA', 'x-request-id': refusedId }).send(body);
    assert.equal(forged.status, 400);
    const refused = t.logs.find('webhook rejected').find((line) => line.request_id === refusedId);
    assert.deepEqual([refused?.source, refused?.error, refused?.event_id], ['demo', 'invalid_signature', undefined]);

    const generated = await request(t.url).post('/webhooks/nobody').set('content-type', 'application/json').send('{}');
    assert.match(generated.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
    const unsafe = await request(t.url).get('/health').set('x-request-id', 'bad id {"level":"error"}');
    assert.match(unsafe.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
  });

  it('never logs secrets or signature headers', () => {
    const all = t.logs.raw.join('\n');
    assert.doesNotMatch(all, /whsec_/);
    assert.doesNotMatch(all, /v1,[A-Za-z0-9+/]{20,}/);
    assert.doesNotMatch(all, new RegExp(ADMIN_TOKEN));
  });
});

describe('rate limiting', () => {
  let t: TestService;
  before(async () => {
    t = await startTestService({ RATE_LIMIT_MAX: '3', RATE_LIMIT_WINDOW: '60s' });
  });
  after(() => t.close());

  it('refuses requests over the per-source limit with 429 and Retry-After, and counts them', async () => {
    // Forged requests are refused on their signature and do not use up the sender's budget.
    for (let i = 0; i < 5; i++) {
      const { id, body } = standardEvent();
      const forged = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body, { secret: ROTATED_SECRET })).send(body);
      assert.equal(forged.status, 400);
      assert.equal(forged.body.error, 'invalid_signature');
    }
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    for (let i = 0; i < 5; i++) {
      const { id, body } = standardEvent();
      const res = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
      statuses.push(res.status);
      if (res.status === 429) {
        retryAfter = res.headers['retry-after'];
        assert.equal(res.body.error, 'rate_limited');
      }
    }
    assert.deepEqual(statuses, [202, 202, 202, 429, 429]);
    assert.ok(Number(retryAfter) >= 1 && Number(retryAfter) <= 60, `Retry-After ${retryAfter}`);
    // The limit is per source: stripe still has its own budget.
    const { body } = stripeEvent();
    const other = await request(t.url).post('/webhooks/stripe').set(stripeHeaders(body)).send(body);
    assert.equal(other.status, 202);
    const text = (await request(t.url).get('/metrics')).text;
    assert.match(text, /webhook_rate_limited_total\{source="demo"\} 2\b/);
    assert.match(text, /webhook_requests_total\{source="demo",status="429"\} 2\b/);
  });
});

describe('the Standard Webhooks verifier', () => {
  it('cannot be built without a secret: it would have nothing to check a signature against', () => {
    assert.throws(() => new StandardWebhooksVerifier([]), /at least one secret/);
  });
});

describe('bodies arriving at once', () => {
  let t: TestService;
  before(async () => { t = await startTestService(); });
  after(() => t.close());

  it('hold at most 64 × BODY_LIMIT in memory: past it a body is refused with 503, and the budget comes back', async () => {
    const { id, body } = standardEvent();
    // A kilobyte of gzip that inflates to just under 1 MiB, sent without its last bytes: each one
    // holds its inflated body for as long as the connection stays open.
    const inflated = gzipSync(Buffer.concat([Buffer.from(body.slice(0, -1)), Buffer.alloc(1024 * 1024 - body.length - 16, 0x20), Buffer.from('}')]));
    const { port } = new URL(t.url);
    const sockets: net.Socket[] = [];
    const answers: string[] = [];
    for (let i = 0; i < 72; i++) {
      const socket = net.connect(Number(port), '127.0.0.1');
      sockets.push(socket);
      socket.on('data', (chunk) => answers.push(chunk.toString()));
      socket.on('error', () => undefined);
      const headers = Object.entries({ ...standardHeaders(id, body), 'content-encoding': 'gzip', 'content-length': String(inflated.length) }).map(([k, v]) => `${k}: ${v}`).join('\r\n');
      socket.write(`POST /webhooks/demo HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n\r\n`);
      socket.write(inflated.subarray(0, inflated.length - 8));
    }
    try {
      await waitFor('a body refused for the budget', () => answers.some((a) => a.startsWith('HTTP/1.1 503') && a.includes('server_busy')), 20_000);
    } finally {
      for (const socket of sockets) socket.destroy();
    }
    // Once those connections are gone, their bytes are given back: a compressed body (the kind
    // the budget counts) that inflates to half a megabyte, more than any slack left, is taken again.
    await waitFor('a new compressed event accepted', async () => {
      const event = standardEvent();
      const padded = `${event.body.slice(0, -1)}${' '.repeat(512 * 1024)}}`;
      const res = await fetch(`${t.url}/webhooks/demo`, { method: 'POST', headers: { ...standardHeaders(event.id, padded), 'content-encoding': 'gzip' }, body: gzipSync(padded) });
      await res.arrayBuffer();
      return res.status === 202;
    });
  });
});
