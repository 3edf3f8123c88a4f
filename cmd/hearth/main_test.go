package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestServeNamesMissingVariables(t *testing.T) {
	err := serve(context.Background(), func(string) string { return "" }, nil, &bytes.Buffer{})
	if err == nil {
		t.Fatal("serve started with an empty environment")
	}
	for _, name := range []string{"PDS_HOSTNAME", "PDS_JWT_SECRET", "PDS_ADMIN_PASSWORD", "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
}

func TestKeygen(t *testing.T) {
	var out bytes.Buffer
	if err := keygen(&out); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^PDS_JWT_SECRET=[0-9a-f]{32}\nPDS_ADMIN_PASSWORD=[0-9a-f]{32}\nPDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX=[0-9a-f]{64}\n$`)
	if !re.MatchString(out.String()) {
		t.Errorf("keygen printed %q", out.String())
	}
}

// TestDev runs `hearth dev` in process on free ports and signs up with the
// invite code it prints, through its embedded PLC directory.
func TestDev(t *testing.T) {
	env := devEnv(t)
	banner := startDev(t, env)
	pdsURL := regexp.MustCompile(`PDS:\s+(\S+)`).FindStringSubmatch(banner)[1]
	invite := regexp.MustCompile(`Invite code:\s+(\S+)`).FindStringSubmatch(banner)[1]
	if want := "http://localhost:" + env["PDS_PORT"]; pdsURL != want {
		t.Errorf("PDS URL %s, want %s", pdsURL, want)
	}
	body, _ := json.Marshal(map[string]string{"handle": "devuser.test", "email": "dev@example.com", "password": "pw", "inviteCode": invite})
	resp, err := http.Post("http://127.0.0.1:"+env["PDS_PORT"]+"/xrpc/com.atproto.server.createAccount", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var created struct{ DID string }
	json.NewDecoder(resp.Body).Decode(&created)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(created.DID, "did:plc:") {
		t.Fatalf("createAccount: %d %+v", resp.StatusCode, created)
	}
	plc, err := http.Get("http://127.0.0.1:" + env["HEARTH_DEV_PLC_PORT"] + "/" + created.DID)
	if err != nil {
		t.Fatal(err)
	}
	plc.Body.Close()
	if plc.StatusCode != http.StatusOK {
		t.Errorf("embedded PLC directory does not know %s: %d", created.DID, plc.StatusCode)
	}
}

// TestDevPrintsAdminPasswordInForce: with PDS_ADMIN_PASSWORD set, `hearth
// dev` prints that password, not the one in its secrets file, and the
// admin API takes it.
func TestDevPrintsAdminPasswordInForce(t *testing.T) {
	for _, tc := range []struct {
		name, override string
	}{
		{"secrets file", ""},
		{"PDS_ADMIN_PASSWORD", "override-admin-password"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := devEnv(t)
			env["PDS_ADMIN_PASSWORD"] = tc.override
			banner := startDev(t, env)
			var fromFile struct{ AdminPassword string }
			b, err := os.ReadFile(filepath.Join(env["PDS_DATA_DIRECTORY"], "dev-secrets.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &fromFile); err != nil {
				t.Fatal(err)
			}
			want := fromFile.AdminPassword
			if tc.override != "" {
				want = tc.override
			}
			got := regexp.MustCompile(`Admin password:\s+(\S+)`).FindStringSubmatch(banner)[1]
			if got != want {
				t.Errorf("printed admin password %q, want %q", got, want)
			}
			req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:"+env["PDS_PORT"]+"/xrpc/com.atproto.server.createInviteCode", strings.NewReader(`{"useCount":1}`))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth("admin", got)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("createInviteCode with the printed admin password: %d", resp.StatusCode)
			}
		})
	}
}

// devEnv is an environment for `hearth dev` on free ports with its data
// in a temporary folder.
func devEnv(t *testing.T) map[string]string {
	return map[string]string{
		"PDS_DATA_DIRECTORY":  t.TempDir(),
		"PDS_PORT":            strconv.Itoa(freePort(t)),
		"HEARTH_DEV_PLC_PORT": strconv.Itoa(freePort(t)),
		"LOG_ENABLED":         "false",
	}
}

// startDev runs `hearth dev` in process until the test ends and returns
// the banner it printed once it served.
func startDev(t *testing.T, env map[string]string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- dev(ctx, func(k string) string { return env[k] }, nil, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(out.String(), "Invite code:") {
			return out.String()
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("dev printed no invite code:\n%s", out.String())
	return ""
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestConfigureWarns: the start-up of serve and dev warns once about the
// variables set that have no effect yet, naming each with its reason, and
// once about PDS_*/HEARTH_* names nobody reads.
func TestConfigureWarns(t *testing.T) {
	sec, err := newSecrets()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PDS_HOSTNAME":       "pds.example.com",
		"PDS_JWT_SECRET":     sec.JWTSecret,
		"PDS_ADMIN_PASSWORD": sec.AdminPassword,
		"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": sec.RotationKeyHex,
		"PDS_RATE_LIMITS_ENABLED":                   "true",
		"PDS_DPOP_SECRET":                           "dpop-secret",
		"PDS_HOSTNAM":                               "typo.example.com",
		"HEARTH_LISTEN_HOTS":                        "127.0.0.1",
	}
	var environ []string
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	var out bytes.Buffer
	if _, _, err := configure(func(k string) string { return env[k] }, environ, &out); err != nil {
		t.Fatal(err)
	}
	var notYet, unknown []map[string]any
	for line := range strings.Lines(out.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] != "WARN" {
			continue
		}
		switch {
		case rec["variables"] != nil:
			notYet = append(notYet, rec)
		case rec["names"] != nil:
			unknown = append(unknown, rec)
		}
	}
	if len(notYet) != 1 || len(unknown) != 1 {
		t.Fatalf("%d not-yet and %d unknown warnings, want one each:\n%s", len(notYet), len(unknown), out.String())
	}
	vars, _ := notYet[0]["variables"].(map[string]any)
	if len(vars) != 2 || !strings.Contains(fmt.Sprint(vars["PDS_RATE_LIMITS_ENABLED"]), "rate limits") || vars["PDS_DPOP_SECRET"] == nil {
		t.Errorf("not-yet warning names %v, want PDS_DPOP_SECRET and PDS_RATE_LIMITS_ENABLED with reasons", vars)
	}
	if got, want := fmt.Sprint(unknown[0]["names"]), "[HEARTH_LISTEN_HOTS PDS_HOSTNAM]"; got != want {
		t.Errorf("unknown warning names %s, want %s", got, want)
	}
	if strings.Contains(out.String(), "dpop-secret") {
		t.Error("a warning shows a secret's value")
	}
}
