#!/usr/bin/env bash
# The whole test suite: installs the test peers, builds the binary the
# end-to-end tests start, then vets (go vet, staticcheck) and tests every package, then runs the
# race detector over the -short tier.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

scripts/install-test-peers.sh
go build -o .peers/bin/hearth ./cmd/hearth
go vet ./...
.peers/bin/staticcheck ./...
export HEARTH_BIN="$root/.peers/bin/hearth"
go test -count=1 -timeout 30m ./... "$@"

# The race detector over the -short tier (no peers) of every package but
# repo (a single-threaded engine whose tests run 6x slower under -race, 31 s
# of the 54 s this would take) and e2e and bench (clients of a separate
# process). About 25 s once the race build is cached. Two sequencer tests
# that assert timings -race's slowdown breaks are left out.
go test -race -short -count=1 \
  -skip '^(TestHandoffUnderConcurrentWrites|TestPublishDoesNotWaitForStuckBroadcaster)$' \
  $(go list ./... | grep -v -e '/repo$' -e '/e2e' -e '/bench')
