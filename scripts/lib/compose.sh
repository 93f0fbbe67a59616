# shellcheck shell=bash
# Compose mode: the stack of docker-compose.yml, driven with `docker compose` (v2) or
# `docker-compose` (v1). Data lives in the compose project's named volumes; the script reaches
# the services through the ports published on 127.0.0.1.

compose() {
  "${COMPOSE_CMD[@]}" --project-directory "$REPO_DIR" -f "$REPO_DIR/docker-compose.yml" --env-file "$ENV_FILE" "$@"
}

compose_require() {
  detect_compose_command || die "compose mode needs 'docker compose' or 'docker-compose' (apt-get install docker-compose)"
  docker_engine_answers || die "compose mode needs a running Docker engine ('docker info' fails); or use MONITORING_MODE=native"
}

compose_start() {
  compose_require
  note "docker compose up -d --build (images are pulled and hookwatch is built on the first run)"
  compose up -d --build || die "docker compose up failed"
  record_mode
}

# compose_stop [SERVICE...]: stops the given services (all by default); volumes are kept.
compose_stop() {
  compose stop "$@" || die "docker compose stop $* failed"
}

compose_remove_data() {
  compose down --volumes --remove-orphans || die "docker compose down --volumes failed"
  rm -f -- "$STATE_DIR/mode"
}

# `docker compose config` needs the env file at ./.env of the project directory (env_file: .env).
# When the env file is elsewhere (native mode with MONITORING_ENV_FILE, as in the tests), the
# check runs with a scratch project directory holding a copy of it; paths in the output then
# point there, which does not matter for validation.
# shellcheck disable=SC2034  # VALIDATION_SKIPPED is read by stack_validate
compose_validate() {
  local cmd=() scratch rc=0
  if command -v docker >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; then cmd=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1; then cmd=(docker-compose)
  else
    VALIDATION_SKIPPED="docker-compose.yml not validated: neither 'docker compose' nor 'docker-compose' is installed (apt-get install docker-compose)"
    return 0
  fi
  if [[ $ENV_FILE == "$REPO_DIR/.env" ]]; then
    "${cmd[@]}" --project-directory "$REPO_DIR" -f "$REPO_DIR/docker-compose.yml" --env-file "$ENV_FILE" config -q || rc=$?
  else
    scratch=$(mktemp -d)
    cp -- "$ENV_FILE" "$scratch/.env"
    "${cmd[@]}" --project-directory "$scratch" -f "$REPO_DIR/docker-compose.yml" --env-file "$scratch/.env" config -q || rc=$?
    rm -rf -- "$scratch"
  fi
  return "$rc"
}

# ---- data, for backup and restore -----------------------------------------------------------
# Copies a Prometheus snapshot directory out of the container into DEST.
compose_copy_snapshot() { # NAME DEST
  compose exec -T prometheus tar -C "/prometheus/snapshots/$1" -cf - . | tar -C "$2" -xf - ||
    die "could not copy the Prometheus snapshot out of the prometheus container"
  compose exec -T prometheus rm -rf "/prometheus/snapshots/$1" || warn "could not remove the snapshot $1 from the prometheus volume"
}

# Online backup of hookwatch's SQLite database (better-sqlite3's backup API, inside the container:
# the slim image has no sqlite3 CLI) into DEST.
compose_backup_sqlite() { # DEST
  compose exec -T hookwatch node -e '
    const Database = require("better-sqlite3");
    const db = new Database("/app/data/hookwatch.db", { readonly: true, fileMustExist: true });
    db.backup("/app/data/.hookwatch-backup.db").then(() => db.close(), (e) => { console.error(e.message); process.exit(1); });
  ' || die "online backup of hookwatch's database failed (inside the hookwatch container)"
  compose exec -T hookwatch cat /app/data/.hookwatch-backup.db >"$1" || die "could not copy the database backup out of the container"
  compose exec -T hookwatch rm -f /app/data/.hookwatch-backup.db || true
}

# Replaces the Prometheus TSDB in its volume with the snapshot in DIR (Prometheus stopped).
compose_restore_tsdb() { # DIR
  tar -C "$1" -cf - . | compose run --rm --no-deps -T --entrypoint sh prometheus \
    -c 'rm -rf /prometheus/* && tar -C /prometheus -xf -' || die "could not write the TSDB into the prometheus volume"
}

# Replaces hookwatch's database in its volume with FILE (hookwatch stopped). The database holds
# every endpoint's signing secret: the directory is made 0700 and the file 0600, as hookwatch
# creates them, since `cat >` under the image's umask would leave it world-readable.
compose_restore_sqlite() { # FILE
  compose run --rm --no-deps -T --entrypoint sh hookwatch \
    -c 'umask 077 && chmod 700 /app/data && rm -f /app/data/hookwatch.db /app/data/hookwatch.db-wal /app/data/hookwatch.db-shm && cat > /app/data/hookwatch.db && chmod 600 /app/data/hookwatch.db' <"$1" ||
    die "could not write the database into the hookwatch volume"
}

# ---- Grafana API (compose only) -------------------------------------------------------------
grafana_api() { # PATH [curl args...]
  local path=$1
  shift
  curl -fsS --max-time 20 -u "${GRAFANA_ADMIN_USER:-admin}:${GRAFANA_ADMIN_PASSWORD:-}" \
    -H 'Content-Type: application/json' "$@" "$GRAFANA_URL$path"
}
