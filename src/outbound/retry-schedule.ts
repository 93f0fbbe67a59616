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
  if (delays.length > MAX_RETRIES) throw new Error(`at most ${MAX_RETRIES} retries are allowed, got ${delays.length}`);
  for (const delay of delays) {
    if (delay <= 0) throw new Error('every retry delay must be greater than zero');
    if (delay > MAX_DELAY_MS) throw new Error(`a retry delay of ${formatDuration(delay)} is longer than 7 days`);
  }
  return delays;
}

function exponential(baseMs: number, factor: number, retries: number): number[] {
  if (factor < 1) throw new Error('the exponential factor must be at least 1');
  return Array.from({ length: retries }, (_, i) => Math.round(baseMs * factor ** i));
}

export function describeRetrySchedule(schedule: RetrySchedule): string {
  return schedule.length === 0 ? 'no retries' : schedule.map(formatDuration).join(', ');
}
