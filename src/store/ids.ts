import { randomUUID } from 'node:crypto';

/**
 * `<prefix>_` then milliseconds in hex, then 80 random bits. Time-ordered, so new rows append at
 * the right edge of a B-tree keyed by the id instead of dirtying a random page per insert (each
 * dirtied page is written to the WAL at commit).
 */
export const timeOrderedId = (prefix: string): string =>
  `${prefix}_${Date.now().toString(16).padStart(12, '0')}${randomUUID().replaceAll('-', '').slice(0, 20)}`;
