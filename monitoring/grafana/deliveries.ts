// Deliveries: is each subscribed endpoint receiving what hookwatch sends?
import * as dashboard from "@grafana/grafana-foundation-sdk/dashboard";
import { UIDS, baseDashboard, finish, labelVariable, statPanel, timeseriesPanel } from "./lib.js";

const EP = 'endpoint=~"$endpoint"';

export function deliveries(): dashboard.Dashboard {
  return finish(
    baseDashboard(UIDS.deliveries, "hookwatch / Deliveries", "Outbound deliveries per endpoint: success, failures by reason, retries, endpoint state, dead letters and backlog.")
      .withVariable(labelVariable("endpoint", "Endpoint", "webhook_deliveries_total"))
      .withRow(new dashboard.RowBuilder("Endpoints"))
      .withPanel(
        timeseriesPanel({
          title: "Success rate by endpoint",
          description: "Share of delivery attempts answered with a 2xx, per endpoint id.",
          unit: "percentunit",
          min: 0,
          max: 1,
          queries: [
            {
              expr: `1 - (sum by (endpoint) (rate(webhook_delivery_failures_total{${EP}}[$__rate_interval])) / sum by (endpoint) (rate(webhook_deliveries_total{${EP}}[$__rate_interval])))`,
              legend: "{{endpoint}}",
            },
          ],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Delivery attempts by endpoint",
          description: "Delivery attempts per second (first attempts and retries), per endpoint.",
          unit: "ops",
          min: 0,
          queries: [{ expr: `sum by (endpoint) (rate(webhook_deliveries_total{${EP}}[$__rate_interval]))`, legend: "{{endpoint}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Failures by reason",
          description: "Failed delivery attempts per second, by reason: timeout, connection, http_4xx, http_5xx.",
          unit: "ops",
          min: 0,
          queries: [{ expr: `sum by (reason) (rate(webhook_delivery_failures_total{${EP}}[$__rate_interval]))`, legend: "{{reason}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Failures in the last hour",
          description: "Failed attempts per endpoint over the last hour, approximately (increase() extrapolates). The alerts count exactly: WebhookDeliveryFailureRateHigh (more than 5 and over 80 %) and WebhookDeliveryFailureVolumeHigh (more than 50).",
          unit: "short",
          min: 0,
          thresholds: [[5, "orange"], [50, "red"]],
          queries: [{ expr: `sum by (endpoint) (increase(webhook_delivery_failures_total{${EP}}[1h]))`, legend: "{{endpoint}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Retries by endpoint",
          description: "Delivery attempts after the first, per second, per endpoint.",
          unit: "ops",
          min: 0,
          queries: [{ expr: `sum by (endpoint) (rate(webhook_delivery_retries_total{${EP}}[$__rate_interval]))`, legend: "{{endpoint}}" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Endpoint response time p95",
          description: "95th percentile of the time endpoints take to answer a delivery, per endpoint.",
          unit: "s",
          min: 0,
          queries: [
            {
              expr: `histogram_quantile(0.95, sum by (le, endpoint) (rate(webhook_delivery_duration_seconds_bucket{${EP}}[$__rate_interval])))`,
              legend: "{{endpoint}}",
            },
          ],
        }),
      )
      .withRow(new dashboard.RowBuilder("State and backlog"))
      .withPanel(
        statPanel(
          {
            title: "Endpoint up",
            description: "1 (UP) if the endpoint's last delivery attempt succeeded, 0 (DOWN) if it failed.",
            unit: "none",
            width: 12,
            height: 6,
            queries: [{ expr: `max by (endpoint) (webhook_endpoint_up{${EP}})`, legend: "{{endpoint}}" }],
          },
          [
            {
              type: dashboard.MappingType.ValueToText,
              options: { "0": { text: "DOWN", color: "red", index: 0 }, "1": { text: "UP", color: "green", index: 1 } },
            },
          ],
        ),
      )
      .withPanel(
        statPanel({
          title: "Dead-letter queue",
          description: "Jobs that exhausted their retries and wait for an operator (inspect and replay through the admin API).",
          unit: "short",
          height: 6,
          thresholds: [[1, "orange"], [100, "red"]],
          queries: [{ expr: "max(webhook_dead_letter_queue_size)", legend: "dead letters" }],
        }),
      )
      .withPanel(
        statPanel({
          title: "Sender lag",
          description: "How long the most overdue delivery has waited past its due time: how far behind the sender is. A delivery waiting for its next scheduled retry is not overdue.",
          unit: "s",
          height: 6,
          thresholds: [[300, "orange"], [3600, "red"]],
          queries: [{ expr: "max(webhook_oldest_pending_delivery_age_seconds)", legend: "lag" }],
        }),
      )
      .withPanel(
        timeseriesPanel({
          title: "Delivery backlog",
          description: "Deliveries waiting to be sent (due or scheduled for a retry), those parked behind a paused endpoint or a failing one's few slots (left axis), and how far behind the sender is (right axis, in time).",
          unit: "short",
          min: 0,
          width: 24,
          queries: [
            { expr: 'sum(webhook_queue_size{queue="deliveries"})', legend: "waiting" },
            { expr: "sum(webhook_parked_deliveries)", legend: "parked" },
            { expr: "max(webhook_oldest_pending_delivery_age_seconds)", legend: "lag", unit: "s" },
          ],
        }),
      ),
  );
}
