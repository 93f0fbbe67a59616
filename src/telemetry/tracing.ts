import { createRequire, register } from 'node:module';
import type { IncomingMessage } from 'node:http';
import { context, propagation, trace } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { ExpressInstrumentation } from '@opentelemetry/instrumentation-express';
import { HttpInstrumentation } from '@opentelemetry/instrumentation-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor, NodeTracerProvider, SimpleSpanProcessor,
  type ReadableSpan, type SpanExporter, type SpanProcessor,
} from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { OUTAGE_MESSAGES, OutageReporter, displayUrl, type OutageSink } from './outage.js';

/**
 * Tracing for the whole process: an OpenTelemetry tracer provider, the W3C trace-context
 * propagator (so the context stored with a job joins the request's trace), HTTP and Express
 * auto-instrumentation, and OTLP/HTTP export. Started once, before express and http are imported
 * (see preload.ts); with no endpoint nothing is registered and every span is the API's no-op.
 */

export interface TracingOptions {
  serviceName: string;
  environment: string;
  /** OTLP/HTTP base URL (OTEL_EXPORTER_OTLP_ENDPOINT, e.g. http://jaeger:4318); spans go to <endpoint>/v1/traces. */
  endpoint?: string | null;
  /** An extra exporter fed span by span (tests use the SDK's InMemorySpanExporter). */
  exporter?: SpanExporter;
  /** Patch http and express. Only effective when they are imported after this call (ESM: after registerLoaderHook()). */
  instrument?: boolean;
}

export interface Tracing {
  /** Where spans are exported over OTLP, or null when only an in-process exporter is used. */
  readonly exportUrl: string | null;
  readonly instrumented: boolean;
  /** Export outages are reported once per outage; to stderr until the logger exists. */
  reportOutagesTo(sink: OutageSink): void;
  forceFlush(): Promise<void>;
  /** Flushes what is buffered and unregisters everything. */
  shutdown(): Promise<void>;
}

/**
 * The modules the ESM loader hook intercepts. Only what we instrument: every other module of the
 * graph (ours included) loads untouched, so the hook costs nothing where it is not needed.
 * express is CommonJS, but an ESM `import` of it only reaches the instrumentation through this hook.
 */
const INSTRUMENTED_MODULES = ['express', 'http', 'https'];

/** Requests that would only add noise to the traces: scrapes and probes. */
const UNTRACED_INCOMING = /^\/(metrics|health)(\/|\?|$)/;

let current: Tracing | null = null;
let hookRegistered = false;

/**
 * Registers import-in-the-middle's loader hook (through @opentelemetry/instrumentation/hook.mjs)
 * for the instrumented modules. Must run before they are imported: in a `node --import` preload.
 */
export function registerLoaderHook(): void {
  if (hookRegistered) return;
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url, { data: { include: INSTRUMENTED_MODULES } });
  hookRegistered = true;
}

/** The tracing started in this process, if any. */
export function activeTracing(): Tracing | null {
  return current;
}

/** <endpoint>/v1/traces, as the OTLP specification builds the per-signal URL from the base endpoint. */
export function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Starts tracing, or returns null (and registers nothing) when there is nowhere to send spans.
 * Calling it again returns the tracing already started.
 */
export function startTracing(options: TracingOptions): Tracing | null {
  if (current) return current;
  if (!options.endpoint && !options.exporter) return null;

  const exportUrl = options.endpoint ? tracesUrl(options.endpoint) : null;
  const reporter = new OutageReporter('otlp', exportUrl ? displayUrl(exportUrl) : '', stderrSink);
  const spanProcessors: SpanProcessor[] = [];
  // Batched: a request never waits on the collector; a collector that is down drops batches, not requests.
  if (exportUrl) spanProcessors.push(new BatchSpanProcessor(new ReportingExporter(new OTLPTraceExporter({ url: exportUrl, timeoutMillis: 10_000 }), reporter)));
  if (options.exporter) spanProcessors.push(new SimpleSpanProcessor(options.exporter));

  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: options.serviceName,
      [ATTR_SERVICE_VERSION]: packageVersion(),
      'deployment.environment.name': options.environment,
    }),
    spanProcessors,
  });
  // Registers the AsyncLocalStorage context manager and the W3C trace-context + baggage propagators.
  provider.register();

  const instrumented = options.instrument === true;
  const unregister = instrumented
    ? registerInstrumentations({
        tracerProvider: provider,
        instrumentations: [
          new HttpInstrumentation({
            ignoreIncomingRequestHook: (req: IncomingMessage) => UNTRACED_INCOMING.test(req.url ?? ''),
            // No client spans at all: a delivery has its own span (webhook.deliver, naming the
            // endpoint by id, with the traceparent sent along), while a client span would carry the
            // URL's query and path to the collector, where an endpoint's credentials or a Slack
            // error webhook's secret would be open to anyone with the Jaeger UI. Log shipping
            // would only add noise.
            ignoreOutgoingRequestHook: () => true,
          }),
          new ExpressInstrumentation(),
        ],
      })
    : () => undefined;

  const tracing: Tracing = {
    exportUrl,
    instrumented,
    reportOutagesTo: (sink) => reporter.reportTo(sink),
    forceFlush: () => provider.forceFlush(),
    async shutdown() {
      if (current !== tracing) return;
      current = null;
      unregister();
      try {
        // Bounded: a collector that hangs must not hold the process's exit.
        await within(SHUTDOWN_BOUND_MS, provider.shutdown());
      } finally {
        trace.disable();
        propagation.disable();
        context.disable();
      }
    },
  };
  current = tracing;
  return tracing;
}

/**
 * The tracing the preload started or, when the process was started without it but an endpoint is
 * configured, tracing started now: our own spans are exported, HTTP and Express are not patched
 * (they are already imported), and `late` says so for a warning.
 */
export function ensureTracing(telemetry: { serviceName: string; environment: string; otlpEndpoint: string | null }): { tracing: Tracing | null; late: boolean } {
  if (current) return { tracing: current, late: false };
  if (!telemetry.otlpEndpoint) return { tracing: null, late: false };
  const tracing = startTracing({ serviceName: telemetry.serviceName, environment: telemetry.environment, endpoint: telemetry.otlpEndpoint });
  return { tracing, late: tracing !== null };
}

/** Reports export failures and recoveries; the batch processor already drops what cannot be sent. */
class ReportingExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter, private readonly reporter: OutageReporter) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code === ExportResultCode.SUCCESS) this.reporter.succeeded();
      else this.reporter.failed(result.error ?? new Error('export failed'));
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/** Before the logger exists (the preload runs first), reports go to stderr in the log line shape. */
const stderrSink: OutageSink = (event) => {
  if (event.state === 'still_down') return;
  const line = event.state === 'down'
    ? { level: 'error', message: OUTAGE_MESSAGES.down, ...event }
    : { level: 'info', message: OUTAGE_MESSAGES.up, ...event };
  process.stderr.write(`${JSON.stringify({ ...line, timestamp: new Date().toISOString() })}\n`);
};

const SHUTDOWN_BOUND_MS = 3000;

async function within(ms: number, work: Promise<void>): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => { timer = setTimeout(resolve, ms); timer.unref(); });
  try {
    await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

function packageVersion(): string {
  try {
    // src/telemetry/ and dist/telemetry/ both sit two levels below package.json.
    const pkg = createRequire(import.meta.url)('../../package.json') as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
