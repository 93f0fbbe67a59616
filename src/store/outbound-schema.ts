import { ensureSchema, type Db } from './db.js';

/**
 * The sending side's tables, applied once per database through ensureSchema.
 * Deliveries keep their whole history (attempts are never deleted with their job), so
 * GET /api/v1/events/:id can show what was sent long after the queue forgot the job.
 */
const OUTBOUND_V1 = `
  CREATE TABLE endpoints (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    events TEXT NOT NULL,
    owner_emails TEXT NOT NULL,
    secret TEXT NOT NULL,
    previous_secret TEXT,
    previous_secret_expires_at INTEGER,
    paused INTEGER NOT NULL DEFAULT 0,
    disabled_at INTEGER,
    disabled_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE endpoint_health (
    endpoint_id TEXT PRIMARY KEY,
    streak INTEGER NOT NULL DEFAULT 0,
    streak_notified INTEGER NOT NULL DEFAULT 0,
    window_start INTEGER,
    window_attempts INTEGER NOT NULL DEFAULT 0,
    window_failures INTEGER NOT NULL DEFAULT 0,
    window_reasons TEXT NOT NULL DEFAULT '{}',
    window_notified_at INTEGER,
    last_attempt_at INTEGER,
    last_ok INTEGER,
    last_status INTEGER,
    last_error TEXT
  ) WITHOUT ROWID;
  CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    event_pk TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    status TEXT NOT NULL,
    parked INTEGER NOT NULL DEFAULT 0,
    job_id INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    schedule_step INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    last_attempt_at INTEGER,
    last_status_code INTEGER,
    last_error TEXT,
    request_id TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    delivered_at INTEGER,
    UNIQUE (event_pk, endpoint_id)
  );
  CREATE INDEX deliveries_by_endpoint ON deliveries(endpoint_id, status, seq);
  CREATE INDEX deliveries_parked ON deliveries(endpoint_id, parked, seq) WHERE parked = 1;
  CREATE TABLE delivery_attempts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    at INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    ok INTEGER NOT NULL,
    status_code INTEGER,
    reason TEXT,
    error TEXT,
    response_body TEXT
  );
  CREATE INDEX attempts_by_delivery ON delivery_attempts(delivery_id, id);
`;

// Secrets replaced before the previous one and still signing (see EndpointStore.rotateSecret).
const EARLIER_SECRETS = `ALTER TABLE endpoints ADD COLUMN earlier_secrets TEXT NOT NULL DEFAULT '[]';`;

// The failure monitor's last hour by minute (see failure-monitor.ts): one small row per endpoint
// and minute, so recording an attempt rewrites one minute, not the hour.
const ENDPOINT_MINUTES = `
  CREATE TABLE endpoint_minutes (
    endpoint_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    reasons TEXT NOT NULL,
    PRIMARY KEY (endpoint_id, minute)
  ) WITHOUT ROWID;`;

export function ensureOutboundSchema(db: Db): void {
  ensureSchema(db, 'outbound-v1', OUTBOUND_V1);
  ensureSchema(db, 'outbound-earlier-secrets', EARLIER_SECRETS);
  ensureSchema(db, 'outbound-endpoint-minutes', ENDPOINT_MINUTES);
}
