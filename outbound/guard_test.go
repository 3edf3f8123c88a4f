package outbound

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheckPublic(t *testing.T) {
	for addr, allowed := range map[string]bool{
		"127.0.0.1:443":         false,
		"10.1.2.3:443":          false,
		"192.168.1.1:80":        false,
		"172.16.0.1:80":         false,
		"169.254.169.254:80":    false, // cloud metadata
		"100.64.0.1:80":         false,
		"[::1]:443":             false,
		"[fe80::1]:443":         false,
		"[fd00::1]:443":         false,
		"0.0.0.0:80":            false,
		"[::ffff:127.0.0.1]:80": false,
		"8.8.8.8:443":           true,
		"[2606:4700::1]:443":    true,
	} {
		err := checkPublic(addr)
		if (err == nil) != allowed {
			t.Errorf("checkPublic(%s) = %v, allowed=%v", addr, err, allowed)
		}
	}
}

// The guarded client refuses a loopback server that an unguarded one reaches.
func TestClientRefusesLoopback(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	ctx := context.Background()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	if _, err := Client(false, time.Second).Do(req); !errors.Is(err, ErrForbiddenAddress) {
		t.Errorf("guarded client reached %s: %v", srv.URL, err)
	}
	resp, err := Client(true, time.Second).Do(req)
	if err != nil {
		t.Fatalf("dev-mode client: %v", err)
	}
	resp.Body.Close()
}
