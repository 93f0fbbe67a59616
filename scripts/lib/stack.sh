# shellcheck shell=bash
# The stack, whatever the mode: its components, health probes, start/stop, validation.

ALL_COMPONENTS=(hookwatch prometheus alertmanager node-exporter grafana loki jaeger mailpit)

# True when the component runs in the current mode.
component_available() {
  [[ $MODE == compose ]] && return 0
  case $1 in hookwatch|prometheus|alertmanager|node-exporter) return 0 ;; *) return 1 ;; esac
}

# Prometheus job name -> component.
component_of_job() {
  case $1 in node) echo node-exporter ;; *) echo "$1" ;; esac
}

# ---- probes: each returns 0 when healthy and sets PROBE_DETAIL ---------------------------------
probe_hookwatch() {
  local out code body
  out=$(curl -s --max-time 5 -w '\n%{http_code}' "$HOOKWATCH_URL/health" 2>/dev/null) || true
  code=${out##*$'\n'}
  body=${out%$'\n'*}
  if [[ $code == 200 ]] && [[ $(jq -r '.status // empty' <<<"$body" 2>/dev/null) == ok ]]; then
    PROBE_DETAIL="GET /health: 200 ok"
    return 0
  fi
  if [[ $code == 000 || -z $code ]]; then
    PROBE_DETAIL="GET $HOOKWATCH_URL/health: no answer"
  else
    PROBE_DETAIL="GET /health: $code $(jq -r '(.status // "") + (if (.failed // []) | length > 0 then " (failed: " + (.failed | join(", ")) + ")" else "" end)' <<<"$body" 2>/dev/null)"
  fi
  return 1
}

probe_url() { # URL LABEL
  local code
  code=$(http_status "$1")
  PROBE_DETAIL="GET $2: $code"
  [[ $code == 000 ]] && PROBE_DETAIL="GET $1: no answer"
  [[ $code == 200 ]]
}

probe_prometheus()   { probe_url "$PROMETHEUS_URL/-/ready" /-/ready; }
probe_alertmanager() { probe_url "$ALERTMANAGER_URL/-/ready" /-/ready; }
probe_grafana()      { probe_url "$GRAFANA_URL/api/health" /api/health; }
probe_loki()         { probe_url "$LOKI_URL_/ready" /ready; }
probe_jaeger()       { probe_url "$JAEGER_URL/" "/ (UI and query API)"; }
probe_mailpit()      { probe_url "$MAILPIT_URL/readyz" /readyz; }
probe_node_exporter() {
  if [[ $MODE == native ]]; then
    probe_url "$NODE_EXPORTER_URL/metrics" /metrics
    return
  fi
  # Not published on the host in compose: Prometheus's view of it is the probe.
  local health
  health=$(curl -fsS --max-time 5 "$PROMETHEUS_URL/api/v1/targets?state=active" 2>/dev/null |
    jq -r '[.data.activeTargets[] | select(.labels.job == "node") | .health] | first // "absent"' 2>/dev/null) || health=unknown
  PROBE_DETAIL="not published on the host; Prometheus target node: ${health:-unknown}"
  [[ $health == up ]]
}

probe() { "probe_${1//-/_}"; }

# ---- lifecycle --------------------------------------------------------------------------------
stack_start() {
  if [[ $MODE == native ]]; then native_start; else compose_start; fi
}

# stack_stop [COMPONENT...]
stack_stop() {
  if [[ $MODE == native ]]; then native_stop "$@"; else compose_stop "$@"; fi
}

stack_remove_data() {
  if [[ $MODE == native ]]; then native_stop; native_remove_data; else compose_remove_data; fi
}

# Waits until every component of the mode is healthy and Prometheus has scraped every target.
stack_wait_healthy() {
  local name started=$SECONDS remaining
  for name in "${ALL_COMPONENTS[@]}"; do
    component_available "$name" || continue
    remaining=$((WAIT_TIMEOUT - (SECONDS - started)))
    ((remaining > 0)) || remaining=1
    wait_for "$name" "$remaining" probe_alive "$name" || die "$name is not healthy: $PROBE_DETAIL"
    note "$name: healthy ($PROBE_DETAIL)"
  done
  remaining=$((WAIT_TIMEOUT - (SECONDS - started)))
  ((remaining > 5)) || remaining=5
  if wait_for "every Prometheus target to be up" "$remaining" targets_all_up; then
    note "prometheus: every target up ($TARGETS_SUMMARY)"
  else
    warn "not every Prometheus target is up: $TARGETS_SUMMARY"
    return 1
  fi
}

# A probe that also gives up at once when a native process has died.
probe_alive() {
  if [[ $MODE == native ]]; then
    native_assert_alive "$1" || die "$1 exited during start-up (log: $(native_log "$1"))"
  fi
  probe "$1"
}

# True when Prometheus reports every active target up; TARGETS_SUMMARY says which are not.
targets_all_up() {
  local json
  json=$(curl -fsS --max-time 5 "$PROMETHEUS_URL/api/v1/targets?state=active" 2>/dev/null) || { TARGETS_SUMMARY="Prometheus does not answer"; return 1; }
  TARGETS_SUMMARY=$(jq -r '[.data.activeTargets[] | select(.health != "up") | "\(.labels.job) \(.health)"] | if length == 0 then "" else join(", ") end' <<<"$json")
  if [[ -z $TARGETS_SUMMARY ]]; then
    TARGETS_SUMMARY=$(jq -r '[.data.activeTargets[] | .labels.job] | join(", ")' <<<"$json")
    [[ -n $TARGETS_SUMMARY ]]
    return
  fi
  return 1
}

# ---- validation -------------------------------------------------------------------------------
# promtool and amtool on the configuration the stack runs with (native: the generated copies),
# and the compose file. Prints one line per check; fails on the first error.
stack_validate() {
  local promtool=() amtool=() prom_config am_config tool
  if [[ $MODE == native ]]; then
    native_generate_config
    tool=$(native_binary promtool) || die "promtool is missing (apt-get install prometheus)"
    promtool=("$tool")
    tool=$(native_binary amtool) || die "amtool is missing (apt-get install prometheus-alertmanager)"
    amtool=("$tool")
    prom_config=$STATE_DIR/config/prometheus.yml
    am_config=$STATE_DIR/config/alertmanager.yml
  elif tool=$(native_binary promtool) && promtool=("$tool") && tool=$(native_binary amtool) && amtool=("$tool"); then
    prom_config=$REPO_DIR/monitoring/prometheus/prometheus.yml
    am_config=$REPO_DIR/monitoring/alertmanager/alertmanager.yml
  else
    # No local tools: the ones in the images, on the files as the containers mount them.
    promtool=("${COMPOSE_CMD[@]}" --project-directory "$REPO_DIR" -f "$REPO_DIR/docker-compose.yml" --env-file "$ENV_FILE"
      run --rm --no-deps -T --entrypoint promtool prometheus)
    amtool=("${COMPOSE_CMD[@]}" --project-directory "$REPO_DIR" -f "$REPO_DIR/docker-compose.yml" --env-file "$ENV_FILE"
      run --rm --no-deps -T --entrypoint amtool alertmanager)
    prom_config=/etc/prometheus/prometheus.yml
    am_config=/etc/alertmanager/alertmanager.yml
  fi
  local out
  out=$("${promtool[@]}" check config "$prom_config" 2>&1) || { say "$out" >&2; die "promtool check config failed for $prom_config"; }
  note "promtool check config: ok ($(grep -c 'SUCCESS: .* rules found' <<<"$out") rule files, $(grep -o 'SUCCESS: [0-9]* rules found' <<<"$out" | awk '{s += $2} END {print s + 0}') rules)"
  out=$("${amtool[@]}" check-config "$am_config" 2>&1) || { say "$out" >&2; die "amtool check-config failed for $am_config"; }
  note "amtool check-config: ok"
  VALIDATION_SKIPPED=''
  local log
  log=$(mktemp)
  if ! compose_validate >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    die "docker-compose.yml is not valid (docker compose config)"
  fi
  rm -f "$log"
  if [[ -n $VALIDATION_SKIPPED ]]; then note "$VALIDATION_SKIPPED"; else note "docker compose config: ok"; fi
  if [[ $MODE == native ]]; then native_show_rewrites; fi
}
