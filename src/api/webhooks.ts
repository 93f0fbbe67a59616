import { Router } from 'express';
import { z } from 'zod';
import { EVENT_PATTERN } from '../event-types.js';
import { badRequest, HttpError, notFound } from '../http/errors.js';
import { literalRefusal } from '../outbound/destination-guard.js';
import type { Outbound } from '../outbound/outbound.js';
import { USER_INFO_PROBLEM, userInfoDecodes } from '../outbound/sendable-url.js';
import { DELIVERY_STATUSES, type DeliveryStatus } from '../store/deliveries.js';
import type { Endpoint } from '../store/endpoints.js';
import type { Store } from '../store/store.js';
import { presentDelivery } from './deliveries.js';
import { decodeCursor, encodeCursor, limitParam, parseWith, queryOf } from './query.js';

// Port 0 parses as a URL, but nothing can be sent to it. (Refinements run after a failed check too.)
const notPortZero = (url: string): boolean => !URL.canParse(url) || new URL(url).port !== '0';
const urlField = z.string().trim().max(2048).pipe(z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' })
  .refine(userInfoDecodes, USER_INFO_PROBLEM).refine(notPortZero, 'port 0 cannot be sent to'));
const eventsField = z.array(z.string().trim().regex(EVENT_PATTERN, 'must be an event type, a prefix such as invoice.*, or *')).min(1, 'subscribe to at least one event type (* for all)').max(100);
const ownersField = z.array(z.email('must be an email address')).max(20);
const descriptionField = z.string().max(500);

const createBody = z.object({
  url: urlField,
  events: eventsField,
  description: descriptionField.default(''),
  owner_emails: ownersField.default([]),
}).strict();

const updateBody = z.object({
  url: urlField.optional(),
  events: eventsField.optional(),
  description: descriptionField.optional(),
  owner_emails: ownersField.optional(),
  paused: z.boolean().optional(),
  disabled: z.literal(false, 'only false (re-enable) can be set').optional(),
}).strict().refine((body) => Object.keys(body).length > 0, 'nothing to update');

