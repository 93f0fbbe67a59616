import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { backoffDelay } from '../src/jobs/backoff.js';
import { Writable } from 'node:stream';
import { SqliteJobQueue } from '../src/jobs/sqlite-queue.js';
import { WorkerPool, type JobRunner } from '../src/jobs/worker.js';
import { createLogger } from '../src/telemetry/logger.js';
import { openDatabase } from '../src/store/db.js';
import { tempDir } from './helpers/service.js';

function setup() {
  let now = 1_000_000;
  const clock = { now: () => now };
  const db = openDatabase({ file: path.join(tempDir(), 'jobs.db'), synchronous: 'normal' });
  const queue = new SqliteJobQueue(db, clock, () => {});
  return { queue, db, advance: (ms: number) => { now += ms; }, clock };
}

/** A queue on real time and an 'events' pool (two slots, 30 s leases unless said) running `run`, not started yet. */
function poolSetup(name: string, pollMs: number, run: JobRunner, slots: { concurrency?: number; leaseMs?: number } = {}) {
  const db = openDatabase({ file: path.join(tempDir(), `${name}.db`), synchronous: 'normal' });
  const queue = new SqliteJobQueue(db, { now: () => Date.now() }, () => {});
  const logger = createLogger({ level: 'error', service: 't', environment: 't', stream: new Writable({ write: (_c, _e, cb) => cb() }) });
  const pool = new WorkerPool(queue, { queue: 'events', concurrency: slots.concurrency ?? 2, leaseMs: slots.leaseMs ?? 30_000, pollMs, logger, run });
  return { db, queue, pool };
}

/** A runner that takes `ms` and records each job's ref in the order they finish. */
function recording(ms: number): { ran: string[]; run: JobRunner } {
  const ran: string[] = [];
  return {
    ran,
    run: async (job) => {
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      ran.push(job.ref);
      return { outcome: 'done' };
    },
  };
}

/** Starts the pool and waits for its first look at the table: until then new jobs queue behind whatever the table holds. */
async function startPool(pool: WorkerPool): Promise<void> {
  pool.start();
  await new Promise((resolve) => setTimeout(resolve, 20));
}

