import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Stripe from 'stripe';
import request from 'supertest';
import { HttpError } from '../src/http/errors.js';
import { StripeVerifier } from '../src/inbound/verifiers/stripe.js';
import { SignatureError } from '../src/inbound/verifiers/verifier.js';
import { startTestService, STRIPE_SECRET, type TestService } from './helpers/service.js';
import { stripeEvent, stripeHeaders } from './helpers/signing.js';

const verifier = new StripeVerifier(STRIPE_SECRET, 300);
const now = () => Math.floor(Date.now() / 1000);

function refusal(body: string, signature: string): unknown {
  try {
    verifier.verify(Buffer.from(body), { 'stripe-signature': signature });
  } catch (error) {
    return error;
  }
  assert.fail(`expected ${JSON.stringify(signature)} to be refused`);
}

function assertMalformedSignature(error: unknown): void {
  assert.ok(error instanceof SignatureError, `expected a SignatureError, got ${String(error)}`);
  assert.equal(error.reason, 'malformed');
}

describe('Stripe verifier', () => {
  // The SDK throws plain Errors (not StripeSignatureVerificationError) for these headers.
  it('refuses a v1 entry with no value as a malformed signature, not malformed JSON', () => {
    const { body } = stripeEvent();
    assertMalformedSignature(refusal(body, `t=${now()},v1=`));
    assertMalformedSignature(refusal(body, `t=${now()},v1`));
  });

  it('refuses a signature of the right length in characters but not in bytes as malformed', () => {
    const { body } = stripeEvent();
    // 64 characters like a hex SHA-256, 65 bytes in UTF-8: timingSafeEqual would throw a RangeError.
    assertMalformedSignature(refusal(body, `t=${now()},v1=${'é'.padEnd(64, '0')}`));
  });

  it('refuses a timestamp that is not a number as malformed, and a wrong signature beside a good one as mismatch', () => {
    const { body } = stripeEvent();
    const good = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET });
    const v1 = good.split(',').find((part) => part.startsWith('v1=')) ?? assert.fail('no v1 in the test header');
    assertMalformedSignature(refusal(body, `t=abc,${v1}`));
    assertMalformedSignature(refusal(body, `t=,${v1}`));
    const wrong = refusal(body, `t=${now()},v1=${'0'.repeat(64)}`);
    assert.ok(wrong instanceof SignatureError);
    assert.equal(wrong.reason, 'mismatch');
  });

  it('refuses a correctly signed body that is not JSON as malformed_json', () => {
    const body = '{"id": "evt_1", "type": ';
    const header = Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET });
    const error = refusal(body, header);
    assert.ok(error instanceof HttpError, `expected an HttpError, got ${String(error)}`);
    assert.equal(error.code, 'malformed_json');
  });

  it('refuses a correctly signed JSON body that is not an object as invalid_payload', () => {
    const body = '[1, 2]';
    const error = refusal(body, Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET }));
    assert.ok(error instanceof HttpError);
    assert.equal(error.code, 'invalid_payload');
  });

  it('refuses a correctly signed thin event notification, as the SDK\'s constructEvent does', () => {
    const body = JSON.stringify({ id: 'evt_thin', object: 'v2.core.event', type: 'v1.billing.meter.no_meter_found' });
    const error = refusal(body, Stripe.webhooks.generateTestHeaderString({ payload: body, secret: STRIPE_SECRET }));
    assert.ok(error instanceof HttpError);
    assert.equal(error.code, 'invalid_payload');
  });

  it('accepts a correctly signed event', () => {
    const { id, body } = stripeEvent('invoice.paid');
    const event = verifier.verify(Buffer.from(body), { 'stripe-signature': stripeHeaders(body)['stripe-signature'] });
    assert.deepEqual(event, { eventId: id, type: 'invoice.paid', rawPayload: body });
  });

  describe('over HTTP', () => {
    let t: TestService;
    before(async () => {
      t = await startTestService();
    });
    after(() => t.close());

    const malformedCount = async (): Promise<number> => {
      const text = (await request(t.url).get('/metrics')).text;
      return Number(/webhook_signature_failures_total\{source="stripe",reason="malformed"\} (\d+)/.exec(text)?.[1]);
    };

    it('answers an empty v1 signature with invalid_signature and counts it as malformed', async () => {
      const before = await malformedCount();
      const { body } = stripeEvent();
      for (const signature of [`t=${now()},v1=`, `t=${now()},v1`]) {
        const res = await request(t.url).post('/webhooks/stripe').set({ 'content-type': 'application/json', 'stripe-signature': signature }).send(body);
        assert.equal(res.status, 400);
        assert.equal(res.body.error, 'invalid_signature');
        assert.deepEqual(res.body.details, [{ reason: 'malformed' }]);
      }
      assert.equal(await malformedCount(), before + 2);
    });
  });
});
