// Performance: where does the time go? Latency distributions, resources over time, store and cache.
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { UIDS, baseDashboard, finish, heatmapPanel, labelVariable, statPanel, timeseriesPanel } from "./lib.js";

const SRC = 'source=~"$source"';
const UP_MAPPINGS: dashboard.ValueMapping[] = [
  {
    type: dashboard.MappingType.ValueToText,
    options: { "0": { text: "DOWN", color: "red", index: 0 }, "1": { text: "UP", color: "green", index: 1 } },
  },
];

export function performance(): dashboard.Dashboard {
  return finish(
    baseDashboard(UIDS.performance, "hookwatch / Performance", "Latency distributions, resource trends, database and cache of hookwatch.")
      .withVariable(labelVariable("source", "Source", "webhook_requests_total"))
      .withRow(new dashboard.RowBuilder("Latency"))
      .withPanel(
        heatmapPanel({
          title: "Request latency heatmap",
          description: "Distribution of inbound request latency: requests per histogram bucket in each interval.",
          unit: "s",
          queries: [{ expr: `sum by (le) (increase(webhook_request_duration_seconds_bucket{${SRC}}[$__rate_interval]))` }],
        }),
      )
      .withPanel(
        heatmapPanel({
          title: "Event processing heatmap",
          description: "Distribution of the time spent in event handlers: processing runs per histogram bucket in each interval.",
          unit: "s",
          queries: [{ expr: "sum by (le) (increase(webhook_event_processing_duration_seconds_bucket[$__rate_interval]))" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "p95 latency by source",
          description: "95th percentile of inbound request latency, per source. Exemplars link to traces.",
          unit: "s",
          min: 0,
          thresholds: [[0.5, "orange"], [1, "red"]],
          queries: [
            {
              expr: `histogram_quantile(0.95, sum by (le, source) (rate(webhook_request_duration_seconds_bucket{${SRC}}[$__rate_interval])))`,
              legend: "{{source}}",
              exemplar: true,
            },
          ],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Requests in flight",
          description: "Inbound requests being handled at the moment of each scrape.",
          unit: "short",
          min: 0,
          queries: [{ expr: "sum(webhook_concurrent_requests)", legend: "in flight" }],
        }),
      )
      .withRow(new dashboard.RowBuilder("Resources"))
      .withPanel(
        timeseriesPanel({
          title: "Process memory",
          description: "Memory of the hookwatch process by type: rss, heap_used, heap_total, external.",
          unit: "bytes",
          min: 0,
          queries: [{ expr: "sum by (type) (webhook_memory_usage_bytes)", legend: "{{type}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Process CPU",
          description: "CPU used by the hookwatch process (100 % = one core), and the host's CPU utilisation for comparison.",
          unit: "percent",
          min: 0,
          queries: [
            { expr: "max(webhook_cpu_usage_percent)", legend: "hookwatch" },
            { expr: "100 * max(instance:node_cpu_utilisation:rate5m)", legend: "host" },
          ],
        }),
      )
      .withRow(new dashboard.RowBuilder("Database and cache"))
      .withPanel(
        statPanel(
          {
            title: "Database",
            description: "Whether hookwatch reaches its database (webhook_db_up). WebhookDatabaseDown fires after 1 m down.",
            unit: "none",
            thresholds: [],
            queries: [{ expr: "min(webhook_db_up)", legend: "database" }],
          },
          UP_MAPPINGS,
        ),
      )
      .withPanel(
        statPanel(
          {
            title: "Cache",
            description: "Whether hookwatch reaches its cache (webhook_cache_up). WebhookCacheDown fires after 1 m down.",
            unit: "none",
            queries: [{ expr: "min(webhook_cache_up)", legend: "cache" }],
          },
          UP_MAPPINGS,
        ),
      )
      .withPanel(
        statPanel({
          title: "Database connections",
          description: "Open database connections, by state.",
          unit: "short",
          queries: [{ expr: "sum by (state) (webhook_db_connections)", legend: "{{state}}" }],
        }),
      )
      .withPanel(
        statPanel({
          title: "Cache hit ratio",
          description: "Share of cache look-ups that hit, over the selected interval.",
          unit: "percentunit",
          queries: [
            {
              expr: "sum(rate(webhook_cache_hits_total[$__rate_interval])) / (sum(rate(webhook_cache_hits_total[$__rate_interval])) + sum(rate(webhook_cache_misses_total[$__rate_interval])))",
              legend: "hit ratio",
            },
          ],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Database query p95 by operation",
          description: "95th percentile duration of store calls, by operation.",
          unit: "s",
          min: 0,
          queries: [
            {
              expr: "histogram_quantile(0.95, sum by (le, operation) (rate(webhook_db_query_duration_seconds_bucket[$__rate_interval])))",
              legend: "{{operation}}",
            },
          ],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Cache operations",
          description: "Cache hits and misses per second by cache, and the 95th percentile duration of cache calls.",
          unit: "ops",
          min: 0,
          queries: [
            { expr: "sum by (cache) (rate(webhook_cache_hits_total[$__rate_interval]))", legend: "{{cache}} hits" },
            { expr: "sum by (cache) (rate(webhook_cache_misses_total[$__rate_interval]))", legend: "{{cache}} misses" },
          ],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Cache call p95",
          description: "95th percentile duration of cache calls, by cache and operation.",
          unit: "s",
          min: 0,
          width: 24,
          queries: [
            {
              expr: "histogram_quantile(0.95, sum by (le, cache, operation) (rate(webhook_cache_operation_duration_seconds_bucket[$__rate_interval])))",
              legend: "{{cache}} {{operation}}",
            },
          ],
        }),
      ),
  );
}
