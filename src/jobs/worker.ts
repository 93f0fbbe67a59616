import { randomUUID } from 'node:crypto';
import type { Logger } from '../telemetry/logger.js';
import type { QueueName } from '../telemetry/metrics.js';
import type { Job, JobHandoff, JobQueue } from './queue.js';

/** What running a job decided; the pool applies it while it still holds the lease. */
export type JobResult = (
  | { outcome: 'done' }
  | { outcome: 'retry'; runAt: number; error: string }
  | { outcome: 'dead'; error: string }
) & {
  /** Writes that belong with the outcome; committed in the same transaction, only while the lease is held. */
  persist?: () => void;
};

/** Jobs claimed per claim at least: a claim is a write transaction, so it should serve several jobs. */
const MIN_BATCH = 32;
/**
 * New jobs taken directly, already leased, while this many batches wait here at most. A burst of
 * requests in one turn (50 at once in the receive benchmark) is bigger than one batch: past the
 * limit a job goes through the table, and then every new one does (in order) until claims have
 * caught up, each claim rewriting its jobs' rows (15-20 µs a job).
 */
const HANDOFF_BATCHES = 4;

export type JobRunner = (job: Job) => Promise<JobResult>;

export interface WorkerPoolOptions {
  queue: QueueName;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  run: JobRunner;
  logger: Logger;
  /**
   * What the job's own records become when its runner threw (the runner could not say): called
   * in the transaction that settles the job, `dead` when it was the job's last attempt.
   */
  runnerFailed?: (job: Job, error: string, dead: boolean) => void;
}

/**
 * Claims due jobs of one queue in batches and runs up to `concurrency` at once. A batch may hold
 * more jobs than there are free slots: the rest wait here, leased to this pool, so one claim (a
 * write transaction) serves many jobs. One heartbeat extends the leases of every job this pool
 * holds, so only a crashed (or hung past its lease) pool loses its jobs.
 */
export class WorkerPool implements JobHandoff {
  readonly owner = `${process.pid}-${randomUUID().slice(0, 8)}`;
  private readonly running = new Map<number, Promise<void>>();
  /** Results of finished jobs waiting for their commit. */
  private readonly settling = new Set<Promise<void>>();
  /** Claimed and leased to this pool, not started yet. */
  private waiting: Job[] = [];
  private readonly batchSize: number;
  private timer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private stopped = true;
  private pumping = false;
  private wakeRequested = false;
  /**
   * Whether the table may hold due jobs this pool has not claimed: set when one is enqueued there
   * (not handed over) or a claim came back full, cleared when a claim comes back short. Waking
   * claims only then; the periodic poll claims regardless (retries falling due, expired leases).
   * While it is set, no new job is handed over (see lease()).
   */
  private mayHaveDue = true;
  /** When the next claim is due whatever the flag says; a wake-up must not push it back. */
  private nextPollAt = 0;
  /** Leases given by lease() whose jobs have not been adopted yet (their commit is pending). */
  private granted = 0;
  /** Adopted this turn, joining `waiting` on the next. */
  private adopted: Job[] = [];

  constructor(private readonly jobs: JobQueue, private readonly options: WorkerPoolOptions) {
    this.batchSize = Math.max(options.concurrency, MIN_BATCH);
    jobs.onEnqueue((queue) => {
      if (queue !== options.queue) return;
      this.mayHaveDue = true;
      this.wake();
    });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.heartbeat = setInterval(() => this.extendLeases(), Math.max(100, Math.floor(this.options.leaseMs / 3)));
    this.heartbeat.unref();
    this.schedule(0);
  }

  get activeCount(): number {
    return this.running.size;
  }

  /**
   * How long the most overdue job this pool has claimed but not started has been due (0: none).
   * Claimed jobs are 'running' in the table, so the table's own age misses them: behind busy
   * slots a whole batch can wait here.
   */
  waitingAgeMs(now: number): number {
    let oldest = Infinity;
    for (const job of this.waiting) oldest = Math.min(oldest, job.runAt);
    for (const job of this.adopted) oldest = Math.min(oldest, job.runAt);
    return oldest === Infinity ? 0 : Math.max(0, now - oldest);
  }

