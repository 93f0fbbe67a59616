import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { registerLoaderHook, startTracing, type Tracing } from '../../src/telemetry/tracing.js';

/**
 * What preload.ts does for the real process, with an in-memory exporter: registers the ESM
 * loader hook and starts tracing with HTTP and Express instrumentation. Must run before express
 * or the service are imported, so a test file using it imports them dynamically afterwards.
 */
export function bootstrapTestTracing(): { exporter: InMemorySpanExporter; tracing: Tracing } {
  const exporter = new InMemorySpanExporter();
  registerLoaderHook();
  const tracing = startTracing({ serviceName: 'hookwatch', environment: 'test', exporter, instrument: true });
  if (!tracing) throw new Error('tracing did not start');
  return { exporter, tracing };
}

export const spanId = (span: ReadableSpan): string => span.spanContext().spanId;
export const traceIdOf = (span: ReadableSpan): string => span.spanContext().traceId;
export const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;

/** True when `ancestor` is on the parent chain of `span`, within the given spans. */
export function descendsFrom(span: ReadableSpan, ancestor: ReadableSpan, spans: readonly ReadableSpan[]): boolean {
  const byId = new Map(spans.map((s) => [spanId(s), s]));
  let parent = parentOf(span);
  for (let depth = 0; parent && depth < 50; depth++) {
    if (parent === spanId(ancestor)) return true;
    parent = byId.get(parent) ? parentOf(byId.get(parent) as ReadableSpan) : undefined;
  }
  return false;
}
