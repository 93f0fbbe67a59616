import { createHmac } from 'node:crypto';

let counter = 0;

/**
 * A realistic ~1.5 KB Stripe event (charge.succeeded with a charge object) with a unique id,
 * signed the way Stripe signs: HMAC-SHA256 over "<t>.<body>" with the endpoint secret.
 */
export function signedStripeEvent(secret: string): { body: string; signature: string; id: string } {
  const id = `evt_bench_${process.pid}_${(counter++).toString(36)}`;
  const created = Math.floor(Date.now() / 1000);
  const body = JSON.stringify({
    id,
    object: 'event',
    api_version: '2024-06-20',
    created,
    type: 'charge.succeeded',
    livemode: false,
    pending_webhooks: 1,
    request: { id: `req_${counter.toString(36)}`, idempotency_key: `ik_${counter.toString(36)}_${created}` },
    data: {
      object: {
        id: `ch_3Pbench${counter.toString(36).padStart(10, '0')}`,
        object: 'charge',
        amount: 2000,
        amount_captured: 2000,
        amount_refunded: 0,
        balance_transaction: `txn_3Pbench${counter.toString(36).padStart(10, '0')}`,
        billing_details: { address: { city: 'Berlin', country: 'DE', line1: 'Unter den Linden 1', line2: null, postal_code: '10117', state: null }, email: 'jenny.rosen@example.com', name: 'Jenny Rosen', phone: null },
        captured: true,
        created,
        currency: 'eur',
        customer: 'cus_Pbench0000001',
        description: 'Subscription update',
        disputed: false,
        livemode: false,
        metadata: { order_id: `ord_${counter}`, plan: 'pro-monthly' },
        outcome: { network_status: 'approved_by_network', reason: null, risk_level: 'normal', risk_score: 32, seller_message: 'Payment complete.', type: 'authorized' },
        paid: true,
        payment_intent: `pi_3Pbench${counter.toString(36).padStart(10, '0')}`,
        payment_method: 'pm_1Pbench000000000001',
        payment_method_details: { card: { brand: 'visa', checks: { address_line1_check: 'pass', address_postal_code_check: 'pass', cvc_check: 'pass' }, country: 'DE', exp_month: 12, exp_year: 2030, fingerprint: 'Xt5EWLLDS7FJjR1c', funding: 'credit', last4: '4242', network: 'visa' }, type: 'card' },
        receipt_email: 'jenny.rosen@example.com',
        receipt_url: 'https://pay.stripe.com/receipts/payment/CAcaFwoVYWNjdF8xTTJKVGtMa2RJd0h1N2l4KJbench',
        refunded: false,
        status: 'succeeded',
      },
    },
  });
  const signature = createHmac('sha256', secret).update(`${created}.${body}`).digest('hex');
  return { body, signature: `t=${created},v1=${signature}`, id };
}
