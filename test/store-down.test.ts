import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import request from 'supertest';
import { startTestService, waitFor, type TestService } from './helpers/service.js';
import { stripeEvent, stripeHeaders } from './helpers/signing.js';

// A full disk is simulated with SQLite's own page limit: writes then fail with SQLITE_FULL, exactly
// as on a full filesystem, while reads (and `SELECT 1`) keep working.
describe('a store that cannot write', () => {
  let t: TestService;
  before(async () => { t = await startTestService(); });
  after(() => t.close());

  const metric = async (name: string): Promise<number> => {
    const res = await request(t.url).get('/metrics');
    assert.equal(res.status, 200, 'the scrape succeeds while the store is down');
    const line = res.text.split('\n').find((l) => l.startsWith(`${name} `));
    assert.ok(line, `${name} is exported`);
    return Number(line.split(' ')[1]);
  };
  const post = (body = stripeEvent('invoice.paid').body) =>
    request(t.url).post('/webhooks/stripe').set(stripeHeaders(body)).send(body);

  it('answers 503 store_unavailable with Retry-After, reports webhook_db_up 0 and an unhealthy database, and recovers once writes commit again', async () => {
    const first = stripeEvent('invoice.paid').body;
    assert.equal((await post(first)).status, 202);
    assert.equal(await metric('webhook_db_up'), 1);

    const pages = t.service.store.db.pragma('page_count', { simple: true }) as number;
    t.service.store.db.pragma(`max_page_count = ${pages}`);
    const refused: request.Response[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await post();
      if (res.status !== 202) refused.push(res);
    }
    assert.ok(refused.length > 0, 'the full store refused some events');
    for (const res of refused) {
      assert.equal(res.status, 503);
      assert.equal(res.body.error, 'store_unavailable');
      assert.equal(res.headers['retry-after'], '30');
    }
    assert.equal(await metric('webhook_db_up'), 0);
    assert.ok(await metric('webhook_dead_letter_queue_size') >= 0, 'gauges that read the store still export');
    const health = await request(t.url).get('/health');
    assert.equal(health.status, 503);
    assert.ok(health.body.failed.includes('database'));
    assert.match(String(health.body.checks.database.write_error), /SQLITE_FULL/);

    // A redelivery is answered from what is stored; its transaction commits without writing, which
    // says nothing about whether the store can write again.
    assert.equal((await post(first)).status, 200);
    assert.equal(await metric('webhook_db_up'), 0, 'a commit that wrote nothing does not bring the store back');
    assert.equal((await request(t.url).get('/health')).status, 503);

    t.service.store.db.pragma('max_page_count = 1073741823');
    // With no traffic at all (a load balancer may have taken the instance out of rotation): the
    // store's own probe write notices that it writes again.
    await waitFor('the store seen writing again without traffic', async () => await metric('webhook_db_up') === 1, 15_000);
    assert.equal((await request(t.url).get('/health')).status, 200);
    assert.equal((await post()).status, 202);
  });

  it('still answers /metrics, with webhook_db_up 0, when the connection is closed', async () => {
    await t.service.stop();
    assert.equal(await metric('webhook_db_up'), 0);
  });
});
