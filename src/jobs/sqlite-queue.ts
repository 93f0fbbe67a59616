import type { Clock } from '../clock.js';
import { groupCommitOf, timed, type Db, type QueryTimer } from '../store/db.js';
import { QUEUES, type QueueName } from '../telemetry/metrics.js';
import type { Job, JobHandoff, JobQueue, JobStatus, NewJob } from './queue.js';

interface JobRow {
  id: number;
  queue: QueueName;
  kind: string;
  ref: string;
  payload: string | null;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  run_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  last_error: string | null;
  request_id: string | null;
  trace_context: string | null;
  created_at: number;
  updated_at: number;
}

function toJob(row: JobRow): Job {
  return {
    id: row.id,
    queue: row.queue,
    kind: row.kind,
    ref: row.ref,
    payload: row.payload ? (JSON.parse(row.payload) as Record<string, unknown>) : null,
    status: row.status,
    attempts: row.attempts,
    maxAttempts: row.max_attempts,
    runAt: row.run_at,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    lastError: row.last_error,
    requestId: row.request_id,
    traceContext: row.trace_context ? (JSON.parse(row.trace_context) as Record<string, string>) : null,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/**
 * The job queue in the same SQLite file as the events, so accepting an event and
 * enqueueing its job commit together. Completed jobs are deleted (the history lives
 * with the event or delivery), which keeps the due-job index small.
 */
export class SqliteJobQueue implements JobQueue {
  private readonly listeners: ((queue: QueueName) => void)[] = [];
  private readonly s;

  constructor(private readonly db: Db, private readonly clock: Clock, private readonly timer: QueryTimer) {
    this.s = {
      insert: db.prepare<Omit<JobRow, 'id'>>(
        `INSERT INTO jobs (queue, kind, ref, payload, status, attempts, max_attempts, run_at, lease_owner, lease_expires_at, last_error, request_id, trace_context, created_at, updated_at)
         VALUES (@queue, @kind, @ref, @payload, @status, @attempts, @max_attempts, @run_at, @lease_owner, @lease_expires_at, @last_error, @request_id, @trace_context, @created_at, @updated_at)`),
      // Expired leases go back to pending first, so a crashed worker's jobs are taken back.
      // Running jobs are few (a batch and the running slots per pool), so scanning them by (queue, status) is cheap
      // and spares an index that every claim would have to rewrite.
      // A claim counts an attempt before the job starts: a job that waited in a crashed worker's
      // batch never ran, and gets that attempt back, or a crash loop would dead-letter the whole
      // batch behind the job that caused it. Starts are recorded (markStarted) only from a job's
      // second attempt on, where a crash could already have cost one; a first attempt keeps its
      // count, so a job that crashes the process as it starts still moves towards its limit.
      // Whatever resets or lowers attempts (release, replay, runNow) resets the record with them.
      reclaim: db.prepare<{ queue: QueueName; now: number }>(
        `UPDATE jobs SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL, updated_at = @now,
           attempts = CASE WHEN attempts > 1 AND started_attempt < attempts THEN attempts - 1 ELSE attempts END
         WHERE queue = @queue AND status = 'running' AND lease_expires_at <= @now`),
      markStarted: db.prepare<{ id: number; owner: string }>(
        `UPDATE jobs SET started_attempt = attempts WHERE id = @id AND lease_owner = @owner AND status = 'running'`),
      claim: db.prepare<{ queue: QueueName; owner: string; until: number; now: number; limit: number }, JobRow>(
        `UPDATE jobs SET status = 'running', lease_owner = @owner, lease_expires_at = @until, attempts = attempts + 1, updated_at = @now
         WHERE id IN (SELECT id FROM jobs WHERE queue = @queue AND status = 'pending' AND run_at <= @now ORDER BY run_at, id LIMIT @limit)
         RETURNING *`),
      extend: db.prepare<{ ids: string; owner: string; until: number; now: number }>(
        `UPDATE jobs SET lease_expires_at = @until, updated_at = @now
         WHERE id IN (SELECT value FROM json_each(@ids)) AND lease_owner = @owner AND status = 'running'`),
      complete: db.prepare<{ id: number; owner: string }>(
        `DELETE FROM jobs WHERE id = @id AND lease_owner = @owner AND status = 'running'`),
      retry: db.prepare<{ id: number; owner: string; runAt: number; error: string; now: number }>(
        `UPDATE jobs SET status = 'pending', run_at = @runAt, last_error = @error, lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
         WHERE id = @id AND lease_owner = @owner AND status = 'running'`),
      dead: db.prepare<{ id: number; owner: string; error: string; now: number }>(
        `UPDATE jobs SET status = 'dead', last_error = @error, lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
         WHERE id = @id AND lease_owner = @owner AND status = 'running'`),
      release: db.prepare<{ id: number; owner: string; now: number }>(
        `UPDATE jobs SET status = 'pending', attempts = max(attempts - 1, 0), started_attempt = 0, lease_owner = NULL, lease_expires_at = NULL, updated_at = @now
         WHERE id = @id AND lease_owner = @owner AND status = 'running'`),
      get: db.prepare<[number], JobRow>('SELECT * FROM jobs WHERE id = ?'),
      listDeadAll: db.prepare<[number, number], JobRow>(
        "SELECT * FROM jobs WHERE status = 'dead' AND id > ? ORDER BY id LIMIT ?"),
      listDeadQueue: db.prepare<[QueueName, number, number], JobRow>(
        "SELECT * FROM jobs WHERE status = 'dead' AND queue = ? AND id > ? ORDER BY id LIMIT ?"),
      replay: db.prepare<{ id: number; now: number }>(
        `UPDATE jobs SET status = 'pending', attempts = 0, started_attempt = 0, run_at = @now, updated_at = @now WHERE id = @id AND status = 'dead'`),
      runNow: db.prepare<{ id: number; now: number }>(
        `UPDATE jobs SET attempts = 0, started_attempt = 0, run_at = @now, updated_at = @now WHERE id = @id AND status = 'pending'`),
      deleteDead: db.prepare<[number]>("DELETE FROM jobs WHERE id = ? AND status = 'dead'"),
      discard: db.prepare<[number]>('DELETE FROM jobs WHERE id = ?'),
      pending: db.prepare<[QueueName], { n: number }>(
        "SELECT count(*) AS n FROM jobs WHERE queue = ? AND status IN ('pending', 'running')"),
      // Through the due-job index, one queue at a time: `status = 'dead'` alone scanned all of the
      // index, 3.3 ms per 100,000 jobs (a backlog of retries) at every scrape and health check.
      deadCount: db.prepare<[], { n: number }>(`SELECT count(*) AS n FROM jobs WHERE queue IN (${QUEUES.map((queue) => `'${queue}'`).join(', ')}) AND status = 'dead'`),
      deadCountQueue: db.prepare<[QueueName], { n: number }>("SELECT count(*) AS n FROM jobs WHERE status = 'dead' AND queue = ?"),
      oldest: db.prepare<[QueueName, number], { at: number | null }>(
        "SELECT min(run_at) AS at FROM jobs WHERE queue = ? AND status = 'pending' AND run_at <= ?"),
    };
  }

  enqueue(job: NewJob): number {
    const row = this.insert(job, null);
    this.notify(job.queue);
    return row.id;
  }

  enqueueFor(job: NewJob, workers: JobHandoff | null): { id: number; leased: Job | null } {
    const lease = workers?.lease() ?? null;
    const row = this.insert(job, lease);
    if (!lease) this.notify(job.queue);
    return { id: row.id, leased: lease ? toJob(row) : null };
  }

  /** One insert for both kinds of job: pending, or already claimed by `lease` (its first attempt under way). */
  private insert(job: NewJob, lease: { owner: string; leaseMs: number } | null): JobRow {
    const now = this.clock.now();
    const row: Omit<JobRow, 'id'> = {
      queue: job.queue, kind: job.kind, ref: job.ref, payload: job.payload ? JSON.stringify(job.payload) : null,
      status: lease ? 'running' : 'pending', attempts: lease ? 1 : 0, max_attempts: job.maxAttempts, run_at: job.runAt ?? now,
      lease_owner: lease?.owner ?? null, lease_expires_at: lease ? now + lease.leaseMs : null, last_error: null,
      request_id: job.requestId ?? null,
      trace_context: job.traceContext && Object.keys(job.traceContext).length > 0 ? JSON.stringify(job.traceContext) : null,
      created_at: now, updated_at: now,
    };
    const result = timed(this.timer, 'job_enqueue', () => this.s.insert.run(row));
    return { id: Number(result.lastInsertRowid), ...row };
  }

  /** Listeners run after the caller's transaction commits (or at least after this tick), so a woken worker finds the row. */
  private notify(queue: QueueName): void {
    if (this.listeners.length > 0) queueMicrotask(() => { for (const listener of this.listeners) listener(queue); });
  }

  claim(queue: QueueName, owner: string, limit: number, leaseMs: number): Job[] {
    const now = this.clock.now();
    return timed(this.timer, 'job_claim', () =>
      this.db.transaction(() => {
        this.s.reclaim.run({ queue, now });
        return this.s.claim.all({ queue, owner, until: now + leaseMs, now, limit });
      })(),
    ).map(toJob);
  }

  extendLeases(owner: string, ids: readonly number[], leaseMs: number): number {
    const now = this.clock.now();
    return timed(this.timer, 'job_extend', () => this.s.extend.run({ ids: JSON.stringify(ids), owner, until: now + leaseMs, now }).changes);
  }

  complete(id: number, owner: string): boolean {
    return timed(this.timer, 'job_complete', () => this.s.complete.run({ id, owner }).changes === 1);
  }

  retryLater(id: number, owner: string, runAt: number, error: string): boolean {
    return timed(this.timer, 'job_retry', () => this.s.retry.run({ id, owner, runAt, error, now: this.clock.now() }).changes === 1);
  }

  deadLetter(id: number, owner: string, error: string): boolean {
    return timed(this.timer, 'job_dead_letter', () => this.s.dead.run({ id, owner, error, now: this.clock.now() }).changes === 1);
  }

  markStarted(id: number, owner: string): void {
    timed(this.timer, 'job_start', () => this.s.markStarted.run({ id, owner }));
  }

  release(id: number, owner: string): boolean {
    return this.s.release.run({ id, owner, now: this.clock.now() }).changes === 1;
  }

  get(id: number): Job | null {
    const row = this.s.get.get(id);
    return row ? toJob(row) : null;
  }

  listDead(queue: QueueName | null, limit: number, afterId: number): Job[] {
    const rows = queue ? this.s.listDeadQueue.all(queue, afterId, limit) : this.s.listDeadAll.all(afterId, limit);
    return rows.map(toJob);
  }

  replay(id: number): boolean {
    return this.madeDue(id, this.s.replay.run({ id, now: this.clock.now() }).changes === 1);
  }

  runNow(id: number): boolean {
    return this.madeDue(id, this.s.runNow.run({ id, now: this.clock.now() }).changes === 1);
  }

  /** Wakes the workers of a job that just became due. */
  private madeDue(id: number, changed: boolean): boolean {
    const job = changed ? this.get(id) : null;
    if (job) for (const listener of this.listeners) listener(job.queue);
    return changed;
  }

  deleteDead(id: number): boolean {
    return this.s.deleteDead.run(id).changes === 1;
  }

  discard(id: number): boolean {
    return this.s.discard.run(id).changes === 1;
  }

  pendingCount(queue: QueueName): number {
    return timed(this.timer, 'job_count', () => this.s.pending.get(queue)?.n ?? 0);
  }

  deadCount(queue: QueueName | null = null): number {
    return timed(this.timer, 'job_count', () => (queue ? this.s.deadCountQueue.get(queue) : this.s.deadCount.get())?.n ?? 0);
  }

  oldestPendingAgeMs(queue: QueueName): number {
    const now = this.clock.now();
    const at = this.s.oldest.get(queue, now)?.at;
    return at === null || at === undefined ? 0 : Math.max(0, now - at);
  }

  grouped<T>(fn: () => T): Promise<T> {
    return groupCommitOf(this.db).run(fn);
  }

  onEnqueue(listener: (queue: QueueName) => void): void {
    this.listeners.push(listener);
  }
}
