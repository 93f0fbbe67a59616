# shellcheck shell=bash
# Native mode: Prometheus, Alertmanager and node-exporter from the locally installed binaries, and
# hookwatch from this checkout, as background processes on 127.0.0.1. Each has a pid file under
# $STATE_DIR/run, a log under $STATE_DIR/logs and its data under $STATE_DIR/<component>.
# Grafana, Loki, Jaeger and the mail catcher have no local binary: not available in this mode.

NATIVE_COMPONENTS=(node-exporter alertmanager hookwatch prometheus)   # start order

native_dir()  { printf '%s/%s' "$STATE_DIR" "$1"; }
native_pidfile() { printf '%s/run/%s.pid' "$STATE_DIR" "$1"; }
native_log()  { printf '%s/logs/%s.log' "$STATE_DIR" "$1"; }

native_binary() {
  case $1 in
    prometheus) first_command prometheus ;;
    alertmanager) first_command prometheus-alertmanager alertmanager ;;
    node-exporter) first_command prometheus-node-exporter node_exporter ;;
    promtool) first_command promtool ;;
    amtool) first_command amtool ;;
  esac
}

native_require() {
  local missing=() packages=() name
  for name in prometheus alertmanager node-exporter promtool amtool; do
    native_binary "$name" >/dev/null && continue
    missing+=("$name")
    case $name in
      prometheus|promtool) packages+=(prometheus) ;;
      alertmanager|amtool) packages+=(prometheus-alertmanager) ;;
      node-exporter) packages+=(prometheus-node-exporter) ;;
    esac
  done
  for name in node npm sqlite3; do
    command -v "$name" >/dev/null 2>&1 && continue
    missing+=("$name"); packages+=("$([[ $name == sqlite3 ]] && echo sqlite3 || echo nodejs npm)")
  done
  ((${#missing[@]} == 0)) || die "native mode needs: ${missing[*]} (install: apt-get install $(printf '%s\n' "${packages[@]}" | sort -u | tr '\n' ' '))"
}

# The pid of a running component, or failure. A pid file left by a dead process, or a pid reused
# by an unrelated process, does not count: the process must still carry its state-dir marker.
native_pid() {
  local file pid marker
  file=$(native_pidfile "$1")
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r /proc/$pid/environ ]]; then
    marker="HOOKWATCH_MONITORING_STATE_DIR=$STATE_DIR"
    local environment
    # stderr first: a process gone since the check makes the redirection itself fail, noisily.
    environment=$(tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ") || return 1
    grep -qxF -- "$marker" <<<"$environment" || return 1
  fi
  printf '%s' "$pid"
}

# ---- configuration --------------------------------------------------------------------------
# The native copies of prometheus.yml and alertmanager.yml (see native-config.ts for the rewrites).
native_spec() {
  local services
  services=$(compose_service_names | jq -R . | jq -sc .)
  jq -nc \
    --argjson services "$services" \
    --arg hw "127.0.0.1:$HOOKWATCH_PORT_" --arg prom "127.0.0.1:$PROMETHEUS_PORT_" \
    --arg am "127.0.0.1:$ALERTMANAGER_PORT_" --arg node "127.0.0.1:$NODE_EXPORTER_PORT_" \
    --arg smtp "127.0.0.1:$MAILPIT_SMTP_PORT_" \
    --arg templates "$REPO_DIR/monitoring/alertmanager/templates" --arg secrets "$SECRETS_DIR" \
    --arg interval "${MONITORING_SCRAPE_INTERVAL:-}" \
    '{services: $services,
      targets: {"hookwatch:3000": $hw, "prometheus:9090": $prom, "localhost:9090": $prom,
                "alertmanager:9093": $am, "node-exporter:9100": $node, "mailpit:1025": $smtp},
      unavailable: ["grafana", "loki", "jaeger", "mailpit"],
      templatesDir: $templates, secretsDir: $secrets}
     + (if $interval == "" then {} else {scrapeInterval: $interval} end)'
}

# Service names of docker-compose.yml (the host names that must not survive into native mode).
compose_service_names() {
  node --input-type=module -e '
    import { readFileSync } from "node:fs";
    import { parse } from "yaml";
    const compose = parse(readFileSync(process.argv[1], "utf8"));
    for (const name of Object.keys(compose?.services ?? {})) console.log(name);
  ' "$REPO_DIR/docker-compose.yml"
}

native_generate_config() {
  local spec kind
  [[ -n ${MONITORING_SCRAPE_INTERVAL:-} ]] && ! duration_seconds "$MONITORING_SCRAPE_INTERVAL" >/dev/null &&
    die "MONITORING_SCRAPE_INTERVAL must be a duration such as 15s (got '$MONITORING_SCRAPE_INTERVAL')"
  spec=$(cd "$REPO_DIR" && native_spec) || die "could not read docker-compose.yml to build the native target map"
  mkdir -p "$STATE_DIR/config"
  for kind in prometheus alertmanager; do
    (cd "$REPO_DIR" && node --import tsx scripts/lib/native-config.ts "$kind" \
      "$REPO_DIR/monitoring/$kind/$kind.yml" "$STATE_DIR/config/$kind.yml" "$spec") \
      >"$STATE_DIR/config/$kind.rewrites" ||
      die "could not write the native-mode copy of monitoring/$kind/$kind.yml"
  done
}

