import type { Clock } from '../clock.js';
import { timed, type Db, type QueryTimer } from './db.js';
import { ensureOutboundSchema } from './outbound-schema.js';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'cancelled';
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'delivered', 'failed', 'cancelled'];
export type AttemptTrigger = 'scheduled' | 'manual';

/** One event on its way to one endpoint, with the running totals of its attempts. */
export interface Delivery {
  id: string;
  seq: number;
  eventPk: string;
  endpointId: string;
  status: DeliveryStatus;
  /** Waiting for a paused endpoint to resume (no job exists meanwhile). */
  parked: boolean;
  jobId: number | null;
  attempts: number;
  /** Scheduled attempts since the delivery was (re)queued: the index into the retry schedule. */
  scheduleStep: number;
  nextAttemptAt: number | null;
  lastAttemptAt: number | null;
  lastStatusCode: number | null;
  lastError: string | null;
  requestId: string | null;
  createdAt: number;
  updatedAt: number;
  deliveredAt: number | null;
}

export interface Attempt {
  id: number;
  deliveryId: string;
  endpointId: string;
  number: number;
  trigger: AttemptTrigger;
  at: number;
  durationMs: number;
  ok: boolean;
  statusCode: number | null;
  reason: string | null;
  error: string | null;
  /** The first KB of the response body. */
  responseBody: string | null;
}

export type NewAttempt = Omit<Attempt, 'id' | 'deliveryId' | 'endpointId' | 'number'>;

/** What an attempt leaves the delivery as. */
export interface AttemptOutcome {
  status: DeliveryStatus;
  scheduleStep: number;
  nextAttemptAt: number | null;
}

interface DeliveryRow {
  seq: number; id: string; event_pk: string; endpoint_id: string; status: DeliveryStatus; parked: number; job_id: number | null;
  attempts: number; schedule_step: number; next_attempt_at: number | null; last_attempt_at: number | null;
  last_status_code: number | null; last_error: string | null; request_id: string | null;
  created_at: number; updated_at: number; delivered_at: number | null;
}

interface AttemptRow {
  id: number; delivery_id: string; endpoint_id: string; number: number; trigger: AttemptTrigger; at: number; duration_ms: number;
  ok: number; status_code: number | null; reason: string | null; error: string | null; response_body: string | null;
}

const toDelivery = (r: DeliveryRow): Delivery => ({
  id: r.id, seq: r.seq, eventPk: r.event_pk, endpointId: r.endpoint_id, status: r.status, parked: r.parked === 1, jobId: r.job_id,
  attempts: r.attempts, scheduleStep: r.schedule_step, nextAttemptAt: r.next_attempt_at, lastAttemptAt: r.last_attempt_at,
  lastStatusCode: r.last_status_code, lastError: r.last_error, requestId: r.request_id,
  createdAt: r.created_at, updatedAt: r.updated_at, deliveredAt: r.delivered_at,
});

const toAttempt = (r: AttemptRow): Attempt => ({
  id: r.id, deliveryId: r.delivery_id, endpointId: r.endpoint_id, number: r.number, trigger: r.trigger, at: r.at,
  durationMs: r.duration_ms, ok: r.ok === 1, statusCode: r.status_code, reason: r.reason, error: r.error, responseBody: r.response_body,
});

/** Just-queued deliveries kept for their dispatcher's read: more than a backlog under load holds. */
const QUEUED_KEPT = 16_384;

export interface DeliveryFilter {
  endpointId: string;
  status?: DeliveryStatus;
  /** Only deliveries older than this sequence number (paging, newest first). */
  beforeSeq?: number;
  limit: number;
}

/**
 * Deliveries and their attempt log. Writes that belong together (an attempt and the delivery
 * totals it changes, a delivery and its job) are made inside the caller's transaction.
 */
