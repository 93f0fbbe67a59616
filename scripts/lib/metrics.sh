# shellcheck shell=bash
# `metrics`: the key figures now, from Prometheus (5-minute rates from the recording rules of
# monitoring/prometheus/rules/recording.yml, falling back to the raw expression until the rules
# have been evaluated once).

# PromQL: the recording rule, or the same figure computed from the raw series.
Q_REQUEST_RATE='sum(source:webhook_requests:rate5m) or sum(rate(webhook_requests_total[5m]))'
Q_REQUEST_RATE_BY_SOURCE='source:webhook_requests:rate5m or sum by (source) (rate(webhook_requests_total[5m]))'
Q_ERROR_RATIO=':webhook_request_errors:ratio_rate5m or (sum(rate(webhook_errors_total{source!="unknown",type=~"signature|bad_request|internal"}[5m])) / sum(rate(webhook_requests_total{source!="unknown"}[5m])))'
Q_P95='histogram_quantile(0.95, sum by (le) (source_le:webhook_request_duration_seconds_bucket:rate5m)) or histogram_quantile(0.95, sum by (le) (rate(webhook_request_duration_seconds_bucket[5m])))'
Q_QUEUE='sum by (queue) (webhook_queue_size)'
Q_DLQ='sum(webhook_dead_letter_queue_size)'
Q_DELIVERY_SUCCESS='endpoint:webhook_delivery_success:ratio_rate5m or (1 - sum by (endpoint) (rate(webhook_delivery_failures_total[5m])) / sum by (endpoint) (rate(webhook_deliveries_total[5m])))'

metric_line() { printf '  %-26s %s\n' "$1" "$2"; }

# "label=value, ..." of a vector, formatted by FORMATTER (fmt_number, fmt_percent, ...).
vector_list() { # JSON LABEL FORMATTER
  local label value out=()
  while IFS=$'\t' read -r label value; do
    [[ -n $label ]] || continue
    out+=("$label $("$3" "$value")")
  done < <(jq -r --arg l "$2" '.[] | [(.metric[$l] // "-"), .value[1]] | @tsv' <<<"$1")
  local IFS=,
  printf '%s' "${out[*]}" | sed 's/,/, /g'
}

cmd_metrics() {
  prom_require
  local rate by_source ratio p95 queue dlq deliveries alerts
  # 2>&1: on failure the variable holds Prometheus's error message instead of the answer.
  rate=$(prom_value "$Q_REQUEST_RATE" 2>&1) || die "request rate: $rate"
  by_source=$(prom_query "$Q_REQUEST_RATE_BY_SOURCE" 2>&1) || die "request rate by source: $by_source"
  ratio=$(prom_value "$Q_ERROR_RATIO" 2>&1) || die "error rate: $ratio"
  p95=$(prom_value "$Q_P95" 2>&1) || die "p95 latency: $p95"
  queue=$(prom_query "$Q_QUEUE" 2>&1) || die "queue size: $queue"
  dlq=$(prom_value "$Q_DLQ" 2>&1) || die "dead-letter queue: $dlq"
  deliveries=$(prom_query "$Q_DELIVERY_SUCCESS" 2>&1) || die "delivery success: $deliveries"
  alerts=$(prom_api /api/v1/alerts 2>&1) || die "alerts: $alerts"

  say "hookwatch key figures ($MODE mode, Prometheus $PROMETHEUS_URL, $(date -u '+%Y-%m-%d %H:%M:%S UTC'); rates over 5m)"
  local detail
  detail=$(vector_list "$by_source" source fmt_number)
  metric_line "Request rate" "$(fmt_number "${rate:-0}") req/s${detail:+  ($detail)}"
  if is_number "$ratio"; then metric_line "Error rate" "$(fmt_percent "$ratio")"
  else metric_line "Error rate" "n/a (no requests to configured sources in the last 5m)"; fi
  if is_number "$p95"; then metric_line "p95 latency" "$(fmt_seconds "$p95")"
  else metric_line "p95 latency" "n/a (no requests in the last 5m)"; fi
  detail=$(vector_list "$queue" queue fmt_count)
  metric_line "Queue size" "${detail:-n/a (webhook_queue_size not scraped)}"
  metric_line "Dead-letter queue" "$(if is_number "$dlq"; then fmt_count "$dlq"; else printf 'n/a (webhook_dead_letter_queue_size not scraped)'; fi)"
  detail=$(vector_list "$(jq -c '[.[] | select(.value[1] != "NaN")]' <<<"$deliveries")" endpoint fmt_percent)
  metric_line "Delivery success" "${detail:-n/a (no deliveries in the last 5m)}"
  local firing
  firing=$(jq -r '[.data.alerts[] | select(.state == "firing")
      | "\(.labels.alertname)[\(.labels.severity // "-")]" + ([.labels.source, .labels.endpoint] | map(select(. != null)) | if length > 0 then "(" + join(",") + ")" else "" end)]
      | if length == 0 then "none" else "\(length): " + join(", ") end' <<<"$alerts")
  metric_line "Alerts firing" "$firing"
  local pending
  pending=$(jq -r '[.data.alerts[] | select(.state == "pending") | .labels.alertname] | unique | join(", ")' <<<"$alerts")
  [[ -z $pending ]] || metric_line "Alerts pending" "$pending"
}
