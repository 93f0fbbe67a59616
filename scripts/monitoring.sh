#!/usr/bin/env bash
# scripts/monitoring.sh: run, check, report on, back up and restore hookwatch's monitoring stack.
# `scripts/monitoring.sh --help` for the subcommands; each has its own --help.
# The pieces live in scripts/lib/ (one file per subcommand family); this file parses arguments.
set -Eeuo pipefail
# Not 077: a new file this script or its children write (`npm run dashboards` in update) may be
# bind-mounted into a container whose user must read it. What is private (hookwatch's data,
# backups, .env, the secret files) is given its mode explicitly where it is written.
umask 022

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LIB_DIR=$REPO_DIR/scripts/lib

# shellcheck source=scripts/lib/common.sh
. "$LIB_DIR/common.sh"
# shellcheck source=scripts/lib/native.sh
. "$LIB_DIR/native.sh"
# shellcheck source=scripts/lib/compose.sh
. "$LIB_DIR/compose.sh"
# shellcheck source=scripts/lib/stack.sh
. "$LIB_DIR/stack.sh"
# shellcheck source=scripts/lib/prom.sh
. "$LIB_DIR/prom.sh"
# shellcheck source=scripts/lib/check.sh
. "$LIB_DIR/check.sh"
# shellcheck source=scripts/lib/metrics.sh
. "$LIB_DIR/metrics.sh"
# shellcheck source=scripts/lib/report.sh
. "$LIB_DIR/report.sh"
# shellcheck source=scripts/lib/backup.sh
. "$LIB_DIR/backup.sh"
# shellcheck source=scripts/lib/restore.sh
. "$LIB_DIR/restore.sh"
# shellcheck source=scripts/lib/setup.sh
. "$LIB_DIR/setup.sh"

usage() {
  case ${1:-} in
    init) cat <<'EOF'
usage: scripts/monitoring.sh init

Checks the prerequisites, creates .env from .env.example when it is missing (generating
ADMIN_TOKEN and GRAFANA_ADMIN_PASSWORD when empty), writes the Alertmanager secret files from
.env, validates every configuration (promtool, amtool, docker compose config), starts the stack,
waits until every component is healthy and every Prometheus target is up, and prints the URLs.
Running it again keeps what runs and starts what does not.
EOF
    ;;
    urls) cat <<'EOF'
usage: scripts/monitoring.sh urls

Prints the URL of each component: hookwatch (health, metrics, admin API), Prometheus,
Alertmanager, node-exporter, Grafana and each dashboard, Loki, Jaeger, the mail catcher.
EOF
    ;;
    check) cat <<'EOF'
usage: scripts/monitoring.sh check

Probes each component's health endpoint, that every Prometheus target is up, that the rules are
loaded and evaluate, that Alertmanager is ready and connected, and that hookwatch's /health is
green. Prints a table; exits 1 naming the failed components when anything failed.
EOF
    ;;
    metrics) cat <<'EOF'
usage: scripts/monitoring.sh metrics

The key figures now, from Prometheus: request rate, error rate, p95 latency, queue size,
dead-letter queue size, delivery success rate per endpoint, alerts firing.
EOF
    ;;
    report) cat <<'EOF'
usage: scripts/monitoring.sh report [--since DURATION]

Writes a Markdown report over the last DURATION (default 24h; e.g. 30m, 12h, 7d; at most 10y) to
reports/hookwatch-report-YYYYMMDD-HHMMSS.md and prints it: traffic, error rate, latency
percentiles, events by type, delivery success per endpoint, top failure reasons, the alerts that
fired with their durations, and recommended actions.
EOF
    ;;
    backup) cat <<'EOF'
usage: scripts/monitoring.sh backup

Writes backups/monitoring-YYYYMMDD-HHMMSS.tar.gz (and its .sha256): a Prometheus TSDB snapshot,
Alertmanager's silences, an online backup of hookwatch's SQLite database, Grafana's dashboards and
folders (compose mode), the configuration (not .env or secret files), a manifest and checksums.
EOF
    ;;
    restore) cat <<'EOF'
usage: scripts/monitoring.sh restore [--yes] FILE

