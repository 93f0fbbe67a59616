import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Webhook } from 'standardwebhooks';
import { z } from 'zod';
import { API_SOURCE } from './event-types.js';
import { parseRetrySchedule, type RetrySchedule } from './outbound/retry-schedule.js';
import { USER_INFO_PROBLEM, userInfoDecodes } from './outbound/sendable-url.js';
import { displayUrl } from './telemetry/outage.js';
import { parseDuration, parseSize } from './units.js';

/** Every setting of the service, read from the environment once at start-up. */
export interface Config {
  port: number;
  host: string;
  dataDir: string;
  dbFile: string;
  dbSynchronous: 'normal' | 'full';
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  adminToken: string;
  adminTokenGenerated: boolean;
  stripe: { secret: string; toleranceSeconds: number } | null;
  /** Standard Webhooks sources: lower-case source name → one or more whsec_ secrets. */
  sources: Map<string, string[]>;
  idempotencyTtlMs: number;
  bodyLimitBytes: number;
  rateLimit: { max: number; windowMs: number };
  worker: {
    concurrency: number;
    leaseMs: number;
    /** JOB_TIMEOUT: how long one processing run may take before it counts as failed. */
    runTimeoutMs: number;
    pollMs: number;
    maxAttempts: number;
    backoffBaseMs: number;
    backoffFactor: number;
    backoffMaxMs: number;
  };
  shutdownTimeoutMs: number;
  /** REQUEST_TIMEOUT: how long a request may take to arrive whole, headers and body. */
  requestTimeoutMs: number;
  /** An ES module exporting register(registry), loaded at start-up to add event handlers. */
  handlersModule: string | null;
  eventTypeAllowlist: string[];
  telemetry: {
    serviceName: string;
    environment: string;
    lokiUrl: string | null;
    otlpEndpoint: string | null;
  };
  delivery: {
    timeoutMs: number;
    /** Delivery attempts in flight at once (DELIVERY_CONCURRENCY). */
    concurrency: number;
    retrySchedule: RetrySchedule;
    allowPrivateDestinations: boolean;
    errorWebhookUrl: string | null;
  };
  email: { smtpUrl: string | null; from: string; to: string[] };
}

