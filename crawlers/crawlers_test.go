package crawlers

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

type relay struct {
	mu    sync.Mutex
	hosts []string
}

func (r *relay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost || req.URL.Path != "/xrpc/com.atproto.sync.requestCrawl" {
		http.NotFound(w, req)
		return
	}
	var body struct{ Hostname string }
	b, _ := io.ReadAll(req.Body)
	json.Unmarshal(b, &body)
	r.mu.Lock()
	r.hosts = append(r.hosts, body.Hostname)
	r.mu.Unlock()
}

func (r *relay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.hosts)
}

func waitFor(t *testing.T, r *relay, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.count() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := r.count(); got != n {
		t.Fatalf("relay got %d requests, want %d", got, n)
	}
}

func TestNotifier(t *testing.T) {
	r1, r2 := &relay{}, &relay{}
	s1, s2 := httptest.NewServer(r1), httptest.NewServer(r2)
	defer s1.Close()
	defer s2.Close()
	n := New("pds.example.com", []string{s1.URL, s2.URL + "/"}, 200*time.Millisecond, slog.New(slog.DiscardHandler))

	n.Start(context.Background())
	waitFor(t, r1, 1)
	waitFor(t, r2, 1)
	if r1.hosts[0] != "pds.example.com" {
		t.Errorf("hostname %q", r1.hosts[0])
	}
	// Writes within the interval send nothing more.
	for range 10 {
		n.Wrote()
	}
	time.Sleep(50 * time.Millisecond)
	waitFor(t, r1, 1)
	// After the interval, the next write asks again, once.
	time.Sleep(250 * time.Millisecond)
	for range 10 {
		n.Wrote()
	}
	waitFor(t, r1, 2)
	waitFor(t, r2, 2)
}
