import { formatDuration, parseDuration } from '../units.js';

/**
 * A retry schedule is data: the delay before each retry after the first attempt.
 * Written either as a list ("2m,2m,2m") or as an exponential form
 * ("exp:30s*2x5" = 5 retries, starting at 30 s and doubling).
 */
export type RetrySchedule = readonly number[];

const MAX_RETRIES = 50;
const MAX_DELAY_MS = 7 * 86_400_000;

export function parseRetrySchedule(text: string): RetrySchedule {
  const trimmed = text.trim();
  if (trimmed === '' || trimmed === 'none') return [];
  const exp = /^exp:([^*]+)\*(\d+(?:\.\d+)?)x(\d+)$/i.exec(trimmed);
  const delays = exp
    ? exponential(parseDuration(exp[1] ?? ''), Number(exp[2]), Number(exp[3]))
    : trimmed.split(',').map((part) => parseDuration(part));
  if (delays.length > MAX_RETRIES) throw tooManyRetries(delays.length);
  for (const delay of delays) {
    if (delay <= 0) throw new Error('every retry delay must be greater than zero');
    if (delay > MAX_DELAY_MS) throw new Error(`a retry delay of ${formatDuration(delay)} is longer than 7 days`);
  }
  return delays;
}

function exponential(baseMs: number, factor: number, retries: number): number[] {
  if (factor < 1) throw new Error('the exponential factor must be at least 1');
  // Checked before the array exists: a count in the billions exhausts the heap and kills the
  // process with a V8 fatal error instead of a configuration error.
  if (retries > MAX_RETRIES) throw tooManyRetries(retries);
  return Array.from({ length: retries }, (_, i) => Math.round(baseMs * factor ** i));
}

function tooManyRetries(count: number): Error {
  return new Error(`at most ${MAX_RETRIES} retries are allowed, got ${count}`);
}

/** Retry-After is followed up to this long; an endpoint cannot park its deliveries for days. */
export const MAX_RETRY_AFTER_MS = 3_600_000;

/**
 * The delay before the next retry, or null when the schedule is used up. `step` is the number
 * of scheduled attempts made so far (1 after the first). A Retry-After from a 429/503 is
 * honoured within bounds: the retry never comes sooner than the schedule says, nor later than
 * MAX_RETRY_AFTER_MS (unless the schedule itself asks for longer). It does not add retries.
 */
export function nextRetryDelay(schedule: RetrySchedule, step: number, retryAfterMs: number | null): number | null {
  const scheduled = schedule[step - 1];
  if (scheduled === undefined) return null;
  if (retryAfterMs === null) return scheduled;
  return Math.max(scheduled, Math.min(retryAfterMs, MAX_RETRY_AFTER_MS));
}
