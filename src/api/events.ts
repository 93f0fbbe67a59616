import { Router } from 'express';
import { z } from 'zod';
import { notFound } from '../http/errors.js';
import type { Store } from '../store/store.js';
import { EVENT_STATUSES, type StoredEvent } from '../store/events.js';
import { decodeCursor, encodeCursor, limitParam, parseWith, queryOf } from './query.js';

const listQuery = z.object({
  source: z.string().max(64).optional(),
  type: z.string().max(255).optional(),
  status: z.enum(EVENT_STATUSES).optional(),
  limit: limitParam,
  cursor: z.string().max(512).optional(),
}).strict();

const cursorShape = z.object({ receivedAt: z.number(), id: z.string() });

export function presentEvent(event: StoredEvent) {
  return {
    id: event.id,
    source: event.source,
    event_id: event.eventId,
    type: event.type,
    status: event.status,
    attempts: event.attempts,
    received_at: new Date(event.receivedAt).toISOString(),
    processed_at: event.processedAt ? new Date(event.processedAt).toISOString() : null,
    last_error: event.lastError,
    request_id: event.requestId,
  };
}

/** Extra sections a module adds to GET /api/v1/events/:id (the sender adds deliveries). */
export type EventDetailExtension = (event: StoredEvent) => Record<string, unknown>;

export function eventsRouter(store: Store, extensions: readonly EventDetailExtension[] = []): Router {
  const router = Router();

  router.get('/events', (req, res) => {
    const query = parseWith(listQuery, queryOf(req), 'query');
    const before = query.cursor ? decodeCursor(cursorShape, query.cursor) : undefined;
    const events = store.events.list({ source: query.source, type: query.type, status: query.status, before, limit: query.limit });
    const last = events.length === query.limit ? events[events.length - 1] : undefined;
    res.json({
      data: events.map(presentEvent),
      next_cursor: last ? encodeCursor({ receivedAt: last.receivedAt, id: last.id }) : null,
    });
  });

  router.get('/events/:id', (req, res) => {
    const event = store.events.get(req.params.id);
    if (!event) throw notFound(`event ${req.params.id}`);
    const history = store.events.handlerRuns(event.id).map((run) => ({
      attempt: run.attempt,
      handler: run.handler,
      outcome: run.outcome,
      error: run.error,
      duration_ms: Math.round(run.durationMs * 1000) / 1000,
      at: new Date(run.at).toISOString(),
    }));
    const extra = Object.assign({}, ...extensions.map((extend) => extend(event))) as Record<string, unknown>;
    // The payload goes out as the JSON text it was stored as (valid: it was parsed on receipt), not
    // parsed and serialised again, which a deeply nested payload would end in a stack overflow.
    const rest = JSON.stringify({ ...presentEvent(event), history, ...extra });
    res.type('application/json').send(`${rest.slice(0, -1)},"payload":${event.rawPayload}}`);
  });

  return router;
}
