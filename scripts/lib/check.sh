# shellcheck shell=bash
# `check`: probes every component and prints a table; exits non-zero when anything failed.

# Prometheus job that scrapes each component.
job_of_component() {
  case $1 in node-exporter) echo node ;; mailpit) echo '' ;; *) echo "$1" ;; esac
}

check_row() { # COMPONENT CHECK PASS|FAIL|N/A DETAIL
  CHECK_ROWS+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$4")
  if [[ $3 == FAIL ]]; then
    CHECK_FAILURES=$((CHECK_FAILURES + 1))
    [[ " ${CHECK_FAILED[*]-} " == *" $1 "* ]] || CHECK_FAILED+=("$1")
  fi
}

check_components() {
  local name pid
  for name in "${ALL_COMPONENTS[@]}"; do
    if ! component_available "$name"; then
      check_row "$name" "running" N/A "not available in $MODE mode (no local binary)"
      continue
    fi
    if [[ $MODE == native ]]; then
      if pid=$(native_pid "$name"); then
        check_row "$name" "process" PASS "pid $pid"
      else
        check_row "$name" "process" FAIL "not running (log: $(native_log "$name"))"
      fi
    fi
    if probe "$name"; then check_row "$name" "health" PASS "$PROBE_DETAIL"
    else check_row "$name" "health" FAIL "$PROBE_DETAIL"; fi
  done
}

check_targets() {
  local json name job rows
  # 2>&1: on failure json holds Prometheus's error message, shown in the table.
  json=$(prom_api /api/v1/targets --data-urlencode state=active 2>&1) || { check_row prometheus "targets" FAIL "$json"; return; }
  for name in "${ALL_COMPONENTS[@]}"; do
    component_available "$name" || continue
    job=$(job_of_component "$name")
    [[ -n $job ]] || continue
    rows=$(jq -r --arg job "$job" '.data.activeTargets[] | select(.labels.job == $job)
      | [.labels.instance, .health, (.lastError // "")] | @tsv' <<<"$json")
    if [[ -z $rows ]]; then
      check_row "$name" "scraped by Prometheus" FAIL "no target for job $job in Prometheus"
      continue
    fi
    local instance health error
    while IFS=$'\t' read -r instance health error; do
      if [[ $health == up ]]; then
        check_row "$name" "scraped by Prometheus" PASS "job $job, $instance up"
      elif [[ $health == unknown ]]; then
        check_row "$name" "scraped by Prometheus" FAIL "job $job, $instance not scraped yet"
      else
        check_row "$name" "scraped by Prometheus" FAIL "job $job, $instance $health${error:+: $error}"
      fi
    done <<<"$rows"
  done
}

# Number of rules in the repository's rule files, by promtool (empty when promtool is missing).
expected_rule_count() {
  local promtool
  promtool=$(native_binary promtool) || return 0
  "$promtool" check rules "$REPO_DIR"/monitoring/prometheus/rules/*.yml 2>/dev/null |
    grep -o 'SUCCESS: [0-9]* rules found' | awk '{ s += $2 } END { print s + 0 }'
}

check_prometheus() {
  local json loaded groups bad expected reload
  json=$(prom_api /api/v1/rules 2>&1) || { check_row prometheus "rules loaded" FAIL "$json"; return; }
  loaded=$(jq '[.data.groups[].rules[]] | length' <<<"$json")
  groups=$(jq '.data.groups | length' <<<"$json")
  bad=$(jq -r '[.data.groups[].rules[] | select(.health != "ok" and .health != "unknown") | "\(.name): \(.lastError // .health)"] | join("; ")' <<<"$json")
  expected=$(expected_rule_count)
  if ((loaded == 0)); then
    check_row prometheus "rules loaded" FAIL "no rules loaded"
  elif [[ -n $expected ]] && ((loaded < expected)); then
    check_row prometheus "rules loaded" FAIL "$loaded rules loaded, the rule files hold $expected"
  elif [[ -n $bad ]]; then
    check_row prometheus "rules loaded" FAIL "evaluation errors: $bad"
  else
    check_row prometheus "rules loaded" PASS "$loaded rules in $groups groups, evaluating without errors"
  fi
  if ! reload=$(prom_value 'prometheus_config_last_reload_successful' 2>&1); then
    check_row prometheus "configuration loaded" FAIL "$reload"
  elif [[ $reload == 1 ]]; then check_row prometheus "configuration loaded" PASS "last reload successful"
  else check_row prometheus "configuration loaded" FAIL "prometheus_config_last_reload_successful is ${reload:-absent}"; fi
  json=$(prom_api /api/v1/alertmanagers 2>&1) || { check_row alertmanager "Prometheus sends to it" FAIL "$json"; return; }
  local active
  active=$(jq -r '[.data.activeAlertmanagers[].url] | join(", ")' <<<"$json")
  if [[ -n $active ]]; then check_row alertmanager "Prometheus sends to it" PASS "$active"
  else check_row alertmanager "Prometheus sends to it" FAIL "Prometheus has no active Alertmanager"; fi
}

check_alertmanager() {
  local json
  json=$(curl -fsS --max-time 5 "$ALERTMANAGER_URL/api/v2/status" 2>/dev/null) || { check_row alertmanager "configuration loaded" FAIL "GET /api/v2/status: no answer"; return; }
  if [[ -n $(jq -r '.config.original // empty' <<<"$json") ]]; then
    check_row alertmanager "configuration loaded" PASS "version $(jq -r '.versionInfo.version // "?"' <<<"$json"), up since $(jq -r '.uptime // "?"' <<<"$json")"
  else
    check_row alertmanager "configuration loaded" FAIL "no configuration in /api/v2/status"
  fi
}

# The rows grouped by component, in the order of ALL_COMPONENTS.
print_check_table() {
  local name row component check result detail
  printf '%-14s %-24s %-6s %s\n' COMPONENT CHECK RESULT DETAIL
  for name in "${ALL_COMPONENTS[@]}"; do
    for row in "${CHECK_ROWS[@]}"; do
      IFS=$'\t' read -r component check result detail <<<"$row"
      [[ $component == "$name" ]] || continue
      printf '%-14s %-24s %-6s %s\n' "$component" "$check" "$result" "$detail"
    done
  done
}

# Runs every check; sets CHECK_FAILED (components) and prints the table. Returns 1 on any failure.
run_checks() {
  CHECK_ROWS=() CHECK_FAILED=() CHECK_FAILURES=0
  check_components
  if probe prometheus; then
    check_targets
    check_prometheus
  else
    check_row prometheus "targets and rules" FAIL "Prometheus is not ready: nothing it knows can be checked"
  fi
  probe alertmanager && check_alertmanager
  say "hookwatch monitoring check ($MODE mode, $(date -u '+%Y-%m-%d %H:%M:%S UTC'))"
  print_check_table
  local total=${#CHECK_ROWS[@]} na unavailable=''
  na=$(printf '%s\n' "${CHECK_ROWS[@]}" | awk -F'\t' '$3 == "N/A"' | wc -l)
  ((na == 0)) || unavailable="; $na components not available in $MODE mode"
  if ((CHECK_FAILURES == 0)); then
    say "check: all $((total - na)) checks passed$unavailable"
    return 0
  fi
  local failed
  failed=$(printf '%s, ' "${CHECK_FAILED[@]}")
  failed=${failed%, }
  say "check: FAILED: $failed ($CHECK_FAILURES of $((total - na)) checks failed)"
  printf 'monitoring.sh: check failed for: %s\n' "$failed" >&2
  return 1
}
