import type { IncomingMessage, ServerResponse } from 'node:http';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { Transform } from 'node:stream';
import getRawBody from 'raw-body';
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import typeis from 'type-is';
import { toHttpError, writeJson, writeJsonError } from '../http/error-handler.js';
import { HttpError } from '../http/errors.js';
import { requestIdOf } from '../http/request-id.js';
import type { Logger } from '../telemetry/logger.js';
import type { InboundErrorType, Metrics } from '../telemetry/metrics.js';
import { inSpan, nameHttpRoute } from '../telemetry/trace-context.js';
import type { AcceptService } from './accept.js';
import { SignatureError, type Verifier } from './verifiers/verifier.js';

export interface IngestOptions {
  verifiers: ReadonlyMap<string, Verifier>;
  bodyLimitBytes: number;
  rateLimit: { max: number; windowMs: number };
  accept: AcceptService;
  metrics: Metrics;
  logger: Logger;
}

export const INGEST_ROUTE = '/webhooks/:source';
const INGEST_PATH = /^\/webhooks\/([^/?#]+)\/?(?:\?.*)?$/i;
/** The status recorded for a request whose client closed the connection before it was answered. */
const CLIENT_CLOSED = 499;

/** The source named by a POST /webhooks/:source request, or null for every other request. */
export function ingestSource(req: IncomingMessage): string | null {
  if (req.method !== 'POST') return null;
  const match = INGEST_PATH.exec(originForm(req.url ?? ''));
  if (!match) return null;
  try {
    return decodeURIComponent(match[1] as string);
  } catch {
    return match[1] as string;
  }
}

/** The path and query of an absolute-form request target (`POST http://host/webhooks/x`, as proxies send). */
function originForm(url: string): string {
  if (url.startsWith('/') || !URL.canParse(url)) return url;
  const parsed = new URL(url);
  return parsed.pathname + parsed.search;
}

function errorType(error: HttpError): InboundErrorType {
  if (error.code === 'invalid_signature') return 'signature';
  if (error.status === 429) return 'rate_limited';
  return error.status >= 500 ? 'internal' : 'bad_request';
}

function decoded(req: IncomingMessage): IncomingMessage | Transform {
  const encoding = (req.headers['content-encoding'] ?? 'identity').toLowerCase();
  switch (encoding) {
    case 'identity': return req;
    case 'gzip': return req.pipe(createGunzip());
    case 'deflate': return req.pipe(createInflate());
    case 'br': return req.pipe(createBrotliDecompress());
    default: throw new HttpError(415, 'unsupported_encoding', `content encoding "${encoding}" is not supported`);
  }
}

/**
 * Bytes of decompressed request bodies held in memory while they arrive, across every request.
 * Bounded, since a client can hold a body of up to BODY_LIMIT for REQUEST_TIMEOUT with a few bytes
 * of gzip and before any signature check: past the budget, new bytes get a 503 and the sender
 * retries later. An uncompressed body costs its sender every byte it holds here, so it is not
 * counted (nor slowed by the counting: it is the common case on the receive path).
 */
class BodyBudget {
  private held = 0;
  constructor(readonly bytes: number) {}

  /** Counts what `stream` delivers until `done` runs; fails the stream once the budget is spent. */
  watch(stream: Transform): () => void {
    let taken = 0;
    const onData = (chunk: Buffer) => {
      taken += chunk.length;
      this.held += chunk.length;
      if (this.held > this.bytes) {
        stream.destroy(new HttpError(503, 'server_busy', 'too many request bodies are arriving at once; send again shortly', undefined, { 'Retry-After': '5' }));
      }
    };
    stream.on('data', onData);
    return () => {
      stream.off('data', onData);
      this.held -= taken;
    };
  }
}

/**
 * Whether node:http cut the request off at REQUEST_TIMEOUT: it answers 408 itself, straight on the
 * socket, so the request only sees its connection go, as when the client leaves.
 */
function timedOut(req: IncomingMessage): boolean {
  return (req.socket?.errored as NodeJS.ErrnoException | null | undefined)?.code === 'ERR_HTTP_REQUEST_TIMEOUT';
}

async function readBody(req: IncomingMessage, limit: number, budget: BodyBudget): Promise<Buffer> {
  const stream = decoded(req);
  const inflating = stream instanceof Transform ? stream : null;
  // The declared length only applies to the bytes on the wire, not to a decompressed body.
  const length = inflating ? undefined : req.headers['content-length'];
  let done: () => void = () => {};
  // A pipe does not end its destination when the source is destroyed: a body cut off (the client
  // left, or REQUEST_TIMEOUT) would leave the reader waiting for ever, and its bytes counted.
  const cutOff = () => {
    if (!req.complete) inflating?.destroy(new HttpError(400, 'request_aborted', 'the request was aborted by the client'));
  };
  if (inflating) req.once('close', cutOff);
  try {
    const reading = getRawBody(stream, { limit, length });
    // Counted beside raw-body's own reader, attached after it so that no chunk flows before it listens.
    if (inflating) done = budget.watch(inflating);
    return await reading;
  } catch (error) {
    if (timedOut(req)) throw new HttpError(408, 'request_timeout', 'the request did not arrive whole within REQUEST_TIMEOUT');
    // Stop inflating and drain what is left, so the connection can carry the next request.
    if (inflating) {
      req.unpipe(inflating);
      inflating.destroy();
    }
    req.resume();
    // raw-body's errors carry their status; zlib's do not, and a body that does not inflate is the sender's error.
    if ((error as { status?: number }).status) throw error;
    throw new HttpError(400, 'malformed_body', `the body could not be decompressed: ${(error as Error).message}`);
  } finally {
    req.off('close', cutOff);
    done();
  }
}

/** What a refusal's log line names besides the error: the event's fields once it is verified. */
interface Refused { request_id: string; source: string; event_id?: string; event_type?: string }

/**
 * POST /webhooks/:source, served by node:http directly rather than through Express: this route
 * is the service's hot path and Express's routing and request decoration cost more than the
 * whole durable accept (see the README's benchmark section). Every other route stays in Express.
 *
 * In order: unknown source (404), content type (415), size (413), empty body (400), signature
 * (400), payload (400), rate limit (429), then de-duplicate and store (202/200). Nothing that
 * fails a check reaches processing.
 */
export function ingestHandler(options: IngestOptions): (req: IncomingMessage, res: ServerResponse, requested: string) => void {
  const { verifiers, metrics, logger, accept } = options;
  // The limit is per source (a sender), not per client address.
  const limiter = new RateLimiterMemory({ points: options.rateLimit.max, duration: options.rateLimit.windowMs / 1000 });
  // 64 bodies of BODY_LIMIT at once, at most 256 MiB.
  const budget = new BodyBudget(Math.min(64 * options.bodyLimitBytes, 256 * 1024 * 1024));

  const receive = async (req: IncomingMessage, res: ServerResponse, source: string, verifier: Verifier | undefined, refused: Refused): Promise<void> => {
    if (!verifier) throw new HttpError(404, 'unknown_source', `no webhook source named "${source}" is configured`);
    const contentType = req.headers['content-type'];
    if (!contentType || !typeis.is(contentType, ['application/json', 'application/*+json'])) {
      throw new HttpError(415, 'unsupported_media_type', `content type must be application/json, got ${contentType ?? 'none'}`);
    }
    const body = await readBody(req, options.bodyLimitBytes, budget);
    if (body.length === 0) throw new HttpError(400, 'empty_body', 'the request has no body');
    const event = inSpan('webhook.verify', { 'webhook.source': source, 'webhook.verifier': verifier.kind }, () => {
      try {
        return verifier.verify(body, req.headers);
      } catch (error) {
        if (error instanceof SignatureError) {
          metrics.signatureRejected(source, error.reason);
          throw new HttpError(400, 'invalid_signature', error.message, [{ reason: error.reason }]);
        }
        throw error;
      }
    });
    // Charged only once the signature holds: anyone can send forged requests, and those must not
    // use up the real sender's budget and get its events refused.
    try {
      await limiter.consume(source);
    } catch (refusal) {
      if (!(refusal instanceof RateLimiterRes)) throw refusal;
      const retryAfter = Math.max(1, Math.ceil(refusal.msBeforeNext / 1000));
      metrics.rateLimited(source);
      throw new HttpError(429, 'rate_limited', `too many requests for source "${source}"; retry after ${retryAfter} s`, undefined, { 'Retry-After': String(retryAfter) });
    }
    refused.event_id = event.eventId;
    refused.event_type = event.type;
    const result = await accept.accept(source, event, refused.request_id);
    writeJson(res, result.duplicate ? 200 : 202, { received: true, duplicate: result.duplicate, id: result.id });
  };

  // Counts and logs every refusal with its source, then answers with the service's JSON error shape.
  const refuse = (error: unknown, res: ServerResponse, refused: Refused): void => {
    const httpError = toHttpError(error);
    metrics.inboundError(refused.source, errorType(httpError));
    const reason = (httpError.details?.[0] as { reason?: string } | undefined)?.reason;
    // One line per refusal; an unexpected error carries its stack.
    if (httpError.status >= 500) logger.error('webhook rejected', { ...refused, status: httpError.status, error: httpError.code, path: INGEST_ROUTE, detail: (error as Error)?.stack ?? String(error) });
    else logger.warn('webhook rejected', { ...refused, status: httpError.status, error: httpError.code, reason, detail: httpError.message });
    writeJsonError(res, httpError);
  };

  return (req, res, requested) => {
    const started = process.hrtime.bigint();
    metrics.requestStarted();
    const verifier = verifiers.get(requested);
    const source = verifier ? requested : 'unknown';
    const requestId = requestIdOf(req.headers['x-request-id']);
    res.setHeader('X-Request-ID', requestId);
    nameHttpRoute(INGEST_ROUTE);
    res.once('close', () => {
      // Closed before the answer was sent: timed out (node:http sent the 408), or the client went
      // away (nginx's 499), not a 200.
      const status = res.writableFinished ? res.statusCode : timedOut(req) ? 408 : CLIENT_CLOSED;
      metrics.requestCompleted(source, status, Number(process.hrtime.bigint() - started) / 1e9);
    });
    const refused: Refused = { request_id: requestId, source };
    receive(req, res, requested, verifier, refused).catch((error: unknown) => refuse(error, res, refused));
  };
}
