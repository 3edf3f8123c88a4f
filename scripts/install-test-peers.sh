#!/usr/bin/env bash
# Installs the real peers Hearth's tests drive, at pinned versions, from the
# project's own files: npm packages from test/peers/package-lock.json, and
# goat (indigo's CLI), versitygw (an S3-compatible server, for the
# blobstore tests) and staticcheck (for make lint) from the tools module.
# Idempotent; safe to re-run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

command -v node >/dev/null || { echo "install-test-peers: node is required (Debian: apt-get install nodejs npm)" >&2; exit 1; }
command -v go >/dev/null || { echo "install-test-peers: go is required" >&2; exit 1; }

if [ ! -d test/peers/node_modules ] || [ test/peers/package-lock.json -nt test/peers/node_modules/.package-lock.json ]; then
  echo "install-test-peers: npm packages (test/peers)"
  (cd test/peers && npm ci --no-audit --no-fund --loglevel=error)
fi

mkdir -p .peers/bin
if [ ! -x .peers/bin/goat ] || [ tools/go.mod -nt .peers/bin/goat ]; then
  echo "install-test-peers: goat (tools/go.mod)"
  (cd tools && go build -o ../.peers/bin/goat github.com/bluesky-social/indigo/cmd/goat)
fi
if [ ! -x .peers/bin/versitygw ] || [ tools/go.mod -nt .peers/bin/versitygw ]; then
  echo "install-test-peers: versitygw (tools/go.mod)"
  (cd tools && go build -o ../.peers/bin/versitygw github.com/versity/versitygw/cmd/versitygw)
fi
if [ ! -x .peers/bin/staticcheck ] || [ tools/go.mod -nt .peers/bin/staticcheck ]; then
  echo "install-test-peers: staticcheck (tools/go.mod)"
  (cd tools && go build -o ../.peers/bin/staticcheck honnef.co/go/tools/cmd/staticcheck)
fi