native_show_rewrites() {
  local kind
  for kind in prometheus alertmanager; do
    [[ -s $STATE_DIR/config/$kind.rewrites ]] || continue
    note "$STATE_DIR/config/$kind.yml = monitoring/$kind/$kind.yml with:"
    sed 's/^/      /' "$STATE_DIR/config/$kind.rewrites"
  done
}

# ---- processes ------------------------------------------------------------------------------
native_port() {
  case $1 in
    prometheus) echo "$PROMETHEUS_PORT_" ;; alertmanager) echo "$ALERTMANAGER_PORT_" ;;
    node-exporter) echo "$NODE_EXPORTER_PORT_" ;; hookwatch) echo "$HOOKWATCH_PORT_" ;;
  esac
}

native_port_variable() {
  case $1 in
    prometheus) echo MONITORING_PROMETHEUS_PORT ;; alertmanager) echo MONITORING_ALERTMANAGER_PORT ;;
    node-exporter) echo MONITORING_NODE_EXPORTER_PORT ;; hookwatch) echo MONITORING_HOOKWATCH_PORT ;;
  esac
}

# The command line of a component (in the array NATIVE_CMD).
native_command() {
  local port
  port=$(native_port "$1")
  case $1 in
    prometheus)
      NATIVE_CMD=("$(native_binary prometheus)"
        "--config.file=$STATE_DIR/config/prometheus.yml"
        "--storage.tsdb.path=$(native_dir prometheus)"
        "--storage.tsdb.retention.time=${PROMETHEUS_RETENTION:-15d}"
        "--web.listen-address=127.0.0.1:$port"
        "--web.external-url=http://127.0.0.1:$port"
        --web.enable-lifecycle --web.enable-admin-api
        "--enable-feature=exemplar-storage,expand-external-labels") ;;
    alertmanager)
      NATIVE_CMD=("$(native_binary alertmanager)"
        "--config.file=$STATE_DIR/config/alertmanager.yml"
        "--storage.path=$(native_dir alertmanager)"
        "--web.listen-address=127.0.0.1:$port"
        "--web.external-url=http://127.0.0.1:$port"
        "--cluster.listen-address=") ;;   # no gossip port: a single Alertmanager
    node-exporter)
      NATIVE_CMD=("$(native_binary node-exporter)"
        "--web.listen-address=127.0.0.1:$port"
        "--collector.textfile.directory=$(native_dir node-exporter)") ;;
    hookwatch)
      # package.json's start script, run after the build (npm start = build + start): run directly
      # so the pid file holds node itself and SIGTERM reaches it.
      local start
      start=$(jq -r '.scripts.start // "node dist/main.js"' "$REPO_DIR/package.json")
      [[ $start == node\ * ]] || start='node dist/main.js'
      NATIVE_CMD=(sh -c "exec $start") ;;
  esac
}

# The build `npm start` would run first. Skipped with MONITORING_SKIP_BUILD=1, and by restore
# (NATIVE_BUILD=if-missing), when dist/main.js exists.
native_build_hookwatch() {
  if [[ -f $REPO_DIR/dist/main.js ]]; then
    if [[ ${MONITORING_SKIP_BUILD:-0} == 1 ]]; then note "hookwatch: build skipped (MONITORING_SKIP_BUILD=1)"; return 0; fi
    if [[ ${NATIVE_BUILD:-always} == if-missing ]]; then note "hookwatch: using the existing build in dist/"; return 0; fi
  fi
  [[ -d $REPO_DIR/node_modules ]] || die "hookwatch: node_modules is missing; run npm ci first"
  note "hookwatch: building (npm run build)"
  local log
  log=$(native_log build)
  mkdir -p "$(dirname "$log")"
  if ! (cd "$REPO_DIR" && npm run build) >"$log" 2>&1; then
    tail -n 30 "$log" >&2
    die "hookwatch: the build failed (full output: $log)"
  fi
}

