// npm run bench: hookwatch against baselines in one run on one machine, printed as tables and
// written to bench/results/ (JSON and Markdown). Ratios within one run are the figures to compare
// across machines; absolute numbers depend on the machine and what else it is doing.
import { execFileSync } from 'node:child_process';
import { benchClaim, type ClaimResult } from './claim.js';
import { benchDelivery, type DeliveryResult } from './delivery.js';
import { benchMemory, type MemoryResult } from './memory.js';
import { benchPipeline, depthSeries, DEPTH_SAMPLE_MS, type PipelineResult } from './pipeline.js';
import { benchReceive, type ReceiveResult } from './receive.js';
import { ROOT } from './lib/servers.js';
import { textTable, writeResults, type Table } from './lib/report.js';
import { round } from './lib/stats.js';
import { benchScrape, type ScrapeResult } from './scrape.js';
import { canPin, pinSelf, systemInfo } from './lib/system.js';

const QUICK = process.argv.includes('--quick');
const SETTINGS = {
  rounds: QUICK ? 1 : 3,
  warmupSeconds: QUICK ? 2 : 3,
  measureSeconds: QUICK ? 4 : 10,
  connections: 50,
  pipelineEvents: QUICK ? 5_000 : 10_000,
  pipelineRounds: QUICK ? 1 : 3,
  pipelineWarmup: QUICK ? 1_000 : 2_000,
  deliveries: QUICK ? 2_000 : 10_000,
  backlog: 100_000,
  scrapeEndpoints: 200,
  memoryEvents: QUICK ? 20_000 : 100_000,
};

const log = (line: string) => process.stdout.write(`${line}\n`);
const pct = (value: number) => `±${round(value / 2)} %`;
const range = (s: { min: number; max: number }) => `${round(s.min, 0)}–${round(s.max, 0)}`;

