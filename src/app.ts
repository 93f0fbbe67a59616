import express, { type Express, type Router } from 'express';
import { requireAdmin } from './api/auth.js';
import { errorHandler, notFoundHandler } from './http/error-handler.js';
import { requestId } from './http/request-id.js';
import type { Logger } from './telemetry/logger.js';
import type { Metrics } from './telemetry/metrics.js';

export interface AppParts {
  logger: Logger;
  metrics: Metrics;
  adminToken: string;
  /** Routers mounted at the root without authentication (/webhooks, /health). */
  publicRouters: readonly Router[];
  /** Routers mounted under /api/v1 behind the admin bearer token. */
  adminRouters: readonly Router[];
}

/** Assembles the Express app from its routers; no listen, so tests drive it with supertest. */
export function createApp(parts: AppParts): Express {
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
  app.use('/api/v1', requireAdmin(parts.adminToken), express.json({ limit: '256kb' }), ...parts.adminRouters);

  app.use(notFoundHandler);
  app.use(errorHandler(parts.logger));
  return app;
}