Verifies FILE (its .sha256 when present, every checksum inside, the manifest, the database's
integrity) and refuses it, changing nothing, when anything does not match. Then, after a
confirmation prompt (--yes skips it; required when stdin is not a terminal), stops Prometheus and
hookwatch, puts their data back (hookwatch's directory 0700, its database 0600), starts the stack,
re-creates the silences that have not ended by now (and Grafana dashboards in compose mode), and
runs check. A silence Alertmanager refuses is a warning, named, and the outcome says how many.
Native mode keeps the replaced data under the state directory's tmp/ until check passes; compose
mode does not keep it: back up first.
EOF
    ;;
    update) cat <<'EOF'
usage: scripts/monitoring.sh update

Validates the configuration, hot-reloads Prometheus and Alertmanager (POST /-/reload),
regenerates the Grafana dashboards (npm run dashboards) and, in compose mode, has Grafana reload
them. In native mode the rewritten copies of the configuration are regenerated first.
EOF
    ;;
    reset) cat <<'EOF'
usage: scripts/monitoring.sh reset [--yes]

Stops the stack and deletes all its data (compose: docker compose down --volumes; native: the
state directory), after a confirmation prompt; --yes skips the prompt (required when stdin is not
a terminal). .env, the secret files and backups/ are kept.
EOF
    ;;
    *) cat <<'EOF'
usage: scripts/monitoring.sh <command> [options]

commands:
  init                  check prerequisites, create .env and secrets, validate, start, wait, print URLs
  urls                  print each component's URL
  check                 health of every component, targets, rules; exit 1 when anything failed
  metrics               key figures now (rates, errors, latency, queues, deliveries, alerts)
  report [--since 24h]  Markdown report over a period, written to reports/ and printed
  backup                backups/monitoring-YYYYMMDD-HHMMSS.tar.gz with manifest and checksums
  restore [--yes] FILE  verify a backup, put its data back (asks first), start, check
  update                validate, hot-reload Prometheus and Alertmanager, regenerate dashboards
  reset [--yes]         stop the stack and delete its data (asks first)

Each command takes --help. Mode: compose when a Docker engine answers, otherwise native
(local prometheus, prometheus-alertmanager, prometheus-node-exporter and hookwatch via npm);
MONITORING_MODE=compose|native forces one. See README.md (scripts/monitoring.sh) for settings.
EOF
    ;;
  esac
}

main() {
  (($#)) || usage_error "a command is required"
  local command=$1
  shift
  case $command in
    -h|--help|help) usage; exit 0 ;;
    init|urls|check|metrics|report|backup|restore|update|reset) ;;
    *) usage_error "unknown command: $command" ;;
  esac

  # Arguments first: --help and usage errors need nothing else (no settings, no Docker).
  local since=24h file='' yes=0
  while (($#)); do
    case $1 in
      -h|--help) usage "$command"; exit 0 ;;
      --since) [[ $command == report ]] || usage_error "$command: unknown option $1" "$command"
        (($# >= 2)) || usage_error "report: --since needs a duration" report
        since=$2; shift ;;
      --since=*) [[ $command == report ]] || usage_error "$command: unknown option $1" "$command"
        since=${1#--since=} ;;
      -y|--yes) [[ $command == reset || $command == restore ]] || usage_error "$command: unknown option $1" "$command"
        yes=1 ;;
      -*) usage_error "$command: unknown option $1" "$command" ;;
      *) [[ $command == restore && -z $file ]] || usage_error "$command: unexpected argument $1" "$command"
        file=$1 ;;
    esac
    shift
  done
  [[ $command != restore || -n $file ]] || usage_error "restore: the backup FILE is missing" restore
  if [[ $command == report ]]; then
    duration_seconds "$since" >/dev/null || usage_error "report: --since takes a duration of at most 10y, such as 30m, 24h or 7d (got '$since')" report
  fi

  require_commands curl jq realpath
  load_settings
  detect_mode
  case $command in
    init) cmd_init ;;
    urls) print_urls ;;
    check) run_checks ;;
    metrics) cmd_metrics ;;
    report) cmd_report "$since" ;;
    backup) cmd_backup ;;
    restore) cmd_restore "$file" "$yes" ;;
    update) cmd_update ;;
    reset) cmd_reset "$yes" ;;
  esac
}

main "$@"