export class DeliveryStore {
  private readonly s;
  /**
   * Endpoints known to have no parked delivery waiting. Almost none ever have one, and the check
   * runs when every delivery is created and again when it ends; a delivery parks only through
   * insert() and park(), which forget the endpoint here, and the store forgets them all when a
   * transaction rolls back (what was read inside it may not have been so).
   */
  private readonly noneParked = new Set<string>();
  /**
   * Deliveries just queued, as that write left them, kept for the one read that follows (the
   * dispatcher's, once the job runs) instead of a query outside any transaction. Every other
   * write to a delivery forgets it here, and so does a rollback, so what is served is what the
   * table holds.
   */
  private readonly queued = new Map<string, Delivery>();

  constructor(private readonly db: Db, private readonly clock: Clock, private readonly timer: QueryTimer) {
    ensureOutboundSchema(db);
    this.s = {
      insert: db.prepare(
        `INSERT OR IGNORE INTO deliveries (id, event_pk, endpoint_id, status, parked, request_id, created_at, updated_at)
         VALUES (@id, @eventPk, @endpointId, 'pending', @parked, @requestId, @now, @now)`),
      get: db.prepare<[string], DeliveryRow>('SELECT * FROM deliveries WHERE id = ?'),
      byEvent: db.prepare<[string], DeliveryRow>('SELECT * FROM deliveries WHERE event_pk = ? ORDER BY seq'),
      insertQueued: db.prepare<{ id: string; eventPk: string; endpointId: string; requestId: string | null; jobId: number; now: number }, DeliveryRow>(
        `INSERT OR IGNORE INTO deliveries (id, event_pk, endpoint_id, status, parked, request_id, job_id, next_attempt_at, created_at, updated_at)
         VALUES (@id, @eventPk, @endpointId, 'pending', 0, @requestId, @jobId, @now, @now, @now) RETURNING *`),
      applyAttempt: db.prepare<Record<string, string | number | null>, DeliveryRow>(
        // Parked means waiting without a job: a delivery an attempt settles (a manual one, for a parked delivery) is no longer waiting.
        `UPDATE deliveries SET attempts = attempts + 1, status = @status, parked = CASE WHEN @status = 'pending' THEN parked ELSE 0 END,
           schedule_step = @scheduleStep, next_attempt_at = @nextAt,
           last_attempt_at = @at, last_status_code = @statusCode, last_error = @error, updated_at = @now,
           delivered_at = CASE WHEN @status = 'delivered' AND @ok = 1 THEN @now ELSE delivered_at END
         WHERE id = @id AND attempts = @seenAttempts AND status = @seenStatus AND updated_at = @seenUpdatedAt RETURNING *`),
      insertAttempt: db.prepare(
        `INSERT INTO delivery_attempts (delivery_id, endpoint_id, number, trigger, at, duration_ms, ok, status_code, reason, error, response_body)
         VALUES (@deliveryId, @endpointId, @number, @trigger, @at, @durationMs, @ok, @statusCode, @reason, @error, @responseBody)`),
      attempts: db.prepare<[string], AttemptRow>('SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY id'),
      setStatus: db.prepare<{ id: string; status: DeliveryStatus; error: string | null; now: number }>(
        `UPDATE deliveries SET status = @status, parked = CASE WHEN @status = 'pending' THEN parked ELSE 0 END,
           last_error = coalesce(@error, last_error), next_attempt_at = NULL, updated_at = @now WHERE id = @id`),
      park: db.prepare<{ id: string; now: number }>(
        'UPDATE deliveries SET parked = 1, job_id = NULL, next_attempt_at = NULL, updated_at = @now WHERE id = @id'),
      oldestParked: db.prepare<[string], DeliveryRow>(
        "SELECT * FROM deliveries WHERE endpoint_id = ? AND parked = 1 AND status = 'pending' ORDER BY seq LIMIT 1"),
      // Read across to the jobs table: a delivery's job is what sends it and, ending, releases the next.
      releasing: db.prepare<[string, number], { found: number }>(
        `SELECT 1 AS found FROM deliveries d JOIN jobs j ON j.id = d.job_id
         WHERE d.endpoint_id = ? AND d.status = 'pending' AND d.parked = 0 AND (j.status = 'running' OR (j.status = 'pending' AND j.run_at <= ?)) LIMIT 1`),
      parkedCount: db.prepare<[], { n: number }>("SELECT count(*) AS n FROM deliveries WHERE parked = 1 AND status = 'pending'"),
      unpark: db.prepare<{ id: string; jobId: number; now: number }>(
        'UPDATE deliveries SET parked = 0, job_id = @jobId, next_attempt_at = @now, updated_at = @now WHERE id = @id'),
      requeue: db.prepare<{ id: string; jobId: number | null; now: number }>(
        `UPDATE deliveries SET status = 'pending', parked = 0, schedule_step = 0, job_id = @jobId, next_attempt_at = @now, updated_at = @now WHERE id = @id`),
      failedSince: db.prepare<[string, number], DeliveryRow>(
        "SELECT * FROM deliveries WHERE endpoint_id = ? AND status = 'failed' AND created_at >= ? ORDER BY seq"),
      cancelEndpoint: db.prepare<{ endpointId: string; now: number }, { job_id: number | null }>(
        `UPDATE deliveries SET status = 'cancelled', parked = 0, next_attempt_at = NULL, last_error = 'endpoint deleted', updated_at = @now
         WHERE endpoint_id = @endpointId AND status IN ('pending', 'failed') RETURNING job_id`),
    };
  }

