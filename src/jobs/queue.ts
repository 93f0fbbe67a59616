import type { QueueName } from '../telemetry/metrics.js';

export type JobStatus = 'pending' | 'running' | 'dead';

export interface Job {
  id: number;
  queue: QueueName;
  kind: string;
  /** What the job works on: an event id, a delivery id. */
  ref: string;
  payload: Record<string, unknown> | null;
  status: JobStatus;
  /** Runs started so far, this one included once claimed. */
  attempts: number;
  maxAttempts: number;
  runAt: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  lastError: string | null;
  requestId: string | null;
  /** W3C trace context carrier of the request that created the job, so the worker joins its trace. */
  traceContext: Record<string, string> | null;
  createdAt: number;
  updatedAt: number;
}

export interface NewJob {
  queue: QueueName;
  kind: string;
  ref: string;
  payload?: Record<string, unknown>;
  maxAttempts: number;
  runAt?: number;
  requestId?: string | null;
  traceContext?: Record<string, string> | null;
}

/** A worker pool of this process that takes new jobs directly, already leased to it. */
export interface JobHandoff {
  /** The lease to give a new job, or null when the pool is stopped or has enough work waiting. */
  lease(): { owner: string; leaseMs: number } | null;
  /** Takes a job created with that lease, once the transaction that created it has committed. */
  adopt(job: Job): void;
  /** Gives back a lease whose job was discarded in its transaction: it will never be adopted. */
  forgo(): void;
}

/** What enqueueing code needs: producers depend on this, not on the whole queue. */
export interface JobScheduler {
  /** Adds a job; call inside the same transaction as the rows it refers to. */
  enqueue(job: NewJob): number;
  /**
   * Adds a job, already claimed by `workers` (its first attempt under way) when they have room;
   * call inside the transaction, and hand `leased` to workers.adopt() after the commit. Should the
   * process die first, the lease runs out and the job is claimed like any other.
   */
  enqueueFor(job: NewJob, workers: JobHandoff | null): { id: number; leased: Job | null };
  /** Removes a job enqueued earlier in the same transaction whose work turned out to exist already. */
  discard(id: number): boolean;
}

/**
 * The durable job queue. A job is claimed by one atomic statement that records who holds it
 * and until when; complete, retry and dead-letter apply only while the claimant still holds it;
 * an expired claim is taken back by the next claim.
 */
export interface JobQueue extends JobScheduler {
  claim(queue: QueueName, owner: string, limit: number, leaseMs: number): Job[];
  /** Extends the leases of these jobs that `owner` still holds; returns how many. A lost claim is not extended. */
  extendLeases(owner: string, ids: readonly number[], leaseMs: number): number;
  complete(id: number, owner: string): boolean;
  retryLater(id: number, owner: string, runAt: number, error: string): boolean;
  deadLetter(id: number, owner: string, error: string): boolean;
  /**
   * Records that the attempt `owner` claimed the job for has started, committed before it runs.
   * Only needed from a job's second attempt on (see the reclaim of expired leases).
   */
  markStarted(id: number, owner: string): void;
  /** Puts a held job back without counting the attempt (shutdown). */
  release(id: number, owner: string): boolean;
  get(id: number): Job | null;
  listDead(queue: QueueName | null, limit: number, afterId: number): Job[];
  /** Moves a dead job back to pending with a fresh attempt budget. */
  replay(id: number): boolean;
  /** Makes a job waiting its turn (pending, not held) due now, with a fresh attempt budget. */
  runNow(id: number): boolean;
  deleteDead(id: number): boolean;
  pendingCount(queue: QueueName): number;
  /** Dead-lettered jobs, of one queue or (null, absent) of all. */
  deadCount(queue?: QueueName | null): number;
  /** Age in ms of the oldest job that is due and not running, 0 when none. */
  oldestPendingAgeMs(queue: QueueName): number;
  /** Runs fn atomically within the commit shared by this turn of the event loop (settling a job with its side effects). */
  grouped<T>(fn: () => T): Promise<T>;
  /** Lets pollers wake at once instead of at their next tick. */
  onEnqueue(listener: (queue: QueueName) => void): void;
}
