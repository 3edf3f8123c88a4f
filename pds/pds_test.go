package pds

import (
	"context"
	"encoding/hex"
	"log/slog"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/hearth-pds/hearth/config"
)

// testConfig is a valid configuration with its data in a temporary folder.
// Nothing in New talks to the PLC directory, so its URL need not answer.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PDS_HOSTNAME":       "localhost",
		"PDS_PORT":           "0",
		"PDS_DATA_DIRECTORY": t.TempDir(),
		"PDS_JWT_SECRET":     "test-jwt-secret",
		"PDS_ADMIN_PASSWORD": "test-admin",
		"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": hex.EncodeToString(key.Bytes()),
		"PDS_DID_PLC_URL": "http://127.0.0.1:1",
		"LOG_ENABLED":     "false",
	}
	cfg, _, err := config.FromEnv(func(k string) string { return env[k] }, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// goroutinesIn returns the stacks of the live goroutines that have a frame
// whose function name contains one of frames.
func goroutinesIn(frames ...string) []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for _, f := range frames {
			if strings.Contains(g, f) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// TestNewCleansUpOnError: a step of New that fails after the sequencer
// started (here the blob store: both a folder and a bucket are set) leaves
// no sequencer goroutine behind.
func TestNewCleansUpOnError(t *testing.T) {
	const frame = "hearth/sequencer."
	if g := goroutinesIn(frame); len(g) > 0 {
		t.Fatalf("sequencer goroutines before the test:\n%s", strings.Join(g, "\n\n"))
	}
	cfg := testConfig(t)
	cfg.Blobstore.S3.Bucket = "both-set"
	p, err := New(context.Background(), cfg, "test", slog.New(slog.DiscardHandler))
	if err == nil {
		p.Shutdown(context.Background())
		t.Fatal("New accepted a disk location and an S3 bucket at once")
	}
	// A goroutine that has just closed its done channel may still be on
	// its way out; a leaked one stays.
	deadline := time.Now().Add(2 * time.Second)
	for len(goroutinesIn(frame)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := goroutinesIn(frame); len(g) > 0 {
		t.Errorf("New failed (%v) and left sequencer goroutines running:\n%s", err, strings.Join(g, "\n\n"))
	}
}

// TestShutdownWaitsForBackgroundWork: when Shutdown returns, the event
// pruner and the blob collector have stopped, so neither can call the
// store it closed.
func TestShutdownWaitsForBackgroundWork(t *testing.T) {
	p, err := New(context.Background(), testConfig(t), "test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	frames := []string{"pds.pruneEvents(", "blobs.(*Service).RunCollector("}
	deadline := time.Now().Add(2 * time.Second)
	for len(goroutinesIn(frames...)) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := goroutinesIn(frames...); len(g) != 2 {
		t.Fatalf("%d background goroutines running before Shutdown, want 2 (pruner, collector):\n%s", len(g), strings.Join(g, "\n\n"))
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if g := goroutinesIn(frames...); len(g) > 0 {
		t.Errorf("still running after Shutdown:\n%s", strings.Join(g, "\n\n"))
	}
}