  lease(): { owner: string; leaseMs: number } | null {
    if (this.stopped || this.waiting.length + this.adopted.length + this.granted >= this.batchSize * HANDOFF_BATCHES) return null;
    // While older jobs may be waiting in the table, a new job queues behind them there: handing it
    // over would let a steady stream of new jobs keep those waiting until the stream stops.
    if (this.mayHaveDue) return null;
    this.granted += 1;
    return { owner: this.owner, leaseMs: this.options.leaseMs };
  }

  forgo(): void {
    this.granted = Math.max(0, this.granted - 1);
  }

  adopt(job: Job): void {
    this.granted = Math.max(0, this.granted - 1);
    if (this.stopped) {
      this.jobs.release(job.id, this.owner);
      return;
    }
    // Started on a later turn, not now: jobs are adopted on the way back from their commit, and a
    // handler's synchronous start would otherwise run before the 202 of its request is written.
    // Nothing may start them earlier either (a poll or a finishing job fills from `waiting`).
    this.adopted.push(job);
    if (this.adopted.length > 1) return;
    setImmediate(() => {
      const adopted = this.adopted;
      this.adopted = [];
      if (this.stopped) return;
      this.waiting.push(...adopted);
      this.fill();
    });
  }

  /** Asks the pool to look for work now (a job was enqueued or became due). */
  wake(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(0);
  }

