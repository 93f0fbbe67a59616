/**
 * Event type patterns, shared by the handlers an event runs and the endpoints it is sent to:
 * an exact type, a prefix wildcard such as `invoice.*`, or `*` for every event.
 */
export const EVENT_PATTERN = /^(\*|[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*(\.\*)?)$/;
/** An event type itself: what EVENT_PATTERN takes, without its wildcards, so a subscription can name it exactly. */
export const EVENT_TYPE = /^[A-Za-z0-9_:-]+(\.[A-Za-z0-9_:-]+)*$/;

export function typeMatches(pattern: string, type: string): boolean {
  return pattern === '*' || pattern === type || (pattern.endsWith('.*') && type.startsWith(pattern.slice(0, -1)));
}

/**
 * The source events published through the admin API (POST /api/v1/events) are stored under.
 * Events are de-duplicated by (source, event id), so no inbound source may take this name.
 */
export const API_SOURCE = 'api';
