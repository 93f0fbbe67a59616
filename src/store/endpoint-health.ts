import { timed, type Db, type QueryTimer } from './db.js';
import { ensureOutboundSchema } from './outbound-schema.js';

/** One minute of an endpoint's attempts (start is the minute's first millisecond). */
export interface MinuteBucket {
  start: number;
  attempts: number;
  failures: number;
  reasons: Record<string, number>;
}

/**
 * The failure monitor's memory of one endpoint, persisted so that a restart neither forgets
 * a failure streak or the last hour's attempts (losing a notification) nor forgets that it
 * already notified (repeating one).
 */
export interface EndpointHealth {
  endpointId: string;
  /** Consecutive failed attempts; a success resets it. */
  streak: number;
  /** The error webhook went out for the current streak. */
  streakNotified: boolean;
  /** The last hour's attempts by minute, oldest first (see failure-monitor.ts). */
  windowBuckets: MinuteBucket[];
  /** Totals over windowBuckets, as of the last attempt: its first minute (null when empty), attempts, failures, reasons. */
  windowStart: number | null;
  windowAttempts: number;
  windowFailures: number;
  windowReasons: Record<string, number>;
  /** When the last owner email fired; the next waits an hour from it. */
  windowNotifiedAt: number | null;
  lastAttemptAt: number | null;
  lastOk: boolean | null;
  lastStatus: number | null;
  lastError: string | null;
}

interface HealthRow {
  endpoint_id: string; streak: number; streak_notified: number; window_start: number | null; window_attempts: number;
  window_failures: number; window_reasons: string; window_buckets: string; window_notified_at: number | null; last_attempt_at: number | null;
  last_ok: number | null; last_status: number | null; last_error: string | null;
}

export const emptyHealth = (endpointId: string): EndpointHealth => ({
  endpointId, streak: 0, streakNotified: false, windowBuckets: [], windowStart: null, windowAttempts: 0, windowFailures: 0, windowReasons: {},
  windowNotifiedAt: null, lastAttemptAt: null, lastOk: null, lastStatus: null, lastError: null,
});

export class EndpointHealthStore {
  private readonly s;
  /**
   * Each endpoint's state as last saved or read: it is read and saved again on every attempt.
   * Trusted for a second only: this process is the table's one writer, but during a deploy an old
   * process may still be draining beside it. Copies go in and out, so no caller changes what is
   * kept; a rolled-back transaction empties it (forgetUncommitted).
   */
  private readonly known = new Map<string, { health: EndpointHealth; at: number }>();

  constructor(db: Db, private readonly timer: QueryTimer, private readonly now: () => number = Date.now) {
    ensureOutboundSchema(db);
    this.s = {
      get: db.prepare<[string], HealthRow>('SELECT * FROM endpoint_health WHERE endpoint_id = ?'),
      save: db.prepare(
        `INSERT INTO endpoint_health (endpoint_id, streak, streak_notified, window_start, window_attempts, window_failures, window_reasons,
           window_buckets, window_notified_at, last_attempt_at, last_ok, last_status, last_error)
         VALUES (@endpointId, @streak, @streakNotified, @windowStart, @windowAttempts, @windowFailures, @windowReasons,
           @windowBuckets, @windowNotifiedAt, @lastAttemptAt, @lastOk, @lastStatus, @lastError)
         ON CONFLICT (endpoint_id) DO UPDATE SET streak = excluded.streak, streak_notified = excluded.streak_notified,
           window_start = excluded.window_start, window_attempts = excluded.window_attempts, window_failures = excluded.window_failures,
           window_reasons = excluded.window_reasons, window_buckets = excluded.window_buckets, window_notified_at = excluded.window_notified_at,
           last_attempt_at = excluded.last_attempt_at, last_ok = excluded.last_ok, last_status = excluded.last_status, last_error = excluded.last_error`),
      remove: db.prepare<[string]>('DELETE FROM endpoint_health WHERE endpoint_id = ?'),
    };
  }

  get(endpointId: string): EndpointHealth {
    const known = this.known.get(endpointId);
    if (known && this.now() - known.at < KNOWN_MS) return copy(known.health);
    const row = timed(this.timer, 'endpoint_health_get', () => this.s.get.get(endpointId));
    if (!row) return emptyHealth(endpointId);
    const windowReasons = JSON.parse(row.window_reasons) as Record<string, number>;
    let windowBuckets = decodeBuckets(row.window_buckets);
    // Saved before the window was counted by minute: its totals become one minute, at its start.
    if (windowBuckets.length === 0 && row.window_start !== null) {
      windowBuckets = [{ start: row.window_start - (row.window_start % 60_000), attempts: row.window_attempts, failures: row.window_failures, reasons: windowReasons }];
    }
    const health: EndpointHealth = {
      endpointId, streak: row.streak, streakNotified: row.streak_notified === 1, windowBuckets, windowStart: row.window_start,
      windowAttempts: row.window_attempts, windowFailures: row.window_failures, windowReasons, windowNotifiedAt: row.window_notified_at,
      lastAttemptAt: row.last_attempt_at, lastOk: row.last_ok === null ? null : row.last_ok === 1, lastStatus: row.last_status, lastError: row.last_error,
    };
    this.known.set(endpointId, { health: copy(health), at: this.now() });
    return health;
  }

  /** Call inside the transaction that records the attempt the new state reflects. */
  save(health: EndpointHealth): void {
    timed(this.timer, 'endpoint_health_save', () => this.s.save.run({
      ...health,
      streakNotified: health.streakNotified ? 1 : 0,
      windowReasons: JSON.stringify(health.windowReasons),
      windowBuckets: encodeBuckets(health.windowBuckets),
      lastOk: health.lastOk === null ? null : health.lastOk ? 1 : 0,
    }));
    this.known.set(health.endpointId, { health: copy(health), at: this.now() });
  }

  remove(endpointId: string): void {
    this.known.delete(endpointId);
    timed(this.timer, 'endpoint_health_save', () => this.s.remove.run(endpointId));
  }

  /** After a rollback: what was saved or read inside it may not be so. */
  forgetUncommitted(): void {
    this.known.clear();
  }
}

const KNOWN_MS = 1000;

const copy = (health: EndpointHealth): EndpointHealth => ({
  ...health,
  windowReasons: { ...health.windowReasons },
  windowBuckets: health.windowBuckets.map((bucket) => ({ ...bucket, reasons: { ...bucket.reasons } })),
});

// Saved on every attempt, up to 60 minutes: as arrays, and a minute without failures without its
// (empty) reasons, the row stays small and quick to write (under half the JSON of the objects).
type StoredBucket = [start: number, attempts: number] | [start: number, attempts: number, failures: number, reasons: Record<string, number>];

function encodeBuckets(buckets: MinuteBucket[]): string {
  return JSON.stringify(buckets.map((b): StoredBucket => (b.failures === 0 ? [b.start, b.attempts] : [b.start, b.attempts, b.failures, b.reasons])));
}

function decodeBuckets(text: string): MinuteBucket[] {
  return (JSON.parse(text) as StoredBucket[]).map(([start, attempts, failures = 0, reasons = {}]) => ({ start, attempts, failures, reasons }));
}
