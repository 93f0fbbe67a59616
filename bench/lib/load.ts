import autocannon from 'autocannon';
import { signedStripeEvent } from './stripe-body.js';

export interface LoadResult {
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  total: number;
  non2xx: number;
  errors: number;
}

/**
 * The request autocannon repeats: each time a new signed Stripe event with a unique id.
 * `onAccepted`, when given, hears of every 202 with the event's id and the id it was stored under.
 */
function signedStripeRequest(secret: string, onAccepted?: (ids: string[]) => void): autocannon.Request {
  return {
    method: 'POST',
    setupRequest: (request, context) => {
      const event = signedStripeEvent(secret);
      (context as { eventId?: string }).eventId = event.id;
      return { ...request, method: 'POST', body: event.body, headers: { 'content-type': 'application/json', 'stripe-signature': event.signature } };
    },
    onResponse: onAccepted && ((status, body, context) => {
      if (status !== 202) return;
      const ids = [String((context as { eventId?: string }).eventId)];
      try {
        ids.push((JSON.parse(body) as { id: string }).id);
      } catch {
        // the event's own id is enough
      }
      onAccepted(ids);
    }),
  };
}

/** Drives signed, unique Stripe events at a server for `seconds` with `connections` connections. */
export async function stripeLoad(url: string, secret: string, connections: number, seconds: number): Promise<LoadResult> {
  const result = await autocannon({ url: `${url}/webhooks/stripe`, connections, duration: seconds, requests: [signedStripeRequest(secret)] });
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}

/** Sends `count` signed, unique Stripe events over 50 connections; resolves once all are answered. */
export async function sendStripeEvents(url: string, secret: string, count: number, onAccepted?: (ids: string[]) => void): Promise<void> {
  await autocannon({ url: `${url}/webhooks/stripe`, connections: 50, amount: count, requests: [signedStripeRequest(secret, onAccepted)] });
}
