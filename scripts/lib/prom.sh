# shellcheck shell=bash
# Prometheus HTTP API helpers (instant and range queries) and number formatting.

# prom_api PATH [curl --data-urlencode args...]: the JSON of a successful API call; fails with
# Prometheus's own error message on stderr otherwise. The message goes to stderr, not into a
# variable, because callers run this in $(...): a variable set in that subshell never reaches
# them. On success nothing is written to stderr, so `out=$(prom_... 2>&1) || die "$out"` gets
# either the answer or the message.
prom_api() {
  local path=$1 out
  shift
  out=$(curl -sS --max-time 30 --get "$@" "$PROMETHEUS_URL$path" 2>&1) || {
    printf 'Prometheus at %s does not answer (%s)\n' "$PROMETHEUS_URL" "$out" >&2
    return 1
  }
  if [[ $(jq -r '.status // empty' <<<"$out" 2>/dev/null) != success ]]; then
    jq -r '[.errorType, .error // "unexpected answer"] | map(select(. != null and . != "")) | join(": ")' <<<"$out" >&2 2>/dev/null ||
      printf 'unexpected answer from Prometheus at %s%s: %s\n' "$PROMETHEUS_URL" "$path" "$out" >&2
    return 1
  fi
  printf '%s' "$out"
}

# prom_query EXPR [TIME]: the result array (vector) of an instant query.
prom_query() {
  local args=(--data-urlencode "query=$1")
  [[ -n ${2:-} ]] && args+=(--data-urlencode "time=$2")
  prom_api /api/v1/query "${args[@]}" | jq -c '.data.result'
}

# prom_value EXPR: the value of the first sample of an instant query ("" when there is none).
prom_value() {
  local result
  result=$(prom_query "$1") || return 1
  jq -r '.[0].value[1] // ""' <<<"$result"
}

# prom_range EXPR START END STEP: the result array (matrix) of a range query.
prom_range() {
  prom_api /api/v1/query_range --data-urlencode "query=$1" --data-urlencode "start=$2" \
    --data-urlencode "end=$3" --data-urlencode "step=$4" | jq -c '.data.result'
}

prom_require() {
  local error
  error=$(prom_api /api/v1/status/buildinfo 2>&1 >/dev/null) || die "$error (is the stack running? scripts/monitoring.sh init)"
}

# ---- formatting -------------------------------------------------------------------------------
# fmt_number VALUE DECIMALS, fmt_percent RATIO, fmt_seconds SECONDS: "n/a" for empty or NaN.
is_number() { [[ $1 =~ ^[-+]?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?$ ]]; }
fmt_number() { if is_number "$1"; then LC_ALL=C printf "%.${2:-2}f" "$1"; else printf 'n/a'; fi; }
fmt_count() { fmt_number "$1" 0; }
fmt_percent() { if is_number "$1"; then LC_ALL=C awk -v v="$1" 'BEGIN { printf "%.2f %%", v * 100 }'; else printf 'n/a'; fi; }
fmt_seconds() {
  if ! is_number "$1"; then printf 'n/a'; return; fi
  LC_ALL=C awk -v v="$1" 'BEGIN { if (v < 1) printf "%.1f ms", v * 1000; else printf "%.2f s", v }'
}
