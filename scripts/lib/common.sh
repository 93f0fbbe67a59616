# shellcheck shell=bash
# Shared settings and helpers of scripts/monitoring.sh: output, the .env file, paths, ports,
# mode selection, and small HTTP helpers. Sourced by monitoring.sh; defines functions and globals only.

# ---- output ---------------------------------------------------------------------------------
say()  { printf '%s\n' "$*"; }
step() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
warn() { printf 'monitoring.sh: warning: %s\n' "$*" >&2; }
die()  { printf 'monitoring.sh: error: %s\n' "$*" >&2; exit 1; }
# A usage error: the message, the subcommand's usage on stderr, exit 2.
usage_error() {
  printf 'monitoring.sh: %s\n\n' "$1" >&2
  usage "${2:-}" >&2
  exit 2
}

# ---- prerequisites --------------------------------------------------------------------------
# Debian package that provides each command, for the install hint.
package_of() {
  case $1 in
    prometheus|promtool) echo prometheus ;;
    prometheus-alertmanager|amtool) echo prometheus-alertmanager ;;
    prometheus-node-exporter) echo prometheus-node-exporter ;;
    docker-compose) echo docker-compose ;;
    sha256sum|timeout|setsid|realpath) echo coreutils ;;
    *) echo "$1" ;;
  esac
}

