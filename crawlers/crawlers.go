// Package crawlers asks relays to crawl this PDS
// (com.atproto.sync.requestCrawl): once at start, and again after writes
// when no request went out recently, as the official PDS does, so a relay
// that dropped the connection comes back without operator action.
package crawlers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DefaultInterval is the least time between two requests after writes,
// the official PDS's twenty minutes.
const DefaultInterval = 20 * time.Minute

// Notifier sends requestCrawl to a set of relays.
type Notifier struct {
	hostname string
	urls     []string
	interval time.Duration
	client   *http.Client
	log      *slog.Logger

	mu       sync.Mutex
	last     time.Time
	inFlight bool
}

// New returns a Notifier for hostname (this PDS's public hostname) and the
// relay base URLs (PDS_CRAWLERS). interval 0 means DefaultInterval.
func New(hostname string, urls []string, interval time.Duration, log *slog.Logger) *Notifier {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Notifier{hostname: hostname, urls: urls, interval: interval,
		client: &http.Client{Timeout: 30 * time.Second}, log: log}
}

// Start requests a crawl from every relay now, in the background.
func (n *Notifier) Start(ctx context.Context) {
	if len(n.urls) == 0 {
		return
	}
	n.mu.Lock()
	n.last, n.inFlight = time.Now(), true
	n.mu.Unlock()
	go n.requestAll(ctx)
}

// Wrote tells the notifier the repository changed: a request goes out if
// none did within the interval. It never blocks.
func (n *Notifier) Wrote() {
	if len(n.urls) == 0 {
		return
	}
	n.mu.Lock()
	if n.inFlight || time.Since(n.last) < n.interval {
		n.mu.Unlock()
		return
	}
	n.last, n.inFlight = time.Now(), true
	n.mu.Unlock()
	go n.requestAll(context.Background())
}

func (n *Notifier) requestAll(ctx context.Context) {
	defer func() {
		n.mu.Lock()
		n.inFlight = false
		n.mu.Unlock()
	}()
	for _, u := range n.urls {
		if err := n.request(ctx, u); err != nil {
			n.log.Warn("requestCrawl failed", "relay", u, "err", err)
		} else {
			n.log.Info("requested crawl", "relay", u)
		}
	}
}

func (n *Notifier) request(ctx context.Context, base string) error {
	body, _ := json.Marshal(map[string]string{"hostname": n.hostname})
	url := strings.TrimRight(base, "/") + "/xrpc/com.atproto.sync.requestCrawl"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := n.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
