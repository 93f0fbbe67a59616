import { BENCH_SECRET, startHookwatch } from './lib/hookwatch.js';
import { stripeLoad, type LoadResult } from './lib/load.js';
import { startServer, type RunningServer } from './lib/servers.js';
import { round, summarize } from './lib/stats.js';
import { peakRss } from './lib/system.js';

export interface ReceiveOptions {
  rounds: number;
  warmupSeconds: number;
  measureSeconds: number;
  connections: number;
  serverCore: number | null;
}

export interface VariantResult {
  name: string;
  label: string;
  runs: (LoadResult & { peakRssBytes: number })[];
  rps: ReturnType<typeof summarize>;
  p50: ReturnType<typeof summarize>;
  p99: ReturnType<typeof summarize>;
  peakRssMiB: number;
}

export interface ReceiveResult {
  variants: VariantResult[];
  ratioAB: number;
  ratioAC: number;
  ratioABRange: [number, number];
}

const VARIANTS = [
  { name: 'a', label: 'hookwatch as shipped' },
  { name: 'b', label: 'bare Express 5 + stripe SDK' },
  { name: 'c', label: 'bare node:http + stripe SDK' },
] as const;

async function start(name: string, core: number | null): Promise<RunningServer> {
  if (name === 'a') return startHookwatch(core);
  const file = name === 'b' ? 'bench/baselines/express-stripe.mjs' : 'bench/baselines/http-stripe.mjs';
  return startServer(name, [file], { STRIPE_WEBHOOK_SECRET: BENCH_SECRET, PORT: '0' }, core);
}

/**
 * Interleaved runs (a b c a b c …): each run starts a fresh server, warms it up, then measures.
 * Interleaving spreads the machine's noise over all three variants instead of one.
 */
export async function benchReceive(options: ReceiveOptions, log: (line: string) => void): Promise<ReceiveResult> {
  const runs = new Map<string, (LoadResult & { peakRssBytes: number })[]>(VARIANTS.map((v) => [v.name, []]));
  for (let round_ = 1; round_ <= options.rounds; round_++) {
    for (const variant of VARIANTS) {
      const server = await start(variant.name, options.serverCore);
      try {
        await stripeLoad(server.url, BENCH_SECRET, options.connections, options.warmupSeconds);
        const measured = await stripeLoad(server.url, BENCH_SECRET, options.connections, options.measureSeconds);
        if (measured.non2xx > 0 || measured.errors > 0) throw new Error(`${variant.label}: ${measured.non2xx} non-2xx and ${measured.errors} errors`);
        const rss = peakRss(server.proc.pid as number);
        runs.get(variant.name)?.push({ ...measured, peakRssBytes: rss });
        log(`  round ${round_}/${options.rounds} ${variant.name} (${variant.label}): ${round(measured.requestsPerSecond, 0)} req/s, p50 ${measured.p50Ms} ms, p99 ${measured.p99Ms} ms, peak RSS ${round(rss / 2 ** 20)} MiB`);
      } finally {
        await server.stop();
      }
    }
  }
  const variants = VARIANTS.map((variant): VariantResult => {
    const list = runs.get(variant.name) ?? [];
    return {
      name: variant.name,
      label: variant.label,
      runs: list,
      rps: summarize(list.map((r) => r.requestsPerSecond)),
      p50: summarize(list.map((r) => r.p50Ms)),
      p99: summarize(list.map((r) => r.p99Ms)),
      peakRssMiB: round(Math.max(...list.map((r) => r.peakRssBytes)) / 2 ** 20),
    };
  });
  const [a, b, c] = variants as [VariantResult, VariantResult, VariantResult];
  // Per-round ratios show the spread of the ratio itself, not just of each variant.
  const perRound = a.runs.map((run, i) => run.requestsPerSecond / (b.runs[i]?.requestsPerSecond ?? NaN));
  return {
    variants,
    ratioAB: a.rps.median / b.rps.median,
    ratioAC: a.rps.median / c.rps.median,
    ratioABRange: [Math.min(...perRound), Math.max(...perRound)],
  };
}
