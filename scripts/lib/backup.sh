# shellcheck shell=bash
# `backup`: backups/monitoring-YYYYMMDD-HHMMSS.tar.gz, holding one directory of that name:
#   manifest.json                what is inside, from where, and what was not available
#   SHA256SUMS                   sha256 of every other file (checked by restore before anything)
#   prometheus/snapshot/         a TSDB snapshot (admin API), head block included
#   alertmanager/silences.json   GET /api/v2/silences
#   hookwatch/hookwatch.db       online backup of hookwatch's SQLite database (WAL-safe)
#   grafana/                     dashboards and folders through Grafana's API (compose mode only)
#   config/                      monitoring/ (without secrets), docker-compose.yml, .env.example
# plus a sidecar <archive>.sha256 with the checksum of the archive itself. .env and the
# Alertmanager secret files are secrets: they are not copied; keep them in your secret store.

BACKUP_FORMAT=hookwatch-monitoring-backup
BACKUP_FORMAT_VERSION=1
BACKUP_STEPS=7

progress() { printf '[%s/%s] %s\n' "$1" "$BACKUP_STEPS" "$2"; }

# Path of hookwatch's database in native mode.
native_db() { printf '%s/hookwatch.db' "$(native_dir hookwatch)"; }

backup_prometheus() { # DEST
  local answer name
  answer=$(curl -sS --max-time 120 -X POST "$PROMETHEUS_URL/api/v1/admin/tsdb/snapshot" 2>&1) ||
    die "Prometheus snapshot failed: $answer"
  name=$(jq -r '.data.name // empty' <<<"$answer" 2>/dev/null)
  [[ -n $name ]] || die "Prometheus refused the snapshot: $(jq -r '.error // empty' <<<"$answer" 2>/dev/null || printf '%s' "$answer") (is the admin API enabled? --web.enable-admin-api)"
  mkdir -p "$1"
  if [[ $MODE == native ]]; then
    local source
    source="$(native_dir prometheus)/snapshots/$name"
    [[ -d $source ]] || die "Prometheus reported snapshot $name, but $source does not exist"
    cp -a -- "$source/." "$1/"
    rm -rf -- "$source"
  else
    compose_copy_snapshot "$name" "$1"
  fi
  SNAPSHOT_NAME=$name
  note "snapshot $name: $(find "$1" -name meta.json | wc -l) blocks, $(du -sh "$1" | cut -f1)"
}

backup_alertmanager() { # DEST_FILE
  mkdir -p "$(dirname "$1")"
  curl -fsS --max-time 30 "$ALERTMANAGER_URL/api/v2/silences" >"$1" || die "could not read Alertmanager's silences (GET /api/v2/silences)"
  jq -e 'type == "array"' "$1" >/dev/null || die "Alertmanager's /api/v2/silences did not return a list"
  SILENCE_COUNT=$(jq '[.[] | select(.status.state != "expired")] | length' "$1")
  note "$(jq length "$1") silences ($SILENCE_COUNT active or pending)"
}

backup_hookwatch() { # DEST_FILE
  mkdir -p "$(dirname "$1")"
  if [[ $MODE == native ]]; then
    local db
    db=$(native_db)
    [[ -f $db ]] || die "hookwatch's database $db does not exist (has hookwatch run?)"
    # The sqlite3 backup API copies a consistent state while hookwatch keeps writing (WAL mode).
    sqlite3 -bail "$db" ".timeout 10000" ".backup '$1'" || die "online backup of $db failed"
  else
    compose_backup_sqlite "$1"
  fi
  local integrity
  integrity=$(sqlite3 "$1" 'PRAGMA integrity_check;' 2>&1) || integrity="unreadable: $integrity"
  [[ $integrity == ok ]] || die "the database backup fails its integrity check: $integrity"
  DB_TABLES=$(sqlite3 "$1" "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name;" |
    while IFS= read -r table; do
      printf '%s\t%s\n' "$table" "$(sqlite3 "$1" "SELECT count(*) FROM \"$table\";")"
    done | jq -Rn '[inputs | split("\t") | {key: .[0], value: (.[1] | tonumber)}] | from_entries')
  note "database: $(du -h "$1" | cut -f1), integrity ok, rows: $(jq -r 'to_entries | map("\(.key)=\(.value)") | join(" ")' <<<"$DB_TABLES")"
}

backup_grafana() { # DEST_DIR
  if [[ $MODE != compose ]]; then
    GRAFANA_STATUS="not available in native mode"
    note "Grafana: $GRAFANA_STATUS (recorded in the manifest)"
    return 0
  fi
  mkdir -p "$1/dashboards"
  grafana_api /api/folders >"$1/folders.json" || die "could not export Grafana's folders (GET /api/folders; GRAFANA_ADMIN_USER/PASSWORD from .env)"
  local uids uid count=0
  uids=$(grafana_api '/api/search?type=dash-db&limit=5000' | jq -r '.[].uid') || die "could not list Grafana's dashboards (GET /api/search)"
  for uid in $uids; do
    grafana_api "/api/dashboards/uid/$uid" >"$1/dashboards/$uid.json" || die "could not export Grafana dashboard $uid"
    count=$((count + 1))
  done
  GRAFANA_STATUS="$count dashboards, $(jq length "$1/folders.json") folders"
  note "Grafana: $GRAFANA_STATUS"
}

