#!/usr/bin/env bash
# Hearth and the official PDS side by side, in one run, on loopback.
#
#   bench/compare.sh [load flags...]       e.g. bench/compare.sh -duration 10s -c 16 -accounts 50
#   bench/compare.sh records               the record preset (issue 3), see RECORD_FLAGS below
#
# Builds Hearth and runs `hearth dev` (its embedded PLC directory) in a
# temporary data directory; when the official PDS's tools are present
# (../shared/tools/official-pds from the repository root, or $OFFICIAL_TOOLS),
# installs the official PDS once into $OFFICIAL_DIR (default
# ${TMPDIR:-/tmp}/hearth-bench-official-pds; ~1.5 min the first time) and
# starts it fresh with its own PLC directory. Both idle $IDLE_SECONDS (10),
# then bench/load runs the same load against Hearth and then the official
# PDS, both are stopped, and the two reports are printed side by side with
# ratios official/hearth.
#
# Environment: HEARTH_PORT (42583), HEARTH_PLC_PORT (42582), OFFICIAL_PORT
# (42683), OFFICIAL_PLC_PORT (42682), OFFICIAL_PG_PORT (42632),
# IDLE_SECONDS (10), KEEP=1 keeps the work directory (logs, JSON reports),
# OFFICIAL_FLAGS: load flags for the official PDS only, after the common
# ones (a later flag wins), e.g. OFFICIAL_FLAGS="-sizes 1000,10000" where
# filling 100k records would take the official PDS too long.
#
# Every server listens on 127.0.0.1 only (the official's through its
# loopback.cjs preload), and the load tool refuses anything else.
set -euo pipefail

# The record preset: createRecord sequential (the first phase, so its "RSS
# after" is the server's RSS after 1,000 records), 16 clients on 16
# accounts and on one, createRecord at 1k/10k/100k records, getRepo of 10k
# records and 500 firehose subscribers. The official PDS fills 1k and 10k
# only: at its ~1,000 records/s through applyWrites, 100k is minutes more.
RECORD_FLAGS=(-phases createRecord-seq,createRecord-conc,createRecord-1repo,repoSize,getRepo,firehose
  -c 16 -records 1000 -sizes 1000,10000,100000 -size-samples 200 -getrepo-records 10000 -getrepo-n 5
  -subscribers 500 -firehose-rate 20 -firehose-commits 200)
OFFICIAL_FLAGS_DEFAULT=""
if [ "${1:-}" = records ]; then
  shift
  set -- "${RECORD_FLAGS[@]}" "$@"
  OFFICIAL_FLAGS_DEFAULT="-sizes 1000,10000"
fi
read -r -a OFFICIAL_FLAGS <<<"${OFFICIAL_FLAGS-$OFFICIAL_FLAGS_DEFAULT}"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OFFICIAL_TOOLS="${OFFICIAL_TOOLS:-$ROOT/../shared/tools/official-pds}"
OFFICIAL_DIR="${OFFICIAL_DIR:-${TMPDIR:-/tmp}/hearth-bench-official-pds}"
HEARTH_PORT="${HEARTH_PORT:-42583}"
HEARTH_PLC_PORT="${HEARTH_PLC_PORT:-42582}"
OFFICIAL_PORT="${OFFICIAL_PORT:-42683}"
OFFICIAL_PLC_PORT="${OFFICIAL_PLC_PORT:-42682}"
OFFICIAL_PG_PORT="${OFFICIAL_PG_PORT:-42632}"
IDLE_SECONDS="${IDLE_SECONDS:-10}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hearth-bench.XXXXXX")"
HEARTH_PID=""
OFFICIAL_STARTED=""

log() { echo "== $*" >&2; }

