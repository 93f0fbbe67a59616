import { admin, startHookwatch } from './lib/hookwatch.js';
import { Sink } from './lib/sink.js';
import { percentile, round } from './lib/stats.js';

export interface ScrapeResult {
  endpoints: number;
  series: number;
  textMs: { p50: number; p95: number };
  openMetricsMs: { p50: number; p95: number };
}

async function timeScrapes(url: string, accept: string | undefined, times: number): Promise<{ p50: number; p95: number; series: number }> {
  const samples: number[] = [];
  let series = 0;
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    const res = await fetch(`${url}/metrics`, { headers: accept ? { accept } : {} });
    const body = await res.text();
    samples.push(performance.now() - start);
    series = body.split('\n').filter((line) => line && !line.startsWith('#')).length;
  }
  return { p50: round(percentile(samples, 50), 2), p95: round(percentile(samples, 95), 2), series };
}

/** /metrics with `endpoints` registered endpoints, each with deliveries (half failing) recorded. */
export async function benchScrape(endpoints: number, core: number | null, log: (line: string) => void): Promise<ScrapeResult> {
  const sink = new Sink((path) => (Number(path.slice(1)) % 2 === 0 ? 200 : 503));
  await sink.start();
  const server = await startHookwatch(core, { ALLOW_PRIVATE_DESTINATIONS: 'true', RETRY_SCHEDULE: 'none' });
  try {
    for (let i = 0; i < endpoints; i++) {
      await admin(server.url, 'POST', '/webhooks', { url: sink.url(`/${i}`), events: ['bench.scrape'], description: `scrape ${i}` });
    }
    for (let round_ = 0; round_ < 3; round_++) await admin(server.url, 'POST', '/events', { type: 'bench.scrape', data: { round: round_ } });
    const deadline = Date.now() + 120_000;
    while (sink.count < endpoints * 3 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    if (sink.count < endpoints * 3) throw new Error(`only ${sink.count} deliveries arrived`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    await timeScrapes(server.url, undefined, 5);
    const text = await timeScrapes(server.url, undefined, 50);
    const open = await timeScrapes(server.url, 'application/openmetrics-text; version=1.0.0', 50);
    log(`  ${endpoints} endpoints, ${text.series} series: text p50 ${text.p50} ms (p95 ${text.p95}), OpenMetrics p50 ${open.p50} ms (p95 ${open.p95})`);
    return { endpoints, series: text.series, textMs: { p50: text.p50, p95: text.p95 }, openMetricsMs: { p50: open.p50, p95: open.p95 } };
  } finally {
    await server.stop();
    await sink.stop();
  }
}