backup_config() { # DEST_DIR
  mkdir -p "$1"
  tar -C "$REPO_DIR" --exclude='monitoring/alertmanager/secrets' --exclude='node_modules' \
    -cf - monitoring docker-compose.yml .env.example 2>/dev/null | tar -C "$1" -xf - ||
    die "could not copy the configuration"
  note "monitoring/, docker-compose.yml, .env.example (not .env or the secret files)"
}

backup_manifest() { # DIR NAME
  local commit
  commit=$(git -C "$REPO_DIR" rev-parse HEAD 2>/dev/null || echo unknown)
  jq -n \
    --arg format "$BACKUP_FORMAT" --argjson version "$BACKUP_FORMAT_VERSION" \
    --arg name "$2" --arg created "$(date -u +%FT%TZ)" --arg mode "$MODE" --arg host "$(hostname)" \
    --arg commit "$commit" --arg hookwatch "$(jq -r .version "$REPO_DIR/package.json")" \
    --arg snapshot "$SNAPSHOT_NAME" --argjson silences "$SILENCE_COUNT" --argjson tables "$DB_TABLES" \
    --arg grafana "$GRAFANA_STATUS" \
    '{format: $format, format_version: $version, name: $name, created_at: $created, mode: $mode,
      host: $host, git_commit: $commit, hookwatch_version: $hookwatch,
      components: {
        prometheus: {included: true, path: "prometheus/snapshot", snapshot: $snapshot},
        alertmanager: {included: true, path: "alertmanager/silences.json", active_silences: $silences},
        hookwatch: {included: true, path: "hookwatch/hookwatch.db", rows: $tables},
        grafana: (if $mode == "compose" then {included: true, path: "grafana", detail: $grafana}
                  else {included: false, reason: $grafana} end),
        loki: {included: false, reason: "logs are not backed up (retention-bound; re-shipped by hookwatch)"},
        jaeger: {included: false, reason: "traces are not backed up (retention-bound)"},
        config: {included: true, path: "config", excluded: [".env", "monitoring/alertmanager/secrets"]}
      }}' >"$1/manifest.json"
}

cmd_backup() {
  # Every mode: even when the copy is made inside the container, the host's sqlite3 checks its
  # integrity and counts its rows. Checked first, so nothing is snapshotted for a backup that fails.
  require_commands sqlite3
  prom_require
  probe alertmanager || die "Alertmanager is not ready ($PROBE_DETAIL): start the stack first (scripts/monitoring.sh init)"
  probe hookwatch || warn "hookwatch is not healthy ($PROBE_DETAIL); backing up its database anyway"
  local name stamp staging archive
  # Private: an archive holds hookwatch's database, and with it every endpoint's signing secret.
  (umask 077 && mkdir -p "$BACKUP_DIR")
  # One archive per second: wait for a free name rather than overwrite one.
  while :; do
    stamp=$(date +%Y%m%d-%H%M%S)
    name="monitoring-$stamp"
    archive="$BACKUP_DIR/$name.tar.gz"
    [[ -e $archive ]] || break
    sleep 1
  done
  staging=$(mktemp -d "$BACKUP_DIR/.staging-$stamp.XXXXXX")
  BACKUP_STAGING=$staging
  trap 'rm -rf -- "$BACKUP_STAGING"' EXIT
  local dir="$staging/$name"
  mkdir -p "$dir"
  say "backup ($MODE mode) -> $archive"
  SNAPSHOT_NAME='' SILENCE_COUNT=0 DB_TABLES='{}' GRAFANA_STATUS=''
  progress 1 "Prometheus: TSDB snapshot (POST /api/v1/admin/tsdb/snapshot)"
  backup_prometheus "$dir/prometheus/snapshot"
  progress 2 "Alertmanager: silences (GET /api/v2/silences)"
  backup_alertmanager "$dir/alertmanager/silences.json"
  progress 3 "hookwatch: online SQLite backup"
  backup_hookwatch "$dir/hookwatch/hookwatch.db"
  progress 4 "Grafana: dashboards and folders"
  backup_grafana "$dir/grafana"
  progress 5 "configuration"
  backup_config "$dir/config"
  progress 6 "manifest and checksums"
  backup_manifest "$dir" "$name"
  (cd "$dir" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs -d '\n' sha256sum --) >"$dir/SHA256SUMS"
  note "$(wc -l <"$dir/SHA256SUMS") files checksummed"
  progress 7 "archive"
  (umask 077 && tar -C "$staging" -czf "$archive.partial" "$name") || die "could not write $archive"
  mv -f -- "$archive.partial" "$archive"
  (cd "$BACKUP_DIR" && sha256sum -- "$name.tar.gz") >"$archive.sha256"
  rm -rf -- "$staging"
  trap - EXIT
  say "backup written: $archive ($(du -h "$archive" | cut -f1); checksum in $archive.sha256)"
}