async function main(): Promise<void> {
  const pin = canPin();
  // Read before pinning: a pinned process sees only its own core.
  const system = systemInfo(pin);
  // The load generators (autocannon, the sink, this process) run on core 1, every server on core 0.
  if (pin) pinSelf(1);
  const serverCore = pin ? 0 : null;
  log(`hookwatch benchmarks — Node ${system.node}, ${system.cpu}, ${system.cores} cores, ${pin ? 'server on core 0, load on core 1' : 'no CPU pinning (taskset missing or one core)'}${QUICK ? ', quick mode' : ''}`);

  log('\nbuilding (npm run build) so hookwatch runs exactly as npm start runs it');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'inherit' });

  log(`\n[1/6] receive path: ${SETTINGS.rounds} interleaved rounds of a/b/c, ${SETTINGS.connections} connections, ${SETTINGS.warmupSeconds} s warm-up + ${SETTINGS.measureSeconds} s measured`);
  const receive: ReceiveResult = await benchReceive({ rounds: SETTINGS.rounds, warmupSeconds: SETTINGS.warmupSeconds, measureSeconds: SETTINGS.measureSeconds, connections: SETTINGS.connections, serverCore }, log);
  log(`\n[2/6] pipeline: ${SETTINGS.pipelineRounds} rounds of ${SETTINGS.pipelineEvents} events received, processed and delivered, each after ${SETTINGS.pipelineWarmup} to warm up`);
  const pipeline: PipelineResult = await benchPipeline(SETTINGS.pipelineEvents, SETTINGS.pipelineWarmup, SETTINGS.pipelineRounds, serverCore, log);
  log(`\n[3/6] delivery: ${SETTINGS.deliveries} events published through the API and delivered`);
  const delivery: DeliveryResult = await benchDelivery(SETTINGS.deliveries, serverCore, log);
  log(`\n[4/6] claiming due jobs with ${SETTINGS.backlog} scheduled retries in the queue`);
  const claim: ClaimResult = await benchClaim(SETTINGS.backlog, log);
  log(`\n[5/6] /metrics with ${SETTINGS.scrapeEndpoints} registered endpoints`);
  const scrape: ScrapeResult = await benchScrape(SETTINGS.scrapeEndpoints, serverCore, log);
  log(`\n[6/6] memory: ${SETTINGS.memoryEvents} events, then the queue drains`);
  const memory: MemoryResult = await benchMemory(SETTINGS.memoryEvents, serverCore, log);

  const [a, b, c] = receive.variants;
  const tables: Table[] = [
    {
      title: 'Receive path (signed ~1.5 KB Stripe events, 50 connections)',
      header: ['variant', 'req/s (median)', 'spread', 'p50 ms', 'p99 ms', 'peak RSS MiB'],
      rows: receive.variants.map((v) => [`${v.name}: ${v.label}`, round(v.rps.median, 0), pct(v.rps.spreadPct), v.p50.median, v.p99.median, v.peakRssMiB]),
      note: `a/b = ${round(receive.ratioAB, 2)} (per-round ${round(receive.ratioABRange[0], 2)}–${round(receive.ratioABRange[1], 2)}), a/c = ${round(receive.ratioAC, 2)}. Target: a/b ≥ 0.8 and a's p99 < 25 ms.`,
    },
    {
      title: 'Pipeline and delivery',
      header: ['measure', 'value'],
      rows: [
        [`receive → process → deliver, events/s (median of ${pipeline.rounds.length}, range)`, `${round(pipeline.eventsPerSecond.median, 0)} (${range(pipeline.eventsPerSecond)}, ${pct(pipeline.eventsPerSecond.spreadPct)})`],
        ['accepted, events/s (median, range)', `${round(pipeline.acceptPerSecond.median, 0)} (${range(pipeline.acceptPerSecond)})`],
        ['accept → delivered p50 / p99 ms (medians)', `${pipeline.p50Ms} / ${pipeline.p99Ms}`],
        ['max queue depth', pipeline.maxQueueDepth],
        ...pipeline.rounds.map((r, i) => [`queue depth over time, round ${i + 1} (about every ${DEPTH_SAMPLE_MS / 1000} s)`, depthSeries(r)]),
        ['published through the API and delivered, deliveries/s', delivery.deliveriesPerSecond],
      ],
      note: 'Target: ≥ 2,000 events/s end to end.',
    },
    {
      title: 'Queue and scrape',
      header: ['measure', 'value'],
      rows: [
        ['claim + complete, empty backlog, µs', round(claim.emptyMicros.median)],
        [`claim + complete, ${claim.backlog} scheduled retries, µs`, round(claim.backlogMicros.median)],
        ['backlog / empty', round(claim.ratio, 2)],
        [`/metrics, ${scrape.endpoints} endpoints (${scrape.series} series), text p50 / p95 ms`, `${scrape.textMs.p50} / ${scrape.textMs.p95}`],
        ['/metrics, OpenMetrics p50 / p95 ms', `${scrape.openMetricsMs.p50} / ${scrape.openMetricsMs.p95}`],
      ],
      note: 'Targets: backlog / empty ≤ 1.5; /metrics < 25 ms.',
    },
    {
      title: 'Memory',
      header: ['measure', 'MiB'],
      rows: [
        ['RSS at start', memory.rssStartMiB],
        [`RSS after accepting ${memory.events} events`, memory.rssAfterAcceptMiB],
        ['peak RSS', memory.peakRssMiB],
        ['RSS after the queue drained', memory.rssAfterDrainMiB],
      ],
      note: `${memory.returnedPct} % of the growth was returned after the queue drained.`,
    },
  ];

  log('');
  for (const table of tables) log(`${textTable(table)}\n`);
  const stamp = system.date.replace(/[:.]/g, '-');
  const header = `## Benchmark results\n\n${system.date} — Node ${system.node}, ${system.cpu}, ${system.cores} cores, ${system.pinning ? 'server pinned to core 0, load generator to core 1' : 'no pinning'}${QUICK ? ' (quick mode)' : ''}. Reproduce with \`npm run bench\`.`;
  const files = writeResults(`bench-${stamp}`, { system, settings: SETTINGS, receive, pipeline, delivery, claim, scrape, memory }, tables, header);
  log(`results: ${files.json}\n         ${files.markdown}`);
  if (a && b && c) log(`summary: a/b ${round(receive.ratioAB, 2)}, a/c ${round(receive.ratioAC, 2)}, pipeline ${round(pipeline.eventsPerSecond.median, 0)} events/s, claim ratio ${round(claim.ratio, 2)}, /metrics ${scrape.textMs.p50} ms`);
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