export class ConfigError extends Error {
  constructor(readonly variable: string, reason: string) {
    super(`${variable}: ${reason}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const DEFAULT_EVENT_TYPES = [
  'charge.succeeded', 'charge.failed', 'charge.refunded', 'charge.dispute.created',
  'checkout.session.completed', 'customer.created', 'customer.updated', 'customer.deleted',
  'customer.subscription.created', 'customer.subscription.updated', 'customer.subscription.deleted',
  'invoice.paid', 'invoice.payment_failed', 'invoice.payment_succeeded',
  'payment_intent.succeeded', 'payment_intent.payment_failed', 'payment_intent.created',
  'order.created', 'order.updated', 'user.created', 'user.updated', 'user.deleted', 'test.ping',
];

/**
 * How a refused value may appear in the error: as it is, as a URL without its user-info and query
 * (they may carry credentials), or not at all (a secret; start-up errors reach logs).
 */
type Shown = 'value' | 'url' | 'hidden';

/** Reads one variable through a zod schema; a failure names the variable and the reason. */
function read<T>(env: Env, name: string, schema: z.ZodType<T>, fallback: string | undefined, shown: Shown = 'value'): T {
  const raw = env[name] === undefined || env[name] === '' ? fallback : env[name];
  const result = schema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const got = raw === undefined ? 'nothing'
      : shown === 'hidden' ? `${raw.length} characters, not shown`
      : JSON.stringify(shown === 'url' ? displayUrl(raw) : raw);
    throw new ConfigError(name, `${issue?.message ?? 'invalid value'} (got ${got})`);
  }
  return result.data;
}

// Plain decimal text only: Number() would also take ' ' (as 0) and '0x1F90'.
const numberText = (pattern: RegExp, message: string, range: z.ZodNumber) => z.string().regex(pattern, message).transform(Number).pipe(range);
const integer = (min: number, max: number) => numberText(/^\d+$/, 'must be a whole number (digits only)', z.number().int().min(min).max(max));
const duration = (minMs: number, maxMs: number) =>
  z.string().transform((text, ctx) => {
    try {
      const ms = parseDuration(text);
      if (ms < minMs || ms > maxMs) ctx.addIssue({ code: 'custom', message: `must be between ${minMs} ms and ${maxMs} ms` });
      return ms;
    } catch (error) {
      ctx.addIssue({ code: 'custom', message: (error as Error).message });
      return z.NEVER;
    }
  });
const MAX_BODY_LIMIT = 100 * 1024 * 1024;
const size = z.string().transform((text, ctx) => {
  try {
    const bytes = parseSize(text);
    if (bytes < 1) ctx.addIssue({ code: 'custom', message: 'must be at least 1 byte' });
    // The body is read into memory whole; webhooks are kilobytes, and a Buffer cannot hold gigabytes.
    else if (bytes > MAX_BODY_LIMIT) ctx.addIssue({ code: 'custom', message: 'must be at most 100mb' });
    return bytes;
  } catch (error) {
    ctx.addIssue({ code: 'custom', message: (error as Error).message });
    return z.NEVER;
  }
});
const boolean = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const httpUrl = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).refine(userInfoDecodes, USER_INFO_PROBLEM);
const optionalUrl = (env: Env, name: string): string | null =>
  env[name] ? read(env, name, httpUrl, undefined, 'url') : null;
const whsecSecret = z.string()
  .regex(/^whsec_[A-Za-z0-9+/=]{16,}$/, 'must be a whsec_ secret (whsec_ followed by base64)')
  // The regex lets through misplaced padding and bad lengths, which the verifier's library only
  // refuses when it is built; asking the library itself keeps the two from disagreeing. Its
  // message is fixed text and never contains the secret.
  .refine((secret) => {
    try {
      new Webhook(secret);
      return true;
    } catch {
      return false;
    }
  }, 'must be a whsec_ secret whose base64 decodes (look for a misplaced or extra "=")');
const sourceName = /^[a-z0-9][a-z0-9_-]{0,62}$/;
/**
 * Source names WEBHOOK_SECRET_<SOURCE> may not take, and why. An inbound source named like the
 * one the admin API publishes under would lose events as duplicates of published ones.
 */
const RESERVED_SOURCES: ReadonlyMap<string, string> = new Map([
  ['stripe', 'the stripe source is configured with STRIPE_WEBHOOK_SECRET'],
  [API_SOURCE, `the source name ${API_SOURCE} is reserved for events published through the admin API (POST /api/v1/events)`],
  // Requests to unconfigured sources are counted under this label, and the error-rate alerts leave it out.
  ['unknown', 'the source name unknown is reserved: metrics count requests to unconfigured sources under it'],
]);

/**
 * Each entry becomes a metric label value. Inbound events may carry any type up to 255
 * characters (Shopify's orders/create as much as Stripe's charge.succeeded), so only what no
 * event could carry is refused, and `other`, the label of the types not listed.
 */
function readAllowlist(text: string): string[] {
  const types = text.split(',').map((type) => type.trim()).filter(Boolean);
  if (types.length === 0) throw new ConfigError('EVENT_TYPE_ALLOWLIST', 'lists no event type (give a comma list such as order.created,order.updated, or unset it for the built-in list)');
  if (types.includes('other')) throw new ConfigError('EVENT_TYPE_ALLOWLIST', 'other is reserved: it is the label of the event types not listed');
  const long = types.find((type) => type.length > 255);
  if (long !== undefined) throw new ConfigError('EVENT_TYPE_ALLOWLIST', `"${long.slice(0, 40)}…" is longer than the 255 characters an event type may have`);
  return [...new Set(types)];
}

function readSources(env: Env): Map<string, string[]> {
  const sources = new Map<string, string[]>();
  const namedBy = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('WEBHOOK_SECRET_') || !value) continue;
    const source = name.slice('WEBHOOK_SECRET_'.length).toLowerCase().replaceAll('_', '-');
    if (!sourceName.test(source)) throw new ConfigError(name, 'the source name must be letters, digits, _ or -');
    const reserved = RESERVED_SOURCES.get(source);
    if (reserved) throw new ConfigError(name, reserved);
    // WEBHOOK_SECRET_GITHUB and WEBHOOK_SECRET_github (or _A_B and _A-B) name one source: one would silently win.
    const other = namedBy.get(source);
    if (other !== undefined) throw new ConfigError(name, `names the same source (${source}) as ${other}; keep one of the two`);
    namedBy.set(source, name);
    // Several secrets separated by spaces or commas: the old and the new during a key rotation.
    const secrets = value.split(/[\s,]+/).filter(Boolean).map((secret) => read({ [name]: secret }, name, whsecSecret, undefined, 'hidden'));
    // Only separators (a quoted blank, a stray comma): a source without a secret would verify nothing.
    if (secrets.length === 0) throw new ConfigError(name, 'holds no secret, only spaces or commas (give one or more whsec_ secrets, or unset it)');
    sources.set(source, secrets);
  }
  return sources;
}

/**
 * A signed request stays acceptable for its signature's tolerance after it was signed (Standard
 * Webhooks: five minutes either side of now, so up to ten after first seen). An event id
 * forgotten sooner would let a captured request be replayed and processed again.
 */
function idempotencyTtl(env: Env, stripeToleranceSeconds: number | null, standardSources: boolean): number {
  const ttlMs = read(env, 'IDEMPOTENCY_TTL', duration(1000, 30 * 86_400_000), '24h');
  const floors: [number, string][] = [];
  // A Stripe signature is accepted from its tolerance before its timestamp to as long after.
  if (stripeToleranceSeconds !== null) floors.push([2 * stripeToleranceSeconds * 1000, 'twice STRIPE_TOLERANCE_SECONDS, its tolerance either side']);
  if (standardSources) floors.push([STANDARD_WEBHOOKS_REPLAY_WINDOW_MS, 'the Standard Webhooks tolerance, 5 minutes either side']);
  // Named after the longest, so one change of the setting is enough.
  const [floorMs, what] = floors.reduce<[number, string]>((longest, floor) => (floor[0] > longest[0] ? floor : longest), [0, '']);
  // Unset, it covers a longer tolerance by itself: the 24 h default is not the operator's choice.
  if (ttlMs < floorMs && !env.IDEMPOTENCY_TTL) return floorMs;
  if (ttlMs < floorMs) {
    throw new ConfigError('IDEMPOTENCY_TTL', `must be at least ${floorMs / 1000} s (${what}): a signed request stays acceptable that long, and an event id forgotten sooner lets it be replayed (got ${ttlMs / 1000} s)`);
  }
  return ttlMs;
}

const STANDARD_WEBHOOKS_REPLAY_WINDOW_MS = 600_000;

export function loadConfig(env: Env = process.env): Config {
  const dataDir = path.resolve(read(env, 'DATA_DIR', z.string().min(1), './data'));
  const explicitToken = env.ADMIN_TOKEN;
  if (explicitToken !== undefined && explicitToken !== '') {
    if (explicitToken.length < 16) throw new ConfigError('ADMIN_TOKEN', 'must be at least 16 characters');
    // It travels as `Authorization: Bearer <token>`, where whitespace ends the token.
    if (/\s/.test(explicitToken)) throw new ConfigError('ADMIN_TOKEN', 'must not contain spaces or other whitespace');
  }
  const backoffBaseMs = read(env, 'JOB_BACKOFF_BASE', duration(1, 86_400_000), '1s');
  const backoffMaxMs = read(env, 'JOB_BACKOFF_MAX', duration(1, 7 * 86_400_000), '1h');
  // A cap below the first delay would quietly turn every backoff into the cap.
  if (backoffMaxMs < backoffBaseMs) throw new ConfigError('JOB_BACKOFF_MAX', `must be at least JOB_BACKOFF_BASE (${backoffBaseMs} ms), got ${backoffMaxMs} ms`);
  const stripeSecret = env.STRIPE_WEBHOOK_SECRET;
  // Checked even while Stripe is off: a typo should not wait to surface until the secret is set.
  const stripeToleranceSeconds = read(env, 'STRIPE_TOLERANCE_SECONDS', integer(1, 86_400), '300');
  const stripe = stripeSecret
    ? {
        secret: read(env, 'STRIPE_WEBHOOK_SECRET', z.string().regex(/^whsec_\S+$/, 'must start with whsec_'), undefined, 'hidden'),
        toleranceSeconds: stripeToleranceSeconds,
      }
    : null;
  const sources = readSources(env);
  return {
    port: read(env, 'PORT', integer(0, 65535), '3000'),
    host: read(env, 'HOST', z.string().min(1), '0.0.0.0'),
    dataDir,
    dbFile: path.join(dataDir, 'hookwatch.db'),
    dbSynchronous: read(env, 'DB_SYNCHRONOUS', z.enum(['normal', 'full']), 'normal'),
    logLevel: read(env, 'LOG_LEVEL', z.enum(['error', 'warn', 'info', 'debug']), 'info'),
    adminToken: explicitToken || randomBytes(24).toString('base64url'),
    adminTokenGenerated: !explicitToken,
    stripe,
    sources,
    idempotencyTtlMs: idempotencyTtl(env, stripe?.toleranceSeconds ?? null, sources.size > 0),
    bodyLimitBytes: read(env, 'BODY_LIMIT', size, '1mb'),
    rateLimit: {
      max: read(env, 'RATE_LIMIT_MAX', integer(1, 10_000_000), '6000'),
      windowMs: read(env, 'RATE_LIMIT_WINDOW', duration(1000, 86_400_000), '60s'),
    },
    worker: {
      concurrency: read(env, 'WORKER_CONCURRENCY', integer(1, 256), '32'),
      leaseMs: read(env, 'JOB_LEASE', duration(1000, 86_400_000), '30s'),
      runTimeoutMs: read(env, 'JOB_TIMEOUT', duration(1000, 86_400_000), '5m'),
      pollMs: read(env, 'JOB_POLL_INTERVAL', duration(10, 60_000), '250ms'),
      maxAttempts: read(env, 'JOB_MAX_ATTEMPTS', integer(1, 100), '8'),
      backoffBaseMs,
      backoffFactor: read(env, 'JOB_BACKOFF_FACTOR', numberText(/^\d+(\.\d+)?$/, 'must be a number such as 2 or 1.5', z.number().min(1).max(10)), '2'),
      backoffMaxMs,
    },
    shutdownTimeoutMs: read(env, 'SHUTDOWN_TIMEOUT', duration(0, 600_000), '10s'),
    requestTimeoutMs: read(env, 'REQUEST_TIMEOUT', duration(1000, 600_000), '30s'),
    handlersModule: env.HANDLERS_MODULE ? path.resolve(env.HANDLERS_MODULE) : null,
    eventTypeAllowlist: env.EVENT_TYPE_ALLOWLIST ? readAllowlist(env.EVENT_TYPE_ALLOWLIST) : DEFAULT_EVENT_TYPES,
    telemetry: {
      serviceName: read(env, 'OTEL_SERVICE_NAME', z.string().min(1), 'hookwatch'),
      environment: read(env, 'DEPLOYMENT_ENVIRONMENT', z.string().min(1), 'development'),
      lokiUrl: optionalUrl(env, 'LOKI_URL'),
      otlpEndpoint: optionalUrl(env, 'OTEL_EXPORTER_OTLP_ENDPOINT'),
    },
    delivery: {
      timeoutMs: read(env, 'DELIVERY_TIMEOUT', duration(100, 300_000), '30s'),
      concurrency: read(env, 'DELIVERY_CONCURRENCY', integer(1, 256), '64'),
      retrySchedule: read(
        env,
        'RETRY_SCHEDULE',
        z.string().transform((text, ctx) => {
          try {
            return parseRetrySchedule(text);
          } catch (error) {
            ctx.addIssue({ code: 'custom', message: (error as Error).message });
            return z.NEVER;
          }
        }),
        '2m,2m,2m',
      ),
      allowPrivateDestinations: read(env, 'ALLOW_PRIVATE_DESTINATIONS', boolean, 'false'),
      errorWebhookUrl: optionalUrl(env, 'ERROR_WEBHOOK_URL'),
    },
    email: {
      smtpUrl: env.SMTP_URL ? read(env, 'SMTP_URL', z.url({ protocol: /^smtps?$/, message: 'must be an smtp:// or smtps:// URL' }).refine(userInfoDecodes, USER_INFO_PROBLEM), undefined, 'url') : null,
      from: read(env, 'ALERT_EMAIL_FROM', z.email('must be an email address'), 'hookwatch@localhost.localdomain'),
      to: env.ALERT_EMAIL_TO
        ? env.ALERT_EMAIL_TO.split(',').map((address) => read({ ALERT_EMAIL_TO: address.trim() }, 'ALERT_EMAIL_TO', z.email('must be a comma-separated list of email addresses'), undefined))
        : [],
    },
  };
}
