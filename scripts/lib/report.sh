# shellcheck shell=bash
# `report [--since 24h]`: a Markdown report over a period, from Prometheus, written to
# reports/hookwatch-report-YYYYMMDD-HHMMSS.md and printed. Counts come from increase() over the
# period, so they are Prometheus's estimates (rounded), not an audit log.

R_ERRORS='type=~"signature|bad_request|internal"'

# Markdown table: md_table "H1|H2|..." < TSV rows ("_none_" when there are no rows).
md_table() {
  local header=$1 rows
  rows=$(cat)
  if [[ -z $rows ]]; then printf '_none in this period_\n\n'; return; fi
  local columns separator='|'
  columns=$(($(tr -cd '|' <<<"$header" | wc -c) + 1))
  while ((columns-- > 0)); do separator+='---|'; done
  printf '| %s |\n%s\n' "${header//|/ | }" "$separator"
  while IFS= read -r row; do printf '| %s |\n' "${row//$'\t'/ | }"; done <<<"$rows"
  printf '\n'
}

# TSV of a vector: the given labels, then the value formatted by FORMATTER; rows sorted by value.
vector_tsv() { # JSON FORMATTER LABEL...
  local json=$1 formatter=$2 line value
  shift 2
  local labels
  labels=$(printf '%s\n' "$@" | jq -R . | jq -sc .)
  while IFS= read -r line; do
    [[ -n $line ]] || continue
    value=${line##*$'\t'}
    printf '%s\t%s\n' "${line%$'\t'*}" "$("$formatter" "$value")"
  done < <(jq -r --argjson labels "$labels" '
      sort_by(-(.value[1] | tonumber? // 0)) | .[]
      | select(.value[1] != "NaN" and ((.value[1] | tonumber? // 1) != 0))
      | [(.metric as $m | $labels[] | ($m[.] // "-")), .value[1]] | @tsv' <<<"$json")
}

# Seconds as "1h 02m", "4m 10s".
human_duration() {
  local s=${1%.*}
  if ((s >= 86400)); then printf '%dd %02dh' $((s / 86400)) $((s % 86400 / 3600))
  elif ((s >= 3600)); then printf '%dh %02dm' $((s / 3600)) $((s % 3600 / 60))
  elif ((s >= 60)); then printf '%dm %02ds' $((s / 60)) $((s % 60))
  else printf '%ds' "$s"; fi
}

utc() { date -u -d "@${1%.*}" '+%Y-%m-%d %H:%M:%S UTC'; }

q() {
  local out
  out=$(prom_query "$1" "$RPT_END" 2>&1) || die "query failed: $1: $out"
  printf '%s' "$out"
}
qv() { q "$1" | jq -r '.[0].value[1] // ""'; }

# Firing intervals of every alert in the period, from the ALERTS series: TSV of
# alertname, severity, subject, first, last, total seconds, intervals, still firing.
alert_intervals() {
  local step=$1 matrix
  matrix=$(prom_range 'ALERTS{alertstate="firing"}' "$RPT_START" "$RPT_END" "$step" 2>&1) || die "query failed: ALERTS: $matrix"
  jq -r --argjson step "$step" --argjson until "$RPT_END" '
    .[] | .metric as $m | [.values[][0]] | sort as $t
    | (reduce $t[] as $x ({prev: null, n: 0, total: 0};
        if .prev != null and ($x - .prev) <= ($step * 1.5) then .total += ($x - .prev)
        else .n += 1 | .total += $step end | .prev = $x)) as $r
    | [$m.alertname, ($m.severity // "-"),
       ([$m.source, $m.endpoint, $m.instance] | map(select(. != null)) | join(", ") | if . == "" then "-" else . end),
       $t[0], $t[-1], ($r | .total), ($r | .n), (if ($until - $t[-1]) <= ($step * 1.5) then "yes" else "no" end)] | @tsv' <<<"$matrix"
}

# Evaluation interval of the running Prometheus, in seconds (15 when it cannot be read).
evaluation_interval() {
  local yaml value
  yaml=$(prom_api /api/v1/status/config 2>/dev/null | jq -r '.data.yaml') || { echo 15; return; }
  value=$(awk '/^global:/ { g = 1; next } /^[^ ]/ { g = 0 } g && $1 == "evaluation_interval:" { print $2; exit }' <<<"$yaml")
  duration_seconds "${value:-15s}" || echo 15
}

report_recommendations() {
  local recs=()
  local name severity subject first last total n firing summary runbook
  while IFS=$'\t' read -r name severity subject first last total n firing; do
    [[ -n $name && $name != Watchdog ]] || continue
    summary=$(jq -r --arg a "$name" --arg subject "$subject" '[.data.groups[].rules[] | select(.type == "alerting" and .name == $a)][0].annotations.summary // ""
        | gsub("\\{\\{ *\\$labels\\.[a-z_]+ *\\}\\}"; $subject)' <<<"$RPT_RULES")
    runbook=$(jq -r --arg a "$name" '[.data.groups[].rules[] | select(.type == "alerting" and .name == $a)][0].annotations.runbook_url // ""' <<<"$RPT_RULES")
    recs+=("**$name** ($severity, $subject) fired $n time(s), $(human_duration "$total") in all$([[ $firing == yes ]] && printf ', still firing'): ${summary:-see its rule}. Follow the runbook: ${runbook:-docs/runbook.md}.")
  done <<<"$RPT_ALERTS"
  if is_number "$RPT_ERROR_RATIO" && awk -v r="$RPT_ERROR_RATIO" 'BEGIN { exit !(r > 0.05) }'; then
    recs+=("Inbound error rate was $(fmt_percent "$RPT_ERROR_RATIO") (over 5 %): see *Errors* above. \`signature\` errors mean a sender signs with another secret than \`WEBHOOK_SECRET_<SOURCE>\`/\`STRIPE_WEBHOOK_SECRET\` (a rotation?); \`bad_request\` a sender sending malformed payloads; \`internal\` a hookwatch fault: read its error logs.")
  fi
  if is_number "$RPT_P95" && awk -v r="$RPT_P95" 'BEGIN { exit !(r > 0.5) }'; then
    recs+=("p95 latency was $(fmt_seconds "$RPT_P95") (over 500 ms): look at the Performance dashboard (database query durations, CPU and memory) before senders start timing out.")
  fi
  if is_number "$RPT_DLQ" && awk -v r="$RPT_DLQ" 'BEGIN { exit !(r > 0) }'; then
    recs+=("$(fmt_count "$RPT_DLQ") job(s) wait in the dead-letter queue: inspect them with \`GET /api/v1/dead-letters\`, fix the cause, then replay with \`POST /api/v1/dead-letters/<id>/replay\`.")
  fi
  local endpoint attempts failures success
  while IFS=$'\t' read -r endpoint attempts failures success; do
    [[ -n $endpoint ]] || continue
    if [[ $success != n/a ]] && awk -v s="${success% %}" 'BEGIN { exit !(s < 95) }'; then
      recs+=("Endpoint \`$endpoint\` succeeded only $success of $attempts attempts ($failures failed; reasons under *Top failure reasons*): \`timeout\`/\`connection\` mean it is down or slow, \`http_4xx\` that it rejects the requests (URL, auth, payload), \`http_5xx\` that it fails. Contact its owner; \`GET /api/v1/webhooks/$endpoint\` shows its state.")
    fi
  done <<<"$RPT_DELIVERY_ROWS"
  if is_number "$RPT_RATE_LIMITED" && awk -v r="$RPT_RATE_LIMITED" 'BEGIN { exit !(r >= 1) }'; then
    recs+=("$(fmt_count "$RPT_RATE_LIMITED") request(s) were refused with 429: if this was real traffic, raise \`RATE_LIMIT_MAX\`/\`RATE_LIMIT_WINDOW\`.")
  fi
  if ! is_number "$RPT_TOTAL" || awk -v r="$RPT_TOTAL" 'BEGIN { exit !(r < 1) }'; then
    recs+=("No inbound webhook requests in this period: if traffic was expected, check the senders' webhook configuration and that hookwatch is reachable from them.")
  fi
  if ((${#recs[@]} == 0)); then
    printf 'No action needed: no alert fired (besides the Watchdog heartbeat) and every figure is within its threshold.\n'
  else
    printf -- '- %s\n' "${recs[@]}"
  fi
}

cmd_report() {
  local since=$1 seconds
  seconds=$(duration_seconds "$since") || usage_error "report: --since takes a duration of at most 10y, such as 30m, 24h or 7d (got '$since')" report
  prom_require
  RPT_END=$(date +%s)
  RPT_START=$((RPT_END - seconds))
  local R="[$since]"
  RPT_RULES=$(prom_api /api/v1/rules 2>&1) || die "rules: $RPT_RULES"
  local step
  step=$(evaluation_interval)
  ((seconds / step > 10000)) && step=$(((seconds + 9999) / 10000))

  RPT_TOTAL=$(qv "sum(increase(webhook_requests_total$R)) or vector(0)")
  # As the alerts and `metrics` count it: requests to unconfigured sources (source="unknown") are
  # anyone's probes, not a sender's errors.
  RPT_ERROR_RATIO=$(qv "sum(increase(webhook_errors_total{$R_ERRORS,source!=\"unknown\"}$R)) / sum(increase(webhook_requests_total{source!=\"unknown\"}$R))")
  RPT_RATE_LIMITED=$(qv "sum(increase(webhook_rate_limited_total$R))")
  RPT_P95=$(qv "histogram_quantile(0.95, sum by (le) (increase(webhook_request_duration_seconds_bucket$R)))")
  RPT_DLQ=$(qv 'sum(webhook_dead_letter_queue_size)')
  RPT_ALERTS=$(alert_intervals "$step")
  local attempts failures
  attempts=$(q "sum by (endpoint) (increase(webhook_deliveries_total$R))")
  failures=$(q "sum by (endpoint) (increase(webhook_delivery_failures_total$R))")
  RPT_DELIVERY_ROWS=$(jq -r --argjson f "$failures" '
      ($f | map({key: .metric.endpoint, value: (.value[1] | tonumber)}) | from_entries) as $fail
      | sort_by(.metric.endpoint) | .[] | (.value[1] | tonumber) as $a | ($fail[.metric.endpoint] // 0) as $x
      | [.metric.endpoint, ($a | round | tostring), ($x | round | tostring),
         (if $a > 0 then ((1 - $x / $a) * 10000 | round / 100 | tostring) + " %" else "n/a" end)] | @tsv' <<<"$attempts")
  local oldest
  oldest=$(qv 'min(prometheus_tsdb_lowest_timestamp_seconds)')

  local file
  mkdir -p "$REPORT_DIR"
  file="$REPORT_DIR/hookwatch-report-$(date +%Y%m%d-%H%M%S).md"
  {
    printf '# hookwatch report: last %s\n\n' "$since"
    printf -- '- Period: %s to %s\n' "$(utc "$RPT_START")" "$(utc "$RPT_END")"
    # shellcheck disable=SC2016  # Markdown code spans
    printf -- '- Source: Prometheus %s (%s mode), generated by `scripts/monitoring.sh report --since %s`\n' "$PROMETHEUS_URL" "$MODE" "$since"
    if is_number "$oldest" && awk -v o="$oldest" -v s="$RPT_START" -v e="$RPT_END" 'BEGIN { exit !(o > s && o < e) }'; then
      printf -- '- Note: Prometheus holds data only since %s; figures cover that part of the period.\n' "$(utc "$oldest")"
    fi
    printf -- '- Counts are Prometheus estimates (increase() over the period, rounded), not an audit log.\n'
    printf '\n## Summary\n\n'
    printf '| figure | value |\n|---|---|\n'
    printf '| inbound requests | %s |\n' "$(fmt_count "${RPT_TOTAL:-0}")"
    printf '| error rate (signature, bad request, internal; configured sources) | %s |\n' "$(fmt_percent "$RPT_ERROR_RATIO")"
    printf '| p50 / p95 / p99 latency | %s / %s / %s |\n' \
      "$(fmt_seconds "$(qv "histogram_quantile(0.5, sum by (le) (increase(webhook_request_duration_seconds_bucket$R)))")")" \
      "$(fmt_seconds "$RPT_P95")" \
      "$(fmt_seconds "$(qv "histogram_quantile(0.99, sum by (le) (increase(webhook_request_duration_seconds_bucket$R)))")")"
    printf '| events accepted | %s |\n' "$(fmt_count "$(qv "sum(increase(webhook_events_by_type_total$R)) or vector(0)")")"
    printf '| delivery attempts / failures | %s / %s |\n' "$(fmt_count "$(qv "sum(increase(webhook_deliveries_total$R)) or vector(0)")")" "$(fmt_count "$(qv "sum(increase(webhook_delivery_failures_total$R)) or vector(0)")")"
    printf '| dead-letter queue now (max in period) | %s (%s) |\n' "$(fmt_count "$RPT_DLQ")" "$(fmt_count "$(qv "max_over_time(sum(webhook_dead_letter_queue_size)${R%]}:])")")"
    printf '| alerts that fired (besides Watchdog) | %s |\n\n' "$(awk -F'\t' '$1 != "" && $1 != "Watchdog"' <<<"$RPT_ALERTS" | wc -l)"

    printf '## Traffic\n\nRequests by source and HTTP status:\n\n'
    vector_tsv "$(q "sum by (source, status) (increase(webhook_requests_total$R))")" fmt_count source status | md_table "source|status|requests"
    # shellcheck disable=SC2016  # Markdown code spans
    printf '## Errors\n\nBy source and type (`rate_limited` and `processing` are not counted in the error rate):\n\n'
    vector_tsv "$(q "sum by (source, type) (increase(webhook_errors_total$R))")" fmt_count source type | md_table "source|type|errors"
    printf '## Latency\n\n'
    {
      local quantile
      for quantile in 0.5:p50 0.95:p95 0.99:p99; do
        printf 'all\t%s\t%s\n' "${quantile#*:}" "$(fmt_seconds "$(qv "histogram_quantile(${quantile%:*}, sum by (le) (increase(webhook_request_duration_seconds_bucket$R)))")")"
      done
      vector_tsv "$(q "histogram_quantile(0.95, sum by (source, le) (increase(webhook_request_duration_seconds_bucket$R)))")" fmt_seconds source |
        sed 's/\t/\tp95\t/'
    } | md_table "source|percentile|latency"
    printf '## Events by type\n\n'
    vector_tsv "$(q "sum by (source, event_type) (increase(webhook_events_by_type_total$R))")" fmt_count source event_type | md_table "source|event type|events"
    printf 'Processing runs by outcome:\n\n'
    vector_tsv "$(q "sum by (status) (increase(webhook_events_processed_total$R))")" fmt_count status | md_table "outcome|runs"
    printf '## Deliveries per endpoint\n\n'
    md_table "endpoint|attempts|failures|success" <<<"$RPT_DELIVERY_ROWS"
    printf '## Top failure reasons\n\n'
    vector_tsv "$(q "topk(10, sum by (endpoint, reason) (increase(webhook_delivery_failures_total$R)))")" fmt_count endpoint reason | md_table "endpoint|reason|failures"
    printf '## Alerts that fired\n\n'
    awk -F'\t' -v OFS='\t' '$1 != "" { print }' <<<"$RPT_ALERTS" | while IFS=$'\t' read -r name severity subject first last total n firing; do
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$severity" "$subject" "$(utc "$first")" "$(utc "$last")" "$(human_duration "$total") ($n×)" "$firing"
    done | md_table "alert|severity|subject|first firing|last firing|duration|still firing"
    printf '## Recommended actions\n\n'
    report_recommendations
  } >"$file"
  cat "$file"
  printf 'report written: %s\n' "$file" >&2
}