  /**
   * Creates a delivery, parked or (without a job yet) waiting for one, unless this event already
   * has one for this endpoint (idempotent by event id).
   */
  insert(delivery: { id: string; eventPk: string; endpointId: string; parked: boolean; requestId: string | null }): boolean {
    if (delivery.parked) this.noneParked.delete(delivery.endpointId);
    return timed(this.timer, 'delivery_insert', () => this.s.insert.run({ ...delivery, parked: delivery.parked ? 1 : 0, now: this.clock.now() }).changes === 1);
  }

  get(id: string): Delivery | null {
    const queued = this.queued.get(id);
    if (queued) {
      this.queued.delete(id);
      return queued;
    }
    const row = timed(this.timer, 'delivery_get', () => this.s.get.get(id));
    return row ? toDelivery(row) : null;
  }

  forEvent(eventPk: string): Delivery[] {
    return timed(this.timer, 'delivery_list', () => this.s.byEvent.all(eventPk)).map(toDelivery);
  }

  list(filter: DeliveryFilter): Delivery[] {
    const where = ['endpoint_id = @endpointId'];
    const params: Record<string, string | number> = { endpointId: filter.endpointId, limit: filter.limit };
    if (filter.status) { where.push('status = @status'); params.status = filter.status; }
    if (filter.beforeSeq !== undefined) { where.push('seq < @beforeSeq'); params.beforeSeq = filter.beforeSeq; }
    const sql = `SELECT * FROM deliveries WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT @limit`;
    return timed(this.timer, 'delivery_list', () => this.db.prepare<Record<string, string | number>, DeliveryRow>(sql).all(params)).map(toDelivery);
  }

  /**
   * Creates a delivery due now and sent by job `jobId`, unless this event already has one for this
   * endpoint: then nothing is written and false comes back.
   */
  insertQueued(delivery: { id: string; eventPk: string; endpointId: string; requestId: string | null; jobId: number }): boolean {
    const row = timed(this.timer, 'delivery_insert', () => this.s.insertQueued.get({ ...delivery, now: this.clock.now() }));
    if (!row) return false;
    // Bounded: an entry nobody reads (its job ran in another process) ages out.
    if (this.queued.size >= QUEUED_KEPT) this.queued.delete(this.queued.keys().next().value as string);
    this.queued.set(delivery.id, toDelivery(row));
    return true;
  }