# require_commands CMD... : exits listing every missing command with the apt-get line that installs it.
require_commands() {
  local missing=() packages=() cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 && continue
    missing+=("$cmd")
    packages+=("$(package_of "$cmd")")
  done
  ((${#missing[@]} == 0)) && return 0
  die "missing: ${missing[*]} (install: apt-get install ${packages[*]})"
}

# First of the given commands found on PATH (Debian and upstream names differ).
first_command() {
  local cmd
  for cmd in "$@"; do
    if command -v "$cmd" >/dev/null 2>&1; then command -v "$cmd"; return 0; fi
  done
  return 1
}

# ---- settings -------------------------------------------------------------------------------
# Absolute path, whether or not it exists yet.
abspath() { realpath -m -- "$1"; }

# shellcheck disable=SC2034  # the globals set here are used by the other files of scripts/lib
# Reads the paths and ports. Called once a subcommand's arguments are known to be valid.
load_settings() {
  ENV_FILE=$(abspath "${MONITORING_ENV_FILE:-$REPO_DIR/.env}")
  STATE_DIR=$(abspath "${MONITORING_STATE_DIR:-$REPO_DIR/.monitoring}")
  SECRETS_DIR=$(abspath "${MONITORING_SECRETS_DIR:-$REPO_DIR/monitoring/alertmanager/secrets}")
  BACKUP_DIR=$(abspath "${MONITORING_BACKUP_DIR:-$REPO_DIR/backups}")
  REPORT_DIR=$(abspath "${MONITORING_REPORT_DIR:-$REPO_DIR/reports}")
  WAIT_TIMEOUT=${MONITORING_WAIT_TIMEOUT:-180}
  [[ $WAIT_TIMEOUT =~ ^[0-9]+$ ]] || die "MONITORING_WAIT_TIMEOUT must be a number of seconds (got '$WAIT_TIMEOUT')"
  load_env_file
  load_ports
}

# Exports every KEY=VALUE of the .env file that was not already set before the first load (the
# environment wins, as with docker compose). Within the file the last line for a key wins, as in
# compose and env_file_value: a line appended after copying .env.example must take effect. Values
# are taken literally: nothing is evaluated; one pair of surrounding quotes is removed.
declare -A PRESET_VARIABLES=()
PRESET_VARIABLES_TAKEN=0
load_env_file() {
  # Taken once: later loads (init reloads after generating secrets) must not mistake the file's
  # own earlier exports for the environment's.
  if ((PRESET_VARIABLES_TAKEN == 0)); then
    local name
    while IFS= read -r name; do PRESET_VARIABLES[$name]=1; done < <(compgen -v)
    PRESET_VARIABLES_TAKEN=1
  fi
  [[ -f $ENV_FILE ]] || return 0
  local line key value
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ $line =~ ^[[:space:]]*(export[[:space:]]+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$ ]] || continue
    key=${BASH_REMATCH[2]}
    value=${BASH_REMATCH[3]}
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then value=${BASH_REMATCH[1]}; fi
    [[ -n ${PRESET_VARIABLES[$key]:-} ]] && continue
    export "$key=$value"
  done <"$ENV_FILE"
}

port_setting() { # NAME DEFAULT VALUE
  if ! [[ $3 =~ ^[0-9]+$ ]] || (($3 < 1 || $3 > 65535)); then die "$1 must be a TCP port (got '$3')"; fi
  printf '%s' "$3"
}

# shellcheck disable=SC2034  # the URLs and ports are used by the other files of scripts/lib
load_ports() {
  # In compose mode the ports are those docker-compose.yml publishes; these settings tell the
  # script where to look. In native mode they are the ports the processes listen on.
  HOOKWATCH_PORT_=$(port_setting MONITORING_HOOKWATCH_PORT 3000 "${MONITORING_HOOKWATCH_PORT:-${HOOKWATCH_PORT:-3000}}")
  PROMETHEUS_PORT_=$(port_setting MONITORING_PROMETHEUS_PORT 9090 "${MONITORING_PROMETHEUS_PORT:-9090}")
  ALERTMANAGER_PORT_=$(port_setting MONITORING_ALERTMANAGER_PORT 9093 "${MONITORING_ALERTMANAGER_PORT:-9093}")
  NODE_EXPORTER_PORT_=$(port_setting MONITORING_NODE_EXPORTER_PORT 9100 "${MONITORING_NODE_EXPORTER_PORT:-9100}")
  GRAFANA_PORT_=$(port_setting MONITORING_GRAFANA_PORT 3001 "${MONITORING_GRAFANA_PORT:-3001}")
  LOKI_PORT_=$(port_setting MONITORING_LOKI_PORT 3100 "${MONITORING_LOKI_PORT:-3100}")
  JAEGER_PORT_=$(port_setting MONITORING_JAEGER_PORT 16686 "${MONITORING_JAEGER_PORT:-16686}")
  MAILPIT_PORT_=$(port_setting MONITORING_MAILPIT_PORT 8025 "${MONITORING_MAILPIT_PORT:-8025}")
  MAILPIT_SMTP_PORT_=$(port_setting MONITORING_MAILPIT_SMTP_PORT 1025 "${MONITORING_MAILPIT_SMTP_PORT:-1025}")
  HOOKWATCH_URL="http://127.0.0.1:$HOOKWATCH_PORT_"
  PROMETHEUS_URL="http://127.0.0.1:$PROMETHEUS_PORT_"
  ALERTMANAGER_URL="http://127.0.0.1:$ALERTMANAGER_PORT_"
  NODE_EXPORTER_URL="http://127.0.0.1:$NODE_EXPORTER_PORT_"
  GRAFANA_URL="http://127.0.0.1:$GRAFANA_PORT_"
  LOKI_URL_="http://127.0.0.1:$LOKI_PORT_"
  JAEGER_URL="http://127.0.0.1:$JAEGER_PORT_"
  MAILPIT_URL="http://127.0.0.1:$MAILPIT_PORT_"
}

# ---- mode -----------------------------------------------------------------------------------
docker_engine_answers() {
  command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1
}

# shellcheck disable=SC2034  # COMPOSE_CMD is used by compose.sh
# Sets COMPOSE_CMD to "docker compose" (v2) or "docker-compose" (v1); fails when neither exists.
detect_compose_command() {
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then
    COMPOSE_CMD=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE_CMD=(docker-compose)
  else
    return 1
  fi
}

# shellcheck disable=SC2034  # MODE_REASON is used by setup.sh
# Sets MODE (compose|native) and MODE_REASON. MONITORING_MODE decides when set; otherwise the mode
# a running stack was started in (recorded in the state directory), else compose when a Docker
# engine answers, else native.
detect_mode() {
  local requested=${MONITORING_MODE:-auto} recorded=''
  [[ -f $STATE_DIR/mode ]] && recorded=$(<"$STATE_DIR/mode")
  case $requested in
    native) MODE=native; MODE_REASON='MONITORING_MODE=native' ;;
    compose) MODE=compose; MODE_REASON='MONITORING_MODE=compose' ;;
    auto)
      if [[ $recorded == native || $recorded == compose ]]; then
        MODE=$recorded; MODE_REASON="recorded in $STATE_DIR/mode when the stack was started"
      elif docker_engine_answers && detect_compose_command; then
        MODE=compose; MODE_REASON='a Docker engine answers'
      else
        MODE=native; MODE_REASON='no Docker engine answers'
      fi ;;
    *) usage_error "MONITORING_MODE must be compose, native or auto (got '$requested')" ;;
  esac
  if [[ $MODE == compose ]]; then
    detect_compose_command || die "compose mode needs 'docker compose' or 'docker-compose' (install: apt-get install docker-compose, or Docker's compose plugin)"
    # docker-compose.yml reads ./.env and mounts ./monitoring/alertmanager/secrets: no other place works.
    [[ $ENV_FILE == "$REPO_DIR/.env" ]] || die "compose mode uses $REPO_DIR/.env (docker-compose.yml: env_file: .env); unset MONITORING_ENV_FILE"
    [[ $SECRETS_DIR == "$REPO_DIR/monitoring/alertmanager/secrets" ]] || die "compose mode mounts $REPO_DIR/monitoring/alertmanager/secrets; unset MONITORING_SECRETS_DIR"
  fi
}

