#!/usr/bin/env bash
# Hearth and the official PDS side by side, in one run, on loopback.
#
#   bench/compare.sh [load flags...]       e.g. bench/compare.sh -duration 10s -c 16 -accounts 50
#   bench/compare.sh records               the record preset (issue 3), see RECORD_FLAGS below
#   bench/compare.sh blobs                 the blob preset (issue 4), see BLOB_FLAGS below
#   BLOBSTORE=s3 bench/compare.sh blobs    the same with both servers' blobs on S3 (versitygw)
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
# BLOBSTORE (disk; s3: both servers keep blobs in their own bucket of one
# versitygw on 127.0.0.1:$S3_PORT (42690), from scripts/install-test-peers.sh),
# OFFICIAL_FLAGS: load flags for the official PDS only, after the common
# ones (a later flag wins), e.g. OFFICIAL_FLAGS="-sizes 1000,10000" where
# filling 100k records would take the official PDS too long.
#
# BASELINE=/path/to/hearth (an earlier build) runs that binary in the
# official PDS's place, with the same flags as Hearth: a before/after of a
# change, in one run.
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
# The blob preset: uploadBlob then getBlob (of blobs records reference) at
# 64 KiB, 1 MiB and 16 MiB, 4 clients, up to 400 requests or 512 MiB per
# size. Both servers take uploads up to 100 MiB (the official start.sh's
# PDS_BLOB_UPLOAD_LIMIT, set for Hearth below too).
BLOB_FLAGS=(-phases blobs-upload,blobs-get -c 4 -blob-sizes 64k,1m,16m -blob-n 400 -blob-bytes 512m)
OFFICIAL_FLAGS_DEFAULT=""
if [ "${1:-}" = records ]; then
  shift
  set -- "${RECORD_FLAGS[@]}" "$@"
  OFFICIAL_FLAGS_DEFAULT="-sizes 1000,10000"
elif [ "${1:-}" = blobs ]; then
  shift
  set -- "${BLOB_FLAGS[@]}" "$@"
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
BASELINE="${BASELINE:-}"
OTHER=official # the name of the other server in the report
[ -z "$BASELINE" ] || OTHER=baseline
BLOBSTORE="${BLOBSTORE:-disk}"
S3_PORT="${S3_PORT:-42690}"
case "$BLOBSTORE" in disk | s3) ;; *) echo "!! BLOBSTORE must be disk or s3" >&2; exit 2 ;; esac

