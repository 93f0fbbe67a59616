import { randomUUID } from 'node:crypto';
import type { Logger } from '../telemetry/logger.js';
import type { QueueName } from '../telemetry/metrics.js';
import type { Job, JobQueue } from './queue.js';

/** What running a job decided; the pool applies it while it still holds the lease. */
export type JobResult = (
  | { outcome: 'done' }
  | { outcome: 'retry'; runAt: number; error: string }
  | { outcome: 'dead'; error: string }
) & {
  /** Writes that belong with the outcome; committed in the same transaction, only while the lease is held. */
  persist?: () => void;
};

class LeaseLost extends Error {}

export type JobRunner = (job: Job) => Promise<JobResult>;

export interface WorkerPoolOptions {
  queue: QueueName;
  concurrency: number;
  leaseMs: number;
  pollMs: number;
  run: JobRunner;
  logger: Logger;
}

/**
 * Claims due jobs of one queue and runs up to `concurrency` at once. Leases are extended
 * while a job runs, so only a crashed (or hung past its lease) worker loses its jobs.
 */
export class WorkerPool {
  readonly owner = `${process.pid}-${randomUUID().slice(0, 8)}`;
  private readonly running = new Map<number, Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private stopped = true;
  private pumping = false;
  private wakeRequested = false;

  constructor(private readonly jobs: JobQueue, private readonly options: WorkerPoolOptions) {
    jobs.onEnqueue((queue) => {
      if (queue === options.queue) this.wake();
    });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.schedule(0);
  }

  get activeCount(): number {
    return this.running.size;
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
   * Stops claiming, waits for running jobs up to the deadline, then gives back the leases
   * of the jobs still running so another process can take them at once.
   */
  async stop(deadlineMs: number): Promise<{ unfinished: number }> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const all = Promise.allSettled([...this.running.values()]);
    let timeout: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((resolve) => { timeout = setTimeout(resolve, deadlineMs); })]);
    clearTimeout(timeout);
    const unfinished = [...this.running.keys()];
    for (const id of unfinished) this.jobs.release(id, this.owner);
    return { unfinished: unfinished.length };
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
    this.pumping = true;
    try {
      const free = this.options.concurrency - this.running.size;
      if (free > 0) {
        const claimed = this.jobs.claim(this.options.queue, this.owner, free, this.options.leaseMs);
        for (const job of claimed) this.launch(job);
        // A full batch means more may be due: look again as soon as a slot frees.
        if (claimed.length === free) this.wakeRequested = true;
      }
    } catch (error) {
      this.options.logger.error('job claim failed', { queue: this.options.queue, error: (error as Error).message });
    } finally {
      this.pumping = false;
    }
    if (this.running.size < this.options.concurrency && this.wakeRequested) {
      this.wakeRequested = false;
      this.schedule(0);
    } else {
      this.schedule(this.options.pollMs);
    }
  }

  private launch(job: Job): void {
    const heartbeat = setInterval(() => {
      if (!this.jobs.extendLease(job.id, this.owner, this.options.leaseMs)) clearInterval(heartbeat);
    }, Math.max(100, Math.floor(this.options.leaseMs / 3)));
    heartbeat.unref();
    const task = this.execute(job).finally(() => {
      clearInterval(heartbeat);
      this.running.delete(job.id);
      if (!this.stopped) this.wake();
    });
    this.running.set(job.id, task);
  }

  private async execute(job: Job): Promise<void> {
    let result: JobResult;
    try {
      result = await this.options.run(job);
    } catch (error) {
      // A runner that throws is a bug in the runner; keep the job and try again later.
      result = { outcome: 'retry', runAt: Date.now() + this.options.leaseMs, error: (error as Error).message };
      this.options.logger.error('job runner threw', { job_id: job.id, kind: job.kind, error: (error as Error).message });
    }
    // The job settles with what its runner recorded, sharing the commit of its turn of the
    // event loop; a lost lease rolls back this job alone.
    try {
      await this.jobs.grouped(() => {
        const held =
          result.outcome === 'done' ? this.jobs.complete(job.id, this.owner)
          : result.outcome === 'retry' ? this.jobs.retryLater(job.id, this.owner, result.runAt, result.error)
          : this.jobs.deadLetter(job.id, this.owner, result.error);
        if (!held) throw new LeaseLost();
        result.persist?.();
      });
    } catch (error) {
      if (error instanceof LeaseLost) this.options.logger.warn('job lease was lost before its result was saved', { job_id: job.id, kind: job.kind });
      else this.options.logger.error('saving a job result failed; the job will run again', { job_id: job.id, kind: job.kind, error: (error as Error).message });
    }
  }
}
