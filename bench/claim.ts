import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SqliteJobQueue } from '../src/jobs/sqlite-queue.js';
import { Checkpointer } from '../src/store/checkpointer.js';
import { openDatabase } from '../src/store/db.js';
import { round, summarize } from './lib/stats.js';

export interface ClaimResult {
  backlog: number;
  emptyMicros: ReturnType<typeof summarize>;
  backlogMicros: ReturnType<typeof summarize>;
  ratio: number;
}

/** Microseconds per claim+complete of one due job, median of `repeats` passes over `jobs` jobs. */
async function measure(backlog: number, jobs: number, repeats: number): Promise<number[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hookwatch-claim-'));
  let now = 1_700_000_000_000;
  const clock = { now: () => now };
  const file = path.join(dir, 'claim.db');
  const db = openDatabase({ file, synchronous: 'normal' });
  // As in the service: checkpoints run on their own thread.
  const checkpointer = new Checkpointer(file);
  const queue = new SqliteJobQueue(db, clock, () => {});
  // The backlog: retries scheduled two minutes out, as the default retry schedule leaves them.
  db.transaction(() => {
    for (let i = 0; i < backlog; i++) queue.enqueue({ queue: 'deliveries', kind: 'delivery.attempt', ref: `dlv_${i}`, maxAttempts: 4, runAt: now + 120_000 + (i % 1000) });
  })();
  const passes: number[] = [];
  for (let r = 0; r < repeats; r++) {
    db.transaction(() => {
      for (let i = 0; i < jobs; i++) queue.enqueue({ queue: 'deliveries', kind: 'delivery.attempt', ref: `due_${r}_${i}`, maxAttempts: 4, runAt: now - 1 });
    })();
    const start = process.hrtime.bigint();
    for (let i = 0; i < jobs; i++) {
      const [job] = queue.claim('deliveries', 'bench', 1, 30_000);
      if (!job) throw new Error('no due job found');
      queue.complete(job.id, 'bench');
    }
    passes.push(Number(process.hrtime.bigint() - start) / 1000 / jobs);
    now += 1;
  }
  await checkpointer.stop();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return passes;
}

export async function benchClaim(backlog: number, log: (line: string) => void): Promise<ClaimResult> {
  const empty = summarize(await measure(0, 2000, 7));
  log(`  empty backlog: ${round(empty.median)} µs per claim+complete`);
  const loaded = summarize(await measure(backlog, 2000, 7));
  log(`  ${backlog} scheduled retries: ${round(loaded.median)} µs per claim+complete`);
  return { backlog, emptyMicros: empty, backlogMicros: loaded, ratio: loaded.median / empty.median };
}
