import { randomUUID } from 'node:crypto';
import { isSpanContextValid, type Span } from '@opentelemetry/api';
import { captureTraceContext } from '../telemetry/trace-context.js';

/**
 * The W3C trace headers for an outbound request made inside `span`. With tracing set up, the
 * registered propagator writes them (and the receiver joins our trace); without it, the span's
 * own context is used, and failing that a fresh unsampled id, so every delivery still carries a
 * traceparent a receiver can log and correlate.
 */
export function traceHeaders(span: Span): Record<string, string> {
  const carrier = captureTraceContext();
  if (carrier.traceparent) return carrier;
  const ctx = span.spanContext();
  if (isSpanContextValid(ctx)) return { traceparent: `00-${ctx.traceId}-${ctx.spanId}-0${ctx.traceFlags & 1}` };
  // randomUUID draws from a cached pool of random bytes; randomBytes asks the system every call.
  const traceId = randomUUID().replaceAll('-', '');
  const spanId = randomUUID().replaceAll('-', '').slice(0, 16);
  return { traceparent: `00-${traceId}-${spanId}-00` };
}
