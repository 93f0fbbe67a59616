import { countMinute, MINUTE_MS, type EndpointHealth, type MinuteBucket } from '../store/endpoint-health.js';

/**
 * The rules that decide when people hear about a failing endpoint, as pure functions of the
 * persisted state and one attempt, so they are tested without a clock or a network.
 *
 * - Error webhook: the 3rd consecutive failed attempt fires it, once per streak; a success
 *   ends the streak.
 * - Owner email: over the last hour, counted by whole minutes (the current minute and the 60
 *   before it, so never less than an hour, at most a minute more), it fires when failures > 5
 *   at a failure rate > 80 %, or when failures > 50, and then not again for an hour. Attempts
 *   count whole (5 of 5 does not fire, 6 of 6 does; 51 at 60 % does). A rolling hour, as the
 *   alert rules count: a burst that spans the turn of an hour counted from its first failure is
 *   still seen whole.
 */
export const WINDOW_MS = 3_600_000;
export const STREAK_THRESHOLD = 3;
const RATE_THRESHOLD = 0.8;
const RATE_MIN_FAILURES = 5;
const VOLUME_THRESHOLD = 50;

export interface ObservedAttempt {
  ok: boolean;
  at: number;
  reason: string | null;
  statusCode: number | null;
  error: string | null;
}

/** The window as it stood when its email fired. */
export interface WindowSnapshot {
  start: number;
  end: number;
  attempts: number;
  failures: number;
  reasons: Record<string, number>;
}

export interface MonitorDecision {
  health: EndpointHealth;
  errorWebhook: boolean;
  ownerEmail: WindowSnapshot | null;
}

export function windowFires(attempts: number, failures: number): boolean {
  return (failures > RATE_MIN_FAILURES && failures / attempts > RATE_THRESHOLD) || failures > VOLUME_THRESHOLD;
}

export function observeAttempt(previous: EndpointHealth, attempt: ObservedAttempt): MonitorDecision {
  const health: EndpointHealth = { ...previous, windowReasons: { ...previous.windowReasons } };
  health.lastAttemptAt = attempt.at;
  health.lastOk = attempt.ok;
  health.lastStatus = attempt.statusCode;
  health.lastError = attempt.ok ? null : attempt.error;

  let errorWebhook = false;
  if (attempt.ok) {
    health.streak = 0;
    health.streakNotified = false;
  } else {
    health.streak += 1;
    if (health.streak >= STREAK_THRESHOLD && !health.streakNotified) {
      health.streakNotified = true;
      errorWebhook = true;
    }
  }

  // Minutes are never changed once in the list (the newest is replaced), so the list is copied
  // shallowly and the totals follow by subtracting the minutes that leave and adding the attempt.
  const minute = attempt.at - (attempt.at % MINUTE_MS);
  const buckets = [...health.windowBuckets];
  const leave = (bucket: MinuteBucket | undefined) => {
    if (bucket) countMinute(health, bucket, -1);
  };
  while (buckets.length > 0 && (buckets[0]?.start ?? 0) <= attempt.at - WINDOW_MS - MINUTE_MS) leave(buckets.shift());
  // A clock set back by more than a minute: the minutes it has not reached again are dropped
  // rather than counted as part of this hour.
  while (buckets.length > 0 && (buckets.at(-1)?.start ?? 0) > minute + MINUTE_MS) leave(buckets.pop());
  // Within that minute, the newest minute takes the attempt, keeping the list in order.
  const newest = buckets.at(-1);
  const into = newest && newest.start >= minute ? buckets.pop() : undefined;
  const reason = attempt.ok ? null : attempt.reason ?? 'unknown';
  const reasons = { ...into?.reasons };
  if (reason) reasons[reason] = (reasons[reason] ?? 0) + 1;
  buckets.push({ start: into?.start ?? minute, attempts: (into?.attempts ?? 0) + 1, failures: (into?.failures ?? 0) + (reason ? 1 : 0), reasons });
  health.windowAttempts += 1;
  if (reason) {
    health.windowFailures += 1;
    health.windowReasons[reason] = (health.windowReasons[reason] ?? 0) + 1;
  }
  health.windowBuckets = buckets;
  health.windowStart = buckets[0]?.start ?? null;
  // An email dated ahead of this attempt was sent while the clock ran ahead: its quiet hour runs
  // from now instead (forgetting it would email again about the failures still counted).
  if (health.windowNotifiedAt !== null && health.windowNotifiedAt > attempt.at) health.windowNotifiedAt = attempt.at;

  let ownerEmail: WindowSnapshot | null = null;
  const quiet = health.windowNotifiedAt !== null && attempt.at < health.windowNotifiedAt + WINDOW_MS;
  if (!quiet && windowFires(health.windowAttempts, health.windowFailures)) {
    health.windowNotifiedAt = attempt.at;
    ownerEmail = {
      start: health.windowStart ?? minute, end: attempt.at, attempts: health.windowAttempts, failures: health.windowFailures, reasons: { ...health.windowReasons },
    };
  }
  return { health, errorWebhook, ownerEmail };
}
