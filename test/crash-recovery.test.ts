import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { spawnService, type ChildService } from './helpers/child.js';
import { ADMIN_TOKEN, DEMO_SECRET, tempDir, waitFor } from './helpers/service.js';
import { standardEvent, standardHeaders } from './helpers/signing.js';

const EVENTS = 300;

describe('crash recovery', () => {
  it('processes every accepted event after a SIGKILL mid-processing and a restart', async () => {
    const dir = tempDir('hookwatch-crash-');
    const recordDb = path.join(dir, 'recorded.db');
    const env = {
      DATA_DIR: path.join(dir, 'data'),
      ADMIN_TOKEN,
      WEBHOOK_SECRET_DEMO: DEMO_SECRET,
      HANDLERS_MODULE: 'test/fixtures/recording-handlers.ts',
      RECORD_DB: recordDb,
      HANDLER_DELAY_MS: '15',
      WORKER_CONCURRENCY: '4',
      JOB_LEASE: '2s',
      JOB_POLL_INTERVAL: '50ms',
    };
    let service: ChildService | null = await spawnService(env);
    const recorded = new Database(recordDb, { readonly: false });
    const count = (sql: string): number => (recorded.prepare(sql).get() as { n: number }).n;
    try {
      const accepted: string[] = [];
      for (let start = 0; start < EVENTS; start += 25) {
        const batch = Array.from({ length: Math.min(25, EVENTS - start) }, () => standardEvent('order.created'));
        const statuses = await Promise.all(batch.map(async ({ id, body }) => {
          const res = await fetch(`${service!.url}/webhooks/demo`, { method: 'POST', headers: standardHeaders(id, body), body });
          if (res.status === 202) accepted.push(id);
          return res.status;
        }));
        assert.deepEqual([...new Set(statuses)], [202]);
      }
      assert.equal(accepted.length, EVENTS);

      // Kill while the workers are part way through the backlog.
      await waitFor('some events processed', () => count('SELECT count(*) AS n FROM recorded') >= 40);
      await service.kill('SIGKILL');
      const processedBeforeCrash = count('SELECT count(*) AS n FROM recorded');
      assert.ok(processedBeforeCrash < EVENTS, `the crash must interrupt the backlog (had ${processedBeforeCrash})`);

      service = await spawnService(env);
      await waitFor('every accepted event recorded', () => count('SELECT count(*) AS n FROM recorded') === EVENTS, 60_000);

      const ids = new Set((recorded.prepare('SELECT event_id FROM recorded').all() as { event_id: string }[]).map((r) => r.event_id));
      assert.deepEqual([...ids].sort(), [...accepted].sort(), 'exactly the accepted events were recorded');
      assert.ok(count('SELECT count(DISTINCT pid) AS n FROM runs') === 2, 'both processes ran handlers');

      const listed = await waitFor('all events processed', async () => {
        const res = await fetch(`${service!.url}/api/v1/events?status=processed&limit=500`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
        const body = (await res.json()) as { data: unknown[] };
        return body.data.length === EVENTS ? body.data : undefined;
      });
      assert.equal(listed.length, EVENTS);
    } finally {
      recorded.close();
      await service?.kill('SIGKILL');
    }
  });
});
