# shellcheck shell=bash
# `restore FILE`: verify the archive completely, and only then stop what must stop (Prometheus and
# hookwatch), put their data back, start, re-create the silences (and Grafana's dashboards in
# compose mode), and run `check`. A failed verification changes nothing.

RESTORE_STEPS=6
rprogress() { printf '[%s/%s] %s\n' "$1" "$RESTORE_STEPS" "$2"; }

refuse() {
  printf 'monitoring.sh: restore REFUSED: %s\nmonitoring.sh: nothing was stopped, changed or overwritten.\n' "$1" >&2
  exit 1
}

# Verifies FILE and extracts it into a scratch directory; sets RESTORE_DIR (the backup's directory).
restore_verify() {
  local file=$1 expected actual listing top
  [[ -f $file && -r $file ]] || die "no readable backup file at $file"
  if [[ -f $file.sha256 ]]; then
    expected=$(awk '{ print $1; exit }' "$file.sha256")
    actual=$(sha256sum -- "$file" | awk '{ print $1 }')
    [[ $expected == "$actual" ]] || refuse "$file does not match its checksum file $file.sha256 (expected $expected, got $actual): the archive is damaged or was modified"
    note "archive checksum matches $file.sha256"
  else
    note "no $file.sha256 next to the archive; relying on the checksums inside it"
  fi
  listing=$(tar -tvzf "$file" 2>/dev/null) || refuse "$file is not a readable .tar.gz archive"
  # Only regular files and directories, all under one top-level directory, no absolute paths or ..
  if grep -qv '^[-d]' <<<"$listing"; then refuse "$file holds links or special files: not a backup written by this script"; fi
  local names
  names=$(tar -tzf "$file")
  top=$(head -n 1 <<<"$names"); top=${top%%/*}
  [[ $top =~ ^monitoring-[0-9]{8}-[0-9]{6}$ ]] || refuse "$file does not hold a monitoring-YYYYMMDD-HHMMSS directory"
  if grep -Eqv "^$top(/|$)" <<<"$names" || grep -Eq '(^|/)\.\.(/|$)' <<<"$names"; then
    refuse "$file holds paths outside its $top directory"
  fi
  local scratch
  mkdir -p "$STATE_DIR/tmp"
  scratch=$(mktemp -d "$STATE_DIR/tmp/restore.XXXXXX")
  RESTORE_SCRATCH=$scratch
  trap 'rm -rf -- "$RESTORE_SCRATCH"' EXIT
  tar -xzf "$file" -C "$scratch" --no-same-owner --no-same-permissions || refuse "$file could not be extracted"
  RESTORE_DIR=$scratch/$top
  [[ -f $RESTORE_DIR/SHA256SUMS ]] || refuse "$file has no SHA256SUMS: not a backup written by this script"
  [[ -f $RESTORE_DIR/manifest.json ]] || refuse "$file has no manifest.json"
  # Every file listed must match, and every file present must be listed.
  local failed unlisted
  failed=$(cd "$RESTORE_DIR" && sha256sum --strict --quiet -c SHA256SUMS 2>&1) || {
    refuse "checksum verification failed for $file:
    ${failed//$'\n'/$'\n    '}
  the archive is damaged or was modified after the backup"
  }
  unlisted=$(cd "$RESTORE_DIR" && comm -23 <(find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort) \
    <(sed -E 's/^[0-9a-f]{64} [ *]//' SHA256SUMS | LC_ALL=C sort))
  [[ -z $unlisted ]] || refuse "$file holds files that SHA256SUMS does not list (added after the backup?): $(tr '\n' ' ' <<<"$unlisted")"
  [[ $(jq -r '.format // empty' "$RESTORE_DIR/manifest.json" 2>/dev/null) == "$BACKUP_FORMAT" ]] ||
    refuse "$file's manifest is not a $BACKUP_FORMAT manifest"
  local version
  version=$(jq -r '.format_version' "$RESTORE_DIR/manifest.json")
  [[ $version == "$BACKUP_FORMAT_VERSION" ]] || refuse "$file is format version $version; this script reads version $BACKUP_FORMAT_VERSION"
  [[ -d $RESTORE_DIR/prometheus/snapshot && -f $RESTORE_DIR/hookwatch/hookwatch.db && -f $RESTORE_DIR/alertmanager/silences.json ]] ||
    refuse "$file lacks the Prometheus snapshot, the hookwatch database or the silences"
  local integrity
  integrity=$(sqlite3 "$RESTORE_DIR/hookwatch/hookwatch.db" 'PRAGMA integrity_check;' 2>&1) || true
  [[ $integrity == ok ]] || refuse "the hookwatch database in $file fails its integrity check: $integrity"
  note "$(wc -l <"$RESTORE_DIR/SHA256SUMS") files verified; backup $(jq -r '.name' "$RESTORE_DIR/manifest.json") made $(jq -r '.created_at' "$RESTORE_DIR/manifest.json") in $(jq -r '.mode' "$RESTORE_DIR/manifest.json") mode"
}

# The configuration is not restored over the working tree (it is versioned in git); differences are shown.
restore_compare_config() {
  local differences
  differences=$(diff -rq -x secrets "$RESTORE_DIR/config/monitoring" "$REPO_DIR/monitoring" 2>/dev/null |
    sed -e "s#$RESTORE_DIR/config/#backup:#g" -e "s#$REPO_DIR/#now:#g") || true
  if [[ -n $differences ]]; then
    note "the configuration changed since the backup (the current one is kept; the backup's is in the archive under config/):"
    head -n 20 <<<"$differences" | while IFS= read -r line; do note "  $line"; done
  else
    note "configuration unchanged since the backup"
  fi
}

restore_native_data() {
  local aside prom hook
  aside="$STATE_DIR/tmp/pre-restore-$(date +%Y%m%d-%H%M%S)"
  prom=$(native_dir prometheus)
  hook=$(native_dir hookwatch)
  # Private: the hookwatch database moved aside holds every endpoint's signing secret.
  (umask 077 && mkdir -p -- "$aside")
  # The data being replaced is moved aside, not deleted, until the restored stack passes check.
  [[ -e $prom ]] && mv -- "$prom" "$aside/prometheus"
  [[ -e $hook ]] && mv -- "$hook" "$aside/hookwatch"
  mkdir -p -- "$prom"
  (umask 077 && mkdir -p -- "$hook")
  # The extracted copy has this script's umask (0644), not the 0600 hookwatch gives its database.
  if ! cp -a -- "$RESTORE_DIR/prometheus/snapshot/." "$prom/" ||
    ! cp -- "$RESTORE_DIR/hookwatch/hookwatch.db" "$hook/hookwatch.db" || ! chmod 600 -- "$hook/hookwatch.db"; then
    rm -rf -- "$prom" "$hook"
    [[ -e $aside/prometheus ]] && mv -- "$aside/prometheus" "$prom"
    [[ -e $aside/hookwatch ]] && mv -- "$aside/hookwatch" "$hook"
    die "could not copy the data out of the backup (disk full?); the previous data is back in place: start it with scripts/monitoring.sh init"
  fi
  RESTORE_ASIDE=$aside
  note "Prometheus TSDB -> $prom; hookwatch database -> $hook/hookwatch.db (previous data moved to $aside)"
}

# jq: seconds since the epoch of an Alertmanager time. fromdateiso8601 takes neither the
# fractional seconds Alertmanager always writes nor the offset it keeps from a silence created
# with one ("2099-01-01T00:00:00.000+02:00"). Empty for anything else.
# shellcheck disable=SC2016  # $until and $now are jq's
JQ_EPOCH='def epoch: capture("^(?<t>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(\\.[0-9]+)?(?<z>Z|[+-][0-9]{2}:[0-9]{2})$")
  | (.t + "Z" | fromdateiso8601)
    - (if .z == "Z" then 0 else (.z[0:1] + "1" | tonumber) * ((.z[1:3] | tonumber) * 3600 + (.z[4:6] | tonumber) * 60) end);
def ended($now): ([.endsAt | epoch?] | .[0]) as $until | $until != null and $until <= $now;'

# Re-creates the backup's silences that have not ended by now and that Alertmanager does not
# already have. Their state in the backup says nothing about now: one active then may have ended
# since, and Alertmanager refuses an end in the past. By this step the data is already replaced,
# so a silence Alertmanager refuses is a warning naming it, counted in SILENCES_REFUSED, and the
# restore goes on to check.
restore_silences() {
  local file=$RESTORE_DIR/alertmanager/silences.json current label silence answer status created=0 skipped=0 ended pending now
  SILENCES_REFUSED=0
  now=$(date +%s)
  ended=$(jq --argjson now "$now" "$JQ_EPOCH"' [.[] | select(ended($now))] | length' "$file")
  pending=$(jq --argjson now "$now" "$JQ_EPOCH"' [.[] | select(ended($now) | not)] | length' "$file")
  if ! current=$(curl -fsS --max-time 10 "$ALERTMANAGER_URL/api/v2/silences" 2>&1); then
    SILENCES_REFUSED=$pending
    warn "could not read Alertmanager's silences ($current): none of the backup's $pending silences that have not ended was re-created"
    return 0
  fi
  while IFS=$'\t' read -r label silence; do
    [[ -n $silence ]] || continue
    if jq -e --argjson s "$silence" 'any(.[]; .status.state != "expired" and .matchers == $s.matchers and .endsAt == $s.endsAt and .comment == $s.comment)' <<<"$current" >/dev/null; then
      skipped=$((skipped + 1))
      continue
    fi
    answer=$(curl -sS --max-time 10 -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' -d "$silence" "$ALERTMANAGER_URL/api/v2/silences" 2>&1) || true
    status=${answer##*$'\n'}
    if [[ $status == 200 ]]; then
      created=$((created + 1))
    else
      SILENCES_REFUSED=$((SILENCES_REFUSED + 1))
      answer=${answer%$'\n'*}
      warn "silence $label not re-created: Alertmanager answered $status ${answer//$'\n'/ }"
    fi
  done < <(jq -r --argjson now "$now" "$JQ_EPOCH"'
    .[] | select(ended($now) | not)
    | "\(.id // "?") (\(.matchers // [] | map(.name + (if .isEqual == false then (if .isRegex then "!~" else "!=" end) else (if .isRegex then "=~" else "=" end) end) + (.value | tojson)) | join(", ")); ends \(.endsAt); comment \(.comment | tojson))"
      + "\t" + ({matchers, startsAt, endsAt, createdBy, comment} | tojson)' "$file")
  note "silences: $created re-created, $skipped already present, $ended ended by now and not restored$( ((SILENCES_REFUSED == 0)) || printf ', %s refused by Alertmanager' "$SILENCES_REFUSED")"
}

restore_grafana() {
  local dir=$RESTORE_DIR/grafana
  if [[ $MODE != compose ]]; then note "Grafana: not available in native mode"; return 0; fi
  if [[ ! -d $dir ]]; then note "Grafana: not in this backup ($(jq -r '.components.grafana.reason // "absent"' "$RESTORE_DIR/manifest.json"))"; return 0; fi
  local folder file restored=0 provisioned=0
  while IFS= read -r folder; do
    grafana_api /api/folders -X POST -d "$folder" >/dev/null 2>&1 || true   # exists already: fine
  done < <(jq -c '.[] | {uid, title}' "$dir/folders.json")
  for file in "$dir"/dashboards/*.json; do
    [[ -f $file ]] || continue
    # Provisioned dashboards come back from the repository's files; the API refuses to overwrite them.
    if [[ $(jq -r '.meta.provisioned // false' "$file") == true ]]; then provisioned=$((provisioned + 1)); continue; fi
    jq '{dashboard: (.dashboard | .id = null), folderUid: (.meta.folderUid // ""), overwrite: true, message: "restored by monitoring.sh"}' "$file" |
      grafana_api /api/dashboards/db -X POST -d @- >/dev/null || die "Grafana refused dashboard $(basename "$file" .json)"
    restored=$((restored + 1))
  done
  note "Grafana: $restored dashboards restored, $provisioned provisioned ones come from monitoring/grafana"
}

# What restore replaces, for its confirmation; sets RESTORE_WHAT and RESTORE_KEPT.
restore_describe() {
  if [[ $MODE == native ]]; then
    RESTORE_WHAT="Prometheus's TSDB and hookwatch's database under $STATE_DIR"
    RESTORE_KEPT="the replaced data is moved to $STATE_DIR/tmp/ and deleted once check passes"
  else
    RESTORE_WHAT="Prometheus's TSDB and hookwatch's database in their Docker volumes, and Grafana's dashboards of the same uid"
    RESTORE_KEPT="the replaced data is NOT kept"
  fi
}

cmd_restore() {
  local file yes=$2 answer
  file=$(abspath "$1")
  restore_describe
  # Asked for before anything runs: off a terminal, a missing --yes must not cost a stop or a change.
  if [[ $yes != 1 && ! -t 0 ]]; then
    usage_error "restore replaces $RESTORE_WHAT ($RESTORE_KEPT); not a terminal, so confirm with --yes" restore
  fi
  say "restore ($MODE mode) from $file"
  rprogress 1 "verifying the archive (checksums, manifest, database integrity)"
  # Every mode: the database's integrity is checked with the host's sqlite3 before anything stops.
  require_commands sqlite3
  if [[ $MODE == native ]]; then native_require; else compose_require; fi
  restore_verify "$file"
  restore_compare_config
  if [[ $yes != 1 ]]; then
    # After the verification: the question is only asked about an archive that can be restored.
    printf "This stops Prometheus and hookwatch and puts the backup's copies in place of %s; %s.\nBack up first with: scripts/monitoring.sh backup\nType \"yes\" to continue: " \
      "$RESTORE_WHAT" "$RESTORE_KEPT"
    read -r answer || answer=''
    [[ $answer == yes ]] || { say "restore: cancelled, nothing stopped or changed"; exit 1; }
  fi
  rprogress 2 "stopping Prometheus and hookwatch"
  stack_stop prometheus hookwatch
  rprogress 3 "putting the data back"
  RESTORE_ASIDE=''
  if [[ $MODE == native ]]; then
    restore_native_data
  else
    compose_restore_tsdb "$RESTORE_DIR/prometheus/snapshot"
    compose_restore_sqlite "$RESTORE_DIR/hookwatch/hookwatch.db"
    note "Prometheus TSDB and hookwatch database written into their volumes"
  fi
  rprogress 4 "starting the stack"
  NATIVE_BUILD=if-missing stack_start
  stack_wait_healthy || warn "not every target is up yet"
  rprogress 5 "Alertmanager silences and Grafana dashboards"
  restore_silences
  restore_grafana
  rprogress 6 "check"
  local refused=''
  ((SILENCES_REFUSED == 0)) || refused="$SILENCES_REFUSED of the backup's silences could not be re-created (see the warnings above)"
  if run_checks; then
    [[ -n $RESTORE_ASIDE ]] && rm -rf -- "$RESTORE_ASIDE"
    if [[ -n $refused ]]; then say "restore: done, except: $refused"; else say "restore: done"; fi
  else
    [[ -n $RESTORE_ASIDE ]] && say "restore: the data that was replaced is in $RESTORE_ASIDE"
    [[ -n $refused ]] && say "restore: $refused"
    die "restore: the data is back, but check failed"
  fi
}
