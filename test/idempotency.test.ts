import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import request from 'supertest';
import { startTestService } from './helpers/service.js';
import { stripeEvent, stripeHeaders } from './helpers/signing.js';

describe('idempotency keys', () => {
  it('remembers an event id for the configured time, then forgets it and purges the key', async () => {
    let now = Date.now();
    const t = await startTestService({ IDEMPOTENCY_TTL: '1h' }, { clock: { now: () => now } });
    try {
      const { body } = stripeEvent();
      const send = () => request(t.url).post('/webhooks/stripe').set(stripeHeaders(body)).send(body);
      assert.equal((await send()).status, 202);
      now += 59 * 60_000;
      assert.equal((await send()).status, 200, 'still a duplicate inside the window');
      assert.equal((await send()).status, 200, 'answered from the cache this time');
      now += 2 * 60_000;
      const keys = () => (t.service.store.db.prepare('SELECT count(*) AS n FROM idempotency_keys').get() as { n: number }).n;
      assert.equal(keys(), 1);
      assert.equal(t.service.store.events.purgeExpiredKeys(), 1);
      assert.equal(keys(), 0);
      assert.equal((await send()).status, 202, 'accepted again once the key has expired');
      const metrics = (await request(t.url).get('/metrics')).text;
      assert.match(metrics, /webhook_cache_hits_total\{cache="idempotency"\} [1-9]/);
      assert.match(metrics, /webhook_cache_misses_total\{cache="idempotency"\} [1-9]/);
    } finally {
      await t.close();
    }
  });
});