WORK="$(mktemp -d "${TMPDIR:-/tmp}/hearth-bench.XXXXXX")"
HEARTH_PID=""
OFFICIAL_STARTED=""
S3_PID=""

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
  if [ "$OFFICIAL_STARTED" = baseline ]; then
    kill -TERM "$OFFICIAL_PID" 2>/dev/null || true
    wait "$OFFICIAL_PID" 2>/dev/null || true
    OFFICIAL_STARTED=""
    return 0
  fi
  "$OFFICIAL_TOOLS/stop.sh" "$OFFICIAL_DIR" >&2 || true
  rm -rf "$OFFICIAL_DIR/run" # the next run starts from an empty server
  OFFICIAL_STARTED=""
}
stop_s3() {
  [ -n "$S3_PID" ] || return 0
  kill -TERM "$S3_PID" 2>/dev/null || true
  wait "$S3_PID" 2>/dev/null || true
  S3_PID=""
}
cleanup() {
  stop_hearth
  stop_official
  stop_s3
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

# --- S3 (BLOBSTORE=s3) -----------------------------------------------------------
# One versitygw, a bucket per server. Buckets are made with curl's SigV4
# (versitygw wants x-amz-content-sha256: here the hash of an empty body).
HEARTH_S3_ENV=()
OFFICIAL_S3_ENV=()
if [ "$BLOBSTORE" = s3 ]; then
  VERSITYGW="$ROOT/.peers/bin/versitygw"
  [ -x "$VERSITYGW" ] || { echo "!! $VERSITYGW missing: run scripts/install-test-peers.sh" >&2; exit 1; }
  port_free "$S3_PORT" || { echo "!! port $S3_PORT is in use (set S3_PORT)" >&2; exit 1; }
  S3_KEY="bench$(openssl rand -hex 6)"
  S3_SECRET="$(openssl rand -hex 20)"
  mkdir -p "$WORK/s3"
  env -u AWS_CA_BUNDLE ROOT_ACCESS_KEY="$S3_KEY" ROOT_SECRET_KEY="$S3_SECRET" \
    "$VERSITYGW" --port "127.0.0.1:$S3_PORT" --quiet posix "$WORK/s3" >"$WORK/s3.log" 2>&1 &
  S3_PID=$!
  for bucket in hearth-bench official-bench; do
    for ((i = 0; i < 100; i++)); do
      code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --aws-sigv4 "aws:amz:us-east-1:s3" --user "$S3_KEY:$S3_SECRET" \
        -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" \
        -X PUT "http://127.0.0.1:$S3_PORT/$bucket" || true)"
      [ "$code" = 200 ] && break
      sleep 0.1
    done
    [ "$code" = 200 ] || { echo "!! versitygw: could not make bucket $bucket (HTTP $code)" >&2; cat "$WORK/s3.log" >&2; exit 1; }
  done
  s3_env() { # bucket
    echo PDS_BLOBSTORE_S3_BUCKET="$1" PDS_BLOBSTORE_S3_REGION=us-east-1 PDS_BLOBSTORE_S3_ENDPOINT="http://127.0.0.1:$S3_PORT" \
      PDS_BLOBSTORE_S3_FORCE_PATH_STYLE=true PDS_BLOBSTORE_S3_ACCESS_KEY_ID="$S3_KEY" PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY="$S3_SECRET"
  }
  read -r -a HEARTH_S3_ENV <<<"$(s3_env hearth-bench)"
  read -r -a OFFICIAL_S3_ENV <<<"$(s3_env official-bench)"
  log "versitygw on http://127.0.0.1:$S3_PORT (pid $S3_PID), buckets hearth-bench and official-bench"
fi

# --- Hearth --------------------------------------------------------------------
# A clean environment: only what dev mode needs, so no PDS_* variable of
# the caller's shell changes the configuration under test. The upload limit
# is the official start.sh's.
start_hearth() { # binary name port plc-port: sets STARTED_PID and STARTED_ADMIN
  env -i PATH="$PATH" HOME="${HOME:-/}" TMPDIR="${TMPDIR:-/tmp}" \
    PDS_DATA_DIRECTORY="$WORK/$2" PDS_PORT="$3" HEARTH_DEV_PLC_PORT="$4" \
    PDS_INVITE_REQUIRED=true LOG_ENABLED=false PDS_BLOB_UPLOAD_LIMIT=104857600 \
    ${HEARTH_S3_ENV[@]+"${HEARTH_S3_ENV[@]}"} \
    "$1" dev >"$WORK/$2.log" 2>&1 &
  STARTED_PID=$!
  wait_http "http://127.0.0.1:$3/xrpc/_health" 30 || { cat "$WORK/$2.log" >&2; exit 1; }
  STARTED_ADMIN="$(jq -r .adminPassword "$WORK/$2/dev-secrets.json")"
  log "$2 $("$1" version) on http://127.0.0.1:$3 (pid $STARTED_PID, embedded plc on :$4, blobs on $BLOBSTORE)"
}
start_hearth "$WORK/bin/hearth" hearth "$HEARTH_PORT" "$HEARTH_PLC_PORT"
HEARTH_PID=$STARTED_PID
HEARTH_ADMIN=$STARTED_ADMIN

# --- the official PDS (or an earlier Hearth) -------------------------------------
if [ -n "$BASELINE" ]; then
  # A/B of two Hearth builds: the earlier one takes the official's ports,
  # its place in the report (named baseline), with the same flags as Hearth.
  for p in "$OFFICIAL_PORT" "$OFFICIAL_PLC_PORT"; do
    port_free "$p" || { echo "!! port $p is in use (set OFFICIAL_PORT / OFFICIAL_PLC_PORT)" >&2; exit 1; }
  done
  start_hearth "$BASELINE" official "$OFFICIAL_PORT" "$OFFICIAL_PLC_PORT"
  OFFICIAL_PID=$STARTED_PID
  OFFICIAL_ADMIN=$STARTED_ADMIN
  OFFICIAL_STARTED=baseline
  OFFICIAL_FLAGS=()
elif [ -x "$OFFICIAL_TOOLS/start.sh" ]; then
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
  START="$OFFICIAL_TOOLS/start.sh"
  if [ "$BLOBSTORE" = s3 ]; then
    # start.sh sets a disk location, and the official PDS refuses both: a
    # copy of the tools without that line, the S3 settings from the env.
    cp -r "$OFFICIAL_TOOLS" "$WORK/official-tools"
    sed -i '/^ *PDS_BLOBSTORE_DISK_LOCATION=/d' "$WORK/official-tools/start.sh"
    START="$WORK/official-tools/start.sh"
  fi
  env -u AWS_CA_BUNDLE ${OFFICIAL_S3_ENV[@]+"${OFFICIAL_S3_ENV[@]}"} \
    PDS_PORT="$OFFICIAL_PORT" PLC_PORT="$OFFICIAL_PLC_PORT" PG_PORT="$OFFICIAL_PG_PORT" \
    PDS_INVITE_REQUIRED=true PDS_RATE_LIMITS_ENABLED=false LOG_ENABLED=false \
    "$START" "$OFFICIAL_DIR" >&2
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
    -pid "$OFFICIAL_PID" -label "$OTHER" -json "$WORK/official.json" "$@" ${OFFICIAL_FLAGS[@]+"${OFFICIAL_FLAGS[@]}"}
  echo
  log "idling $IDLE_SECONDS s after the load"
  sleep "$IDLE_SECONDS"
  log "RSS after load and idle: hearth $(rss "$HEARTH_PID"), official $(rss "$OFFICIAL_PID")"
fi

stop_hearth
stop_official

if [ -f "$WORK/official.json" ]; then
  echo "Side by side (ratio = $OTHER/hearth; 'better' says which direction is better):"
  "$WORK/bin/load" -compare "$WORK/official.json,$WORK/hearth.json"
  echo
  echo "Note: Hearth's figures include its embedded PLC directory (same process);"
  echo "the official PDS's PLC directory and PostgreSQL are separate and not counted."
fi
