package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// needPeer skips t under -short and does nothing otherwise. The tests have
// two tiers: `go test -short ./...` runs on a machine with nothing but Go,
// and skips, with a message naming it, every test that drives an external
// program (Node.js and the npm peers, goat, versitygw, a hearth binary not
// given by HEARTH_BIN); without -short every test runs, and one whose peer
// is missing fails with the install step, since a test that silently does
// not run proves nothing. The helpers here that locate or start a peer
// call it, so tests do not have to.
func needPeer(t testing.TB, peer string) {
	t.Helper()
	if testing.Short() {
		t.Skipf("testenv: -short: skipping a test that needs %s", peer)
	}
}

// Node returns the node binary on PATH; see needPeer for -short.
func Node(t testing.TB) string {
	t.Helper()
	needPeer(t, "Node.js")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("testenv: node is required (Debian: apt-get install nodejs npm): %v", err)
	}
	return node
}

// peerBinary returns .peers/bin/name, a pinned program that
// scripts/install-test-peers.sh builds; see needPeer for -short.
func peerBinary(t testing.TB, name string) string {
	t.Helper()
	needPeer(t, name)
	bin := filepath.Join(RepoRoot(t), ".peers", "bin", name)
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("testenv: %s not installed; run scripts/install-test-peers.sh (%v)", name, err)
	}
	return bin
}
