import type { Clock } from '../clock.js';
import type { TtlCache } from './cache.js';
import { timed, type Db, type QueryTimer } from './db.js';
import { ensureOutboundSchema } from './outbound-schema.js';

/** A registered destination for outbound events. */
export interface Endpoint {
  id: string;
  url: string;
  description: string;
  /** Event type patterns: exact types, `prefix.*`, or `*`. */
  events: string[];
  ownerEmails: string[];
  secret: string;
  /**
   * The secrets rotations replaced, newest first, as the last rotation left them: each keeps
   * signing alongside until it expires (the first is the one that rotation replaced).
   */
  retiredSecrets: RetiredSecret[];
  paused: boolean;
  disabledAt: number | null;
  disabledReason: string | null;
  createdAt: number;
  updatedAt: number;
}

export interface RetiredSecret {
  secret: string;
  expiresAt: number;
}

export type NewEndpoint = Pick<Endpoint, 'id' | 'url' | 'description' | 'events' | 'ownerEmails' | 'secret'>;

/**
 * At most this many replaced secrets sign beside the current one: each adds a signature to every
 * message, and rotating again and again within a grace period should not grow the header without
 * bound. The oldest goes first.
 */
const MAX_RETIRED_SECRETS = 4;

export interface EndpointPatch {
  url?: string;
  description?: string;
  events?: string[];
  ownerEmails?: string[];
  paused?: boolean;
  /** false re-enables an endpoint that a 410 disabled. */
  disabled?: false;
}

interface EndpointRow {
  id: string;
  url: string;
  description: string;
  events: string;
  owner_emails: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: number | null;
  earlier_secrets: string;
  paused: number;
  disabled_at: number | null;
  disabled_reason: string | null;
  created_at: number;
  updated_at: number;
}

