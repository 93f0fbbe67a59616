import { timed, type Db, type QueryTimer } from './db.js';
import { ensureOutboundSchema } from './outbound-schema.js';

/**
 * One minute of an endpoint's attempts (start is the minute's first millisecond). Never changed
 * once made (the failure monitor replaces the newest), so copies of the state share them.
 */
export interface MinuteBucket {
  readonly start: number;
  readonly attempts: number;
  readonly failures: number;
  readonly reasons: Readonly<Record<string, number>>;
}

export const MINUTE_MS = 60_000;

type WindowTotals = Pick<EndpointHealth, 'windowStart' | 'windowAttempts' | 'windowFailures' | 'windowReasons'>;

/** Adds a minute's counts to a window's totals (sign 1) or takes them off (sign -1). */
export function countMinute(totals: WindowTotals, bucket: MinuteBucket, sign: 1 | -1): void {
  totals.windowAttempts += sign * bucket.attempts;
  totals.windowFailures += sign * bucket.failures;
  for (const reason in bucket.reasons) {
    const left = (totals.windowReasons[reason] ?? 0) + sign * (bucket.reasons[reason] ?? 0);
    if (left > 0) totals.windowReasons[reason] = left;
    else delete totals.windowReasons[reason];
  }
}

/** The totals of a window's minutes: its first minute (null when empty), attempts, failures, reasons. */
export function windowTotals(buckets: readonly MinuteBucket[]): WindowTotals {
  const totals: WindowTotals = { windowStart: buckets[0]?.start ?? null, windowAttempts: 0, windowFailures: 0, windowReasons: {} };
  for (const bucket of buckets) countMinute(totals, bucket, 1);
  return totals;
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
  /** The last hour's attempts by minute, oldest first (see failure-monitor.ts); replaced, never changed in place. */
  windowBuckets: readonly MinuteBucket[];
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

interface MinuteRow { minute: number; attempts: number; failures: number; reasons: string }

interface HealthRow {
  endpoint_id: string; streak: number; streak_notified: number; window_start: number | null; window_attempts: number;
  window_failures: number; window_reasons: string; window_notified_at: number | null; last_attempt_at: number | null;
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
  /**
   * Each endpoint's minutes as this process last read or wrote them in endpoint_minutes (the
   * state in `known` may add one the previous version's row became). While the row names the last
   * attempt `known` has, they are its minutes still and need not be read again.
   */
  private readonly stored = new Map<string, Set<MinuteBucket>>();

  constructor(db: Db, private readonly timer: QueryTimer, private readonly now: () => number = Date.now) {
    ensureOutboundSchema(db);
    this.s = {
      get: db.prepare<[string], HealthRow>('SELECT * FROM endpoint_health WHERE endpoint_id = ?'),
      save: db.prepare(
        `INSERT INTO endpoint_health (endpoint_id, streak, streak_notified, window_start, window_attempts, window_failures, window_reasons,
           window_notified_at, last_attempt_at, last_ok, last_status, last_error)
         VALUES (@endpointId, @streak, @streakNotified, @windowStart, @windowAttempts, @windowFailures, @windowReasons,
           @windowNotifiedAt, @lastAttemptAt, @lastOk, @lastStatus, @lastError)
         ON CONFLICT (endpoint_id) DO UPDATE SET streak = excluded.streak, streak_notified = excluded.streak_notified,
           window_start = excluded.window_start, window_attempts = excluded.window_attempts, window_failures = excluded.window_failures,
           window_reasons = excluded.window_reasons, window_notified_at = excluded.window_notified_at,
           last_attempt_at = excluded.last_attempt_at, last_ok = excluded.last_ok, last_status = excluded.last_status, last_error = excluded.last_error`),
      remove: db.prepare<[string]>('DELETE FROM endpoint_health WHERE endpoint_id = ?'),
      minutes: db.prepare<[string], MinuteRow>('SELECT minute, attempts, failures, reasons FROM endpoint_minutes WHERE endpoint_id = ? ORDER BY minute'),
      saveMinute: db.prepare(
        `INSERT INTO endpoint_minutes (endpoint_id, minute, attempts, failures, reasons) VALUES (@endpointId, @minute, @attempts, @failures, @reasons)
         ON CONFLICT (endpoint_id, minute) DO UPDATE SET attempts = excluded.attempts, failures = excluded.failures, reasons = excluded.reasons`),
      // Minutes outside [from, to]: those that left the window, and those a clock set back dropped.
      trimMinutes: db.prepare<[string, number, number]>('DELETE FROM endpoint_minutes WHERE endpoint_id = ? AND (minute < ? OR minute > ?)'),
      removeMinutes: db.prepare<[string]>('DELETE FROM endpoint_minutes WHERE endpoint_id = ?'),
    };
  }

  get(endpointId: string): EndpointHealth {
    const known = this.known.get(endpointId);
    if (known && this.now() - known.at < KNOWN_MS) return copy(known.health);
    const row = timed(this.timer, 'endpoint_health_get', () => this.s.get.get(endpointId));
    if (!row) {
      this.stored.delete(endpointId);
      return emptyHealth(endpointId);
    }
    const had = this.stored.get(endpointId);
    let windowBuckets: MinuteBucket[] = had && known?.health.lastAttemptAt === row.last_attempt_at
      ? [...had]
      : timed(this.timer, 'endpoint_health_get', () => this.s.minutes.all(endpointId)).map((minute) => ({
        start: minute.minute, attempts: minute.attempts, failures: minute.failures, reasons: minute.reasons === '{}' ? {} : JSON.parse(minute.reasons) as Record<string, number>,
      }));
    this.stored.set(endpointId, new Set(windowBuckets));
    const newest = windowBuckets.at(-1);
    const totals = windowTotals(windowBuckets);
    // A row whose last attempt lies past its newest minute, or whose totals are not its minutes',
    // was last written by a version that kept no minutes (its window opened at a first failure
    // and lasted an hour): that window's totals become one minute, at the minute of its last
    // attempt, so that they leave the window late rather than early.
    const lastAt = row.last_attempt_at ?? row.window_start;
    const foreign = newest
      ? (lastAt !== null && lastAt >= newest.start + MINUTE_MS) || row.window_attempts !== totals.windowAttempts || row.window_failures !== totals.windowFailures
      : row.window_start !== null;
    if (lastAt !== null && foreign) {
      windowBuckets = row.window_start === null ? [] : [{
        start: lastAt - (lastAt % MINUTE_MS), attempts: row.window_attempts, failures: row.window_failures,
        reasons: JSON.parse(row.window_reasons) as Record<string, number>,
      }];
    }
    const health: EndpointHealth = {
      endpointId, streak: row.streak, streakNotified: row.streak_notified === 1, windowBuckets, ...(foreign ? windowTotals(windowBuckets) : totals),
      windowNotifiedAt: row.window_notified_at,
      lastAttemptAt: row.last_attempt_at, lastOk: row.last_ok === null ? null : row.last_ok === 1, lastStatus: row.last_status, lastError: row.last_error,
    };
    this.known.set(endpointId, { health: copy(health), at: this.now() });
    return health;
  }

  /**
   * Call inside the transaction that records the attempt the new state reflects. Writes the
   * newest minute (the one the attempt went to) and, when the window's span changed, removes the
   * minutes it no longer holds.
   */
  save(health: EndpointHealth): void {
    const { endpointId } = health;
    timed(this.timer, 'endpoint_health_save', () => {
      this.s.save.run({
        ...health,
        streakNotified: health.streakNotified ? 1 : 0,
        windowReasons: JSON.stringify(health.windowReasons),
        lastOk: health.lastOk === null ? null : health.lastOk ? 1 : 0,
      });
      const had = this.stored.get(endpointId);
      const first = health.windowBuckets[0];
      const newest = health.windowBuckets.at(-1);
      if (!first || !newest) {
        if (had === undefined || had.size > 0) this.s.removeMinutes.run(endpointId);
        return;
      }
      // Minutes are replaced, never changed, so a minute not among those stored is new: as a rule
      // only the newest.
      for (const bucket of health.windowBuckets) {
        if (!had?.has(bucket)) this.s.saveMinute.run({ endpointId, minute: bucket.start, attempts: bucket.attempts, failures: bucket.failures, reasons: JSON.stringify(bucket.reasons) });
      }
      let span = had === undefined;
      for (const bucket of had ?? []) span ||= bucket.start < first.start || bucket.start > newest.start;
      if (span) this.s.trimMinutes.run(endpointId, first.start, newest.start);
    });
    this.stored.set(endpointId, new Set(health.windowBuckets));
    this.known.set(endpointId, { health: copy(health), at: this.now() });
  }

  remove(endpointId: string): void {
    this.known.delete(endpointId);
    this.stored.delete(endpointId);
    timed(this.timer, 'endpoint_health_save', () => {
      this.s.remove.run(endpointId);
      this.s.removeMinutes.run(endpointId);
    });
  }

  /** After a rollback: what was saved or read inside it may not be so. */
  forgetUncommitted(): void {
    this.known.clear();
    this.stored.clear();
  }
}

const KNOWN_MS = 1000;

// The minutes are shared, not copied: they are never changed in place.
const copy = (health: EndpointHealth): EndpointHealth => ({ ...health, windowReasons: { ...health.windowReasons } });
