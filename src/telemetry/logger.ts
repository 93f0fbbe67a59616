import { trace } from '@opentelemetry/api';
import winston from 'winston';
import type Transport from 'winston-transport';
import { createLokiTransport, isLokiTransport, type LokiOptions } from './loki.js';
import { OUTAGE_MESSAGES, type OutageSink } from './outage.js';
import { BatchedStdout } from './stdout.js';

export type Logger = winston.Logger;

// Keys whose values must never reach a log line, whatever object carries them.
const SECRET_KEYS = /^(authorization|cookie|stripe-signature|webhook-signature|secret|secrets|password|token|admin_token|signing_secret|smtp_url)$/i;

function redact(value: unknown, depth = 0): unknown {
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    out[key] = SECRET_KEYS.test(key) ? '[redacted]' : redact(inner, depth + 1);
  }
  return out;
}

/** Adds the active span's ids to every line, and strips secrets. */
const enrich = winston.format((info) => {
  const span = trace.getActiveSpan();
  if (span && info.trace_id === undefined) {
    const { traceId, spanId, traceFlags } = span.spanContext();
    if (traceFlags & 1) {
      info.trace_id = traceId;
      info.span_id = spanId;
    }
  }
  for (const key of Object.keys(info)) {
    if (SECRET_KEYS.test(key)) info[key] = '[redacted]';
    else if (typeof info[key] === 'object') info[key] = redact(info[key]);
  }
  return info;
});

// winston's MESSAGE key (triple-beam's Symbol.for('message')): what a transport writes.
const MESSAGE = Symbol.for('message');
const safeJson = winston.format.json();

/**
 * winston's json format, serialised natively: format.json() goes through safe-stable-stringify,
 * which sorts keys and copies through a replacer (a third of a log line's cost and most of its
 * garbage, measured in the receive benchmark). It is still used for what JSON.stringify refuses
 * (a cycle, a BigInt).
 */
const jsonLine = winston.format((info) => {
  try {
    (info as Record<symbol, unknown>)[MESSAGE] = JSON.stringify(info);
    return info;
  } catch {
    return safeJson.transform(info, {});
  }
});

export interface LoggerOptions {
  level: string;
  service: string;
  environment: string;
  /** Ships the same lines to Loki (LOKI_URL); null or absent: stdout only. */
  loki?: LokiOptions | null;
  /** Extra transports; stdout is always on. */
  transports?: Transport[];
  /** Where stdout lines go; tests capture them. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const console = new winston.transports.Stream({ stream: options.stream ?? new BatchedStdout() });
  const transports: Transport[] = [console, ...(options.transports ?? [])];
  let logger: Logger | null = null;
  if (options.loki) {
    // Outages of Loki are reported through this same logger (on stdout), once per outage.
    transports.push(createLokiTransport({ ...options.loki, service: options.service, environment: options.environment }, (event) => {
      if (logger) outageLogSink(logger)(event);
    }));
  }
  logger = winston.createLogger({
    level: options.level,
    defaultMeta: { service: options.service, environment: options.environment },
    format: winston.format.combine(winston.format.timestamp(), enrich(), jsonLine()),
    transports,
  });
  return logger;
}

/** Writes telemetry-backend outage reports as log lines: one error when it goes down, one info when it is back. */
export function outageLogSink(logger: Logger): OutageSink {
  return (event) => {
    if (event.state === 'down') logger.error(OUTAGE_MESSAGES.down, { backend: event.backend, url: event.url, error: event.error });
    else if (event.state === 'still_down') logger.debug(OUTAGE_MESSAGES.still_down, { backend: event.backend, url: event.url, error: event.error, failed_attempts: event.failed_attempts });
    else logger.info(OUTAGE_MESSAGES.up, { backend: event.backend, url: event.url, failed_attempts: event.failed_attempts, outage_seconds: event.outage_seconds });
  };
}

/**
 * Pushes what is still batched for Loki and stops the push loop. Bounded: a Loki that hangs
 * cannot hold the process's exit. Lines logged afterwards go to stdout only.
 */
export async function shutdownLogShipping(logger: Logger, boundMs = 3000): Promise<void> {
  const closing = logger.transports.filter(isLokiTransport).map((transport) => transport.close().catch(() => undefined));
  if (closing.length === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => { timer = setTimeout(resolve, boundMs); timer.unref(); });
  await Promise.race([Promise.all(closing), expired]);
  clearTimeout(timer);
}
