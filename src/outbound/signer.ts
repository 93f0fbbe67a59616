import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** A new endpoint signing secret: whsec_ and 32 random bytes in base64, as Standard Webhooks specifies. */
export function generateSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * The Standard Webhooks headers for one message. With several secrets (during a rotation)
 * the signature header carries one signature per secret, space-separated; a receiver that
 * knows either secret verifies it.
 */
export function signatureHeaders(secrets: readonly string[], messageId: string, timestamp: Date, body: string): Record<string, string> {
  const signatures = secrets.map((secret) => new Webhook(secret).sign(messageId, timestamp, body));
  return {
    'webhook-id': messageId,
    'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
    'webhook-signature': signatures.join(' '),
  };
}
