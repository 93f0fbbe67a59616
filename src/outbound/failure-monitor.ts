import type { EndpointHealth } from '../store/endpoint-health.js';

/**
 * The rules that decide when people hear about a failing endpoint, as pure functions of the
 * persisted state and one attempt, so they are tested without a clock or a network.
 *
 * - Error webhook: the 3rd consecutive failed attempt fires it, once per streak; a success
 *   ends the streak.
 * - Owner email: a window opens at the first failure and lasts one hour; it fires once per
 *   window when failures > 5 at a failure rate > 80 %, or when failures > 50. Attempts count
 *   whole (5 of 5 does not fire, 6 of 6 does; 51 at 60 % does).
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

  if (health.windowStart !== null && attempt.at >= health.windowStart + WINDOW_MS) {
    health.windowStart = null;
    health.windowAttempts = 0;
    health.windowFailures = 0;
    health.windowReasons = {};
    health.windowNotifiedAt = null;
  }
  if (health.windowStart === null && !attempt.ok) health.windowStart = attempt.at;
  let ownerEmail: WindowSnapshot | null = null;
  if (health.windowStart !== null) {
    health.windowAttempts += 1;
    if (!attempt.ok) {
      health.windowFailures += 1;
      const reason = attempt.reason ?? 'unknown';
      health.windowReasons[reason] = (health.windowReasons[reason] ?? 0) + 1;
    }
    if (health.windowNotifiedAt === null && windowFires(health.windowAttempts, health.windowFailures)) {
      health.windowNotifiedAt = attempt.at;
      ownerEmail = {
        start: health.windowStart, end: attempt.at, attempts: health.windowAttempts, failures: health.windowFailures, reasons: { ...health.windowReasons },
      };
    }
  }
  return { health, errorWebhook, ownerEmail };
}
