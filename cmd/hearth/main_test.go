package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
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
	env := map[string]string{
		"PDS_DATA_DIRECTORY":  t.TempDir(),
		"PDS_PORT":            strconv.Itoa(freePort(t)),
		"HEARTH_DEV_PLC_PORT": strconv.Itoa(freePort(t)),
		"LOG_ENABLED":         "false",
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- dev(ctx, func(k string) string { return env[k] }, nil, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("dev: %v", err)
		}
	}()

	var pdsURL, invite string
	deadline := time.Now().Add(20 * time.Second)
	for invite == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
		if m := regexp.MustCompile(`Invite code:\s+(\S+)`).FindStringSubmatch(out.String()); m != nil {
			invite = m[1]
			pdsURL = regexp.MustCompile(`PDS:\s+(\S+)`).FindStringSubmatch(out.String())[1]
		}
	}
	if invite == "" {
		t.Fatalf("dev printed no invite code:\n%s", out.String())
	}
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
