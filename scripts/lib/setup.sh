# shellcheck shell=bash
# `init`, `urls`, `update`, `reset`, and the .env / Alertmanager secrets they manage.

# Secrets that init generates when the env file leaves them empty (compose refuses to start without).
GENERATED_SECRETS=(ADMIN_TOKEN GRAFANA_ADMIN_PASSWORD)
# Alertmanager secret file <- .env variable (monitoring/alertmanager/alertmanager.yml reads the files).
ALERTMANAGER_SECRETS=(slack_webhook_url:SLACK_WEBHOOK_URL pagerduty_routing_key:PAGERDUTY_ROUTING_KEY smtp_password:ALERTMANAGER_SMTP_PASSWORD)

random_secret() { head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# Value of KEY in the env file ("" when absent or empty).
env_file_value() {
  awk -v key="$1" 'index($0, key "=") == 1 { sub(/^[^=]*=/, ""); value = $0 } END { print value }' "$ENV_FILE"
}

# Sets KEY=VALUE in the env file: replaces the line when present, appends it otherwise.
env_file_set() {
  local tmp
  tmp=$(mktemp "$ENV_FILE.XXXXXX")
  awk -v key="$1" -v value="$2" '
    index($0, key "=") == 1 { print key "=" value; done = 1; next }
    { print }
    END { if (!done) print key "=" value }' "$ENV_FILE" >"$tmp"
  chmod 600 "$tmp"
  mv -f -- "$tmp" "$ENV_FILE"
}

ensure_env_file() {
  if [[ ! -f $ENV_FILE ]]; then
    [[ -f $REPO_DIR/.env.example ]] || die "$REPO_DIR/.env.example is missing: cannot create $ENV_FILE"
    mkdir -p "$(dirname "$ENV_FILE")"
    (umask 077 && cp -- "$REPO_DIR/.env.example" "$ENV_FILE")
    note "created $ENV_FILE from .env.example"
  else
    note "$ENV_FILE exists; kept"
  fi
  local key
  for key in "${GENERATED_SECRETS[@]}"; do
    if [[ -z $(env_file_value "$key") ]]; then
      env_file_set "$key" "$(random_secret)"
      note "$key: generated (stored in $ENV_FILE)"
    fi
  done
  chmod 600 "$ENV_FILE"
  load_env_file
  # A generated value reaches this run too, unless the environment sets the variable itself.
  for key in "${GENERATED_SECRETS[@]}"; do
    [[ -n ${!key:-} ]] || export "$key=$(env_file_value "$key")"
  done
}

# Writes each Alertmanager secret file from its .env variable (an empty variable gives an empty
# file: that channel's notifications fail until it is set).
write_alertmanager_secrets() {
  local pair file variable file_mode=600 dir_mode=700
  # The Alertmanager container runs as nobody and reads the files through a bind mount.
  if [[ $MODE == compose ]]; then file_mode=644 dir_mode=755; fi
  mkdir -p "$SECRETS_DIR"
  chmod "$dir_mode" "$SECRETS_DIR"
  for pair in "${ALERTMANAGER_SECRETS[@]}"; do
    file=${pair%%:*}
    variable=${pair#*:}
    (umask 077 && printf '%s' "${!variable:-}" >"$SECRETS_DIR/$file.tmp")
    chmod "$file_mode" "$SECRETS_DIR/$file.tmp"
    mv -f -- "$SECRETS_DIR/$file.tmp" "$SECRETS_DIR/$file"
    if [[ -n ${!variable:-} ]]; then
      note "$file <- $variable"
    elif [[ $variable != ALERTMANAGER_SMTP_PASSWORD ]]; then
      note "$file <- $variable (empty: these notifications fail until it is set in $ENV_FILE and init runs again)"
    else
      note "$file <- $variable (empty: no SMTP authentication)"
    fi
  done
}

cmd_init() {
  step "mode: $MODE ($MODE_REASON)"
  step "prerequisites"
  require_commands curl jq tar gzip sha256sum setsid timeout realpath awk
  if [[ $MODE == native ]]; then native_require; else compose_require; fi
  note "ok"
  step "environment: $ENV_FILE"
  ensure_env_file
  step "Alertmanager secrets: $SECRETS_DIR"
  write_alertmanager_secrets
  step "validating the configuration"
  stack_validate
  step "starting the stack ($MODE mode)"
  stack_start
  step "waiting until every component is healthy (at most ${WAIT_TIMEOUT}s)"
  stack_wait_healthy || die "the stack started, but not every Prometheus target is up: run scripts/monitoring.sh check"
  step "ready"
  print_urls
}

# ---- urls -------------------------------------------------------------------------------------
url_line() { printf '  %-22s %s\n' "$1" "$2"; }

print_urls() {
  local grafana=${GRAFANA_EXTERNAL_URL:-$GRAFANA_URL} file uid title
  grafana=${grafana%/}
  say "hookwatch monitoring URLs ($MODE mode)"
  url_line "hookwatch" "$HOOKWATCH_URL  (webhooks: POST /webhooks/<source>)"
  url_line "  health" "$HOOKWATCH_URL/health"
  url_line "  metrics" "$HOOKWATCH_URL/metrics"
  url_line "  admin API" "$HOOKWATCH_URL/api/v1  (Authorization: Bearer \$ADMIN_TOKEN from $ENV_FILE)"
  url_line "Prometheus" "$PROMETHEUS_URL  (alerts: $PROMETHEUS_URL/alerts, targets: $PROMETHEUS_URL/targets)"
  url_line "Alertmanager" "$ALERTMANAGER_URL"
  if [[ $MODE == native ]]; then
    url_line "node-exporter" "$NODE_EXPORTER_URL/metrics"
  else
    url_line "node-exporter" "not published on the host (node-exporter:9100 in the compose network; Prometheus job node)"
  fi
  if component_available grafana; then
    url_line "Grafana" "$grafana  (user ${GRAFANA_ADMIN_USER:-admin}, password GRAFANA_ADMIN_PASSWORD in $ENV_FILE)"
  else
    url_line "Grafana" "not available in native mode (would be $grafana)"
  fi
  for file in "$REPO_DIR"/monitoring/grafana/dashboards/*.json; do
    [[ -f $file ]] || continue
    uid=$(jq -r '.uid // empty' "$file")
    title=$(jq -r '.title // empty' "$file")
    [[ -n $uid ]] && url_line "  dashboard" "$grafana/d/$uid  ($title)"
  done
  local name url
  for name in Loki Jaeger "mail catcher"; do
    case $name in
      Loki) url="$LOKI_URL_  (API; browse logs in Grafana > Explore)" ;;
      Jaeger) url="$JAEGER_URL  (traces)" ;;
      *) url="$MAILPIT_URL  (SMTP 127.0.0.1:$MAILPIT_SMTP_PORT_)" ;;
    esac
    if [[ $MODE == native ]]; then url_line "$name" "not available in native mode"; else url_line "$name" "$url"; fi
  done
}

# ---- update -----------------------------------------------------------------------------------
cmd_update() {
  prom_require
  step "validating the configuration"
  stack_validate
  step "reloading Prometheus"
  curl -fsS --max-time 30 -X POST "$PROMETHEUS_URL/-/reload" >/dev/null || die "Prometheus refused the reload (see its log; the previous configuration stays active)"
  local reloaded rules
  reloaded=$(prom_value prometheus_config_last_reload_successful 2>&1) || die "could not confirm the reload: $reloaded"
  [[ $reloaded == 1 ]] || die "Prometheus reports the reload failed"
  rules=$(prom_api /api/v1/rules 2>&1) || die "could not read the rules after the reload: $rules"
  note "ok ($(jq -r '[.data.groups[].rules[]] | length' <<<"$rules") rules loaded)"
  step "reloading Alertmanager"
  curl -fsS --max-time 30 -X POST "$ALERTMANAGER_URL/-/reload" >/dev/null || die "Alertmanager refused the reload (see its log; the previous configuration stays active)"
  local am_metrics
  am_metrics=$(curl -fsS --max-time 5 "$ALERTMANAGER_URL/metrics") || die "Alertmanager does not answer after the reload"
  grep -qx 'alertmanager_config_last_reload_successful 1' <<<"$am_metrics" || die "Alertmanager reports the reload failed (see its log)"
  note "ok"
  step "Grafana dashboards"
  if [[ ${MONITORING_SKIP_DASHBOARDS:-0} == 1 ]]; then
    note "regeneration skipped (MONITORING_SKIP_DASHBOARDS=1)"
  elif ! command -v npm >/dev/null 2>&1 || [[ ! -d $REPO_DIR/node_modules ]]; then
    warn "dashboards not regenerated: needs npm and node_modules (npm ci); the committed JSON is used"
  else
    (cd "$REPO_DIR" && npm run --silent dashboards) || die "regenerating the dashboards failed (npm run dashboards)"
    note "regenerated monitoring/grafana/dashboards/*.json (npm run dashboards)"
  fi
  if [[ $MODE == compose ]]; then
    grafana_api /api/admin/provisioning/dashboards/reload -X POST >/dev/null || die "Grafana refused to reload its provisioned dashboards"
    note "Grafana reloaded its provisioned dashboards"
  else
    note "Grafana: not available in native mode"
  fi
}

# ---- reset ------------------------------------------------------------------------------------
cmd_reset() {
  local yes=$1 answer
  local what="the stack and ALL its data (Prometheus TSDB, Alertmanager silences, hookwatch's database"
  if [[ $MODE == native ]]; then what+=", under $STATE_DIR)"; else what+=", Grafana, Loki, Jaeger and mail volumes)"; fi
  if [[ $yes != 1 ]]; then
    # Missing the confirmation it needs is a usage error (exit 2), like any other missing argument.
    [[ -t 0 ]] || usage_error "reset deletes $what; not a terminal, so confirm with --yes" reset
    printf 'This deletes %s.\nBack up first with: scripts/monitoring.sh backup\nType "yes" to continue: ' "$what"
    read -r answer || answer=''
    [[ $answer == yes ]] || { say "reset: cancelled, nothing deleted"; exit 1; }
  fi
  step "reset ($MODE mode): stopping the stack and deleting its data"
  stack_remove_data
  say "reset: done (kept: $ENV_FILE, $SECRETS_DIR, backups in $BACKUP_DIR)"
}