describe('the durable job queue', () => {
  it('hands each due job to exactly one claimant, oldest first', () => {
    const { queue } = setup();
    const ids = [1, 2, 3].map((n) => queue.enqueue({ queue: 'events', kind: 'k', ref: `r${n}`, maxAttempts: 3 }));
    const a = queue.claim('events', 'worker-a', 2, 30_000);
    const b = queue.claim('events', 'worker-b', 2, 30_000);
    assert.deepEqual(a.map((j) => j.id), ids.slice(0, 2));
    assert.deepEqual(b.map((j) => j.id), ids.slice(2));
    assert.equal(a[0]?.attempts, 1);
    assert.equal(a[0]?.leaseOwner, 'worker-a');
    assert.deepEqual(queue.claim('events', 'worker-c', 5, 30_000), []);
  });

  it('gives back the attempt of a job that waited unstarted in a crashed worker\'s batch, so a crash loop dead-letters only its cause', () => {
    const { queue, advance } = setup();
    const crasher = queue.enqueue({ queue: 'events', kind: 'k', ref: 'crasher', maxAttempts: 3 });
    const innocent = queue.enqueue({ queue: 'events', kind: 'k', ref: 'innocent', maxAttempts: 3 });
    const attemptsAfterCrash = (startFirst: boolean) => {
      advance(60_000);
      const claimed = queue.claim('events', `worker-${Math.random()}`, 2, 30_000);
      // The crasher starts first and takes the process down; the innocent job never starts.
      const first = claimed.find((job) => job.id === crasher);
      if (startFirst && first) queue.markStarted(first.id, first.leaseOwner ?? '');
      return new Map(claimed.map((job) => [job.ref, job.attempts]));
    };
    assert.deepEqual([...attemptsAfterCrash(false)], [['crasher', 1], ['innocent', 1]]);
    // A first attempt keeps its count, started or not (its start is not recorded).
    assert.deepEqual([...attemptsAfterCrash(true)], [['crasher', 2], ['innocent', 2]]);
    assert.deepEqual([...attemptsAfterCrash(true)], [['crasher', 3], ['innocent', 2]], 'the started attempt counts, the unstarted one is given back');
    assert.deepEqual([...attemptsAfterCrash(true)], [['crasher', 4], ['innocent', 2]]);
    assert.deepEqual([...attemptsAfterCrash(true)], [['crasher', 5], ['innocent', 2]], 'the crasher passes its limit; the innocent job keeps its attempts');
    assert.equal(queue.get(innocent)?.attempts, 2);

    // A replayed job starts its record afresh: an old start must not make an unstarted claim count.
    advance(60_000);
    const again = queue.claim('events', 'w', 2, 30_000).find((job) => job.id === crasher);
    assert.ok(again);
    assert.ok(queue.deadLetter(crasher, 'w', 'gave up'));
    assert.ok(queue.replay(crasher));
    const claims = () => { advance(60_000); return queue.claim('events', `w-${Math.random()}`, 2, 30_000).find((job) => job.id === crasher)?.attempts; };
    assert.equal(claims(), 1);
    assert.equal(claims(), 2);
    assert.equal(claims(), 2, 'its second attempt never started, so a crash gives it back');
  });

  it('takes back a crashed worker\'s job once its lease expires, and ignores the late claimant', () => {
    const { queue, advance } = setup();
    const id = queue.enqueue({ queue: 'events', kind: 'k', ref: 'r', maxAttempts: 3 });
    assert.equal(queue.claim('events', 'crashed', 1, 30_000).length, 1);
    advance(29_999);
    assert.equal(queue.claim('events', 'other', 1, 30_000).length, 0, 'still leased');
    advance(1);
    const retaken = queue.claim('events', 'other', 1, 30_000);
    assert.equal(retaken[0]?.id, id);
    assert.equal(retaken[0]?.attempts, 2);
    assert.equal(queue.complete(id, 'crashed'), false, 'the old claimant no longer holds it');
    assert.equal(queue.complete(id, 'other'), true);
    assert.equal(queue.get(id), null);
  });

  it('creates a job already leased to a local pool, which nobody else claims until the lease runs out', () => {
    const { queue, advance } = setup();
    const poolA = { lease: () => ({ owner: 'pool-a', leaseMs: 10_000 }), adopt: () => undefined, forgo: () => undefined };
    const { id, leased: job } = queue.enqueueFor({ queue: 'events', kind: 'k', ref: 'r', maxAttempts: 3, requestId: 'req-1' }, poolA);
    assert.ok(job);
    assert.equal(job.id, id);
    assert.deepEqual([job.status, job.attempts, job.leaseOwner, job.requestId], ['running', 1, 'pool-a', 'req-1']);
    assert.deepEqual(queue.get(job.id), job, 'the job handed over is the job stored');
    assert.equal(queue.claim('events', 'pool-b', 5, 10_000).length, 0);
    assert.equal(queue.extendLeases('pool-a', [job.id], 10_000), 1, "the pool's heartbeat covers it");
    advance(10_000);
    const retaken = queue.claim('events', 'pool-b', 5, 10_000);
    assert.deepEqual(retaken.map((j) => [j.id, j.attempts]), [[job.id, 2]], 'a pool that died with it loses it like any claim');
    const plain = queue.enqueueFor({ queue: 'events', kind: 'k', ref: 'r2', maxAttempts: 3 }, null);
    assert.equal(plain.leased, null);
    assert.equal(queue.get(plain.id)?.status, 'pending', 'without workers it is an ordinary pending job');
  });

  it('extends a held lease so a long job is not taken back', () => {
    const { queue, advance } = setup();
    const id = queue.enqueue({ queue: 'events', kind: 'k', ref: 'r', maxAttempts: 3 });
    const other = queue.enqueue({ queue: 'events', kind: 'k', ref: 'r2', maxAttempts: 3 });
    queue.claim('events', 'w', 1, 10_000);
    queue.claim('events', 'v', 1, 10_000);
    advance(8_000);
    assert.equal(queue.extendLeases('w', [id, other], 10_000), 1, 'only the leases w holds');
    assert.equal(queue.extendLeases('w', [], 10_000), 0);
    advance(8_000);
    const taken = queue.claim('events', 'thief', 5, 10_000);
    assert.deepEqual(taken.map((j) => j.id), [other], "v's lease expired, w's was extended");
    assert.equal(queue.extendLeases('thief', [other], 10_000), 1);
    assert.equal(queue.complete(id, 'w'), true);
  });

  it('schedules retries in the future and dead-letters with the last error; replay restores it', () => {
    const { queue, advance } = setup();
    const id = queue.enqueue({ queue: 'deliveries', kind: 'k', ref: 'r', maxAttempts: 3 });
    queue.claim('deliveries', 'w', 1, 30_000);
    assert.equal(queue.retryLater(id, 'w', 1_000_000 + 5_000, 'boom'), true);
    assert.equal(queue.claim('deliveries', 'w', 1, 30_000).length, 0);
    assert.equal(queue.pendingCount('deliveries'), 1);
    advance(5_000);
    assert.equal(queue.claim('deliveries', 'w', 1, 30_000).length, 1);
    assert.equal(queue.deadLetter(id, 'w', 'gave up'), true);
    assert.equal(queue.deadCount(), 1);
    assert.equal(queue.listDead('deliveries', 10, 0)[0]?.lastError, 'gave up');
    assert.equal(queue.listDead('events', 10, 0).length, 0);
    assert.equal(queue.replay(id), true);
    const again = queue.claim('deliveries', 'w', 1, 30_000);
    assert.equal(again[0]?.attempts, 1, 'a replay starts a fresh attempt budget');
  });

  it('counts the dead letters of every queue, and of one', () => {
    const { queue } = setup();
    for (const name of ['events', 'deliveries', 'deliveries', 'notifications'] as const) {
      const id = queue.enqueue({ queue: name, kind: 'k', ref: `r-${name}`, maxAttempts: 1 });
      const [job] = queue.claim(name, 'w', 1, 30_000);
      assert.equal(job?.id, id);
      assert.equal(queue.deadLetter(id, 'w', 'gave up'), true);
    }
    queue.enqueue({ queue: 'deliveries', kind: 'k', ref: 'still-pending', maxAttempts: 1 });
    assert.equal(queue.deadCount(), 4);
    assert.equal(queue.deadCount('deliveries'), 2);
    assert.equal(queue.deadCount('events'), 1);
  });

  it('counts dead letters through the due-job index, without scanning every job (a backlog of retries would make each scrape and health check pay for it)', () => {
    const { queue, db } = setup();
    // The statements the queue prepared, as SQLite will run them.
    const statements = (queue as unknown as { s: Record<string, { source: string }> }).s;
    for (const name of ['deadCount', 'deadCountQueue', 'pending']) {
      const sql = statements[name]?.source ?? '';
      const plan = (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...(sql.includes('?') ? ['deliveries'] : [])) as { detail: string }[]).map((step) => step.detail);
      assert.ok(plan.length > 0 && plan.every((detail) => detail.startsWith('SEARCH jobs USING COVERING INDEX jobs_due')), `${name}: ${plan.join('; ')}`);
    }
  });

  it('gives a released job back without counting the attempt', () => {
    const { queue } = setup();
    const id = queue.enqueue({ queue: 'events', kind: 'k', ref: 'r', maxAttempts: 3, requestId: 'req-1', traceContext: { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' } });
    queue.claim('events', 'w', 1, 30_000);
    assert.equal(queue.release(id, 'w'), true);
    const job = queue.claim('events', 'w2', 1, 30_000)[0];
    assert.equal(job?.attempts, 1);
    assert.equal(job?.requestId, 'req-1');
    assert.equal(job?.traceContext?.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  });

  it('reports how long the most overdue job has waited past its due time, not counting jobs scheduled later', () => {
    const { queue, advance, clock } = setup();
    assert.equal(queue.oldestPendingAgeMs('events'), 0);
    queue.enqueue({ queue: 'events', kind: 'k', ref: 'later', maxAttempts: 3, runAt: clock.now() + 120_000 });
    advance(60_000);
    assert.equal(queue.oldestPendingAgeMs('events'), 0, 'a retry scheduled for later is not overdue');
    queue.enqueue({ queue: 'events', kind: 'k', ref: 'r', maxAttempts: 3 });
    advance(7_000);
    assert.equal(queue.oldestPendingAgeMs('events'), 7_000);
    advance(60_000);
    assert.equal(queue.oldestPendingAgeMs('events'), 67_000, 'from the earlier due time of the two');
  });
});

describe('backoff', () => {
  it('grows exponentially with jitter between half and the whole delay, capped', () => {
    const policy = { baseMs: 1000, factor: 2, maxMs: 10_000 };
    assert.equal(backoffDelay(policy, 1, () => 0), 500);
    assert.equal(backoffDelay(policy, 1, () => 1), 1000);
    assert.equal(backoffDelay(policy, 3, () => 1), 4000);
    assert.equal(backoffDelay(policy, 10, () => 1), 10_000);
    assert.equal(backoffDelay(policy, 10, () => 0), 5_000);
  });
});

describe('the worker pool', () => {
  it('runs handed-over jobs and, beside them, jobs that went through the table, without waiting for a poll', async () => {
    // A poll an hour away: only wake-ups can bring the table's jobs in.
    const { ran, run } = recording(5);
    const { queue, pool } = poolSetup('pool', 3_600_000, run);
    await startPool(pool);
    const handed = (ref: string) => {
      const { leased } = queue.enqueueFor({ queue: 'events', kind: 'k', ref, maxAttempts: 3 }, pool);
      assert.ok(leased, 'the pool has room');
      pool.adopt(leased);
    };
    for (let i = 0; i < 5; i++) handed(`handed-${i}`);
    for (let i = 0; i < 5; i++) queue.enqueue({ queue: 'events', kind: 'k', ref: `table-${i}`, maxAttempts: 3 });
    for (let i = 5; i < 10; i++) handed(`handed-${i}`);
    const deadline = Date.now() + 10_000;
    while (ran.length < 15 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual([...ran].sort(), [...Array.from({ length: 10 }, (_, i) => `handed-${i}`), ...Array.from({ length: 5 }, (_, i) => `table-${i}`)].sort());
    await pool.stop(1_000);
    assert.equal(queue.pendingCount('events'), 0, 'every job completed and deleted');
    assert.equal(pool.lease(), null, 'a stopped pool takes nothing');
  });

  it('claims a retry that falls due while handed-over jobs keep finishing (a wake-up never postpones the poll)', async () => {
    const { ran, run } = recording(2);
    const { queue, pool } = poolSetup('pool-poll', 50, run);
    await startPool(pool);
    queue.enqueue({ queue: 'events', kind: 'k', ref: 'due-later', maxAttempts: 3, runAt: Date.now() + 150 });
    const until = Date.now() + 800;
    for (let i = 0; Date.now() < until && !ran.includes('due-later'); i++) {
      const { leased } = queue.enqueueFor({ queue: 'events', kind: 'k', ref: `handed-${i}`, maxAttempts: 3 }, pool);
      if (leased) pool.adopt(leased);
      await new Promise((resolve) => setTimeout(resolve, 3));
    }
    assert.ok(ran.includes('due-later'), `the due job ran while the pool was busy (ran ${ran.length} jobs)`);
    assert.ok(ran.some((ref) => ref.startsWith('handed-')), 'hand-overs were running meanwhile');
    await pool.stop(1_000);
  });

  it('takes a burst of new jobs bigger than one batch directly, so none of them costs a claim', async () => {
    const { ran, run } = recording(0);
    const { queue, pool } = poolSetup('pool-burst', 3_600_000, run);
    await startPool(pool);
    // 100 requests answered in one turn each bring a job: more than the 32 of a batch.
    const leased = Array.from({ length: 100 }, (_, i) => queue.enqueueFor({ queue: 'events', kind: 'k', ref: `burst-${i}`, maxAttempts: 3 }, pool).leased);
    assert.equal(leased.filter((job) => job === null).length, 0, 'every job of the burst was handed over');
    for (const job of leased) if (job) pool.adopt(job);
    const deadline = Date.now() + 10_000;
    while (ran.length < 100 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(ran, Array.from({ length: 100 }, (_, i) => `burst-${i}`), 'run in the order they came');
    await pool.stop(1_000);
    // Past four batches, a new job goes through the table.
    const { queue: full, pool: busy } = poolSetup('pool-burst-full', 3_600_000, () => new Promise(() => undefined));
    await startPool(busy);
    const taken = Array.from({ length: 200 }, (_, i) => full.enqueueFor({ queue: 'events', kind: 'k', ref: `more-${i}`, maxAttempts: 3 }, busy).leased);
    assert.equal(taken.filter((job) => job !== null).length, 128);
    await busy.stop(100);
  });

  it('claims a retry that falls due while more than a batch of handed-over jobs waits', async () => {
    // Two slots, 5 ms jobs: a burst of 110 and then a stream close to what the slots can run keep
    // more than a batch (32) waiting in the pool for seconds.
    const { ran, run } = recording(5);
    const { queue, pool } = poolSetup('pool-deep', 50, run);
    // In the table before the pool's first look, which finds nothing due yet: new jobs are handed over.
    const dueAt = Date.now() + 200;
    queue.enqueue({ queue: 'events', kind: 'k', ref: 'due-later', maxAttempts: 3, runAt: dueAt });
    await startPool(pool);
    const offeredAt = new Map<string, number>();
    const offer = (ref: string) => {
      offeredAt.set(ref, Date.now());
      const { leased } = queue.enqueueFor({ queue: 'events', kind: 'k', ref, maxAttempts: 3 }, pool);
      if (leased) pool.adopt(leased);
    };
    for (let i = 0; i < 110; i++) offer(`burst-${i}`);
    const until = Date.now() + 3000;
    for (let i = 0; Date.now() < until && !ran.includes('due-later'); i++) {
      for (let j = 0; j < 5; j++) offer(`stream-${i}-${j}`);
      await new Promise((resolve) => setTimeout(resolve, 14));
    }
    await pool.stop(1_000);
    const at = ran.indexOf('due-later');
    assert.ok(at >= 0, `the due job ran while the stream went on (ran ${ran.length} jobs)`);
    // Behind what was waiting in the pool when the poll found it due (at most four batches), not
    // behind the whole stream.
    const newer = ran.slice(0, at).filter((ref) => (offeredAt.get(ref) ?? 0) > dueAt).length;
    assert.ok(newer <= 160, `${newer} jobs offered after it fell due ran before it`);
  });

  it('keeps a job that went to the table from being overtaken by a steady stream of new ones', async () => {
    const ran: number[] = [];
    // One slot and a 3 ms job against a job offered every millisecond: the pool's buffer fills,
    // later jobs go to the table, and the stream goes on while they wait there.
    const { queue, pool } = poolSetup('pool-fair', 3_600_000, async (job) => {
      await new Promise((resolve) => setTimeout(resolve, 3));
      ran.push(Number(job.ref));
      return { outcome: 'done' };
    }, { concurrency: 1 });
    await startPool(pool);
    const total = 300;
    let tabled = 0;
    for (let i = 0; i < total; i++) {
      const { leased } = queue.enqueueFor({ queue: 'events', kind: 'k', ref: String(i), maxAttempts: 3 }, pool);
      if (leased) pool.adopt(leased);
      else tabled += 1;
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const deadline = Date.now() + 20_000;
    while (ran.length < total && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await pool.stop(1_000);
    assert.equal(ran.length, total, 'every job ran');
    assert.ok(tabled > 0, 'some jobs went through the table');
    // How many jobs offered after it ran before it, for the worst-off job.
    const overtaken = Math.max(...ran.map((job, at) => ran.slice(0, at).filter((earlier) => earlier > job).length));
    assert.ok(overtaken <= 32, `no job waits behind more than a batch of newer ones (worst: ${overtaken})`);
  });

  it("saves a job's result and its runner's writes only while it holds the lease", async () => {
    const persisted: string[] = [];
    const { db, queue, pool } = poolSetup('pool-lease', 3_600_000, async (job) => {
      // Another worker takes this job over while it runs (its lease ran out meanwhile).
      if (job.ref === 'stolen') db.prepare("UPDATE jobs SET lease_owner = 'other' WHERE id = ?").run(job.id);
      return { outcome: 'done', persist: () => { persisted.push(job.ref); } };
    });
    await startPool(pool);
    const ids = ['kept', 'stolen'].map((ref) => {
      const { leased } = queue.enqueueFor({ queue: 'events', kind: 'k', ref, maxAttempts: 3 }, pool);
      assert.ok(leased);
      pool.adopt(leased);
      return leased.id;
    });
    const deadline = Date.now() + 5_000;
    while (queue.get(ids[0] as number) !== null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await pool.stop(1_000);
    assert.deepEqual(persisted, ['kept'], 'the writes of the job whose lease was lost are skipped');
    assert.equal(queue.get(ids[0] as number), null, 'the kept job completed');
    assert.equal(queue.get(ids[1] as number)?.leaseOwner, 'other', 'the stolen job stays with its new owner');
  });

  it('records a retry\'s start in the table before its runner runs, so a crash during it keeps the attempt counted', async () => {
    const seen: [number, number][] = [];
    const { db, queue, pool } = poolSetup('pool-started', 20, async (job) => {
      const row = db.prepare('SELECT started_attempt FROM jobs WHERE id = ?').get(job.id) as { started_attempt: number };
      seen.push([job.attempts, row.started_attempt]);
      return job.attempts === 1 ? { outcome: 'retry', runAt: Date.now(), error: 'again' } : { outcome: 'done' };
    });
    await startPool(pool);
    const id = queue.enqueue({ queue: 'events', kind: 'k', ref: 'twice', maxAttempts: 3 });
    const deadline = Date.now() + 5_000;
    while (queue.get(id) !== null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await pool.stop(1_000);
    assert.deepEqual(seen, [[1, 0], [2, 2]], 'a first attempt is not recorded; the second is, before it runs');
  });

  it('dead-letters a job whose runner keeps throwing once its attempts are used up, instead of retrying it for ever', async () => {
    let runs = 0;
    const told: [string, boolean][] = [];
    // A 100 ms lease (the delay before a thrown job runs again) and a 20 ms poll.
    const db = openDatabase({ file: path.join(tempDir(), 'pool-throws.db'), synchronous: 'normal' });
    const queue = new SqliteJobQueue(db, { now: () => Date.now() }, () => {});
    const logger = createLogger({ level: 'error', service: 't', environment: 't', stream: new Writable({ write: (_c, _e, cb) => cb() }) });
    const pool = new WorkerPool(queue, {
      queue: 'events', concurrency: 2, leaseMs: 100, pollMs: 20, logger,
      run: async () => { runs += 1; throw new URIError('URI malformed'); },
      runnerFailed: (job, error, dead) => { told.push([error, dead]); },
    });
    await startPool(pool);
    const id = queue.enqueue({ queue: 'events', kind: 'k', ref: 'bad', maxAttempts: 2 });
    const deadline = Date.now() + 5_000;
    while (queue.get(id)?.status !== 'dead' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await pool.stop(1_000);
    const job = queue.get(id);
    assert.equal(job?.status, 'dead', 'the job ends as a dead letter');
    assert.equal(runs, 2, 'it ran as often as its attempts allow, no more');
    assert.match(job?.lastError ?? '', /runner threw: URI malformed/);
    assert.deepEqual(told, [['URI malformed', false], ['runner threw: URI malformed', true]], 'the job\'s owner records each failure with it');
  });

  it('keeps the leases of the job it runs and of the jobs waiting behind it, however long that takes', async () => {
    const ran: string[] = [];
    // A 300 ms lease, one slot, and a first job that runs for 900 ms: only the heartbeat keeps
    // both the running job and the one waiting behind it from being taken.
    const { queue, pool } = poolSetup('pool-heartbeat', 3_600_000, async (job) => {
      if (job.ref === 'long') await new Promise((resolve) => setTimeout(resolve, 900));
      ran.push(job.ref);
      return { outcome: 'done' };
    }, { concurrency: 1, leaseMs: 300 });
    await startPool(pool);
    for (const ref of ['long', 'behind']) {
      const { leased } = queue.enqueueFor({ queue: 'events', kind: 'k', ref, maxAttempts: 3 }, pool);
      assert.ok(leased);
      pool.adopt(leased);
    }
    const stolen: string[] = [];
    const deadline = Date.now() + 5_000;
    while (ran.length < 2 && Date.now() < deadline) {
      stolen.push(...queue.claim('events', 'thief', 5, 300).map((job) => job.ref));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await pool.stop(1_000);
    assert.deepEqual(stolen, [], 'no lease ran out while the pool held the job');
    assert.deepEqual(ran, ['long', 'behind']);
    assert.equal(queue.pendingCount('events'), 0);
  });
});
