import autocannon from 'autocannon';
import { admin, BENCH_ADMIN_TOKEN, startHookwatch } from './lib/hookwatch.js';
import { Sink } from './lib/sink.js';
import { round } from './lib/stats.js';

export interface DeliveryResult {
  deliveries: number;
  deliveriesPerSecond: number;
  publishPerSecond: number;
}

/** Events published through the admin API, each delivered to one local endpoint that answers 200. */
export async function benchDelivery(deliveries: number, core: number | null, log: (line: string) => void): Promise<DeliveryResult> {
  const sink = new Sink();
  await sink.start();
  const server = await startHookwatch(core, { ALLOW_PRIVATE_DESTINATIONS: 'true' });
  try {
    await admin(server.url, 'POST', '/webhooks', { url: sink.url('/deliveries'), events: ['bench.delivery'], description: 'bench delivery sink' });
    let n = 0;
    const started = performance.now();
    await autocannon({
      url: `${server.url}/api/v1/events`,
      connections: 20,
      amount: deliveries,
      requests: [{
        method: 'POST',
        setupRequest: (request) => ({
          ...request,
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_ADMIN_TOKEN}` },
          body: JSON.stringify({ type: 'bench.delivery', id: `bench-delivery-${process.pid}-${n++}`, data: { order: n, items: [{ sku: 'A-1', qty: 2 }] } }),
        }),
      }],
    });
    const published = performance.now();
    const deadline = Date.now() + 300_000;
    while (sink.arrivals.size < deliveries && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    if (sink.arrivals.size < deliveries) throw new Error(`only ${sink.arrivals.size} of ${deliveries} deliveries arrived`);
    const last = Math.max(...sink.arrivals.values());
    const result = {
      deliveries,
      deliveriesPerSecond: round(deliveries / ((last - started) / 1000), 0),
      publishPerSecond: round(deliveries / ((published - started) / 1000), 0),
    };
    log(`  ${deliveries} deliveries: ${result.deliveriesPerSecond} deliveries/s (published at ${result.publishPerSecond}/s)`);
    return result;
  } finally {
    await server.stop();
    await sink.stop();
  }
}
