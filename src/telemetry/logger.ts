import { trace } from '@opentelemetry/api';
import winston from 'winston';
import type Transport from 'winston-transport';
import { currentContext } from './context.js';

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

/** Adds the request/job context and the active span's ids to every line, and strips secrets. */
const enrich = winston.format((info) => {
  const context = currentContext();
  if (context) {
    for (const [key, value] of Object.entries(context)) {
      if (value !== undefined && info[key] === undefined) info[key] = value;
    }
  }
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

export interface LoggerOptions {
  level: string;
  service: string;
  environment: string;
  /** Extra transports (Loki); stdout is always on. */
  transports?: Transport[];
  /** Where stdout lines go; tests capture them. */
  stream?: NodeJS.WritableStream;
}

export function createLogger(options: LoggerOptions): Logger {
  const console = options.stream
    ? new winston.transports.Stream({ stream: options.stream })
    : new winston.transports.Console();
  return winston.createLogger({
    level: options.level,
    defaultMeta: { service: options.service, environment: options.environment },
    format: winston.format.combine(winston.format.timestamp(), enrich(), winston.format.json()),
    transports: [console, ...(options.transports ?? [])],
  });
}
