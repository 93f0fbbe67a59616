import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { spawnService } from './helpers/child.js';
import { ADMIN_TOKEN, DEMO_SECRET, tempDir, waitFor } from './helpers/service.js';
import { standardEvent, standardHeaders } from './helpers/signing.js';

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
});
