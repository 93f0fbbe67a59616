import type { Clock } from '../clock.js';
import type { TtlCache } from './cache.js';
import { timed, type Db, type QueryTimer } from './db.js';
import { timeOrderedId } from './ids.js';

export const EVENT_STATUSES = ['pending', 'retrying', 'processed', 'dead_letter'] as const;
export type EventStatus = (typeof EVENT_STATUSES)[number];
export type HandlerOutcome = 'success' | 'temporary_error' | 'permanent_error';

export interface StoredEvent {
  id: string;
  source: string;
  eventId: string;
  type: string;
  /** The JSON text as received; `payload` is it parsed, on first use (most paths only pass it on). */
  rawPayload: string;
  readonly payload: unknown;
  requestId: string | null;
  receivedAt: number;
  status: EventStatus;
  attempts: number;
  processedAt: number | null;
  lastError: string | null;
}

/** What never changes about a stored event: what the processor and the deliveries need of it. */
export type EventContent = Pick<StoredEvent, 'id' | 'source' | 'eventId' | 'type' | 'rawPayload' | 'payload' | 'requestId' | 'receivedAt'>;

export interface HandlerRun {
  attempt: number;
  handler: string;
  outcome: HandlerOutcome;
  error: string | null;
  durationMs: number;
  at: number;
}

export interface NewEvent {
  source: string;
  eventId: string;
  type: string;
  /** The raw JSON text as received, stored verbatim. */
  rawPayload: string;
  requestId: string;
}

export interface EventFilter {
  source?: string;
  type?: string;
  status?: EventStatus;
  /** Only events received strictly before this event (for paging, newest first). */
  before?: { receivedAt: number; id: string };
  limit: number;
}

interface EventRow {
  id: string;
  source: string;
  event_id: string;
  type: string;
  payload: string;
  request_id: string | null;
  received_at: number;
  status: EventStatus;
  attempts: number;
  processed_at: number | null;
  last_error: string | null;
}

/** A stored event whose payload is parsed on first use (most paths only pass its text on). */
class LoadedEvent implements StoredEvent {
  readonly id: string;
  readonly source: string;
  readonly eventId: string;
  readonly type: string;
  readonly rawPayload: string;
  readonly requestId: string | null;
  readonly receivedAt: number;
  readonly status: EventStatus;
  readonly attempts: number;
  readonly processedAt: number | null;
  readonly lastError: string | null;
  private parsed: { value: unknown } | undefined;

  static accepted(id: string, event: NewEvent, receivedAt: number): LoadedEvent {
    return new LoadedEvent({
      id, source: event.source, event_id: event.eventId, type: event.type, payload: event.rawPayload, request_id: event.requestId,
      received_at: receivedAt, status: 'pending', attempts: 0, processed_at: null, last_error: null,
    });
  }

  constructor(row: EventRow) {
    this.id = row.id;
    this.source = row.source;
    this.eventId = row.event_id;
    this.type = row.type;
    this.rawPayload = row.payload;
    this.requestId = row.request_id;
    this.receivedAt = row.received_at;
    this.status = row.status;
    this.attempts = row.attempts;
    this.processedAt = row.processed_at;
    this.lastError = row.last_error;
  }

  get payload(): unknown {
    this.parsed ??= { value: JSON.parse(this.rawPayload) as unknown };
    return this.parsed.value;
  }
}

// A class, not an object literal with a getter: V8 builds those several times slower.
const toEvent = (row: EventRow): StoredEvent => new LoadedEvent(row);

export const newEventId = (): string => timeOrderedId('evt');

const cacheKeyOf = (source: string, key: string): string => `${source}\0${key}`;

/** Events, their idempotency keys and their handler history, in SQLite. */
export class EventStore {
  private readonly statements;

