import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { PermanentError, TemporaryError, type InboundEvent } from '../src/inbound/handlers.js';
import { ADMIN_TOKEN, startTestService, waitFor, type TestService } from './helpers/service.js';
import { standardEvent, standardHeaders } from './helpers/signing.js';

describe('processing accepted events', () => {
  let t: TestService;
  const seen: Record<string, string[]> = { audit: [], billing: [], flaky: [] };
  const flakyFailures = new Map<string, number>();
  const fatalRuns: string[] = [];
  let answered = false;
  const answeredWhenStarted: boolean[] = [];
  const brokenAttempts: number[] = [];
  const copies: { spread: Record<string, unknown>; serialised: Record<string, unknown>; keys: string[]; spreadSymbols: number }[] = [];

  before(async () => {
    t = await startTestService({ JOB_MAX_ATTEMPTS: '4' }, {
      registerHandlers(registry) {
        registry.register('*', 'audit', (event: InboundEvent) => { seen.audit!.push(event.eventId); });
        registry.register('invoice.*', 'billing', (event: InboundEvent) => { seen.billing!.push(event.eventId); });
        registry.register('order.flaky', 'flaky', (event: InboundEvent) => {
          seen.flaky!.push(event.eventId);
          const failures = flakyFailures.get(event.eventId) ?? 0;
          if (failures < 2) {
            flakyFailures.set(event.eventId, failures + 1);
            throw new TemporaryError(`upstream busy (${failures + 1})`);
          }
        });
        registry.register('order.broken', 'broken', (event: InboundEvent) => {
          brokenAttempts.push(event.attempt);
          throw new PermanentError('order cannot be fulfilled');
        });
        registry.register('order.always-busy', 'busy', () => { throw new Error('still busy'); });
        registry.register('order.fatal', 'fatal', (event: InboundEvent) => { fatalRuns.push(event.eventId); });
        registry.register('order.observed', 'observer', () => { answeredWhenStarted.push(answered); });
        registry.register('order.copied', 'copier', (event: InboundEvent) => {
          const spread = { ...event };
          copies.push({ spread, serialised: JSON.parse(JSON.stringify(event)) as Record<string, unknown>, keys: Object.keys(event), spreadSymbols: Object.getOwnPropertySymbols(spread).length });
        });
      },
    });
  });
  after(() => t.close());

  const admin = (method: 'get' | 'post' | 'delete', path: string) => request(t.url)[method](path).set('authorization', `Bearer ${ADMIN_TOKEN}`);

  async function send(type: string): Promise<{ eventId: string; id: string }> {
    const { id, body } = standardEvent(type);
    const res = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return { eventId: id, id: res.body.id as string };
  }

  const statusOf = async (id: string) => (await admin('get', `/api/v1/events/${id}`)).body as {
    status: string; attempts: number; last_error: string | null; history: { handler: string; outcome: string; attempt: number }[];
  };

  it('fans one event out to every matching handler and records each outcome', async () => {
    const { eventId, id } = await send('invoice.paid');
    const shown = await waitFor('processed', async () => { const s = await statusOf(id); return s.status === 'processed' ? s : undefined; });
    // outbound.forward is the built-in handler that hands every event to the sending side.
    assert.deepEqual(shown.history.map((h) => [h.handler, h.outcome]).sort(), [['audit', 'success'], ['billing', 'success'], ['outbound.forward', 'success']]);
    assert.ok(seen.audit!.includes(eventId));
    assert.ok(seen.billing!.includes(eventId));
  });

  it('retries a temporary error with backoff and does not re-run handlers that already succeeded', async () => {
    const { eventId, id } = await send('order.flaky');
    const shown = await waitFor('processed after retries', async () => { const s = await statusOf(id); return s.status === 'processed' ? s : undefined; });
    assert.equal(shown.attempts, 3);
    assert.equal(seen.flaky!.filter((e) => e === eventId).length, 3);
    assert.equal(seen.audit!.filter((e) => e === eventId).length, 1, 'audit succeeded on the first run and must not run again');
    assert.deepEqual(shown.history.filter((h) => h.handler === 'flaky').map((h) => h.outcome), ['temporary_error', 'temporary_error', 'success']);
    const metrics = (await request(t.url).get('/metrics')).text;
    assert.match(metrics, /webhook_events_processed_total\{event_type="other",status="retry"\} [2-9]/);
  });

  it('dead-letters a permanent error at once with its last error, and replays it on request', async () => {
    const { eventId, id } = await send('order.broken');
    const shown = await waitFor('dead-lettered', async () => { const s = await statusOf(id); return s.status === 'dead_letter' ? s : undefined; });
    assert.equal(shown.attempts, 1);
    assert.match(shown.last_error ?? '', /order cannot be fulfilled/);

    const list = await admin('get', '/api/v1/dead-letters');
    assert.equal(list.status, 200);
    const entry = (list.body.data as { id: number; ref: string; last_error: string; event: { type: string } }[]).find((d) => d.ref === id);
    assert.ok(entry, 'the dead-lettered job is listed');
    assert.equal(entry.event.type, 'order.broken');
    const one = await admin('get', `/api/v1/dead-letters/${entry.id}`);
    assert.equal(one.body.last_error, entry.last_error);

    const replay = await admin('post', `/api/v1/dead-letters/${entry.id}/replay`);
    assert.equal(replay.status, 202);
    const replayedStatus = await waitFor('dead again after replay', async () => { const s = await statusOf(id); return s.status === 'dead_letter' && s.history.filter((h) => h.handler === 'broken').length === 2 ? s : undefined; });
    assert.equal(seen.audit!.filter((e) => e === eventId).length, 1, 'audit succeeded before the replay and must not run again');
    assert.equal(replayedStatus.history.filter((h) => h.handler === 'audit').length, 1);
    assert.deepEqual(replayedStatus.history.filter((h) => h.handler === 'broken').map((h) => h.attempt), [1, 2], 'the replay is numbered on from the first run');
    assert.deepEqual(brokenAttempts, [1, 2], 'the handler is told the same numbers as the history');
    assert.equal(replayedStatus.attempts, 2);

    const again = (await admin('get', '/api/v1/dead-letters')).body.data as { id: number; ref: string }[];
    const replayed = again.find((d) => d.ref === id);
    assert.ok(replayed);
    assert.equal((await admin('delete', `/api/v1/dead-letters/${replayed.id}`)).status, 204);
    assert.equal((await admin('get', `/api/v1/dead-letters/${replayed.id}`)).status, 404);
  });

  it('answers 409 to replaying or deleting a dead letter that was replayed and waits to run, and 404 to an unknown one', async () => {
    const { id } = await send('order.broken');
    await waitFor('dead-lettered', async () => (await statusOf(id)).status === 'dead_letter');
    const entry = ((await admin('get', '/api/v1/dead-letters')).body.data as { id: number; ref: string }[]).find((d) => d.ref === id);
    assert.ok(entry);
    // As after a replay, with the job waiting behind a backlog.
    const setJob = (status: string, runAt: number) => t.service.store.db.prepare('UPDATE jobs SET status = ?, run_at = ? WHERE id = ?').run(status, runAt, entry.id);
    setJob('pending', Date.now() + 3_600_000);
    try {
      const replay = await admin('post', `/api/v1/dead-letters/${entry.id}/replay`);
      assert.equal(replay.status, 409);
      assert.match(replay.body.message, /^job \d+ is pending, not dead-lettered/);
      assert.equal((await admin('delete', `/api/v1/dead-letters/${entry.id}`)).status, 409);
      assert.equal((await admin('get', `/api/v1/dead-letters/${entry.id}`)).status, 404, 'not shown as a dead letter');
    } finally {
      setJob('dead', Date.now());
    }
    assert.equal((await admin('delete', `/api/v1/dead-letters/${entry.id}`)).status, 204);
    assert.equal((await admin('post', '/api/v1/dead-letters/99999999/replay')).status, 404);
  });

  it('dead-letters a job whose temporary errors exhaust the attempts', async () => {
    const { id } = await send('order.always-busy');
    const shown = await waitFor('exhausted', async () => { const s = await statusOf(id); return s.status === 'dead_letter' ? s : undefined; }, 30_000);
    assert.equal(shown.attempts, 4);
    assert.match(shown.last_error ?? '', /still busy/);
    const metrics = (await request(t.url).get('/metrics')).text;
    assert.match(metrics, /webhook_dead_letter_queue_size [1-9]/);
  });

  it('answers 202 before a handler starts, so its synchronous work never holds the acknowledgement', async () => {
    const { id, body } = standardEvent('order.observed');
    const res = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
    answered = true;
    assert.equal(res.status, 202);
    await waitFor('the handler ran', () => answeredWhenStarted.length > 0);
    assert.deepEqual(answeredWhenStarted, [true]);
  });

  it('runs again a job whose last allowed attempt was claimed but never started before the process died', async () => {
    const store = t.service.store;
    const pk = store.transaction(() => store.events.insert({ source: 'demo', eventId: 'evt_fatal_unstarted', type: 'order.fatal', rawPayload: '{}', requestId: 'req-unstarted' }, 60_000));
    const jobId = store.transaction(() => t.service.jobs.enqueue({ queue: 'events', kind: 'event.process', ref: pk, maxAttempts: 4 }));
    // Claimed for its 4th attempt into a batch, the process died before it started: no start recorded.
    store.db.prepare("UPDATE jobs SET status = 'running', attempts = 4, started_attempt = 3, lease_owner = 'crashed-process', lease_expires_at = ? WHERE id = ?").run(Date.now() - 1000, jobId);
    await waitFor('run once more', () => fatalRuns.includes('evt_fatal_unstarted'));
    assert.equal((await statusOf(pk)).status, 'processed', 'its 4th attempt ran, instead of a dead letter for a run that never was');
  });

  it('dead-letters a job whose last allowed run never finished (the process died in it) instead of running it for ever', async () => {
    const store = t.service.store;
    const pk = store.transaction(() => store.events.insert({ source: 'demo', eventId: 'evt_fatal_1', type: 'order.fatal', rawPayload: '{}', requestId: 'req-fatal' }, 60_000));
    const jobId = store.transaction(() => t.service.jobs.enqueue({ queue: 'events', kind: 'event.process', ref: pk, maxAttempts: 4 }));
    // As a crashed process leaves it: its 4th and last run leased and recorded as started, the lease run out.
    store.db.prepare("UPDATE jobs SET status = 'running', attempts = 4, started_attempt = 4, lease_owner = 'crashed-process', lease_expires_at = ? WHERE id = ?").run(Date.now() - 1000, jobId);
    const shown = await waitFor('dead-lettered', async () => { const s = await statusOf(pk); return s.status === 'dead_letter' ? s : undefined; });
    assert.match(shown.last_error ?? '', /gave up after 4 attempts: the last did not finish/);
    assert.ok(!fatalRuns.includes('evt_fatal_1'), 'the handler is not run a fifth time');
    assert.equal(t.service.jobs.get(jobId)?.status, 'dead');
  });

  it('processes an event that no handler of yours and no endpoint wants, so a fresh install works end to end', async () => {
    const service = await startTestService();
    try {
      const { id, body } = standardEvent('nobody.listens');
      const res = await request(service.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
      await waitFor('processed', () => service.service.store.events.get(res.body.id)?.status === 'processed');
      assert.deepEqual(service.service.store.events.handlerRuns(res.body.id).map((run) => run.handler), ['outbound.forward']);
      assert.ok(service.logs.find('event processed').some((line) => line.event_id === id));
    } finally {
      await service.close();
    }
  });

  it('gives handlers an event that keeps its payload and signal when spread or serialised, and nothing else', async () => {
    const { eventId } = await send('order.copied');
    const copy = await waitFor('copied', () => copies.at(-1));
    const fields = ['id', 'eventId', 'source', 'type', 'requestId', 'receivedAt', 'attempt', 'payload', 'signal'];
    assert.deepEqual([...copy.keys].sort(), [...fields].sort(), 'enumerable keys: the fields and the two getters');
    assert.deepEqual(Object.keys(copy.spread).sort(), [...fields].sort());
    assert.equal(copy.spreadSymbols, 0, 'a spread copy carries nothing internal');
    assert.equal(copy.spread.eventId, eventId);
    assert.equal((copy.spread.payload as { type: string }).type, 'order.copied', 'the spread copy holds the parsed payload');
    assert.ok(copy.spread.signal instanceof AbortSignal);
    assert.equal(copy.spread.attempt, 1);
    assert.match((copy.serialised.payload as { data: { id: string } }).data.id, /^user/);
  });

  it('protects the admin API with the bearer token', async () => {
    assert.equal((await request(t.url).get('/api/v1/events')).status, 401);
    const wrong = await request(t.url).get('/api/v1/events').set('authorization', 'Bearer nope');
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'unauthorized');
    const bad = await admin('get', '/api/v1/events?limit=0');
    assert.equal(bad.status, 400);
    assert.equal(bad.body.details[0].field, 'limit');
    // Only statuses an event can have: pending, retrying, processed, dead_letter.
    const never = await admin('get', '/api/v1/events?status=processing');
    assert.deepEqual([never.status, never.body.details[0].field], [400, 'status']);
    assert.equal((await admin('get', '/api/v1/events?status=retrying')).status, 200);
    assert.equal((await admin('get', '/api/v1/events/evt_missing')).status, 404);
    assert.equal((await admin('get', '/api/v1/dead-letters/abc')).status, 400);
  });

  it('shows an accepted event whose payload nests too deep to serialise again', async () => {
    const id = `msg_deep_${Date.now()}`;
    const depth = 20_000;
    const body = `{"type":"deep.thing","data":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const res = await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const shown = await admin('get', `/api/v1/events/${res.body.id as string}`).buffer(true).parse((r, done) => {
      let text = '';
      r.on('data', (chunk: Buffer) => { text += chunk.toString(); });
      r.on('end', () => done(null, text));
    });
    assert.equal(shown.status, 200, String(shown.body));
    assert.match(shown.headers['content-type'] ?? '', /^application\/json/);
    const text = shown.body as string;
    assert.ok(text.endsWith(`"payload":${body}}`), 'the payload is the text as received');
    assert.match(text, new RegExp(`^\\{"id":"${res.body.id as string}","source":"demo"`));
  });

  it('answers 415 for an admin API body that is not JSON, instead of reporting its fields missing', async () => {
    const body = JSON.stringify({ type: 'order.created', id: 'o9', data: {} });
    for (const type of ['application/x-www-form-urlencoded', 'text/plain']) {
      const res = await admin('post', '/api/v1/events').set('content-type', type).send(body);
      assert.equal(res.status, 415, `${type}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error, 'unsupported_media_type');
      assert.match(res.body.message, /application\/json/);
    }
    // A POST with no body at all is not refused for its type.
    assert.equal((await admin('post', '/api/v1/dead-letters/999999/replay')).status, 404);
  });

  it('pages through events newest first with a cursor', async () => {
    const first = await admin('get', '/api/v1/events?limit=2');
    assert.equal(first.body.data.length, 2);
    assert.ok(first.body.next_cursor);
    const second = await admin('get', `/api/v1/events?limit=2&cursor=${first.body.next_cursor}`);
    const ids = [...first.body.data, ...second.body.data].map((e: { id: string }) => e.id);
    assert.equal(new Set(ids).size, ids.length);
  });

  it('reports health with the queue state, and 503 naming the database when it is gone', async () => {
    const ok = await request(t.url).get('/health');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, 'ok');
    assert.equal(typeof ok.body.checks.queue.pending, 'number');
    assert.equal(typeof ok.body.checks.queue.oldest_pending_age_seconds, 'number');
    assert.equal(typeof ok.body.checks.queue.dead_letter, 'number');

    const broken = await startTestService();
    try {
      await broken.service.store.close();
      const res = await request(broken.url).get('/health');
      assert.equal(res.status, 503);
      assert.ok(res.body.failed.includes('database'));
    } finally {
      await broken.close();
    }
  });
});

