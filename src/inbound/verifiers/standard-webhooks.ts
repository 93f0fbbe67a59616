import type { IncomingHttpHeaders } from 'node:http';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { badRequest } from '../../http/errors.js';
import { parseEventPayload, requireString } from '../payload.js';
import { headerValue, SignatureError, type VerifiedEvent, type Verifier } from './verifier.js';

const SIGNATURE_ENTRY = /^v1,[A-Za-z0-9+/]+={0,2}$/;

/**
 * Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature) through the
 * `standardwebhooks` library. Several secrets may be configured for key rotation; the header
 * may carry several signatures; one match is enough. The library's tolerance is the spec's
 * fixed five minutes, in the past and in the future.
 */
export class StandardWebhooksVerifier implements Verifier {
  readonly kind = 'standard-webhooks';
  private readonly webhooks: Webhook[];

  constructor(secrets: readonly string[]) {
    if (secrets.length === 0) throw new Error('a Standard Webhooks source needs at least one secret');
    this.webhooks = secrets.map((secret) => new Webhook(secret));
  }

  verify(rawBody: Buffer, headers: IncomingHttpHeaders): VerifiedEvent {
    const id = headerValue(headers, 'webhook-id');
    const timestamp = headerValue(headers, 'webhook-timestamp');
    const signature = headerValue(headers, 'webhook-signature');
    if (!id || !timestamp || !signature) {
      const missing = [['webhook-id', id], ['webhook-timestamp', timestamp], ['webhook-signature', signature]].filter(([, v]) => !v).map(([n]) => n);
      throw new SignatureError('missing', `missing header(s): ${missing.join(', ')}`);
    }
    if (!/^\d{1,12}$/.test(timestamp)) throw new SignatureError('malformed', 'webhook-timestamp is not a Unix timestamp in seconds');
    if (!signature.split(' ').some((entry) => SIGNATURE_ENTRY.test(entry))) {
      throw new SignatureError('malformed', 'webhook-signature holds no v1,<base64> signature');
    }
    const raw = rawBody.toString('utf8');
    const plain = { 'webhook-id': id, 'webhook-timestamp': timestamp, 'webhook-signature': signature };
    // Fails closed: only a secret that verified lets the request through.
    let failure: SignatureError = new SignatureError('mismatch', 'no signature in webhook-signature matches the body');
    let verified = false;
    for (const webhook of this.webhooks) {
      try {
        webhook.verify(raw, plain, { jsonParse: false });
        verified = true;
        break;
      } catch (error) {
        failure = classify(error);
        if (failure.reason === 'expired') break;
      }
    }
    if (!verified) throw failure;
    // Checked once signed: an unsigned request learns nothing of what hookwatch accepts.
    if (id.length > 255) throw badRequest('invalid_event_id', 'webhook-id is longer than 255 characters');
    const payload = parseEventPayload(raw);
    return { eventId: id, type: requireString(payload, 'type', 'missing_event_type'), rawPayload: raw };
  }
}

function classify(error: unknown): SignatureError {
  if (!(error instanceof WebhookVerificationError)) return new SignatureError('malformed', (error as Error).message);
  if (error.message.includes('timestamp too old')) return new SignatureError('expired', 'webhook-timestamp is too old');
  if (error.message.includes('timestamp too new')) return new SignatureError('expired', 'webhook-timestamp is too far in the future');
  if (error.message.includes('No matching signature')) return new SignatureError('mismatch', 'no signature in webhook-signature matches the body');
  return new SignatureError('malformed', error.message);
}
