// Baseline (b): a bare Express 5 handler that only verifies the Stripe signature with the
// stripe SDK on the raw body and answers 200. Nothing is stored, logged or measured.
import express from 'express';
import Stripe from 'stripe';

const secret = process.env.STRIPE_WEBHOOK_SECRET;
const app = express();
app.post('/webhooks/stripe', express.raw({ type: 'application/json', limit: '1mb' }), (req, res) => {
  try {
    const event = Stripe.webhooks.constructEvent(req.body, req.get('stripe-signature') ?? '', secret);
    res.status(200).json({ received: true, id: event.id });
  } catch {
    res.status(400).json({ error: 'invalid_signature' });
  }
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
