package testenv

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// referencePLCBin is the reference PLC directory's entry point, relative to
// test/peers (installed there by `npm install`).
const referencePLCBin = "node_modules/@did-plc/server/dist/bin.js"

// RepoRoot returns the repository root: the nearest directory at or above
// the working directory (a test's package directory) holding go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: working directory: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// StartReferencePLC starts the reference PLC directory (npm
// @did-plc/server, operations in memory) on a free loopback port and
// returns its base URL, http://127.0.0.1:PORT, once it answers
// /_health. The process is killed when the test ends.
//
// It fails the test, never skips it, when node or the package is missing:
// a differential test that silently does not run proves nothing. Under
// -short it skips (see needPeer).
func StartReferencePLC(t testing.TB) string {
	t.Helper()
	needPeer(t, "Node.js and the reference PLC directory")
	peers := filepath.Join(RepoRoot(t), "test", "peers")
	bin := filepath.Join(peers, referencePLCBin)
	preload := filepath.Join(peers, "loopback.cjs")
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("testenv: the reference PLC directory needs node on PATH: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("testenv: reference PLC directory not installed (%v); run `npm install` in %s", err, peers)
	}
	if _, err := os.Stat(preload); err != nil {
		t.Fatalf("testenv: loopback preload missing: %v", err)
	}

	// The port is picked by binding :0 and closing it, so another process
	// may take it before node binds; a start that fails that way is retried.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		url, err := startReferencePLC(t, node, preload, bin)
		if err == nil {
			return url
		}
		lastErr = err
	}
	t.Fatalf("testenv: reference PLC directory did not start: %v", lastErr)
	return ""
}

func startReferencePLC(t testing.TB, node, preload, bin string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	out := &capped{max: 64 << 10}
	cmd := exec.Command(node, "--require", preload, bin)
	// The server loads ./.env if present: run it where there is none.
	cmd.Dir = t.TempDir()
	cmd.Env = append(WithoutEnv(os.Environ(), "DATABASE_URL", "PORT", "ENV"), "PORT="+strconv.Itoa(port))
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start node: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	url := "http://127.0.0.1:" + strconv.Itoa(port)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url+"/_health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			return "", fmt.Errorf("node exited before answering (%s):\n%s", cmd.ProcessState, out)
		case <-ctx.Done():
			stop()
			return "", fmt.Errorf("no answer from %s/_health within 30s:\n%s", url, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("reference PLC directory output:\n%s", out)
		}
	})
	return url, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WithoutEnv returns env without the variables named, for starting a peer
// that must not inherit them.
func WithoutEnv(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, n := range names {
			if name == n {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// capped keeps the first max bytes of a process's output, for failure
// messages, without growing without bound on a chatty server.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
