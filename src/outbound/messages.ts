import type { Endpoint } from '../store/endpoints.js';
import { displayUrl } from '../telemetry/outage.js';
import { formatDuration } from '../units.js';
import type { WindowSnapshot } from './failure-monitor.js';

/** The texts people receive about a failing endpoint: owner emails and the error webhook body. */

export interface EmailMessage {
  to: string[];
  subject: string;
  text: string;
}

export interface ErrorWebhookBody {
  code: number;
  endpoint: string;
  message: string;
}

const REASON_LABELS: Record<string, string> = {
  connection: 'connection failed (DNS, refused, reset or TLS)',
  timeout: 'timed out',
  http_5xx: 'server error (HTTP 5xx)',
  http_4xx: 'rejected (HTTP 4xx or an unfollowed redirect)',
};

export function recommendedAction(reason: string, timeoutMs: number): string {
  switch (reason) {
    case 'connection':
      return 'Make sure the endpoint is reachable from the internet (DNS record, firewall, the server is running), that its TLS certificate is valid, complete and not expired, and that it has the capacity to accept more connections.';
    case 'timeout':
      return `Respond faster: hookwatch waits ${formatDuration(timeoutMs)} for an answer. Acknowledge with a 2xx as soon as the request is received and verified, and move the work to a background job.`;
    case 'http_5xx':
      return "Check the endpoint's logs for the errors, its database connections, and any recent deployments that may have broken it.";
    case 'http_4xx':
      return 'Check that the URL is still right (redirects are not followed), that the route accepts POST without extra authentication, and that signature verification uses the current signing secret.';
    default:
      return "Check the endpoint's logs around the times of the failed attempts.";
  }
}

const iso = (ms: number) => new Date(ms).toISOString();

function endpointLines(endpoint: Endpoint): string[] {
  return [
    `Endpoint:     ${displayUrl(endpoint.url)}`,
    `Endpoint id:  ${endpoint.id}`,
    ...(endpoint.description ? [`Description:  ${endpoint.description}`] : []),
  ];
}

export function failureEmail(endpoint: Endpoint, to: string[], window: WindowSnapshot, timeoutMs: number): EmailMessage {
  const reasons = Object.entries(window.reasons).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const rate = Math.round((window.failures / window.attempts) * 1000) / 10;
  const text = [
    'hookwatch is failing to deliver events to one of your webhook endpoints.',
    '',
    ...endpointLines(endpoint),
    `Failures:     ${window.failures} failed attempts out of ${window.attempts} (${rate} %)`,
    `Period:       ${iso(window.start)} to ${iso(window.end)} (the last hour, by whole minutes)`,
    '',
    'Most common failure reasons:',
    ...reasons.map(([reason, count]) => `  - ${REASON_LABELS[reason] ?? reason}: ${count}`),
    '',
    'Recommended actions:',
    ...reasons.map(([reason]) => `  - ${REASON_LABELS[reason] ?? reason}: ${recommendedAction(reason, timeoutMs)}`),
    '',
    'Failed deliveries are retried on the retry schedule. Once the endpoint is fixed, re-send what failed with',
    `POST /api/v1/webhooks/${endpoint.id}/recover and list them with GET /api/v1/webhooks/${endpoint.id}/deliveries?status=failed.`,
    'You receive at most one such email per endpoint per hour.',
  ].join('\n');
  return { to, subject: `[hookwatch] Webhook endpoint failing: ${window.failures} failures for ${displayUrl(endpoint.url)}`, text };
}

export function disabledEmail(endpoint: Endpoint, to: string[], at: number): EmailMessage {
  const text = [
    'hookwatch has disabled one of your webhook endpoints because it answered 410 Gone.',
    '',
    ...endpointLines(endpoint),
    `Disabled at:  ${iso(at)}`,
    '',
    'No further events are delivered to it. Deliveries still owed to it are marked failed as their turn comes;',
    'those parked while it was failing stay queued and go out, in order, once it is re-enabled.',
    'Recommended action: if the endpoint was retired on purpose, delete it; if it answered 410 by mistake, fix it and re-enable it with',
    `PATCH /api/v1/webhooks/${endpoint.id} {"disabled": false}, then re-send what failed with POST /api/v1/webhooks/${endpoint.id}/recover.`,
  ].join('\n');
  return { to, subject: `[hookwatch] Webhook endpoint disabled (410 Gone): ${displayUrl(endpoint.url)}`, text };
}

export function errorWebhookBody(endpoint: Endpoint, streak: number, statusCode: number | null, error: string | null): ErrorWebhookBody {
  return {
    code: statusCode ?? 0,
    endpoint: displayUrl(endpoint.url),
    message: `${streak} consecutive delivery attempts to endpoint ${endpoint.id} failed; last: ${error ?? 'unknown error'}`,
  };
}
