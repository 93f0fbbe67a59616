import { typeMatches } from '../event-types.js';

/** Whether an endpoint subscribed to `patterns` receives events of `type`. */
export function matchesType(patterns: readonly string[], type: string): boolean {
  return patterns.some((pattern) => typeMatches(pattern, type));
}
