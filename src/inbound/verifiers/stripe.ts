import type { IncomingHttpHeaders } from 'node:http';
import Stripe from 'stripe';
import { badRequest } from '../../http/errors.js';
import { requireString } from '../payload.js';
import { headerValue, SignatureError, type VerifiedEvent, type Verifier } from './verifier.js';

/** Stripe's own check (the SDK's constructEvent) on the raw, unparsed body. */
export class StripeVerifier implements Verifier {
  readonly kind = 'stripe';

  constructor(private readonly secret: string, private readonly toleranceSeconds: number) {}

  verify(rawBody: Buffer, headers: IncomingHttpHeaders): VerifiedEvent {
    const header = headerValue(headers, 'stripe-signature');
    if (!header) throw new SignatureError('missing', 'the Stripe-Signature header is missing');
    // Decoded once here: given bytes, the SDK decodes them twice itself (to sign, then to parse).
    const text = rawBody.toString('utf8');
    let event: unknown;
    try {
      event = Stripe.webhooks.constructEvent(text, header, this.secret, this.toleranceSeconds);
    } catch (error) {
      if (error instanceof Stripe.errors.StripeSignatureVerificationError) throw classify(error.message);
      // The signature matched but the SDK could not parse the body.
      throw badRequest('malformed_json', `the body is not valid JSON: ${(error as Error).message}`);
    }
    if (event === null || typeof event !== 'object' || Array.isArray(event)) {
      throw badRequest('invalid_payload', 'the body must be a JSON object');
    }
    const payload = event as Record<string, unknown>;
    return {
      eventId: requireString(payload, 'id', 'missing_event_id'),
      type: requireString(payload, 'type', 'missing_event_type'),
      rawPayload: text,
    };
  }
}

// The SDK reports every failure as StripeSignatureVerificationError; its message tells which.
function classify(message: string): SignatureError {
  if (message.startsWith('Timestamp outside the tolerance zone')) return new SignatureError('expired', 'the signature timestamp is outside the tolerance window');
  if (message.startsWith('No signatures found matching')) return new SignatureError('mismatch', 'no signature in Stripe-Signature matches the body');
  if (message.startsWith('No stripe-signature header')) return new SignatureError('missing', 'the Stripe-Signature header is missing');
  return new SignatureError('malformed', 'the Stripe-Signature header could not be parsed');
}
