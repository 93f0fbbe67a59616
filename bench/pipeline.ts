import { admin, BENCH_SECRET, health, startHookwatch } from './lib/hookwatch.js';
import { Sink } from './lib/sink.js';
import { median, percentile, round, summarize } from './lib/stats.js';
import { sendStripeEvents } from './lib/load.js';

/** How often the queue depth is read during a round (from /health, as an operator would). */
export const DEPTH_SAMPLE_MS = 250;

/** A round's queue depth over time, as printed: the samples in order. */
export function depthSeries(round_: PipelineRound): string {
  return round_.queueDepth.map((sample) => sample.pending).join(' ');
}

/** One run: a fresh hookwatch and sink, N events. */
export interface PipelineRound {
  events: number;
  eventsPerSecond: number;
  acceptPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxQueueDepth: number;
  queueDepth: { seconds: number; pending: number }[];
}

export interface PipelineResult {
  eventsPerRound: number;
  rounds: PipelineRound[];
  eventsPerSecond: ReturnType<typeof summarize>;
  acceptPerSecond: ReturnType<typeof summarize>;
  /** Medians over the rounds. */
  p50Ms: number;
  p99Ms: number;
  maxQueueDepth: number;
}

/**
 * The pipeline `rounds` times over, each on a fresh service, so the result carries its own spread
 * (this machine's speed drifts between runs minutes apart).
 */
export async function benchPipeline(events: number, warmup: number, rounds: number, core: number | null, log: (line: string) => void): Promise<PipelineResult> {
  const results: PipelineRound[] = [];
  for (let round = 1; round <= rounds; round++) {
    log(`  round ${round}/${rounds}`);
    results.push(await pipelineRound(events, warmup, core, log));
  }
  return {
    eventsPerRound: events,
    rounds: results,
    eventsPerSecond: summarize(results.map((r) => r.eventsPerSecond)),
    acceptPerSecond: summarize(results.map((r) => r.acceptPerSecond)),
    p50Ms: round(median(results.map((r) => r.p50Ms))),
    p99Ms: round(median(results.map((r) => r.p99Ms))),
    maxQueueDepth: Math.max(...results.map((r) => r.maxQueueDepth)),
  };
}

/**
 * Receive → process → deliver: N signed Stripe events accepted by hookwatch, processed by the
 * built-in forwarding handler and delivered to a local endpoint subscribed to every event, after a
 * warm-up batch has gone the same way (so the JIT has compiled the path being measured).
 * Latency is from the 202 reaching the sender to the delivery reaching the endpoint.
 */
async function pipelineRound(events: number, warmup: number, core: number | null, log: (line: string) => void): Promise<PipelineRound> {
  const sink = new Sink();
  await sink.start();
  const server = await startHookwatch(core, { ALLOW_PRIVATE_DESTINATIONS: 'true' });
  try {
    await admin(server.url, 'POST', '/webhooks', { url: sink.url('/pipeline'), events: ['*'], description: 'bench pipeline sink' });
    const delivered = async (count: number) => {
      const deadline = Date.now() + 300_000;
      while (sink.arrivals.size < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      if (sink.arrivals.size < count) throw new Error(`only ${sink.arrivals.size} of ${count} deliveries arrived`);
    };
    await sendStripeEvents(server.url, BENCH_SECRET, warmup);
    await delivered(warmup);
    const warm = new Set(sink.arrivals.keys());

    const accepted = new Map<string, number>();
    const depth: { seconds: number; pending: number }[] = [];
    const started = performance.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const pending = (await health(server.url)).checks.queue.pending;
        depth.push({ seconds: round((performance.now() - started) / 1000, 2), pending });
        await new Promise((resolve) => setTimeout(resolve, DEPTH_SAMPLE_MS));
      }
    })();
    await sendStripeEvents(server.url, BENCH_SECRET, events, (ids) => {
      const now = performance.now();
      for (const id of ids) accepted.set(id, now);
    });
    await delivered(warmup + events);
    sampling = false;
    await sampler;
    const latencies: number[] = [];
    let last = 0;
    for (const [id, at] of sink.arrivals) {
      if (warm.has(id)) continue;
      const from = accepted.get(id);
      if (from !== undefined) latencies.push(at - from);
      last = Math.max(last, at);
    }
    if (latencies.length < events * 0.99) throw new Error(`matched only ${latencies.length} deliveries to their acceptance`);
    // Timed to the last 202 rather than to autocannon's return, which waits for its next one-second tick.
    const lastAccepted = Math.max(...accepted.values());
    const result: PipelineRound = {
      events,
      eventsPerSecond: round(events / ((last - started) / 1000), 0),
      acceptPerSecond: round(events / ((lastAccepted - started) / 1000), 0),
      p50Ms: round(percentile(latencies, 50)),
      p99Ms: round(percentile(latencies, 99)),
      maxQueueDepth: Math.max(0, ...depth.map((d) => d.pending)),
      queueDepth: depth,
    };
    log(`  ${events} events end to end: ${result.eventsPerSecond} events/s (accepted at ${result.acceptPerSecond}/s), p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, max queue depth ${result.maxQueueDepth}`);
    log(`  queue depth about every ${DEPTH_SAMPLE_MS / 1000} s: ${depthSeries(result)}`);
    return result;
  } finally {
    await server.stop();
    await sink.stop();
  }
}
