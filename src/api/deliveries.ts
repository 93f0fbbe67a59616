import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { EVENT_TYPE } from '../event-types.js';
import { badRequest, HttpError, notFound } from '../http/errors.js';
import { ConflictError, CutOffError } from '../outbound/dispatcher.js';
import type { Outbound } from '../outbound/outbound.js';
import type { Attempt, Delivery } from '../store/deliveries.js';
import type { Store } from '../store/store.js';
import type { EventDetailExtension } from './events.js';
import { parseWith } from './query.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function presentAttempt(attempt: Attempt) {
  return {
    number: attempt.number,
    trigger: attempt.trigger,
    at: iso(attempt.at),
    duration_ms: attempt.durationMs,
    ok: attempt.ok,
    status_code: attempt.statusCode,
    reason: attempt.reason,
    error: attempt.error,
    response_body: attempt.responseBody,
  };
}

export function presentDelivery(delivery: Delivery) {
  return {
    id: delivery.id,
    event: delivery.eventPk,
    endpoint_id: delivery.endpointId,
    status: delivery.status,
    parked: delivery.parked,
    attempts: delivery.attempts,
    next_attempt_at: iso(delivery.nextAttemptAt),
    last_attempt_at: iso(delivery.lastAttemptAt),
    last_status_code: delivery.lastStatusCode,
    last_error: delivery.lastError,
    created_at: iso(delivery.createdAt),
    delivered_at: iso(delivery.deliveredAt),
  };
}

/** A delivery with its attempts and its latest response, as the event detail and the delivery detail show it. */
export function presentDeliveryDetail(store: Store, delivery: Delivery) {
  const attempts = store.deliveries.attempts(delivery.id).map(presentAttempt);
  const latest = attempts[attempts.length - 1];
  return {
    ...presentDelivery(delivery),
    endpoint_url: store.endpoints.get(delivery.endpointId)?.url ?? null,
    attempt_log: attempts,
    latest_response: latest ? { status_code: latest.status_code, body: latest.response_body, at: latest.at } : null,
  };
}

/** GET /api/v1/events/:id gains `deliveries`: one per endpoint, each with its attempts. */
export function eventDeliveriesExtension(store: Store): EventDetailExtension {
  return (event) => ({ deliveries: store.deliveries.forEvent(event.id).map((delivery) => presentDeliveryDetail(store, delivery)) });
}

const publishBody = z.object({
  type: z.string().trim().min(1).max(255).regex(EVENT_TYPE, 'letters, digits and _ : - in dot-separated parts (such as order.created)'),
  data: z.unknown().refine((value) => value !== undefined, 'required'),
  id: z.string().trim().min(1).max(255).optional(),
}).strict();

/**
 * `data` as the JSON text to store. JSON.parse takes what JSON.stringify cannot write back as it
 * came: nesting too deep to write at all, and a number too large for a double (1e400), which it
 * reads as Infinity and JSON.stringify would write as null.
 */
function dataText(data: unknown): string {
  try {
    return JSON.stringify(data, (_key, value: unknown) => {
      if (typeof value === 'number' && !Number.isFinite(value)) throw new NonFiniteNumber();
      return value;
    });
  } catch (error) {
    if (error instanceof NonFiniteNumber) throw badRequest('invalid_request', 'the body is not valid', [{ field: 'data', problem: 'holds a number too large to store (send it as a string)' }]);
    if (!(error instanceof RangeError)) throw error;
    throw badRequest('invalid_request', 'the body is not valid', [{ field: 'data', problem: 'nested too deeply to store' }]);
  }
}

class NonFiniteNumber extends Error {}

/** Publishing (POST /events) and single deliveries (show, manual retry). */
export function deliveriesRouter(store: Store, outbound: Outbound): Router {
  const router = Router();

  router.post('/events', (req, res) => {
    const body = parseWith(publishBody, req.body ?? {}, 'body');
    const result = outbound.publisher.publish({ id: body.id ?? `evt_${randomUUID()}`, type: body.type, data: dataText(body.data) }, req.requestId);
    res.status(result.duplicate ? 200 : 202).json({
      id: result.event.id,
      event_id: result.event.eventId,
      type: result.event.type,
      duplicate: result.duplicate,
      deliveries: result.deliveries.map(presentDelivery),
    });
  });

  router.get('/deliveries/:id', (req, res) => {
    const delivery = store.deliveries.get(req.params.id);
    if (!delivery) throw notFound(`delivery ${req.params.id}`);
    res.json(presentDeliveryDetail(store, delivery));
  });

  router.post('/deliveries/:id/retry', async (req, res) => {
    const delivery = store.deliveries.get(req.params.id);
    if (!delivery) throw notFound(`delivery ${req.params.id}`);
    try {
      const { delivery: after, attempt } = await outbound.dispatcher.retryNow(delivery.id, req.requestId);
      res.json({ delivery: presentDelivery(after), attempt: presentAttempt(attempt) });
    } catch (error) {
      if (error instanceof ConflictError) throw new HttpError(409, 'conflict', error.message);
      if (error instanceof CutOffError) throw new HttpError(503, 'shutting_down', error.message);
      throw error;
    }
  });

  return router;
}