# Environment of hookwatch in native mode: .env (already exported) plus these overrides.
native_hookwatch_env() {
  NATIVE_ENV=(HOST=127.0.0.1 "PORT=$HOOKWATCH_PORT_" "DATA_DIR=$(native_dir hookwatch)")
  local name value
  # A compose host name (loki, jaeger, mailpit) cannot be reached outside compose: leave it unset.
  for name in LOKI_URL OTEL_EXPORTER_OTLP_ENDPOINT SMTP_URL ERROR_WEBHOOK_URL; do
    value=${!name:-}
    if [[ $value =~ ^[a-z]+://([^@/]*@)?(loki|jaeger|mailpit|grafana|prometheus|alertmanager)[:/] ]]; then
      # The host only: the value may carry a password (SMTP_URL), and this line reaches terminals and CI logs.
      note "hookwatch: $name names the compose service ${BASH_REMATCH[2]}; unset in native mode"
      NATIVE_ENV+=("$name=")
    fi
  done
}

native_start_component() {
  local name=$1 pid port log
  if pid=$(native_pid "$name"); then
    note "$name: already running (pid $pid)"
    return 0
  fi
  port=$(native_port "$name")
  if port_in_use "$port"; then
    die "$name: port $port on 127.0.0.1 is in use by another process; stop it or choose another port with $(native_port_variable "$name")"
  fi
  mkdir -p "$STATE_DIR/run" "$STATE_DIR/logs"
  if [[ $name == hookwatch ]]; then
    # DATA_DIR holds the database and with it every endpoint's signing secret. hookwatch creates it
    # 0700 itself, but only when it does not exist; the chmod also closes one an earlier version
    # of this script (or a restore) left world-readable.
    (umask 077 && mkdir -p -- "$(native_dir hookwatch)")
    chmod 700 -- "$(native_dir hookwatch)"
  else
    mkdir -p -- "$(native_dir "$name")"
  fi
  log=$(native_log "$name")
  native_command "$name"
  local env_extra=("HOOKWATCH_MONITORING_STATE_DIR=$STATE_DIR")
  case $name in
    hookwatch) native_hookwatch_env; env_extra+=("${NATIVE_ENV[@]}") ;;
    prometheus)
      # Expanded into the external labels (prometheus.yml), as docker-compose.yml does.
      env_extra+=("DEPLOYMENT_ENVIRONMENT=${DEPLOYMENT_ENVIRONMENT:-local}"
        "GRAFANA_EXTERNAL_URL=${GRAFANA_EXTERNAL_URL:-http://127.0.0.1:3001}"
        "RUNBOOK_BASE_URL=${RUNBOOK_BASE_URL:-}") ;;
  esac
  printf '\n---- %s started %s: %s\n' "$name" "$(date -u +%FT%TZ)" "${NATIVE_CMD[*]}" >>"$log"
  # setsid: its own session, so the stack outlives this shell and a Ctrl-C in it.
  (cd "$REPO_DIR" && exec env "${env_extra[@]}" setsid "${NATIVE_CMD[@]}") </dev/null >>"$log" 2>&1 &
  printf '%s\n' "$!" >"$(native_pidfile "$name")"
  note "$name: started (pid $!, 127.0.0.1:$port, log $log)"
}

# Stops one component: SIGTERM, then SIGKILL after the grace period.
native_stop_component() {
  local name=$1 pid grace=20 waited=0
  if ! pid=$(native_pid "$name"); then
    rm -f "$(native_pidfile "$name")"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  while kill -0 "$pid" 2>/dev/null; do
    if ((waited >= grace * 10)); then
      warn "$name (pid $pid) did not stop within ${grace}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$(native_pidfile "$name")"
  note "$name: stopped (pid $pid)"
}

native_start() {
  native_require
  native_generate_config
  local name port
  # Every port first: a clash found halfway would leave half a stack running.
  for name in "${NATIVE_COMPONENTS[@]}"; do
    native_pid "$name" >/dev/null && continue
    port=$(native_port "$name")
    if port_in_use "$port"; then
      die "$name: port $port on 127.0.0.1 is in use by another process; stop it or choose another port with $(native_port_variable "$name")"
    fi
  done
  native_pid hookwatch >/dev/null || native_build_hookwatch
  for name in "${NATIVE_COMPONENTS[@]}"; do native_start_component "$name"; done
  record_mode
}

# native_stop [COMPONENT...]: stops the given components (all by default), in reverse start order.
native_stop() {
  local names=("$@") i
  ((${#names[@]})) || names=("${NATIVE_COMPONENTS[@]}")
  for ((i = ${#NATIVE_COMPONENTS[@]} - 1; i >= 0; i--)); do
    [[ " ${names[*]} " == *" ${NATIVE_COMPONENTS[i]} "* ]] && native_stop_component "${NATIVE_COMPONENTS[i]}"
  done
  return 0
}

# Fails (naming the component and showing its log) when a started process has exited.
native_assert_alive() {
  local name
  for name in "$@"; do
    native_pid "$name" >/dev/null && continue
    warn "$name exited; last lines of $(native_log "$name"):"
    tail -n 20 "$(native_log "$name")" >&2 2>/dev/null || true
    return 1
  done
}

# Removes everything native mode keeps in the state directory.
native_remove_data() {
  local path
  for path in prometheus alertmanager hookwatch node-exporter config run logs tmp mode; do
    rm -rf -- "${STATE_DIR:?}/$path"
  done
  rmdir -- "$STATE_DIR" 2>/dev/null || true
}