  /**
   * Appends an attempt to the log and updates the delivery's totals; call inside a transaction.
   * Applies only to the delivery as `delivery` shows it: when the row has changed since it was
   * read (another attempt recorded meanwhile), nothing is written and null comes back. Returns
   * both as saved.
   */
  recordAttempt(delivery: Delivery, attempt: NewAttempt, outcome: AttemptOutcome): { attempt: Attempt; delivery: Delivery } | null {
    this.queued.delete(delivery.id);
    const updated = timed(this.timer, 'delivery_update', () => this.s.applyAttempt.get({
      id: delivery.id, status: outcome.status, scheduleStep: outcome.scheduleStep, nextAt: outcome.nextAttemptAt,
      at: attempt.at, statusCode: attempt.statusCode, error: attempt.ok ? null : attempt.error, ok: attempt.ok ? 1 : 0, now: this.clock.now(),
      seenAttempts: delivery.attempts, seenStatus: delivery.status, seenUpdatedAt: delivery.updatedAt,
    }));
    if (!updated) return null;
    const number = updated.attempts;
    const row = {
      deliveryId: delivery.id, endpointId: delivery.endpointId, number, ...attempt, ok: attempt.ok ? 1 : 0,
    };
    const id = timed(this.timer, 'delivery_attempt_insert', () => Number(this.s.insertAttempt.run(row).lastInsertRowid));
    return { attempt: { id, deliveryId: delivery.id, endpointId: delivery.endpointId, number, ...attempt }, delivery: toDelivery(updated) };
  }

  attempts(deliveryId: string): Attempt[] {
    return timed(this.timer, 'delivery_attempt_list', () => this.s.attempts.all(deliveryId)).map(toAttempt);
  }

  setStatus(id: string, status: DeliveryStatus, error: string | null = null): void {
    this.queued.delete(id);
    timed(this.timer, 'delivery_update', () => this.s.setStatus.run({ id, status, error, now: this.clock.now() }));
  }

  park(id: string, endpointId: string): void {
    this.queued.delete(id);
    this.noneParked.delete(endpointId);
    timed(this.timer, 'delivery_update', () => this.s.park.run({ id, now: this.clock.now() }));
  }

  oldestParked(endpointId: string): Delivery | null {
    if (this.noneParked.has(endpointId)) return null;
    const row = timed(this.timer, 'delivery_get', () => this.s.oldestParked.get(endpointId));
    if (!row) this.noneParked.add(endpointId);
    return row ? toDelivery(row) : null;
  }

  /**
   * Whether a delivery of the endpoint has a job running or due now: its end releases the next
   * parked delivery (see Dispatcher.releaseNextParked), so a release besides would send two at once.
   */
  releasing(endpointId: string): boolean {
    return timed(this.timer, 'delivery_get', () => this.s.releasing.get(endpointId, this.clock.now())) !== undefined;
  }

  /** Deliveries waiting parked (behind a paused endpoint or a failing one's few slots). */
  parkedCount(): number {
    return timed(this.timer, 'delivery_count', () => this.s.parkedCount.get()?.n ?? 0);
  }

  /** Called when a transaction rolls back: what was learnt inside it may not be so. */
  forgetUncommitted(): void {
    this.noneParked.clear();
    this.queued.clear();
  }

  unpark(id: string, jobId: number): void {
    this.queued.delete(id);
    timed(this.timer, 'delivery_update', () => this.s.unpark.run({ id, jobId, now: this.clock.now() }));
  }

  /** Back to pending with a fresh retry schedule (recover, dead-letter replay). */
  requeue(id: string, jobId: number | null): void {
    this.queued.delete(id);
    timed(this.timer, 'delivery_update', () => this.s.requeue.run({ id, jobId, now: this.clock.now() }));
  }

  failedSince(endpointId: string, since: number): Delivery[] {
    return timed(this.timer, 'delivery_list', () => this.s.failedSince.all(endpointId, since)).map(toDelivery);
  }

  /** Cancels what is still owed to a deleted endpoint; returns the job ids those deliveries held. */
  cancelForEndpoint(endpointId: string): number[] {
    for (const [id, delivery] of this.queued) if (delivery.endpointId === endpointId) this.queued.delete(id);
    return timed(this.timer, 'delivery_update', () => this.s.cancelEndpoint.all({ endpointId, now: this.clock.now() }))
      .map((row) => row.job_id).filter((id): id is number => id !== null);
  }
}
