package testenv

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// Hearth is a running hearth binary started by StartHearth.
type Hearth struct {
	// URL is the public URL, http://localhost:PORT, which DID documents name.
	URL string
	// Addr is the listen address, 127.0.0.1:PORT.
	Addr          string
	Port          int
	AdminPassword string
	JWTSecret     string
	DataDir       string
	PLCURL        string
	// Env is the environment the process was started with.
	Env []string

	cmd    *exec.Cmd
	out    *capped
	exited chan struct{}
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Binary returns the hearth binary to test: $HEARTH_BIN (set by
// scripts/test.sh, which builds it once), or one built now for this test
// process; under -short, without HEARTH_BIN, the test skips instead (see
// needPeer).
func Binary(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv("HEARTH_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			t.Fatalf("testenv: HEARTH_BIN: %v", err)
		}
		return bin
	}
	needPeer(t, "a hearth binary (set HEARTH_BIN)")
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hearth-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = filepath.Join(dir, "hearth")
		cmd := exec.Command("go", "build", "-o", builtBin, "./cmd/hearth")
		cmd.Dir = RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("testenv: build hearth: %v", buildErr)
	}
	return builtBin
}

// StartHearth starts `hearth serve` on a free loopback port as the
// official PDS runs in local development: PDS_HOSTNAME=localhost, so the
// public URL is http://localhost:PORT and handles end in .test, with plcURL
// as the PLC directory. extraEnv ("NAME=value") is applied last. The
// process is stopped when the test ends; its output is logged if the test
// failed.
func StartHearth(t testing.TB, plcURL string, extraEnv ...string) *Hearth {
	t.Helper()
	return StartHearthBinary(t, Binary(t), plcURL, extraEnv...)
}

// StartHearthBinary is StartHearth with the binary bin instead of [Binary].
func StartHearthBinary(t testing.TB, bin, plcURL string, extraEnv ...string) *Hearth {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	h := &Hearth{
		AdminPassword: "admin-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		JWTSecret:     "jwt-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		DataDir:       t.TempDir(),
		PLCURL:        plcURL,
	}
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		h.Port = port
		h.URL = "http://localhost:" + strconv.Itoa(port)
		h.Addr = "127.0.0.1:" + strconv.Itoa(port)
		// HEARTH_BIN is the tests' own; the server would report it as unknown.
		h.Env = append(WithoutEnv(os.Environ(), "HEARTH_BIN"),
			"PDS_HOSTNAME=localhost",
			"PDS_PORT="+strconv.Itoa(port),
			"HEARTH_LISTEN_HOST=127.0.0.1",
			"PDS_DATA_DIRECTORY="+h.DataDir,
			"PDS_JWT_SECRET="+h.JWTSecret,
			"PDS_ADMIN_PASSWORD="+h.AdminPassword,
			"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX="+hex.EncodeToString(key.Bytes()),
			"PDS_DID_PLC_URL="+plcURL,
			"PDS_DEV_MODE=true",
			"PDS_INVITE_REQUIRED=true",
			"LOG_ENABLED=true",
			"LOG_LEVEL=debug",
		)
		h.Env = append(h.Env, extraEnv...)
		if lastErr = h.start(bin); lastErr == nil {
			t.Cleanup(func() {
				h.Stop()
				if t.Failed() {
					t.Logf("hearth output:\n%s", h.out)
				}
			})
			return h
		}
	}
	t.Fatalf("testenv: hearth did not start: %v", lastErr)
	return nil
}

func (h *Hearth) start(bin string) error {
	h.out = &capped{max: 4 << 20}
	h.cmd = exec.Command(bin, "serve")
	h.cmd.Env = h.Env
	h.cmd.Stdout = h.out
	h.cmd.Stderr = h.out
	if err := h.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", bin, err)
	}
	h.exited = make(chan struct{})
	go func() {
		h.cmd.Wait()
		close(h.exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+h.Addr+"/xrpc/_health", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-h.exited:
			return fmt.Errorf("hearth exited before answering (%s):\n%s", h.cmd.ProcessState, h.out)
		case <-ctx.Done():
			h.Stop()
			return fmt.Errorf("no answer from %s/xrpc/_health within 20s:\n%s", h.Addr, h.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop ends the process with SIGTERM (SIGKILL after 10 s) and waits.
func (h *Hearth) Stop() {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	h.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.exited
	}
}

// PID is the server's process id, for RSS and CPU measurements.
func (h *Hearth) PID() int { return h.cmd.Process.Pid }

// Output is what the server has printed so far.
func (h *Hearth) Output() string { return h.out.String() }