stop_hearth() {
  [ -n "$HEARTH_PID" ] || return 0
  if kill -0 "$HEARTH_PID" 2>/dev/null; then
    kill -TERM "$HEARTH_PID"
    for _ in $(seq 100); do kill -0 "$HEARTH_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$HEARTH_PID" 2>/dev/null && kill -KILL "$HEARTH_PID"
  fi
  wait "$HEARTH_PID" 2>/dev/null || true
  HEARTH_PID=""
}
stop_official() {
  [ -n "$OFFICIAL_STARTED" ] || return 0
  "$OFFICIAL_TOOLS/stop.sh" "$OFFICIAL_DIR" >&2 || true
  rm -rf "$OFFICIAL_DIR/run" # the next run starts from an empty server
  OFFICIAL_STARTED=""
}
cleanup() {
  stop_hearth
  stop_official
  if [ "${KEEP:-}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_free() { ! curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$1/"; }
wait_http() { # url seconds
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "!! $1 did not answer within $2 s" >&2
  return 1
}
rss() { # pid -> "VmRSS MiB (RssAnon, RssFile, VmHWM)"
  awk '/^VmRSS:/ {r=$2} /^VmHWM:/ {h=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} END {printf "%.1f MiB (anon %.1f, file %.1f; peak %.1f)", r/1024, a/1024, f/1024, h/1024}' "/proc/$1/status"
}

for p in "$HEARTH_PORT" "$HEARTH_PLC_PORT"; do
  port_free "$p" || { echo "!! port $p is in use (set HEARTH_PORT / HEARTH_PLC_PORT)" >&2; exit 1; }
done

# --- build ---------------------------------------------------------------------
# The binary as `make build` makes it (static, stripped).
log "building hearth and bench/load"
VERSION="$(cd "$ROOT" && git describe --tags --always --dirty 2>/dev/null || echo dev)"
(cd "$ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$WORK/bin/hearth" ./cmd/hearth \
  && go build -o "$WORK/bin/load" ./bench/load)

# --- Hearth --------------------------------------------------------------------
# A clean environment: only what dev mode needs, so no PDS_* variable of
# the caller's shell changes the configuration under test.
env -i PATH="$PATH" HOME="${HOME:-/}" TMPDIR="${TMPDIR:-/tmp}" \
  PDS_DATA_DIRECTORY="$WORK/hearth" PDS_PORT="$HEARTH_PORT" HEARTH_DEV_PLC_PORT="$HEARTH_PLC_PORT" \
  PDS_INVITE_REQUIRED=true LOG_ENABLED=false \
  "$WORK/bin/hearth" dev >"$WORK/hearth.log" 2>&1 &
HEARTH_PID=$!
wait_http "http://127.0.0.1:$HEARTH_PORT/xrpc/_health" 30 || { cat "$WORK/hearth.log" >&2; exit 1; }
HEARTH_ADMIN="$(jq -r .adminPassword "$WORK/hearth/dev-secrets.json")"
log "hearth $("$WORK/bin/hearth" version) on http://127.0.0.1:$HEARTH_PORT (pid $HEARTH_PID, embedded plc on :$HEARTH_PLC_PORT)"

# --- the official PDS ----------------------------------------------------------
if [ -x "$OFFICIAL_TOOLS/start.sh" ]; then
  OFFICIAL_TOOLS="$(cd "$OFFICIAL_TOOLS" && pwd)"
  for p in "$OFFICIAL_PORT" "$OFFICIAL_PLC_PORT"; do
    port_free "$p" || { echo "!! port $p is in use (set OFFICIAL_PORT / OFFICIAL_PLC_PORT)" >&2; exit 1; }
  done
  if [ ! -f "$OFFICIAL_DIR/plc/.db-kind" ] || [ ! -f "$OFFICIAL_DIR/pds/.node-bin" ] \
    || [ ! -d "$OFFICIAL_DIR/pds/node_modules/@atproto/pds" ]; then
    log "installing the official PDS into $OFFICIAL_DIR (once; ~1.5 min)"
    "$OFFICIAL_TOOLS/setup.sh" "$OFFICIAL_DIR" >&2
  fi
  # A leftover of an interrupted run (stopped by its recorded PIDs only).
  "$OFFICIAL_TOOLS/stop.sh" "$OFFICIAL_DIR" >/dev/null 2>&1 || true
  rm -rf "$OFFICIAL_DIR/run"
  OFFICIAL_STARTED=1
  # start.sh makes the admin password (run/pds.env) and defaults to no
  # invites; require them, as Hearth does, so both do the same work.
  PDS_PORT="$OFFICIAL_PORT" PLC_PORT="$OFFICIAL_PLC_PORT" PG_PORT="$OFFICIAL_PG_PORT" \
    PDS_INVITE_REQUIRED=true PDS_RATE_LIMITS_ENABLED=false LOG_ENABLED=false \
    "$OFFICIAL_TOOLS/start.sh" "$OFFICIAL_DIR" >&2
  OFFICIAL_PID="$(cat "$OFFICIAL_DIR/run/pds.pid")"
  OFFICIAL_ADMIN="$(sed -n 's/^PDS_ADMIN_PASSWORD=//p' "$OFFICIAL_DIR/run/pds.env")"
else
  log "no official PDS tools at $OFFICIAL_TOOLS: measuring Hearth alone"
fi

# --- idle, then the same load against each -------------------------------------
log "idling $IDLE_SECONDS s"
sleep "$IDLE_SECONDS"
log "idle RSS: hearth $(rss "$HEARTH_PID")"
[ -n "$OFFICIAL_STARTED" ] && log "idle RSS: official $(rss "$OFFICIAL_PID")"

PDS_ADMIN_PASSWORD="$HEARTH_ADMIN" "$WORK/bin/load" -url "http://127.0.0.1:$HEARTH_PORT" \
  -pid "$HEARTH_PID" -label hearth -json "$WORK/hearth.json" "$@"
echo
if [ -n "$OFFICIAL_STARTED" ]; then
  PDS_ADMIN_PASSWORD="$OFFICIAL_ADMIN" "$WORK/bin/load" -url "http://127.0.0.1:$OFFICIAL_PORT" \
    -pid "$OFFICIAL_PID" -label official -json "$WORK/official.json" "$@" ${OFFICIAL_FLAGS[@]+"${OFFICIAL_FLAGS[@]}"}
  echo
  log "idling $IDLE_SECONDS s after the load"
  sleep "$IDLE_SECONDS"
  log "RSS after load and idle: hearth $(rss "$HEARTH_PID"), official $(rss "$OFFICIAL_PID")"
fi

stop_hearth
stop_official

if [ -f "$WORK/official.json" ]; then
  echo "Side by side (ratio = official/hearth; 'better' says which direction is better):"
  "$WORK/bin/load" -compare "$WORK/official.json,$WORK/hearth.json"
  echo
  echo "Note: Hearth's figures include its embedded PLC directory (same process);"
  echo "the official PDS's PLC directory and PostgreSQL are separate and not counted."
fi
