import winston from 'winston';
import LokiTransport from 'winston-loki';
import { OutageReporter, displayUrl, type OutageSink } from './outage.js';

export interface LokiOptions {
  /** Loki's base URL (LOKI_URL, e.g. http://loki:3100); lines go to <url>/loki/api/v1/push. */
  url: string;
  /** Seconds between two pushes (one batch per interval). */
  intervalSeconds?: number;
  /** A push that has not been answered by then is abandoned: a hanging Loki holds nothing. */
  timeoutMs?: number;
  /** After a failed push the next one waits this long (winston-loki's circuit breaker). */
  retryIntervalMs?: number;
}

export const LOKI_DEFAULTS = { intervalSeconds: 2, timeoutMs: 5000, retryIntervalMs: 60_000 } as const;

const MESSAGE = Symbol.for('message');

/**
 * What reaches winston-loki: the exact JSON line written to stdout and its timestamp, nothing
 * else. winston-loki would otherwise add a `level` stream label and send every field of the line
 * again as structured metadata; here the stream labels are only service and environment, and
 * ids stay in the line.
 */
const shippedLine = winston.format((info) => ({ timestamp: info.timestamp, [MESSAGE]: info[MESSAGE] }) as unknown as winston.Logform.TransformableInfo);

/**
 * The parts of winston-loki 6.1's batcher that are not in its typings. The batcher reports
 * failed pushes (onConnectionError) but not successful ones, and its retry delay is fixed;
 * test/telemetry-loki.test.ts fails if an upgrade changes these.
 */
interface LokiBatcher {
  batch: { streams: unknown[] };
  circuitBreakerInterval: number;
  sendBatchToLoki(entry?: unknown): Promise<void>;
}

function batcherOf(transport: LokiTransport): LokiBatcher | null {
  const batcher = (transport as unknown as { batcher?: Partial<LokiBatcher> }).batcher;
  if (!batcher || typeof batcher.sendBatchToLoki !== 'function' || !batcher.batch || typeof batcher.circuitBreakerInterval !== 'number') return null;
  return batcher as LokiBatcher;
}

/**
 * A winston transport that ships log lines to Loki in batches, and whose failures can never
 * reach a request: log() only appends to the in-memory batch, the push runs on its own loop with
 * a timeout, a failed batch is dropped (clearOnError; the lines are on stdout) so memory stays
 * bounded during an outage, and the outage is reported once through `sink`, then its recovery.
 */
export function createLokiTransport(options: LokiOptions & { service: string; environment: string }, sink: OutageSink): LokiTransport {
  const base = options.url.replace(/\/+$/, '').replace(/\/loki\/api\/v1\/push$/, '');
  const reporter = new OutageReporter('loki', displayUrl(base), sink);
  const transport = new LokiTransport({
    host: base,
    labels: { service: options.service, environment: options.environment },
    json: true,
    batching: true,
    interval: options.intervalSeconds ?? LOKI_DEFAULTS.intervalSeconds,
    timeout: options.timeoutMs ?? LOKI_DEFAULTS.timeoutMs,
    // Keep the line's own timestamp, so Loki orders lines as they were written, not as they were pushed.
    replaceTimestamp: false,
    clearOnError: true,
    // Its exit hook calls process.exit() on SIGTERM, cutting the service's graceful drain short; main.ts flushes instead.
    gracefulShutdown: false,
    format: shippedLine(),
    onConnectionError: (error) => reporter.failed(error),
  });
  const batcher = batcherOf(transport);
  if (batcher) {
    batcher.circuitBreakerInterval = options.retryIntervalMs ?? LOKI_DEFAULTS.retryIntervalMs;
    const send = batcher.sendBatchToLoki.bind(batcher);
    batcher.sendBatchToLoki = async (entry?: unknown) => {
      // An empty batch is "sent" without a request: it proves nothing about Loki.
      const carriesLines = entry !== undefined || batcher.batch.streams.length > 0;
      await send(entry);
      if (carriesLines) reporter.succeeded();
    };
  }
  return transport;
}

export function isLokiTransport(transport: unknown): transport is LokiTransport {
  return transport instanceof LokiTransport;
}
