export interface BackoffPolicy {
  baseMs: number;
  factor: number;
  maxMs: number;
}

/**
 * Exponential backoff with full jitter: the delay before retry n (1-based) is drawn uniformly
 * from [d/2, d] where d = base * factor^(n-1), capped. Half the delay is kept so retries of a
 * burst spread out without ever retrying immediately.
 */
export function backoffDelay(policy: BackoffPolicy, retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
