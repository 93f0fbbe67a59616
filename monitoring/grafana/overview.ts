// Overview: is hookwatch receiving, answering fast, keeping up, and healthy?
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { UIDS, baseDashboard, finish, gaugePanel, labelVariable, statPanel, timeseriesPanel } from "./lib.js";

const SRC = 'source=~"$source"';
// Inbound errors as the ErrorRate alerts count them (monitoring/prometheus/rules/recording.yml).
const INBOUND_ERRORS = `type=~"signature|bad_request|internal"`;

export function overview(): dashboard.Dashboard {
  return finish(
    baseDashboard(UIDS.overview, "hookwatch / Overview", "Requests, errors, response times, queues and resources of hookwatch at a glance.")
      .withVariable(labelVariable("source", "Source", "webhook_requests_total"))
      .withRow(new dashboard.RowBuilder("Requests and errors"))
      .withPanel(
        timeseriesPanel({
          title: "Request rate by status",
          description: "Inbound webhook requests per second, by HTTP status (202 accepted, 200 duplicate, 4xx rejected, 429 rate limited).",
          unit: "reqps",
          queries: [{ expr: `sum by (status) (rate(webhook_requests_total{${SRC}}[$__rate_interval]))`, legend: "{{status}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Error rate",
          description: "Share of inbound requests rejected for a bad signature, a bad request or an internal error, by source. Rate-limited requests are not counted. WebhookErrorRateWarning fires above 5 % for 15 m, WebhookErrorRateCritical above 10 % for 5 m.",
          unit: "percentunit",
          min: 0,
          thresholds: [[0.05, "orange"], [0.1, "red"]],
          queries: [
            {
              expr: `sum by (source) (rate(webhook_errors_total{${SRC},${INBOUND_ERRORS}}[$__rate_interval])) / sum by (source) (rate(webhook_requests_total{${SRC}}[$__rate_interval]))`,
              legend: "{{source}}",
            },
          ],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Errors by type",
          description: "Failed inbound requests and processing runs per second, by type (signature, bad_request, rate_limited, processing, internal).",
          unit: "reqps",
          queries: [{ expr: `sum by (type) (rate(webhook_errors_total{${SRC}}[$__rate_interval]))`, legend: "{{type}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Response time percentiles",
          description: "Inbound request latency: median, 95th and 99th percentiles. Exemplars link to the request's trace in Jaeger. WebhookLatencyWarning fires when p95 > 500 ms for 15 m, WebhookLatencyCritical when p95 > 1 s for 5 m.",
          unit: "s",
          min: 0,
          thresholds: [[0.5, "orange"], [1, "red"]],
          queries: [
            { expr: `histogram_quantile(0.5, sum by (le) (rate(webhook_request_duration_seconds_bucket{${SRC}}[$__rate_interval])))`, legend: "p50" },
            { expr: `histogram_quantile(0.95, sum by (le) (rate(webhook_request_duration_seconds_bucket{${SRC}}[$__rate_interval])))`, legend: "p95", exemplar: true },
            { expr: `histogram_quantile(0.99, sum by (le) (rate(webhook_request_duration_seconds_bucket{${SRC}}[$__rate_interval])))`, legend: "p99" },
          ],
        }),
      )
      .withRow(new dashboard.RowBuilder("Processing"))
      .withPanel(
        timeseriesPanel({
          title: "Queue size",
          description: "Jobs waiting, by queue: events to process and deliveries to send.",
          unit: "short",
          min: 0,
          width: 8,
          queries: [{ expr: "sum by (queue) (webhook_queue_size)", legend: "{{queue}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Processing time p95",
          description: "95th percentile of the time spent in event handlers, and of the time from an event's creation to the end of its processing.",
          unit: "s",
          min: 0,
          width: 8,
          queries: [
            { expr: "histogram_quantile(0.95, sum by (le) (rate(webhook_event_processing_duration_seconds_bucket[$__rate_interval])))", legend: "handlers p95" },
            { expr: "histogram_quantile(0.95, sum by (le) (rate(webhook_end_to_end_seconds_bucket[$__rate_interval])))", legend: "end to end p95" },
          ],
        }),
      )
      .withPanel(
        statPanel({
          title: "Dead-letter queue",
          description: "Jobs that exhausted their retries and wait for an operator. WebhookDeadLetterQueueGrowing fires when it grows.",
          unit: "short",
          width: 8,
          height: 8,
          thresholds: [[1, "orange"], [100, "red"]],
          queries: [{ expr: "max(webhook_dead_letter_queue_size)", legend: "dead letters" }],
        }),
      )
      .withRow(new dashboard.RowBuilder("Resources"))
      .withPanel(
        gaugePanel({
          title: "Process memory (RSS)",
          description: "Resident memory of the hookwatch process.",
          unit: "bytes",
          min: 0,
          max: 1073741824,
          thresholds: [[536870912, "orange"], [858993459, "red"]],
          queries: [{ expr: 'max(webhook_memory_usage_bytes{type="rss"})', legend: "rss" }],
        }),
      )
      .withPanel(
        // A stat, not a gauge: the metric counts every thread of the process in percent of one core,
        // so it has no upper bound a gauge could be drawn to (200 % is two cores' worth).
        statPanel({
          title: "Process CPU (% of one core)",
          description: "CPU used by the hookwatch process between the last two scrapes, in percent of one core. Every thread of the process counts (JavaScript, GC, I/O), so on more than one core it can exceed 100 %.",
          unit: "percent",
          height: 6,
          thresholds: [[75, "orange"], [90, "red"]],
          queries: [{ expr: "max(webhook_cpu_usage_percent)", legend: "cpu" }],
        }),
      )
      .withPanel(
        gaugePanel({
          title: "Host memory used",
          description: "Share of the host's memory in use (node-exporter). WebhookHostMemoryHigh fires above 85 % for 10 m.",
          unit: "percentunit",
          min: 0,
          max: 1,
          thresholds: [[0.75, "orange"], [0.85, "red"]],
          queries: [{ expr: "max(instance:node_memory_utilisation:ratio)", legend: "memory" }],
        }),
      )
      .withPanel(
        gaugePanel({
          title: "Host CPU used",
          description: "Share of the host's CPU time not idle over 5 minutes (node-exporter). WebhookHostCpuHigh fires above 75 % for 10 m.",
          unit: "percentunit",
          min: 0,
          max: 1,
          thresholds: [[0.6, "orange"], [0.75, "red"]],
          queries: [{ expr: "max(instance:node_cpu_utilisation:rate5m)", legend: "cpu" }],
        }),
      ),
  );
}
