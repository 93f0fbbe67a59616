import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import { HttpError } from '../http/errors.js';
import { toHttpError } from '../http/error-handler.js';
import { addToContext } from '../telemetry/context.js';
import type { Logger } from '../telemetry/logger.js';
import type { InboundErrorType, Metrics } from '../telemetry/metrics.js';
import { inSpan } from '../telemetry/trace-context.js';
import type { AcceptService } from './accept.js';
import { SignatureError, type Verifier } from './verifiers/verifier.js';

export interface InboundOptions {
  verifiers: ReadonlyMap<string, Verifier>;
  bodyLimitBytes: number;
  rateLimit: { max: number; windowMs: number };
  accept: AcceptService;
  metrics: Metrics;
  logger: Logger;
}

declare module 'express-serve-static-core' {
  interface Request {
    webhookSource?: string;
  }
}

function errorType(error: HttpError): InboundErrorType {
  if (error.code === 'invalid_signature') return 'signature';
  if (error.status === 429) return 'rate_limited';
  return error.status >= 500 ? 'internal' : 'bad_request';
}

/**
 * POST /webhooks/:source. In order: unknown source (404), rate limit (429), content type (415),
 * size (413), empty body (400), signature (400), payload (400), then de-duplicate and store (202/200).
 * Nothing that fails a check reaches processing.
 */
export function inboundRouter(options: InboundOptions): Router {
  const { verifiers, metrics, logger } = options;
  const router = Router();

  const measure = (req: Request, res: Response, next: NextFunction): void => {
    const started = process.hrtime.bigint();
    const finished = metrics.requestStarted();
    const requested = String(req.params.source ?? '');
    const source = verifiers.has(requested) ? requested : 'unknown';
    req.webhookSource = source;
    addToContext({ source });
    res.on('close', () => {
      finished();
      metrics.requestCompleted(source, res.statusCode, Number(process.hrtime.bigint() - started) / 1e9);
    });
    next();
  };

  const knownSource = (req: Request, _res: Response, next: NextFunction): void => {
    if (req.webhookSource === 'unknown') {
      next(new HttpError(404, 'unknown_source', `no webhook source named "${req.params.source}" is configured`));
      return;
    }
    next();
  };

  const limiter = rateLimit({
    windowMs: options.rateLimit.windowMs,
    limit: options.rateLimit.max,
    // The limit is per source (a sender), not per client address.
    keyGenerator: (req) => req.webhookSource ?? 'unknown',
    standardHeaders: 'draft-7',
    legacyHeaders: false,
    validate: false,
    handler: (req, _res, next) => {
      const info = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit;
      const reset = info?.resetTime?.getTime() ?? Date.now() + options.rateLimit.windowMs;
      const retryAfter = Math.max(1, Math.ceil((reset - Date.now()) / 1000));
      metrics.rateLimited(req.webhookSource ?? 'unknown');
      next(new HttpError(429, 'rate_limited', `too many requests for source "${req.webhookSource}"; retry after ${retryAfter} s`, undefined, { 'Retry-After': String(retryAfter) }));
    },
  });

  const jsonOnly = (req: Request, _res: Response, next: NextFunction): void => {
    if (!req.is('application/json') && !req.is('application/*+json')) {
      next(new HttpError(415, 'unsupported_media_type', `content type must be application/json, got ${req.get('content-type') ?? 'none'}`));
      return;
    }
    next();
  };

  const rawBody = express.raw({ type: () => true, limit: options.bodyLimitBytes });

  const receive = async (req: Request, res: Response): Promise<void> => {
    const source = req.webhookSource as string;
    const verifier = verifiers.get(source) as Verifier;
    const body: unknown = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) throw new HttpError(400, 'empty_body', 'the request has no body');
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
    addToContext({ event_id: event.eventId, event_type: event.type });
    const result = await options.accept.accept(source, event, req.requestId);
    if (result.duplicate) {
      res.status(200).json({ received: true, duplicate: true, id: result.id });
      return;
    }
    res.status(202).json({ received: true, duplicate: false, id: result.id });
  };

  // Counts and logs every refusal with its source before the app's error handler answers.
  const countErrors = (error: unknown, req: Request, _res: Response, next: NextFunction): void => {
    const httpError = toHttpError(error);
    const source = req.webhookSource ?? 'unknown';
    metrics.inboundError(source, errorType(httpError));
    const level = httpError.status >= 500 ? 'error' : 'warn';
    logger.log(level, 'webhook rejected', { status: httpError.status, error: httpError.code, reason: (httpError.details?.[0] as { reason?: string } | undefined)?.reason, detail: httpError.message });
    next(httpError.status >= 500 ? error : httpError);
  };

  router.post('/webhooks/:source', measure, knownSource, limiter, jsonOnly, rawBody, receive, countErrors);
  return router;
}