const toEndpoint = (row: EndpointRow): Endpoint => ({
  id: row.id,
  url: row.url,
  description: row.description,
  events: JSON.parse(row.events) as string[],
  ownerEmails: JSON.parse(row.owner_emails) as string[],
  secret: row.secret,
  retiredSecrets: [
    ...(row.previous_secret !== null && row.previous_secret_expires_at !== null ? [{ secret: row.previous_secret, expiresAt: row.previous_secret_expires_at }] : []),
    ...(JSON.parse(row.earlier_secrets) as RetiredSecret[]),
  ],
  paused: row.paused === 1,
  disabledAt: row.disabled_at,
  disabledReason: row.disabled_reason,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const ALL = 'all';

/**
 * Endpoints in SQLite, read through the 'endpoints' cache: every delivery and every published
 * event looks its endpoints up, and they change rarely. Every write here clears the cache, so
 * within this process a read after a write never sees the old row; the TTL bounds staleness
 * should another process ever write the same file.
 */
export class EndpointStore {
  private readonly s;

  constructor(private readonly db: Db, private readonly clock: Clock, private readonly timer: QueryTimer, private readonly cache: TtlCache<Endpoint | Endpoint[]>) {
    ensureOutboundSchema(db);
    this.s = {
      insert: db.prepare(
        `INSERT INTO endpoints (id, url, description, events, owner_emails, secret, created_at, updated_at)
         VALUES (@id, @url, @description, @events, @ownerEmails, @secret, @now, @now)`),
      get: db.prepare<[string], EndpointRow>('SELECT * FROM endpoints WHERE id = ?'),
      all: db.prepare<[], EndpointRow>('SELECT * FROM endpoints ORDER BY created_at, id'),
      update: db.prepare(
        `UPDATE endpoints SET url = @url, description = @description, events = @events, owner_emails = @ownerEmails,
           paused = @paused, disabled_at = @disabledAt, disabled_reason = @disabledReason, updated_at = @now WHERE id = @id`),
      rotate: db.prepare(
        `UPDATE endpoints SET previous_secret = secret, previous_secret_expires_at = @expiresAt, earlier_secrets = @earlier, secret = @secret,
           updated_at = @now WHERE id = @id`),
      disable: db.prepare(
        'UPDATE endpoints SET disabled_at = @now, disabled_reason = @reason, updated_at = @now WHERE id = @id AND disabled_at IS NULL'),
      remove: db.prepare<[string]>('DELETE FROM endpoints WHERE id = ?'),
    };
  }

  create(endpoint: NewEndpoint): Endpoint {
    timed(this.timer, 'endpoint_insert', () => this.s.insert.run({
      ...endpoint, events: JSON.stringify(endpoint.events), ownerEmails: JSON.stringify(endpoint.ownerEmails), now: this.clock.now(),
    }));
    this.cache.clear();
    return this.get(endpoint.id) as Endpoint;
  }

  get(id: string): Endpoint | null {
    const cached = this.cache.get(`ep:${id}`);
    if (cached && !Array.isArray(cached)) return cached;
    const row = timed(this.timer, 'endpoint_get', () => this.s.get.get(id));
    if (!row) return null;
    const endpoint = toEndpoint(row);
    this.cache.set(`ep:${id}`, endpoint);
    return endpoint;
  }

  /** Every endpoint, oldest first (paused and disabled ones included). */
  list(): Endpoint[] {
    const cached = this.cache.get(ALL);
    if (Array.isArray(cached)) return cached;
    const all = timed(this.timer, 'endpoint_list', () => this.s.all.all()).map(toEndpoint);
    this.cache.set(ALL, all);
    return all;
  }

  update(id: string, patch: EndpointPatch): Endpoint | null {
    const current = this.get(id);
    if (!current) return null;
    const reEnable = patch.disabled === false;
    timed(this.timer, 'endpoint_update', () => this.s.update.run({
      id,
      url: patch.url ?? current.url,
      description: patch.description ?? current.description,
      events: JSON.stringify(patch.events ?? current.events),
      ownerEmails: JSON.stringify(patch.ownerEmails ?? current.ownerEmails),
      paused: (patch.paused ?? current.paused) ? 1 : 0,
      disabledAt: reEnable ? null : current.disabledAt,
      disabledReason: reEnable ? null : current.disabledReason,
      now: this.clock.now(),
    }));
    this.cache.clear();
    return this.get(id);
  }

  /**
   * Replaces the signing secret; the old one keeps signing alongside until graceMs from now, and so
   * do older ones whose own grace has not run out: a receiver still on the first secret when a
   * second rotation follows within the grace period keeps verifying until that secret's time is up.
   */
  rotateSecret(id: string, secret: string, graceMs: number): Endpoint | null {
    const now = this.clock.now();
    // Read and written in one transaction: another process rotating the same endpoint meanwhile
    // would otherwise lose a replaced secret from the list.
    const changed = this.db.transaction(() => {
      const current = timed(this.timer, 'endpoint_get', () => this.s.get.get(id));
      if (!current) return 0;
      const retired = liveSecrets(toEndpoint(current), now).slice(0, MAX_RETIRED_SECRETS - 1);
      return timed(this.timer, 'endpoint_update', () => this.s.rotate.run({ id, secret, expiresAt: now + graceMs, earlier: JSON.stringify(retired), now }).changes);
    }).immediate();
    this.cache.clear();
    return changed ? this.get(id) : null;
  }

  /** Marks the endpoint disabled; true when this call disabled it (false if it already was). */
  disable(id: string, reason: string): boolean {
    const changed = timed(this.timer, 'endpoint_update', () => this.s.disable.run({ id, reason, now: this.clock.now() }).changes);
    this.cache.clear();
    return changed === 1;
  }

  remove(id: string): boolean {
    const changed = timed(this.timer, 'endpoint_delete', () => this.s.remove.run(id).changes);
    this.cache.clear();
    return changed === 1;
  }

  /** The secrets that sign a message now: the current one, then the replaced ones still in their grace period. */
  signingSecrets(endpoint: Endpoint): string[] {
    return [endpoint.secret, ...liveSecrets(endpoint, this.clock.now()).map((retired) => retired.secret)];
  }
}

/** The endpoint's replaced secrets whose grace period has not ended at `now`, newest first. */
function liveSecrets(endpoint: Endpoint, now: number): RetiredSecret[] {
  return endpoint.retiredSecrets.filter((retired) => retired.expiresAt > now);
}
