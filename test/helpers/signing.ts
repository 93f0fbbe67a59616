import Stripe from 'stripe';
import { Webhook } from 'standardwebhooks';
import { DEMO_SECRET, STRIPE_SECRET } from './service.js';

let counter = 0;
export const uniqueId = (prefix: string): string => `${prefix}_${Date.now().toString(36)}_${(counter++).toString(36)}_${Math.random().toString(36).slice(2, 8)}`;

export function stripeEvent(type = 'charge.succeeded', id = uniqueId('evt')): { id: string; body: string } {
  const body = JSON.stringify({
    id,
    object: 'event',
    api_version: '2024-06-20',
    created: Math.floor(Date.now() / 1000),
    type,
    livemode: false,
    data: { object: { id: uniqueId('ch'), object: 'charge', amount: 2000, currency: 'usd', status: 'succeeded' } },
  });
  return { id, body };
}

/** Headers as Stripe sends them, signed with the SDK's own test helper. */
export function stripeHeaders(body: string, options: { secret?: string; timestamp?: number } = {}): Record<string, string> {
  const signature = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: options.secret ?? STRIPE_SECRET, timestamp: options.timestamp });
  return { 'content-type': 'application/json', 'stripe-signature': signature };
}

export function standardEvent(type = 'user.created', id = uniqueId('msg')): { id: string; body: string } {
  return { id, body: JSON.stringify({ type, timestamp: new Date().toISOString(), data: { id: uniqueId('user') } }) };
}

export function standardHeaders(id: string, body: string, options: { secret?: string; timestamp?: Date } = {}): Record<string, string> {
  const timestamp = options.timestamp ?? new Date();
  const signature = new Webhook(options.secret ?? DEMO_SECRET).sign(id, timestamp, body);
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': signature,
  };
}
