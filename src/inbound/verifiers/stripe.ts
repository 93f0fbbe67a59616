import type { IncomingHttpHeaders } from 'node:http';
import Stripe from 'stripe';
import { badRequest } from '../../http/errors.js';
import { parseEventPayload, requireString } from '../payload.js';
import { headerValue, SignatureError, type VerifiedEvent, type Verifier } from './verifier.js';

/**
 * Stripe's own check (the SDK's signature.verifyHeader) on the raw, unparsed body, then the body
 * parsed here. Not constructEvent: it throws the same plain Error whether the body is not JSON or
 * the header tripped the SDK's comparison (an empty `v1=` value, a signature whose UTF-8 byte
 * length differs from its length in characters), so the two could not be told apart.
 */
export class StripeVerifier implements Verifier {
  readonly kind = 'stripe';
  private readonly signature: NonNullable<typeof Stripe.webhooks.signature>;

  constructor(private readonly secret: string, private readonly toleranceSeconds: number) {
    const signature = Stripe.webhooks.signature;
    if (!signature) throw new Error('the Stripe SDK has no webhook signature helper');
    this.signature = signature;
  }

  verify(rawBody: Buffer, headers: IncomingHttpHeaders): VerifiedEvent {
    const header = headerValue(headers, 'stripe-signature');
    if (!header) throw new SignatureError('missing', 'the Stripe-Signature header is missing');
    // Decoded once here: given bytes, the SDK would decode them itself.
    const text = rawBody.toString('utf8');
    try {
      this.signature.verifyHeader(text, header, this.secret, this.toleranceSeconds);
    } catch (error) {
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) throw classify(error.message, header);
      // Anything else verifyHeader throws comes from a header it could not compare.
      throw new SignatureError('malformed', 'the Stripe-Signature header could not be parsed');
    }
    // The SDK only refuses a timestamp that is too old. One far ahead would keep a captured
    // request valid for as long, past the idempotency key that stops its replay (IDEMPOTENCY_TTL
    // is only required to outlast the tolerance).
    const signedAt = headerTimestamp(header);
    if (signedAt !== null && signedAt - Math.floor(Date.now() / 1000) > this.toleranceSeconds) {
      throw new SignatureError('expired', 'the signature timestamp is too far in the future');
    }
    const payload = parseEventPayload(text);
    // constructEvent refuses these too: a thin event carries no snapshot of the object.
    if (payload.object === 'v2.core.event') {
      throw badRequest('invalid_payload', 'a thin event notification (v2.core.event) is not a Stripe webhook event');
    }
    return {
      eventId: requireString(payload, 'id', 'missing_event_id'),
      type: requireString(payload, 'type', 'missing_event_type'),
      rawPayload: text,
    };
  }
}

// The SDK reports every failure as StripeSignatureVerificationError; its message tells which.
function classify(message: string, header: string): SignatureError {
  if (message.startsWith('Timestamp outside the tolerance zone')) return new SignatureError('expired', 'the signature timestamp is outside the tolerance window');
  // The SDK reads `t=abc` as NaN, signs the body with it and so reports a mismatch.
  if (message.startsWith('No signatures found matching') && headerTimestamp(header) === null) {
    return new SignatureError('malformed', 'the Stripe-Signature header has no numeric timestamp (t=)');
  }
  if (message.startsWith('No signatures found matching')) return new SignatureError('mismatch', 'no signature in Stripe-Signature matches the body');
  if (message.startsWith('No stripe-signature header')) return new SignatureError('missing', 'the Stripe-Signature header is missing');
  return new SignatureError('malformed', 'the Stripe-Signature header could not be parsed');
}

/** The signing time in seconds, read as the SDK reads it (the last `t=` entry, through parseInt); null if it has none. */
function headerTimestamp(header: string): number | null {
  let value: string | undefined;
  for (const part of header.split(',')) if (part.startsWith('t=')) value = part.slice(2);
  const seconds = value === undefined ? Number.NaN : Number.parseInt(value, 10);
  return Number.isNaN(seconds) ? null : seconds;
}
