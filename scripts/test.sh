#!/usr/bin/env bash
# The whole test suite: installs the test peers, builds the binary the
# end-to-end tests start, then vets and tests every package.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-test-peers.sh
go build -o .peers/bin/hearth ./cmd/hearth
go vet ./...
export HEARTH_BIN="$root/.peers/bin/hearth"
go test -count=1 -timeout 30m ./... "$@"
