import { admin, BENCH_SECRET, startHookwatch, health, waitUntil } from './lib/hookwatch.js';
import { sendStripeEvents } from './lib/load.js';
import { round } from './lib/stats.js';
import { currentRss, peakRss } from './lib/system.js';

export interface MemoryResult {
  events: number;
  rssStartMiB: number;
  rssAfterAcceptMiB: number;
  peakRssMiB: number;
  rssAfterDrainMiB: number;
  returnedPct: number;
}

/** RSS before, after accepting `events` events, and after the queue drained and the process idled. */
export async function benchMemory(events: number, core: number | null, log: (line: string) => void): Promise<MemoryResult> {
  const server = await startHookwatch(core);
  try {
    const pid = server.proc.pid as number;
    const start = currentRss(pid);
    await sendStripeEvents(server.url, BENCH_SECRET, events);
    const afterAccept = currentRss(pid);
    log(`  accepted ${events} events: RSS ${round(afterAccept / 2 ** 20)} MiB (started at ${round(start / 2 ** 20)} MiB)`);
    await waitUntil(async () => (await health(server.url)).checks.queue.pending === 0, 300_000, 'the queue to drain');
    // Idle a little so timers, caches and the allocator settle, as they would between bursts.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const listed = await admin<{ data: unknown[] }>(server.url, 'GET', '/events?status=processed&limit=1');
    if (listed.data.length === 0) throw new Error('no event was processed');
    const afterDrain = currentRss(pid);
    const peak = peakRss(pid);
    log(`  after the queue drained: RSS ${round(afterDrain / 2 ** 20)} MiB (peak ${round(peak / 2 ** 20)} MiB)`);
    return {
      events,
      rssStartMiB: round(start / 2 ** 20),
      rssAfterAcceptMiB: round(afterAccept / 2 ** 20),
      peakRssMiB: round(peak / 2 ** 20),
      rssAfterDrainMiB: round(afterDrain / 2 ** 20),
      returnedPct: round(((peak - afterDrain) / Math.max(1, peak - start)) * 100),
    };
  } finally {
    await server.stop();
  }
}