  /**
   * Stops claiming, gives back the jobs that have not started, waits for running jobs up to the
   * deadline, then gives back the leases of those still running so another process can take them at once.
   */
  async stop(deadlineMs: number): Promise<{ unfinished: number }> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const notStarted = [...this.waiting, ...this.adopted];
    this.waiting = [];
    this.adopted = [];
    for (const job of notStarted) this.jobs.release(job.id, this.owner);
    const all = Promise.allSettled([...this.running.values()]);
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((resolve) => { timeout = setTimeout(resolve, deadlineMs); })]);
    clearTimeout(timeout);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    const unfinished = [...this.running.keys()];
    for (const id of unfinished) this.jobs.release(id, this.owner);
    await Promise.all(this.settling);
    return { unfinished: unfinished.length };
  }

  private extendLeases(): void {
    // Only the jobs this pool still holds: one whose result failed to save must be let go.
    const held = [...this.running.keys(), ...this.waiting.map((job) => job.id), ...this.adopted.map((job) => job.id)];
    if (held.length === 0) return;
    try {
      this.jobs.extendLeases(this.owner, held, this.options.leaseMs);
    } catch (error) {
      this.options.logger.error('extending job leases failed', { queue: this.options.queue, error: (error as Error).message });
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.pump(), delayMs);
    this.timer.unref();
  }

  private pump(): void {
    this.timer = null;
    if (this.stopped) return;
    const now = Date.now();
    const polled = now >= this.nextPollAt;
    if (polled) {
      this.nextPollAt = now + this.options.pollMs;
      // Leases granted to a transaction that rolled back are never adopted; the poll forgets them.
      this.granted = 0;
    }
    this.pumping = true;
    try {
      // Jobs handed over directly (adopt) may keep the buffer from emptying: claiming whenever it
      // has room lets jobs that went through the table (retries, overflow) take their turn.
      // Measured against the hand-over limit, not one batch: with more than a batch waiting, the
      // poll must still bring in retries falling due and jobs that went through the table, or a
      // steady stream of new jobs handed over would keep them waiting until it stops.
      const room = Math.min(this.batchSize, this.batchSize * HANDOFF_BATCHES - this.waiting.length - this.adopted.length);
      if (room > 0 && (this.mayHaveDue || polled)) {
        const claimed = this.jobs.claim(this.options.queue, this.owner, room, this.options.leaseMs);
        this.waiting.push(...claimed);
        // A full batch means more may be due: look again once this batch is under way.
        this.mayHaveDue = claimed.length === room;
        if (this.mayHaveDue) this.wakeRequested = true;
      }
      this.fill();
    } catch (error) {
      this.options.logger.error('job claim failed', { queue: this.options.queue, error: (error as Error).message });
    } finally {
      this.pumping = false;
    }
    if (this.running.size < this.options.concurrency && this.wakeRequested) {
      this.wakeRequested = false;
      this.schedule(0);
    } else {
      this.schedule(Math.max(0, this.nextPollAt - Date.now()));
    }
  }

  /** Starts waiting jobs while slots are free. */
  private fill(): void {
    while (this.running.size < this.options.concurrency && this.waiting.length > 0) this.launch(this.waiting.shift() as Job);
  }

  private launch(job: Job): void {
    // Committed before the run: should the process die during it, the attempt stays counted
    // (a claim alone does not count once a job has been claimed before).
    if (job.attempts > 1) {
      try {
        this.jobs.markStarted(job.id, this.owner);
      } catch (error) {
        // Not run unrecorded: should it take the process down, the next claim would give its
        // attempt back, and again, for ever. Its lease runs out and it is claimed again later.
        this.options.logger.error('recording a job start failed; the job waits for its lease to run out', { job_id: job.id, kind: job.kind, error: (error as Error).message });
        return;
      }
    }
    const task = this.execute(job).finally(() => {
      this.running.delete(job.id);
      if (this.stopped) return;
      if (this.waiting.length > 0) this.fill();
      else this.wake();
    });
    this.running.set(job.id, task);
  }

  private async execute(job: Job): Promise<void> {
    let result: JobResult;
    try {
      result = await this.options.run(job);
    } catch (error) {
      // A runner that throws is a bug in the runner; keep the job and try again later, but no more
      // often than its attempts allow: then it is a dead letter, where an operator sees it and can
      // replay it once the cause is fixed, instead of an error line every lease for ever.
      const message = (error as Error).message;
      const dead = job.attempts >= job.maxAttempts;
      const persist = () => this.options.runnerFailed?.(job, dead ? `runner threw: ${message}` : message, dead);
      result = dead
        ? { outcome: 'dead', error: `runner threw: ${message}`, persist }
        : { outcome: 'retry', runAt: Date.now() + this.options.leaseMs, error: message, persist };
      this.options.logger.error('job runner threw', { job_id: job.id, kind: job.kind, attempt: job.attempts, error: message });
    }
    // The slot frees as soon as the result is queued for the next commit rather than once it has
    // committed: the job stays leased to this pool until then, so no one else can run it meanwhile.
    const settled = this.settle(job, result);
    this.settling.add(settled);
    void settled.finally(() => this.settling.delete(settled));
  }

  /**
   * The job settles with what its runner recorded, sharing the commit of its turn of the event
   * loop; with the lease lost, nothing is written (its runner's writes are skipped, not rolled
   * back with the rest of the group). Never rejects.
   */
  private async settle(job: Job, result: JobResult): Promise<void> {
    try {
      const held = await this.jobs.grouped(() => {
        const kept =
          result.outcome === 'done' ? this.jobs.complete(job.id, this.owner)
          : result.outcome === 'retry' ? this.jobs.retryLater(job.id, this.owner, result.runAt, result.error)
          : this.jobs.deadLetter(job.id, this.owner, result.error);
        if (kept) result.persist?.();
        return kept;
      });
      // Given back by stop() past the shutdown deadline: the job runs again after the restart.
      if (!held && this.stopped) this.options.logger.info('job given back at shutdown; its result is not saved and it runs again', { job_id: job.id, kind: job.kind });
      else if (!held) this.options.logger.warn('job lease was lost before its result was saved', { job_id: job.id, kind: job.kind });
    } catch (error) {
      this.options.logger.error('saving a job result failed; the job will run again once its lease runs out', { job_id: job.id, kind: job.kind, error: (error as Error).message });
    }
  }
}
