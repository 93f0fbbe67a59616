import http from 'node:http';
import https from 'node:https';
import type { DeliveryFailureReason } from '../telemetry/metrics.js';
import { displayUrl } from '../telemetry/outage.js';
import { DestinationRefusedError, guardedLookup, literalRefusal } from './destination-guard.js';

export interface OutboundRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  timeoutMs: number;
  /** false refuses private, loopback and link-local destinations (checked on the resolved address). */
  allowPrivate: boolean;
}

/** What one HTTP attempt came to. */
export interface SendResult {
  ok: boolean;
  statusCode: number | null;
  reason: DeliveryFailureReason | null;
  error: string | null;
  durationMs: number;
  /** The first KB of the response body. */
  responseBody: string | null;
  /** Retry-After of a 429 or 503, in ms, when the endpoint sent one we could read. */
  retryAfterMs: number | null;
}

export const RESPONSE_BODY_LIMIT = 1024;
// Past this the rest of a response is not worth reading; the socket is dropped instead.
const DRAIN_LIMIT = 1024 * 1024;

/** Classifies a status the way the delivery metrics do: 2xx success, 5xx http_5xx, anything else http_4xx. */
export function statusReason(status: number): DeliveryFailureReason | null {
  if (status >= 200 && status < 300) return null;
  return status >= 500 ? 'http_5xx' : 'http_4xx';
}

/** Parses Retry-After (seconds or an HTTP date) relative to now; null when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number): number | null {
  if (!value) return null;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? null : Math.max(0, date - now);
}

type Agents = { 'http:': http.Agent; 'https:': https.Agent };

// No cap on sockets per endpoint: the worker pool already bounds the attempts in flight, and a
// request queued here for a socket would spend its deadline waiting inside hookwatch.
const keepAliveAgents = (): Agents => ({
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
});

/**
 * Sends webhook requests over keep-alive pools of its own: an endpoint under steady traffic
 * reuses its connections, and each new connection still goes through the guarded lookup.
 * Requests allowed to reach private addresses (the operator's error webhook) get pools of their
 * own: an agent pools sockets by host and port only, so a socket they opened to an internal host
 * would otherwise carry a guarded request to the same name past the check.
 */
export class HttpSender {
  private readonly guarded = keepAliveAgents();
  private readonly unguarded = keepAliveAgents();

  send(request: OutboundRequest): Promise<SendResult> {
    return send(request, request.allowPrivate ? this.unguarded : this.guarded);
  }

  /** Drops the pooled connections (shutdown). */
  close(): void {
    for (const agents of [this.guarded, this.unguarded]) {
      agents['http:'].destroy();
      agents['https:'].destroy();
    }
  }
}

/**
 * POSTs one message. Never throws: every failure (refused destination, DNS, connection,
 * TLS, timeout, non-2xx) comes back as a result with its reason. Redirects are not followed
 * (a 3xx is a failed attempt), and the deadline covers connecting, waiting and reading.
 */
function send(request: OutboundRequest, agents: Agents): Promise<SendResult> {
  const started = process.hrtime.bigint();
  const elapsed = () => Number(process.hrtime.bigint() - started) / 1e6;
  const failure = (reason: DeliveryFailureReason, error: string, statusCode: number | null = null, responseBody: string | null = null): SendResult =>
    ({ ok: false, statusCode, reason, error, durationMs: elapsed(), responseBody, retryAfterMs: null });

  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return Promise.resolve(failure('connection', `invalid URL ${displayUrl(request.url)}`));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.resolve(failure('connection', `unsupported protocol ${url.protocol}`));
  if (!request.allowPrivate) {
    const refusal = literalRefusal(url);
    if (refusal) return Promise.resolve(failure('connection', refusal.message));
  }

  return new Promise<SendResult>((resolve) => {
    let settled = false;
    let timedOut = false;
    // A deadline that passes after the status line arrived still reports that status.
    let responded: number | null = null;
    const finish = (result: SendResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const transport = url.protocol === 'https:' ? https : http;
    let req: http.ClientRequest;
    try {
      req = transport.request(url, {
        method: 'POST',
        agent: url.protocol === 'https:' ? agents['https:'] : agents['http:'],
        lookup: request.allowPrivate ? undefined : guardedLookup,
        headers: { 'content-type': 'application/json', 'user-agent': 'hookwatch', ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) },
      });
    } catch (error) {
      // Thrown before anything is sent: user-info that does not percent-decode, a header value
      // http refuses. The message names the part, never the URL with its credentials.
      settled = true;
      resolve(failure('connection', `request not sent: ${(error as Error).message}`));
      return;
    }
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy(new Error(`no complete response within ${request.timeoutMs} ms`));
    }, request.timeoutMs);

    req.on('error', (error: NodeJS.ErrnoException) => {
      if (timedOut) finish(failure('timeout', error.message, responded));
      else if (error instanceof DestinationRefusedError) finish(failure('connection', error.message));
      else finish(failure('connection', `${error.code ?? error.name}: ${error.message}`));
    });
    req.on('response', (res) => {
      const status = res.statusCode ?? 0;
      responded = status;
      const chunks: Buffer[] = [];
      let kept = 0;
      let seen = 0;
      res.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (kept < RESPONSE_BODY_LIMIT) {
          const part = chunk.subarray(0, RESPONSE_BODY_LIMIT - kept);
          chunks.push(part);
          kept += part.length;
        }
        if (seen > DRAIN_LIMIT) res.destroy();
      });
      const done = () => {
        const body = Buffer.concat(chunks).toString('utf8');
        if (timedOut) {
          finish(failure('timeout', `no complete response within ${request.timeoutMs} ms`, status, body));
          return;
        }
        const reason = statusReason(status);
        if (!reason) {
          finish({ ok: true, statusCode: status, reason: null, error: null, durationMs: elapsed(), responseBody: body, retryAfterMs: null });
          return;
        }
        const header = res.headers['retry-after'];
        const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(Array.isArray(header) ? header[0] : header, Date.now()) : null;
        // Shown like the endpoint's own URL: a Location may carry the query's credentials along.
        const redirect = status >= 300 && status < 400 ? ` (redirect to ${res.headers.location ? displayUrl(res.headers.location) : '?'} not followed)` : '';
        finish({ ...failure(reason, `HTTP ${status}${redirect}`, status, body), retryAfterMs });
      };
      res.on('end', done);
      res.on('close', done);
      res.on('error', () => done());
    });
    req.end(request.body);
  });
}