describe('a replayed event whose run never finishes', () => {
  let t: TestService;
  before(async () => { t = await startTestService({ JOB_MAX_ATTEMPTS: '4' }, { registerHandlers(r) { r.register('order.fatal', 'fatal', () => {}); } }); });
  after(() => t.close());

  it('is given up with an attempt count that does not go back below its history', async () => {
    const store = t.service.store;
    const pk = store.transaction(() => store.events.insert({ source: 'demo', eventId: 'evt_fatal_replayed', type: 'order.fatal', rawPayload: '{}', requestId: 'r' }, 60_000));
    // Runs 1–4 failed and were dead-lettered; the replay's runs were numbered 5–7; its 4th run
    // took the process down, and the job comes back past its attempts once the lease runs out.
    store.transaction(() => {
      for (let attempt = 1; attempt <= 7; attempt++) store.events.recordHandlerRun(pk, { attempt, handler: 'fatal', outcome: 'temporary_error', error: 'x', durationMs: 1, at: Date.now() });
      store.events.setStatus(pk, 'retrying', 7, 'x');
    });
    const jobId = store.transaction(() => t.service.jobs.enqueue({ queue: 'events', kind: 'event.process', ref: pk, maxAttempts: 4 }));
    store.db.prepare("UPDATE jobs SET status = 'running', attempts = 4, started_attempt = 4, last_error = 'x', lease_owner = 'crashed', lease_expires_at = ? WHERE id = ?").run(Date.now() - 1000, jobId);
    const shown = await waitFor('dead-lettered', async () => {
      const s = (await request(t.url).get(`/api/v1/events/${pk}`).set('authorization', `Bearer ${ADMIN_TOKEN}`)).body as { status: string; attempts: number };
      return s.status === 'dead_letter' ? s : undefined;
    });
    assert.equal(shown.attempts, 8, 'the run after the seven recorded');
  });
});

