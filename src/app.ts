import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express, { type RequestHandler, type Router } from 'express';
import { requireAdmin } from './api/auth.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { HttpError } from './http/errors.js';
import { requestId } from './http/request-id.js';
import type { Logger } from './telemetry/logger.js';
import type { Metrics } from './telemetry/metrics.js';

export interface AppParts {
  logger: Logger;
  metrics: Metrics;
  adminToken: string;
  /** Serves POST /webhooks/:source ahead of Express (see inbound/ingest.ts). */
  ingest: {
    source(req: IncomingMessage): string | null;
    handle(req: IncomingMessage, res: ServerResponse, source: string): void;
  };
  /** Routers mounted at the root without authentication (/health). */
  publicRouters: readonly Router[];
  /** Routers mounted under /api/v1 behind the admin bearer token. */
  adminRouters: readonly Router[];
}

/**
 * express.json() passes over a body of any other type, which the routes would then report as
 * missing fields; `curl -d` sends form encoding unless told otherwise.
 */
const requireJsonBody: RequestHandler = (req, _res, next) => {
  // req.is() answers null for a request without a body; Content-Length: 0 is none either.
  if (req.is('application/json') === false && req.headers['content-length'] !== '0') {
    next(new HttpError(415, 'unsupported_media_type', `send the body as application/json, not ${req.headers['content-type'] ?? 'without a content type'}`));
    return;
  }
  next();
};

/**
 * Assembles the request listener: webhook ingestion first, every other route in the Express app
 * built from its routers. No listen, so tests drive it with supertest.
 */
export function createApp(parts: AppParts): RequestListener {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestId);

  app.get('/metrics', async (req, res, next) => {
    try {
      const { contentType, body } = await parts.metrics.exposition(req.get('accept'));
      res.setHeader('Content-Type', contentType);
      res.send(body);
    } catch (error) {
      next(error);
    }
  });

  for (const router of parts.publicRouters) app.use(router);
  app.use('/api/v1', requireAdmin(parts.adminToken), requireJsonBody, express.json({ limit: '256kb' }), ...parts.adminRouters);

  app.use(notFoundHandler);
  app.use(errorHandler(parts.logger));
  return (req, res) => {
    const source = parts.ingest.source(req);
    if (source === null) app(req, res);
    else parts.ingest.handle(req, res, source);
  };
}
