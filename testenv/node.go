package testenv

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RunNode runs a script of test/peers (where the npm peers are installed,
// so its imports resolve) with node and extra environment, and returns
// its standard output. A non-zero exit fails the test with both streams.
func RunNode(t testing.TB, script string, timeout time.Duration, env ...string) []byte {
	t.Helper()
	node := Node(t)
	peers := filepath.Join(RepoRoot(t), "test", "peers")
	if _, err := os.Stat(filepath.Join(peers, "node_modules")); err != nil {
		t.Fatalf("testenv: npm peers not installed; run scripts/install-test-peers.sh (%v)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, node, filepath.Join(peers, script))
	cmd.Dir = peers
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\nstdout:\n%s\nstderr:\n%s", script, err, stdout.String(), stderr.String())
	}
	if stderr.Len() > 0 {
		t.Logf("node %s stderr:\n%s", script, stderr.String())
	}
	return stdout.Bytes()
}

// Goat returns the pinned goat binary installed by
// scripts/install-test-peers.sh, failing the test when it is missing (and
// skipping it under -short, see needPeer).
func Goat(t testing.TB) string {
	t.Helper()
	return peerBinary(t, "goat")
}
