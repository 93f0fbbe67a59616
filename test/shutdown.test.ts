import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { spawnService } from './helpers/child.js';
import { ADMIN_TOKEN, DEMO_SECRET, tempDir, waitFor } from './helpers/service.js';
import { Receiver, type Behaviour } from './helpers/outbound-harness.js';
import { standardEvent, standardHeaders } from './helpers/signing.js';

/** A Receiver answering as `behaviour` says, with the settings and admin client the delivery cases share. */
async function deliveryScene(prefix: string, behaviour: Behaviour) {
  const receiver = await Receiver.start(behaviour);
  const env = { DATA_DIR: path.join(tempDir(prefix), 'data'), ADMIN_TOKEN, ALLOW_PRIVATE_DESTINATIONS: 'true', SHUTDOWN_TIMEOUT: '1s', DELIVERY_TIMEOUT: '30s' };
  const admin = (base: string, method: string, route: string, body?: unknown) =>
    fetch(`${base}${route}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  /** Registers the receiver for `type` and publishes one event; resolves once its first attempt is recorded (as failed, when the behaviour answers it so). */
  const deliveredOnce = async (base: string, type: string): Promise<{ endpointId: string; deliveryId: string }> => {
    const created = await admin(base, 'POST', '/api/v1/webhooks', { url: receiver.url, events: [type] });
    assert.equal(created.status, 201);
    const endpointId = (await created.json() as { id: string }).id;
    const published = await (await admin(base, 'POST', '/api/v1/events', { type, data: { n: 1 } })).json() as { deliveries: { id: string }[] };
    const deliveryId = published.deliveries[0]?.id ?? '';
    await waitFor('the first attempt recorded', async () => {
      const shown = await (await admin(base, 'GET', `/api/v1/deliveries/${deliveryId}`)).json() as { attempts: number };
      return shown.attempts === 1;
    });
    return { endpointId, deliveryId };
  };
  return { receiver, url: receiver.url, env, admin, deliveredOnce };
}

describe('graceful shutdown', () => {
  it('on SIGTERM stops accepting, lets running jobs finish, and leaves the rest for the next start', async () => {
    const dir = tempDir('hookwatch-term-');
    const recordDb = path.join(dir, 'recorded.db');
    const env = {
      DATA_DIR: path.join(dir, 'data'), ADMIN_TOKEN, WEBHOOK_SECRET_DEMO: DEMO_SECRET,
      HANDLERS_MODULE: 'test/fixtures/recording-handlers.ts', RECORD_DB: recordDb, HANDLER_DELAY_MS: '400',
      WORKER_CONCURRENCY: '2', SHUTDOWN_TIMEOUT: '5s', JOB_POLL_INTERVAL: '50ms',
    };
    const first = await spawnService(env);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const { id, body } = standardEvent('order.created');
      const res = await fetch(`${first.url}/webhooks/demo`, { method: 'POST', headers: standardHeaders(id, body), body });
      assert.equal(res.status, 202);
      ids.push(id);
    }
    const recorded = new Database(recordDb);
    const runs = () => (recorded.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n;
    const done = () => (recorded.prepare('SELECT count(*) AS n FROM recorded').get() as { n: number }).n;
    try {
      await waitFor('handlers running', () => runs() >= 1);
      first.proc.kill('SIGTERM');
      const code = await first.exited;
      assert.equal(code, 0, first.output.join('\n'));
      // Every run that started before SIGTERM finished: no half-done work.
      assert.equal(done(), runs());
      assert.ok(done() < ids.length, 'the backlog was not drained before exit');
      assert.ok(first.output.some((line) => line.includes('"message":"stopped"')));
      await assert.rejects(fetch(`${first.url}/health`));

      const second = await spawnService(env);
      try {
        await waitFor('the rest processed after restart', () => done() === ids.length, 30_000);
      } finally {
        await second.kill('SIGKILL');
      }
    } finally {
      recorded.close();
      await first.kill('SIGKILL');
    }
  });

  it('serves a request under way at SIGTERM even when no job keeps the shutdown waiting', async () => {
    const dir = tempDir('hookwatch-term-idle-');
    const service = await spawnService({ DATA_DIR: path.join(dir, 'data'), ADMIN_TOKEN, WEBHOOK_SECRET_DEMO: DEMO_SECRET, SHUTDOWN_TIMEOUT: '5s' });
    const socket = net.connect(service.port, '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => { received += chunk.toString(); });
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const { id, body } = standardEvent('order.created');
      const text = `POST /webhooks/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        Object.entries(standardHeaders(id, body)).map(([name, value]) => `${name}: ${value}\r\n`).join('') + '\r\n' + body;
      // Headers and most of the body are in when SIGTERM comes; the rest follows.
      socket.write(text.slice(0, -10));
      await new Promise((resolve) => setTimeout(resolve, 200));
      service.proc.kill('SIGTERM');
      await waitFor('shutdown under way', () => service.output.some((line) => line.includes('"message":"shutting down"')));
      socket.write(text.slice(-10));
      await waitFor('the answer', () => /\r\n\r\n\{[^\n]*\}$/.test(received));
      assert.match(received, /^HTTP\/1\.1 202/, received);
      assert.equal(await service.exited, 0, service.output.join('\n'));
    } finally {
      socket.destroy();
      await service.kill('SIGKILL');
    }
  });

  it('keeps to one SHUTDOWN_TIMEOUT when both a stalled request and a running job hold it up', async () => {
    const dir = tempDir('hookwatch-term-deadline-');
    const recordDb = path.join(dir, 'recorded.db');
    const service = await spawnService({
      DATA_DIR: path.join(dir, 'data'), ADMIN_TOKEN, WEBHOOK_SECRET_DEMO: DEMO_SECRET, SHUTDOWN_TIMEOUT: '2s',
      HANDLERS_MODULE: 'test/fixtures/recording-handlers.ts', RECORD_DB: recordDb, HANDLER_DELAY_MS: '60000',
    });
    const socket = net.connect(service.port, '127.0.0.1');
    const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    try {
      const running = standardEvent('order.created');
      const posted = await fetch(`${service.url}/webhooks/demo`, { method: 'POST', headers: standardHeaders(running.id, running.body), body: running.body });
      assert.equal(posted.status, 202);
      await waitFor('the handler running', () => {
        const db = new Database(recordDb, { readonly: true, fileMustExist: false });
        try { return (db.prepare('SELECT count(*) AS n FROM runs').get() as { n: number }).n > 0; } catch { return false; } finally { db.close(); }
      });
      await connected;
      const stalled = standardEvent('order.created');
      const text = `POST /webhooks/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${Buffer.byteLength(stalled.body)}\r\n` +
        Object.entries(standardHeaders(stalled.id, stalled.body)).map(([name, value]) => `${name}: ${value}\r\n`).join('') + '\r\n' + stalled.body;
      // The rest of this body never comes.
      socket.write(text.slice(0, -10));
      await new Promise((resolve) => setTimeout(resolve, 200));
      service.proc.kill('SIGTERM');
      assert.equal(await service.exited, 0, service.output.join('\n'));
      const at = (message: string) => {
        const line = service.output.find((l) => l.includes(`"message":"${message}"`));
        assert.ok(line, `logged ${message}`);
        return Date.parse((JSON.parse(line) as { timestamp: string }).timestamp);
      };
      const tookMs = at('stopped') - at('shutting down');
      // Two deadlines one after the other would take 4 s; the margin is for a busy machine.
      assert.ok(tookMs >= 1_900 && tookMs < 3_200, `stopped ${tookMs} ms after SIGTERM with a 2 s SHUTDOWN_TIMEOUT`);
    } finally {
      socket.destroy();
      await service.kill('SIGKILL');
    }
  });

  it('does not count or log a delivery attempt cut off by shutdown as the endpoint failing, and sends it again after the restart', async () => {
    let answering = false;
    // Holds the first request until the service goes away; answers once told to.
    const { receiver, url, env, admin } = await deliveryScene('hookwatch-term-delivery-', () => (answering ? { status: 200, body: 'ok' } : 'hang'));
    const arrived = receiver.requests;
    const first = await spawnService(env);
    let second: Awaited<ReturnType<typeof spawnService>> | undefined;
    try {
      assert.equal((await admin(first.url, 'POST', '/api/v1/webhooks', { url, events: ['order.*'] })).status, 201);
      const published = await (await admin(first.url, 'POST', '/api/v1/events', { type: 'order.created', data: { n: 1 } })).json() as { deliveries: { id: string }[] };
      const deliveryId = published.deliveries[0]?.id ?? '';
      await waitFor('the attempt on the wire', () => arrived.length === 1);
      first.proc.kill('SIGTERM');
      assert.equal(await first.exited, 0, first.output.join('\n'));
      const lines = first.output.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.ok(lines.some((line) => line.message === 'delivery attempt cut off by shutdown; it is sent again after the restart' && line.delivery_id === deliveryId));
      assert.deepEqual(lines.filter((line) => line.message === 'delivery attempt'), [], 'no failed attempt logged');
      assert.deepEqual(lines.filter((line) => line.level === 'warn' || line.level === 'error').map((line) => line.message), []);

      answering = true;
      second = await spawnService(env);
      const delivered = await waitFor('delivered after the restart', async () => {
        const shown = await (await admin(second!.url, 'GET', `/api/v1/deliveries/${deliveryId}`)).json() as { status: string; attempts: number };
        return shown.status === 'delivered' ? shown : undefined;
      }, 30_000);
      assert.equal(delivered.attempts, 1, 'the cut-off attempt was not recorded');
      assert.equal(arrived.length, 2);
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGKILL');
      await receiver.close();
    }
  });

  it('answers a manual retry that shutdown cuts off with 503 and does not record it as a failed attempt', async () => {
    // Fails the first attempt at once; holds every later one until the service goes away.
    const { receiver, env, admin, deliveredOnce } = await deliveryScene('hookwatch-term-manual-', () => (receiver.requests.length === 0 ? { status: 500, body: 'not yet' } : 'hang'));
    const arrived = receiver.requests;
    const first = await spawnService(env);
    let second: Awaited<ReturnType<typeof spawnService>> | undefined;
    try {
      const { deliveryId } = await deliveredOnce(first.url, 'manual.retry');
      const retry = admin(first.url, 'POST', `/api/v1/deliveries/${deliveryId}/retry`);
      await waitFor('the manual attempt on the wire', () => arrived.length === 2);
      first.proc.kill('SIGTERM');
      const answer = await retry;
      assert.equal(answer.status, 503);
      const body = await answer.json() as { error: string; message: string };
      assert.equal(body.error, 'shutting_down');
      assert.match(body.message, /not recorded, retry it after the restart/);
      assert.equal(await first.exited, 0, first.output.join('\n'));
      const lines = first.output.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.ok(lines.some((line) => line.message === 'manual delivery attempt cut off by shutdown; not recorded' && line.delivery_id === deliveryId));
      assert.equal(lines.filter((line) => line.message === 'delivery attempt').length, 1, 'only the first attempt is logged as one');

      second = await spawnService(env);
      const shown = await (await admin(second.url, 'GET', `/api/v1/deliveries/${deliveryId}`)).json() as { attempts: number; status: string };
      assert.equal(shown.attempts, 1, 'the cut-off manual attempt was not recorded');
      assert.equal(shown.status, 'pending');
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGKILL');
      await receiver.close();
    }
  });

  it('still counts an answer that had arrived when shutdown cut its body off: a manual retry answered 410 disables the endpoint', async () => {
    // Fails the first attempt at once; answers the manual retry 410 Gone but never finishes its body.
    const { receiver, env, admin, deliveredOnce } = await deliveryScene('hookwatch-term-answered-', () => (receiver.requests.length === 0 ? { status: 500, body: 'not yet' } : { status: 410, body: 'gone, and still sayi', holdBody: true }));
    const arrived = receiver.requests;
    const first = await spawnService(env);
    let second: Awaited<ReturnType<typeof spawnService>> | undefined;
    try {
      const { endpointId, deliveryId } = await deliveredOnce(first.url, 'manual.gone');
      const retry = admin(first.url, 'POST', `/api/v1/deliveries/${deliveryId}/retry`);
      await waitFor('the 410 answer on the wire, its body unfinished', () => arrived.length === 2 && receiver.held === 1);
      first.proc.kill('SIGTERM');
      const answer = await retry;
      assert.notEqual(answer.status, 503, 'an attempt the endpoint answered is not reported as cut off');
      assert.equal(await first.exited, 0, first.output.join('\n'));
      const lines = first.output.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
      assert.ok(!lines.some((line) => line.message === 'manual delivery attempt cut off by shutdown; not recorded'));
      assert.ok(lines.some((line) => line.message === 'endpoint disabled: it answered 410 Gone' && line.endpoint === endpointId));

      second = await spawnService(env);
      const shown = await (await admin(second.url, 'GET', `/api/v1/deliveries/${deliveryId}`)).json() as { attempts: number; last_status_code: number | null };
      assert.equal(shown.attempts, 2, 'the answered manual attempt was recorded');
      const endpoint = await (await admin(second.url, 'GET', `/api/v1/webhooks/${endpointId}`)).json() as { disabled: boolean };
      assert.equal(endpoint.disabled, true);
    } finally {
      await first.kill('SIGKILL');
      await second?.kill('SIGKILL');
      await receiver.close();
    }
  });

  it('turns away a request that arrives on a kept-alive connection after SIGTERM, and closes it', async () => {
    const dir = tempDir('hookwatch-term-keepalive-');
    const env = {
      DATA_DIR: path.join(dir, 'data'), ADMIN_TOKEN, WEBHOOK_SECRET_DEMO: DEMO_SECRET,
      HANDLERS_MODULE: 'test/fixtures/recording-handlers.ts', RECORD_DB: path.join(dir, 'recorded.db'), HANDLER_DELAY_MS: '1500',
      WORKER_CONCURRENCY: '2', SHUTDOWN_TIMEOUT: '5s',
    };
    const service = await spawnService(env);
    const { port } = new URL(service.url);
    const socket = net.connect(Number(port), '127.0.0.1');
    let received = '';
    socket.on('data', (chunk) => { received += chunk.toString(); });
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const request = (id: string, body: string) =>
      `POST /webhooks/demo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      Object.entries(standardHeaders(id, body)).map(([name, value]) => `${name}: ${value}\r\n`).join('') + '\r\n' + body;
    try {
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      const answer = async (what: string) => {
        await waitFor(what, () => /\r\n\r\n\{[^\n]*\}$/.test(received));
        const text = received;
        received = '';
        return text;
      };
      const first = standardEvent('order.created');
      socket.write(request(first.id, first.body));
      assert.match(await answer('the first answer'), /^HTTP\/1\.1 202/);
      // The second request is half sent when SIGTERM comes: the connection is busy, so it stays open.
      const second = standardEvent('order.created');
      const text = request(second.id, second.body);
      socket.write(text.slice(0, -10));
      await new Promise((resolve) => setTimeout(resolve, 200));
      service.proc.kill('SIGTERM');
      await waitFor('shutdown under way', () => service.output.some((line) => line.includes('"message":"shutting down"')));
      socket.write(text.slice(-10));
      assert.match(await answer('the second answer'), /^HTTP\/1\.1 202/, 'a request that began before SIGTERM is still served');
      const third = standardEvent('order.created');
      socket.write(request(third.id, third.body).replace('\r\n\r\n', '\r\nX-Request-ID: req-third-1\r\n\r\n'));
      const refused = await answer('the third answer');
      assert.match(refused, /^HTTP\/1\.1 503/, refused);
      assert.match(refused, /\r\nconnection: close\r\n/i);
      assert.match(refused, /"error":"shutting_down"/);
      assert.match(refused, /\r\nx-request-id: req-third-1\r\n/i, 'the refusal echoes the request id like every answer');
      await closed;
      assert.equal(await service.exited, 0, service.output.join('\n'));
    } finally {
      socket.destroy();
      await service.kill('SIGKILL');
    }
  });
});

describe('a request that never finishes arriving', () => {
  it('gets 408 and its connection closed after REQUEST_TIMEOUT, so it cannot hold memory and a connection for minutes', async () => {
    const child = await spawnService({ DATA_DIR: tempDir(), ADMIN_TOKEN, WEBHOOK_SECRET_DEMO: DEMO_SECRET, REQUEST_TIMEOUT: '1s' });
    try {
      const { id, body } = standardEvent();
      const { port } = new URL(child.url);
      // The first 10 bytes of a plain body, and of a compressed one (which is read through an
      // inflating stream of its own).
      const parts: [Record<string, string>, Buffer][] = [
        [{}, Buffer.from(body)],
        [{ 'content-encoding': 'gzip' }, gzipSync(body)],
      ];
      for (const [extra, bytes] of parts) {
        const started = Date.now();
        const answer = await new Promise<string>((resolve, reject) => {
          const socket = net.connect(Number(port), '127.0.0.1', () => {
            const headers = Object.entries({ ...standardHeaders(id, body), ...extra, 'content-length': String(bytes.length) }).map(([k, v]) => `${k}: ${v}`).join('\r\n');
            socket.write(`POST /webhooks/demo HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n\r\n`);
            socket.write(bytes.subarray(0, 10));
          });
          let received = '';
          socket.on('data', (chunk) => { received += chunk.toString(); });
          socket.on('close', () => resolve(received));
          socket.on('error', reject);
          setTimeout(() => { socket.destroy(); reject(new Error(`still open after 15 s; received ${JSON.stringify(received)}`)); }, 15_000);
        });
        assert.match(answer, /^HTTP\/1\.1 408/);
        assert.ok(Date.now() - started < 10_000, `closed after ${Date.now() - started} ms`);
      }
      // Counted and logged as the timeouts they were, not as clients that went away (499).
      const metrics = await (await fetch(`${child.url}/metrics`)).text();
      assert.match(metrics, /webhook_requests_total\{source="demo",status="408"\} 2\n/);
      assert.doesNotMatch(metrics, /status="499"\} [1-9]/);
      const refusals = () => child.output.filter((line) => line.includes('"webhook rejected"'));
      await waitFor('both refusals logged', () => refusals().length === 2);
      for (const line of refusals()) {
        assert.match(line, /"status":408,"error":"request_timeout"/);
      }
    } finally {
      child.proc.kill('SIGTERM');
      await child.exited;
    }
  });
});
