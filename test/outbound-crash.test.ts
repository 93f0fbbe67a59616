import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { spawnService, type ChildService } from './helpers/child.js';
import { ADMIN_TOKEN, tempDir, waitFor } from './helpers/service.js';
import { Receiver } from './helpers/outbound-harness.js';

const DELIVERIES = Number(process.env.OUTBOUND_CRASH_N ?? 1000);
const KILL_AFTER_ANSWERED = Math.floor(DELIVERIES * 1.5); // of the 3,000 requests the endpoint will answer

async function call(service: ChildService, method: string, route: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${service.url}${route}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('outbound crash recovery', () => {
  it('delivers 1,000 events to an endpoint failing the first two attempts of each, across a SIGKILL and restart', { timeout: 110_000 }, async () => {
    const dir = tempDir('hookwatch-outbound-crash-');
    const env = {
      DATA_DIR: path.join(dir, 'data'),
      ADMIN_TOKEN,
      RETRY_SCHEDULE: '100ms,100ms,100ms',
      ALLOW_PRIVATE_DESTINATIONS: 'true',
      JOB_POLL_INTERVAL: '20ms',
      JOB_LEASE: '1s',
      DELIVERY_CONCURRENCY: '16',
    };
    // Fails the first two answered attempts of each webhook-id. Once half the work is done the
    // gate closes: requests are held unanswered, so at the SIGKILL every attempt the endpoint
    // answered has been recorded and every one in flight is unanswered (neither side counts it).
    let gateClosed = false;
    let gateUsed = false;
    const receiver = await Receiver.start((req) => {
      if (gateClosed) return 'hang';
      if (!gateUsed && receiver.answered + 1 >= KILL_AFTER_ANSWERED) {
        gateClosed = true;
        gateUsed = true;
      }
      return req.previous < 2 ? { status: 500, body: 'not yet' } : { status: 200, body: 'ok' };
    });
    let service: ChildService | null = await spawnService(env);
    let db: Database.Database | null = null;
    try {
      const created = await call(service, 'POST', '/api/v1/webhooks', { url: receiver.url, events: ['load.*'] });
      assert.equal(created.status, 201);
      receiver.secrets.push(created.json.secret as string);

      const ids: string[] = [];
      for (let batch = 0; batch < DELIVERIES; batch += 25) {
        const results = await Promise.all(Array.from({ length: 25 }, (_, i) =>
          call(service as ChildService, 'POST', '/api/v1/events', { type: 'load.test', id: `load-${batch + i}`, data: { n: batch + i } })));
        for (const result of results) {
          assert.equal(result.status, 202);
          ids.push(result.json.id as string);
        }
      }

      db = new Database(path.join(env.DATA_DIR, 'hookwatch.db'), { readonly: true, fileMustExist: true });
      const recorded = (): number => (db?.prepare('SELECT count(*) AS n FROM delivery_attempts').get() as { n: number }).n;
      await waitFor('half the work answered, the gate closed and every answer recorded', () =>
        gateClosed && receiver.held > 0 && recorded() === receiver.answered, 60_000);
      const before = recorded();
      assert.ok(before >= KILL_AFTER_ANSWERED && before < DELIVERIES * 3, `killed mid-way (${before} attempts recorded)`);
      await service.kill('SIGKILL');
      service = null;

      gateClosed = false;
      service = await spawnService(env);
      const delivered = (): number => (db?.prepare("SELECT count(*) AS n FROM deliveries WHERE status = 'delivered'").get() as { n: number }).n;
      await waitFor('every delivery delivered after the restart', () => delivered() === DELIVERIES, 80_000).catch((error: Error) => {
        const state = { delivered: delivered(), jobs: db?.prepare('SELECT kind, status, count(*) AS n FROM jobs GROUP BY 1, 2').all(), answered: receiver.answered, held: receiver.held };
        throw new Error(`${error.message}: ${JSON.stringify(state)}\n${service?.output.slice(-10).join('\n') ?? ''}`);
      });

      const rows = db.prepare(
        `SELECT d.id, d.event_pk, d.attempts, group_concat(a.status_code, ',') AS codes, count(a.id) AS logged
         FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id GROUP BY d.id ORDER BY d.seq`).all() as
        { id: string; event_pk: string; attempts: number; codes: string; logged: number }[];
      assert.equal(rows.length, DELIVERIES);
      assert.deepEqual(rows.map((r) => r.event_pk).sort(), [...ids].sort(), 'one delivery per published event, none lost');
      for (const row of rows) {
        assert.equal(row.attempts, 3, `${row.id} took three attempts`);
        assert.equal(row.logged, 3, `${row.id} has three attempts in its log`);
        assert.equal(row.codes, '500,500,200');
      }
      const answered = receiver.requests.filter((r) => r.status !== 0);
      assert.equal(answered.length, DELIVERIES * 3, 'the endpoint answered exactly three attempts per event');
      assert.ok(receiver.requests.every((r) => r.verified), 'every request carried a valid Standard Webhooks signature');
      for (const id of ids) assert.equal(receiver.for(id).filter((r) => r.status === 200).length, 1);
    } finally {
      db?.close();
      if (service) {
        await service.kill('SIGTERM');
      }
      await receiver.close();
    }
  });
});
