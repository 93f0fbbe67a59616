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

/** Drives signed, unique Stripe events at a server for `seconds` with `connections` connections. */
export async function stripeLoad(url: string, secret: string, connections: number, seconds: number): Promise<LoadResult> {
  const result = await autocannon({
    url: `${url}/webhooks/stripe`,
    connections,
    duration: seconds,
    requests: [{
      method: 'POST',
      setupRequest: (request) => {
        const event = signedStripeEvent(secret);
        return { ...request, method: 'POST', body: event.body, headers: { 'content-type': 'application/json', 'stripe-signature': event.signature } };
      },
    }],
  });
  return {
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
  };
}