  /**
   * @param seenKeys remembers keys known to be live (source NUL key → stored event id) until the
   *   moment they expire, so a redelivery is answered without a store round trip. Only positive
   *   answers are cached: a new key always asks the store.
   * @param contents remembers recently stored events (their unchanging part), so processing an
   *   event and sending its deliveries, moments after it was stored, do not read it back.
   */
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
    private readonly timer: QueryTimer,
    private readonly seenKeys: TtlCache<string>,
    private readonly contents: TtlCache<EventContent>,
  ) {
    this.statements = {
      findKey: db.prepare<[string, string, number], { event_pk: string; expires_at: number }>(
        'SELECT event_pk, expires_at FROM idempotency_keys WHERE source = ? AND key = ? AND expires_at > ?'),
      upsertKey: db.prepare<[string, string, string, number]>(
        `INSERT INTO idempotency_keys (source, key, event_pk, expires_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (source, key) DO UPDATE SET event_pk = excluded.event_pk, expires_at = excluded.expires_at`),
      insert: db.prepare(
        `INSERT INTO events (id, source, event_id, type, payload, request_id, received_at, status)
         VALUES (@id, @source, @eventId, @type, @payload, @requestId, @receivedAt, 'pending')`),
      get: db.prepare<[string], EventRow>('SELECT * FROM events WHERE id = ?'),
      setStatus: db.prepare<[EventStatus, number, number | null, string | null, string]>(
        'UPDATE events SET status = ?, attempts = ?, processed_at = ?, last_error = ? WHERE id = ?'),
      purgeKeys: db.prepare<[number]>('DELETE FROM idempotency_keys WHERE expires_at <= ?'),
      insertRun: db.prepare(
        `INSERT INTO handler_runs (event_pk, attempt, handler, outcome, error, duration_ms, at)
         VALUES (@eventPk, @attempt, @handler, @outcome, @error, @durationMs, @at)`),
      runs: db.prepare<[string], { attempt: number; handler: string; outcome: HandlerOutcome; error: string | null; duration_ms: number; at: number }>(
        'SELECT attempt, handler, outcome, error, duration_ms, at FROM handler_runs WHERE event_pk = ? ORDER BY id'),
      priorRuns: db.prepare<[string], { handler: string; outcome: HandlerOutcome; attempt: number }>(
        'SELECT handler, outcome, attempt FROM handler_runs WHERE event_pk = ?'),
    };
  }

  /** What findByKey would answer from memory alone: the stored event id, or undefined when unknown here. */
  findCachedKey(source: string, key: string): string | undefined {
    return this.seenKeys.get(cacheKeyOf(source, key));
  }

  /** The stored event a live idempotency key points to, if any. */
  findByKey(source: string, key: string): string | null {
    const cached = this.findCachedKey(source, key);
    if (cached !== undefined) return cached;
    const now = this.clock.now();
    const row = timed(this.timer, 'idempotency_lookup', () => this.statements.findKey.get(source, key, now));
    if (!row) return null;
    this.seenKeys.set(cacheKeyOf(source, key), row.event_pk, row.expires_at - now);
    return row.event_pk;
  }

  /**
   * Inserts the event and its idempotency key. Must run inside the caller's transaction,
   * together with the job that will process the event.
   */
  insert(event: NewEvent, ttlMs: number): string {
    const id = newEventId();
    const now = this.clock.now();
    this.statements.insert.run({ id, source: event.source, eventId: event.eventId, type: event.type, payload: event.rawPayload, requestId: event.requestId, receivedAt: now });
    this.statements.upsertKey.run(event.source, event.eventId, id, now + ttlMs);
    // The key is cached by the next look-up, after the transaction has committed. The content is
    // cached now: should the transaction roll back, nothing committed refers to this new id.
    this.contents.set(id, LoadedEvent.accepted(id, event, now));
    return id;
  }

  get(id: string): StoredEvent | null {
    const row = timed(this.timer, 'event_get', () => this.statements.get.get(id));
    return row ? toEvent(row) : null;
  }

  /** The unchanging part of an event, from memory when it was stored or read recently. */
  content(id: string): EventContent | null {
    const cached = this.contents.get(id);
    if (cached) return cached;
    const event = this.get(id);
    if (event) this.contents.set(id, event);
    return event;
  }

  /**
   * Lets go of an event's cached content once nothing queued will read it. Kept, it would outlive
   * a young-generation collection and be copied into the old generation, at every event.
   */
  releaseContent(id: string): void {
    this.contents.delete(id);
  }

  list(filter: EventFilter): StoredEvent[] {
    const where: string[] = [];
    const params: Record<string, string | number> = { limit: filter.limit };
    if (filter.source) { where.push('source = @source'); params.source = filter.source; }
    if (filter.type) { where.push('type = @type'); params.type = filter.type; }
    if (filter.status) { where.push('status = @status'); params.status = filter.status; }
    if (filter.before) {
      where.push('(received_at < @beforeAt OR (received_at = @beforeAt AND id < @beforeId))');
      params.beforeAt = filter.before.receivedAt;
      params.beforeId = filter.before.id;
    }
    const sql = `SELECT * FROM events ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY received_at DESC, id DESC LIMIT @limit`;
    return timed(this.timer, 'event_list', () => this.db.prepare<Record<string, string | number>, EventRow>(sql).all(params)).map(toEvent);
  }

  setStatus(id: string, status: EventStatus, attempts: number, error: string | null): void {
    const processedAt = status === 'processed' ? this.clock.now() : null;
    timed(this.timer, 'event_update', () => this.statements.setStatus.run(status, attempts, processedAt, error, id));
  }

  recordHandlerRun(eventPk: string, run: HandlerRun): void {
    timed(this.timer, 'handler_run_insert', () => this.statements.insertRun.run({ eventPk, ...run }));
  }

  handlerRuns(eventPk: string): HandlerRun[] {
    return this.statements.runs.all(eventPk).map((row) => ({
      attempt: row.attempt, handler: row.handler, outcome: row.outcome, error: row.error, durationMs: row.duration_ms, at: row.at,
    }));
  }

  /**
   * What earlier runs of this event left: the handlers that succeeded (a retry runs only the
   * others) and the last attempt recorded (a replay from the dead-letter queue numbers on from it).
   */
  priorRuns(eventPk: string): { succeeded: Set<string>; lastAttempt: number } {
    const succeeded = new Set<string>();
    let lastAttempt = 0;
    for (const row of this.statements.priorRuns.all(eventPk)) {
      if (row.outcome === 'success') succeeded.add(row.handler);
      lastAttempt = Math.max(lastAttempt, row.attempt);
    }
    return { succeeded, lastAttempt };
  }

  /** Drops every cached key; called when a transaction that may have cached one rolls back. */
  forgetCachedKeys(): void {
    this.seenKeys.clear();
  }

  purgeExpiredKeys(): number {
    return timed(this.timer, 'idempotency_purge', () => this.statements.purgeKeys.run(this.clock.now()).changes);
  }
}
