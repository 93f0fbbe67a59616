// Events: what arrives, by type, and how its processing goes.
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { UIDS, baseDashboard, finish, labelVariable, piechartPanel, timeseriesPanel } from "./lib.js";

const TYPE = 'event_type=~"$event_type"';

export function events(): dashboard.Dashboard {
  return finish(
    baseDashboard(UIDS.events, "hookwatch / Events", "Accepted events by type, processing success, volume and queue.")
      .withVariable(labelVariable("event_type", "Event type", "webhook_events_by_type_total"))
      .withVariable(labelVariable("source", "Source", "webhook_requests_total"))
      .withRow(new dashboard.RowBuilder("Volume"))
      .withPanel(
        piechartPanel({
          title: "Event type distribution",
          description: "Accepted events in the selected time range, by type (types outside EVENT_TYPE_ALLOWLIST are counted as `other`).",
          unit: "short",
          queries: [{ expr: `sum by (event_type) (increase(webhook_events_by_type_total{${TYPE},source=~"$source"}[$__range]))`, legend: "{{event_type}}", instant: true }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Accepted events by type",
          description: "Events accepted per second (signature valid, not a duplicate), by type.",
          unit: "reqps",
          min: 0,
          queries: [{ expr: `sum by (event_type) (rate(webhook_events_by_type_total{${TYPE},source=~"$source"}[$__rate_interval]))`, legend: "{{event_type}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Accepted events by source",
          description: "Events accepted per second, by source.",
          unit: "reqps",
          min: 0,
          queries: [{ expr: `sum by (source) (rate(webhook_events_by_type_total{${TYPE},source=~"$source"}[$__rate_interval]))`, legend: "{{source}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Rejected requests by reason",
          description: "Signature failures per second by source and reason (missing, malformed, mismatch, expired), and requests refused with 429 by source.",
          unit: "reqps",
          min: 0,
          queries: [
            { expr: `sum by (source, reason) (rate(webhook_signature_failures_total{source=~"$source"}[$__rate_interval]))`, legend: "{{source}} {{reason}}" },
            { expr: `sum by (source) (rate(webhook_rate_limited_total{source=~"$source"}[$__rate_interval]))`, legend: "{{source}} rate limited" },
          ],
        }),
      )
      .withRow(new dashboard.RowBuilder("Processing"))
      .withPanel(
        timeseriesPanel({
          title: "Processing success rate",
          description: "Share of processing runs that succeeded, by event type (an event with no handler counts as success).",
          unit: "percentunit",
          min: 0,
          max: 1,
          queries: [
            {
              expr: `sum by (event_type) (rate(webhook_events_processed_total{${TYPE},status="success"}[$__rate_interval])) / sum by (event_type) (rate(webhook_events_processed_total{${TYPE}}[$__rate_interval]))`,
              legend: "{{event_type}}",
            },
          ],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Processing runs by status",
          description: "Processing runs per second by outcome: success, retry (temporary error, tried again later), dead_letter (gave up).",
          unit: "ops",
          min: 0,
          queries: [{ expr: `sum by (status) (rate(webhook_events_processed_total{${TYPE}}[$__rate_interval]))`, legend: "{{status}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Processing time p95 by type",
          description: "95th percentile of the time spent in handlers, and of the time from event creation to the end of processing, by event type.",
          unit: "s",
          min: 0,
          queries: [
            { expr: `histogram_quantile(0.95, sum by (le, event_type) (rate(webhook_event_processing_duration_seconds_bucket{${TYPE}}[$__rate_interval])))`, legend: "{{event_type}} handlers" },
            { expr: `histogram_quantile(0.95, sum by (le, event_type) (rate(webhook_end_to_end_seconds_bucket{${TYPE}}[$__rate_interval])))`, legend: "{{event_type}} end to end" },
          ],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Event queue",
          description: "Events waiting for a worker, and jobs in the dead-letter queue.",
          unit: "short",
          min: 0,
          queries: [
            { expr: 'sum(webhook_queue_size{queue="events"})', legend: "waiting" },
            { expr: "max(webhook_dead_letter_queue_size)", legend: "dead letters" },
          ],
        }),
      ),
  );
}
