import type { IncomingHttpHeaders } from 'node:http';
import type { SignatureFailureReason } from '../../telemetry/metrics.js';

/** A request that passed signature verification, with what accepting it needs. */
export interface VerifiedEvent {
  eventId: string;
  type: string;
  /** The raw JSON text, stored as received. */
  rawPayload: string;
}

/** Checks a webhook's signature on its raw body; throws SignatureError or an HttpError for a bad payload. */
export interface Verifier {
  readonly kind: 'stripe' | 'standard-webhooks';
  verify(rawBody: Buffer, headers: IncomingHttpHeaders): VerifiedEvent;
}

export class SignatureError extends Error {
  constructor(readonly reason: SignatureFailureReason, message: string) {
    super(message);
    this.name = 'SignatureError';
  }
}

export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
