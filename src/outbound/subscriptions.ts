/** An endpoint's event filter: an exact type, a prefix wildcard such as `invoice.*`, or `*` for every event. */
export const EVENT_PATTERN = /^(\*|[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*(\.\*)?)$/;

export function matchesType(patterns: readonly string[], type: string): boolean {
  return patterns.some((pattern) =>
    pattern === '*' || pattern === type || (pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1))));
}