record_mode() { mkdir -p "$STATE_DIR"; printf '%s\n' "$MODE" >"$STATE_DIR/mode"; }

# ---- HTTP -----------------------------------------------------------------------------------
# HTTP status of a GET (000 when nothing answers).
http_status() {
  curl -s -o /dev/null -w '%{http_code}' --max-time "${2:-5}" "$1" 2>/dev/null || true
}

# Body of a GET that must succeed (2xx); fails otherwise.
http_get() {
  curl -fsS --max-time "${2:-10}" "$1"
}

# True when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_for DESCRIPTION TIMEOUT COMMAND...: polls once a second until COMMAND succeeds.
wait_for() {
  local description=$1 timeout=$2 waited=0
  shift 2
  until "$@"; do
    if ((waited >= timeout)); then
      warn "timed out after ${timeout}s waiting for $description"
      return 1
    fi
    sleep 1
    waited=$((waited + 1))
  done
}

# Seconds in a Prometheus-style duration (30s, 15m, 24h, 7d, 2w, 1h30m), at most DURATION_MAX.
# Each number is at most 10 digits and the total is checked after every part, so bash's 64-bit
# arithmetic cannot overflow into a wrong (even negative) value that would pass as valid.
DURATION_MAX=$((10 * 31536000))   # 10y: longer than any retention the stack keeps
duration_seconds() {
  local rest=$1 total=0 n unit
  [[ $rest =~ ^([0-9]{1,10}(s|m|h|d|w|y))+$ ]] || return 1
  while [[ $rest =~ ^([0-9]+)(s|m|h|d|w|y)(.*)$ ]]; do
    n=$((10#${BASH_REMATCH[1]})); unit=${BASH_REMATCH[2]}; rest=${BASH_REMATCH[3]}
    case $unit in
      s) total=$((total + n)) ;;
      m) total=$((total + n * 60)) ;;
      h) total=$((total + n * 3600)) ;;
      d) total=$((total + n * 86400)) ;;
      w) total=$((total + n * 604800)) ;;
      y) total=$((total + n * 31536000)) ;;
    esac
    ((total <= DURATION_MAX)) || return 1
  done
  ((total > 0)) || return 1
  printf '%s' "$total"
}
