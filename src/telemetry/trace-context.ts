import { context, propagation, trace, INVALID_SPAN_CONTEXT, ProxyTracerProvider, SpanStatusCode, type Span, type Context } from '@opentelemetry/api';
import { getRPCMetadata, RPCType } from '@opentelemetry/core';

/** The active trace context as a W3C carrier, stored with a job so later work joins the trace. */
export function captureTraceContext(): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier;
}

export function contextFrom(carrier: Record<string, string> | null | undefined): Context {
  return carrier ? propagation.extract(context.active(), carrier) : context.active();
}

const tracer = () => trace.getTracer('hookwatch');

// With no tracer provider, the API's no-op tracer still builds a span and a context per call (a
// few objects each, several calls per event): inSpan then skips it and passes this span instead.
const NO_SPAN = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** Whether a tracer provider is registered (tracing.ts): the API's global proxy then has a delegate. */
function tracingOn(): boolean {
  const provider = trace.getTracerProvider();
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegateTracer('hookwatch') !== undefined;
}

/**
 * Runs fn inside a span of our own (verify, de-duplicate, store, job run, handler);
 * the span records an exception and an error status when fn throws.
 */
export function inSpan<T>(name: string, attributes: Record<string, string | number | boolean>, fn: (span: Span) => T, parent?: Context): T {
  if (!tracingOn()) return fn(NO_SPAN);
  return tracer().startActiveSpan(name, { attributes }, parent ?? context.active(), (span) => {
    try {
      const result = fn(span);
      if (result instanceof Promise) {
        return result.then(
          (value: unknown) => { span.end(); return value; },
          (error: unknown) => { fail(span, error); span.end(); throw error; },
        ) as T;
      }
      span.end();
      return result;
    } catch (error) {
      fail(span, error);
      span.end();
      throw error;
    }
  });
}

function fail(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}

/** The trace id of the active span when it is sampled, for exemplars and log lines. */
export function activeTraceId(): string | undefined {
  const span = trace.getActiveSpan();
  if (!span) return undefined;
  const ctx = span.spanContext();
  return ctx.traceFlags & 1 ? ctx.traceId : undefined;
}

/**
 * Names the route of the current HTTP server span, as the Express instrumentation does for the
 * routes Express serves; the HTTP instrumentation names the span after it when the response ends.
 */
export function nameHttpRoute(route: string): void {
  const metadata = getRPCMetadata(context.active());
  if (metadata?.type === RPCType.HTTP) metadata.route = route;
}