const recoverBody = z.object({ since: z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time' }) }).strict();

const deliveriesQuery = z.object({
  status: z.enum(DELIVERY_STATUSES as [DeliveryStatus, ...DeliveryStatus[]]).optional(),
  limit: limitParam,
  cursor: z.string().max(512).optional(),
}).strict();
const cursorShape = z.object({ seq: z.number().int() });

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function presentEndpoint(store: Store, endpoint: Endpoint) {
  const health = store.endpointHealth.get(endpoint.id);
  return {
    id: endpoint.id,
    url: endpoint.url,
    description: endpoint.description,
    events: endpoint.events,
    owner_emails: endpoint.ownerEmails,
    paused: endpoint.paused,
    disabled: endpoint.disabledAt !== null,
    disabled_at: iso(endpoint.disabledAt),
    disabled_reason: endpoint.disabledReason,
    previous_secret_expires_at: iso(endpoint.retiredSecrets[0]?.expiresAt ?? null),
    // Secrets replaced before that one which were still signing at the last rotation, newest first.
    earlier_secrets_expire_at: endpoint.retiredSecrets.slice(1).map((retired) => iso(retired.expiresAt)),
    created_at: iso(endpoint.createdAt),
    updated_at: iso(endpoint.updatedAt),
    health: {
      last_attempt_at: iso(health.lastAttemptAt),
      last_ok: health.lastOk,
      last_status_code: health.lastStatus,
      consecutive_failures: health.streak,
      window: health.windowStart === null ? null : {
        started_at: iso(health.windowStart), attempts: health.windowAttempts, failures: health.windowFailures,
        reasons: health.windowReasons, notified_at: iso(health.windowNotifiedAt),
      },
    },
  };
}

/** Refuses at registration what would be refused at every delivery: a private IP literal. */
function checkDestination(url: string | undefined, allowPrivate: boolean): void {
  if (!url || allowPrivate) return;
  const refusal = literalRefusal(new URL(url));
  if (refusal) throw badRequest('invalid_request', 'the body is not valid', [{ field: 'url', problem: refusal.message }]);
}

/** Endpoint management: register, list, show, update, rotate the secret, delete, deliveries, recover, test. */
export function webhooksRouter(store: Store, outbound: Outbound, options: { allowPrivateDestinations: boolean }): Router {
  const router = Router();

  const find = (id: string): Endpoint => {
    const endpoint = store.endpoints.get(id);
    if (!endpoint) throw notFound(`endpoint ${id}`);
    return endpoint;
  };

  router.post('/webhooks', (req, res) => {
    const body = parseWith(createBody, req.body ?? {}, 'body');
    checkDestination(body.url, options.allowPrivateDestinations);
    const endpoint = outbound.createEndpoint({ url: body.url, events: body.events, description: body.description, ownerEmails: body.owner_emails }, req.requestId);
    // The signing secret is shown here and after a rotation, never again.
    res.status(201).json({ ...presentEndpoint(store, endpoint), secret: endpoint.secret });
  });

  router.get('/webhooks', (_req, res) => {
    res.json({ data: store.endpoints.list().map((endpoint) => presentEndpoint(store, endpoint)) });
  });

  router.get('/webhooks/:id', (req, res) => {
    res.json(presentEndpoint(store, find(req.params.id)));
  });

  router.patch('/webhooks/:id', (req, res) => {
    const body = parseWith(updateBody, req.body ?? {}, 'body');
    find(req.params.id);
    checkDestination(body.url, options.allowPrivateDestinations);
    const updated = outbound.updateEndpoint(req.params.id, {
      url: body.url, events: body.events, description: body.description, ownerEmails: body.owner_emails, paused: body.paused, disabled: body.disabled,
    }, req.requestId);
    if (!updated) throw notFound(`endpoint ${req.params.id}`);
    res.json(presentEndpoint(store, updated));
  });

  router.post('/webhooks/:id/rotate-secret', (req, res) => {
    find(req.params.id);
    const rotated = outbound.rotateSecret(req.params.id, req.requestId);
    if (!rotated) throw notFound(`endpoint ${req.params.id}`);
    res.json({ ...presentEndpoint(store, rotated), secret: rotated.secret });
  });

  router.delete('/webhooks/:id', (req, res) => {
    if (!outbound.deleteEndpoint(req.params.id, req.requestId)) throw notFound(`endpoint ${req.params.id}`);
    res.status(204).end();
  });

  router.get('/webhooks/:id/deliveries', (req, res) => {
    const endpoint = find(req.params.id);
    const query = parseWith(deliveriesQuery, queryOf(req), 'query');
    const before = query.cursor ? decodeCursor(cursorShape, query.cursor).seq : undefined;
    const found = store.deliveries.list({ endpointId: endpoint.id, status: query.status, beforeSeq: before, limit: query.limit });
    const last = found.length === query.limit ? found[found.length - 1] : undefined;
    res.json({ data: found.map(presentDelivery), next_cursor: last ? encodeCursor({ seq: last.seq }) : null });
  });

  router.post('/webhooks/:id/recover', (req, res) => {
    const endpoint = find(req.params.id);
    const body = parseWith(recoverBody, req.body ?? {}, 'body');
    // Re-queued, they would fail again at once without an attempt, as a manual retry is refused.
    if (endpoint.disabledAt !== null) throw new HttpError(409, 'conflict', `endpoint ${endpoint.id} is disabled; re-enable it first`);
    const requeued = outbound.recover(endpoint, Date.parse(body.since), req.requestId);
    res.status(202).json({ requeued });
  });

  router.post('/webhooks/:id/test', async (req, res) => {
    const endpoint = find(req.params.id);
    const result = await outbound.dispatcher.sendTest(endpoint, req.requestId);
    res.json({
      message_id: result.messageId,
      ok: result.ok,
      status_code: result.statusCode,
      reason: result.reason,
      error: result.error,
      duration_ms: Math.round(result.durationMs * 1000) / 1000,
      response_body: result.responseBody,
    });
  });

  return router;
}