describe('the age of the oldest job waiting', () => {
  let t: TestService;
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => { release = resolve; });
  let entered = 0;
  before(async () => {
    t = await startTestService({ WORKER_CONCURRENCY: '1' }, { registerHandlers(r) { r.register('order.slow', 'slow', async () => { entered += 1; await gate; }); } });
  });
  after(async () => { release(); await t.close(); });

  it('counts jobs a worker has claimed but not started, behind a busy slot', async () => {
    for (let i = 0; i < 3; i++) {
      const { id, body } = standardEvent('order.slow');
      assert.equal((await request(t.url).post('/webhooks/demo').set(standardHeaders(id, body)).send(body)).status, 202);
    }
    await waitFor('the first in its one slot', () => entered === 1);
    // The other two wait in the worker's batch, claimed ('running' in the table) but not started.
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const health = await request(t.url).get('/health');
    assert.ok(health.body.checks.queue.oldest_pending_age_seconds >= 1, JSON.stringify(health.body.checks.queue));
    release();
    await waitFor('all three run', () => entered === 3);
  });
});

describe('a handler that never answers', () => {
  let t: TestService;
  const aborted: boolean[] = [];
  const lateLook: boolean[] = [];
  let quick = 0;
  before(async () => {
    t = await startTestService({ JOB_TIMEOUT: '1s', JOB_MAX_ATTEMPTS: '2', JOB_BACKOFF_BASE: '10ms', WORKER_CONCURRENCY: '1' }, {
      registerHandlers(r) {
        r.register('order.hangs', 'hangs', (event) => new Promise<void>(() => { event.signal.addEventListener('abort', () => aborted.push(true)); }));
        r.register('order.quick', 'quick', () => { quick += 1; });
        // Looks at its signal for the first time only after the run has stopped waiting for it.
        r.register('order.late', 'late', async (event) => {
          await new Promise((resolve) => setTimeout(resolve, 1500));
          lateLook.push(event.signal.aborted);
        });
      },
    });
  });
  after(() => t.close());

  it('counts as a temporary error past JOB_TIMEOUT, frees its slot, and is dead-lettered with its event once its attempts are used up', async () => {
    const hung = standardEvent('order.hangs');
    const res = await request(t.url).post('/webhooks/demo').set(standardHeaders(hung.id, hung.body)).send(hung.body);
    const pk = (res.body as { id: string }).id;
    const next = standardEvent('order.quick');
    assert.equal((await request(t.url).post('/webhooks/demo').set(standardHeaders(next.id, next.body)).send(next.body)).status, 202);
    await waitFor('the event behind it processed in the one slot', () => quick === 1, 10_000);
    const shown = await waitFor('dead-lettered', async () => {
      const body = (await request(t.url).get(`/api/v1/events/${pk}`).set('authorization', `Bearer ${ADMIN_TOKEN}`)).body as { status: string; last_error: string | null; history: { attempt: number; handler: string; outcome: string; error: string | null }[] };
      return body.status === 'dead_letter' ? body : undefined;
    }, 15_000);
    assert.match(shown.last_error ?? '', /hangs: no result within 1000 ms \(JOB_TIMEOUT\)/);
    assert.deepEqual(shown.history.filter((run) => run.handler === 'hangs').map((run) => [run.attempt, run.outcome]), [[1, 'temporary_error'], [2, 'temporary_error']]);
    assert.equal(aborted.length, 2, 'each run\'s signal told the handler to give up');
  });

  it('shows the signal aborted to a handler that first reads it after JOB_TIMEOUT', async () => {
    const late = standardEvent('order.late');
    assert.equal((await request(t.url).post('/webhooks/demo').set(standardHeaders(late.id, late.body)).send(late.body)).status, 202);
    await waitFor('the late handler looked at its signal', () => lateLook.length > 0, 10_000);
    assert.equal(lateLook[0], true);
  });
});
