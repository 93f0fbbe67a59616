// Baseline (c): a bare node:http handler doing the same Stripe verification and nothing else.
import http from 'node:http';
import Stripe from 'stripe';

const secret = process.env.STRIPE_WEBHOOK_SECRET;
const server = http.createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/webhooks/stripe') {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    try {
      const event = Stripe.webhooks.constructEvent(Buffer.concat(chunks), req.headers['stripe-signature'] ?? '', secret);
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ received: true, id: event.id }));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_signature"}');
    }
  });
});
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
