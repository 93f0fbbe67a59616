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

interface ClaimScene {
  /** Microseconds per claim+complete over `jobs` newly due jobs. */
  pass(jobs: number): number;
  close(): Promise<void>;
}

/** A queue in its own database, holding `backlog` retries scheduled two minutes out, as the default retry schedule leaves them. */
async function openScene(backlog: number): Promise<ClaimScene> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hookwatch-claim-'));
  let now = 1_700_000_000_000;
  const clock = { now: () => now };
  const file = path.join(dir, 'claim.db');
  const db = openDatabase({ file, synchronous: 'normal' });
  // As in the service: checkpoints run on their own thread.
  const checkpointer = new Checkpointer(file);
  const queue = new SqliteJobQueue(db, clock, () => {});
  const close = async () => {
    await checkpointer.stop();
    db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    db.transaction(() => {
      for (let i = 0; i < backlog; i++) queue.enqueue({ queue: 'deliveries', kind: 'delivery.attempt', ref: `dlv_${i}`, maxAttempts: 4, runAt: now + 120_000 + (i % 1000) });
    })();
  } catch (error) {
    await close();
    throw error;
  }
  let round_ = 0;
  return {
    close,
    pass(jobs) {
      round_ += 1;
      db.transaction(() => {
        for (let i = 0; i < jobs; i++) queue.enqueue({ queue: 'deliveries', kind: 'delivery.attempt', ref: `due_${round_}_${i}`, maxAttempts: 4, runAt: now - 1 });
      })();
      const start = process.hrtime.bigint();
      for (let i = 0; i < jobs; i++) {
        const [job] = queue.claim('deliveries', 'bench', 1, 30_000);
        if (!job) throw new Error('no due job found');
        queue.complete(job.id, 'bench');
      }
      now += 1;
      return Number(process.hrtime.bigint() - start) / 1000 / jobs;
    },
  };
}

/**
 * Passes over the empty queue and the loaded one alternate (after one warm-up pass each), so
 * both see the same phases of a machine whose speed drifts within a minute.
 */
export async function benchClaim(backlog: number, log: (line: string) => void): Promise<ClaimResult> {
  const scenes: ClaimScene[] = [];
  try {
    const empty = await openScene(0);
    scenes.push(empty);
    const loaded = await openScene(backlog);
    scenes.push(loaded);
    empty.pass(2000);
    loaded.pass(2000);
    const emptyPasses: number[] = [];
    const loadedPasses: number[] = [];
    for (let r = 0; r < 7; r++) {
      emptyPasses.push(empty.pass(2000));
      loadedPasses.push(loaded.pass(2000));
    }
    const emptyMicros = summarize(emptyPasses);
    const backlogMicros = summarize(loadedPasses);
    log(`  empty backlog: ${round(emptyMicros.median)} µs per claim+complete`);
    log(`  ${backlog} scheduled retries: ${round(backlogMicros.median)} µs per claim+complete`);
    return { backlog, emptyMicros, backlogMicros, ratio: backlogMicros.median / emptyMicros.median };
  } finally {
    await Promise.allSettled(scenes.map((scene) => scene.close()));
  }
}
