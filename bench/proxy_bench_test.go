package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hearth-pds/hearth/bench"
	"github.com/hearth-pds/hearth/testenv"
)

// BenchmarkProxyOverhead measures what forwarding through Hearth adds to
// a request: the same app.bsky.feed.getTimeline is sent straight to the
// test AppView (with a service-auth token from getServiceAuth) and
// through Hearth (with the account's access token: session check, a
// freshly signed ES256K token, the upstream round trip, relaying), one
// after the other in each iteration so both see the same machine state.
// The AppView verifies the token in both cases (its directory cached).
//
//	go test -run '^$' -bench ProxyOverhead -benchtime 5000x ./bench/
//
// It reports latency percentiles in µs for both paths and the difference
// (the overhead); ns/op covers the pair. The Parallel variant runs 16
// clients at once and reports the same for each path.
func BenchmarkProxyOverhead(b *testing.B) {
	env := startProxyBench(b)
	b.Run("Sequential", func(b *testing.B) { env.run(b, 1) })
	b.Run("Parallel16", func(b *testing.B) { env.run(b, 16) })
}

type proxyBench struct {
	hearth    *testenv.Hearth
	appView   string
	access    string // the account's access token, for Hearth
	service   string // a service-auth token for the AppView, for direct calls
	client    *http.Client
	direct    string
	proxied   string
	serverPID int
}

func startProxyBench(b *testing.B) *proxyBench {
	b.Helper()
	plcURL := testenv.StartEmbeddedPLC(b)
	svcs := testenv.StartServices(b, plcURL)
	h := testenv.StartHearth(b, plcURL,
		"PDS_BSKY_APP_VIEW_URL="+svcs.AppView.URL, "PDS_BSKY_APP_VIEW_DID="+svcs.AppView.DID,
		"LOG_ENABLED=false")
	c, err := bench.NewClient("http://"+h.Addr, 4, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	codes, err := c.CreateInviteCodes(ctx, h.AdminPassword, 1)
	if err != nil {
		b.Fatal(err)
	}
	sess, err := c.CreateAccount(ctx, bench.NewAccount{Handle: "bench.test", Email: "bench@example.com", Password: "bench-password", InviteCode: codes[0]})
	if err != nil {
		b.Fatal(err)
	}
	env := &proxyBench{
		hearth:    h,
		appView:   svcs.AppView.URL,
		access:    sess.AccessJWT,
		client:    &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
		direct:    svcs.AppView.URL + "/xrpc/app.bsky.feed.getTimeline?limit=30",
		proxied:   "http://" + h.Addr + "/xrpc/app.bsky.feed.getTimeline?limit=30",
		serverPID: h.PID(),
	}
	// A token the AppView accepts for an hour, for the direct calls.
	q := url.Values{"aud": {svcs.AppView.DID}, "lxm": {"app.bsky.feed.getTimeline"},
		"exp": {strconv.FormatInt(time.Now().Add(time.Hour-time.Minute).Unix(), 10)}}
	var out struct{ Token string }
	if err := env.get("http://"+h.Addr+"/xrpc/com.atproto.server.getServiceAuth?"+q.Encode(), env.access, &out); err != nil {
		b.Fatal(err)
	}
	env.service = out.Token
	// Warm both paths: connections, the PDS's DID and key caches.
	for range 50 {
		if err := env.get(env.direct, env.service, nil); err != nil {
			b.Fatal(err)
		}
		if err := env.get(env.proxied, env.access, nil); err != nil {
			b.Fatal(err)
		}
	}
	return env
}

func (e *proxyBench) get(u, token string, out any) error {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := e.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if out != nil {
		return json.Unmarshal(body, out)
	}
	return nil
}

func (e *proxyBench) run(b *testing.B, clients int) {
	var mu sync.Mutex
	var direct, proxied []time.Duration
	cpu0, err := bench.ReadCPU(e.serverPID)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{}, b.N)
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var d, p []time.Duration
			for range next {
				t0 := time.Now()
				if err := e.get(e.direct, e.service, nil); err != nil {
					b.Error(err)
					return
				}
				t1 := time.Now()
				if err := e.get(e.proxied, e.access, nil); err != nil {
					b.Error(err)
					return
				}
				d = append(d, t1.Sub(t0))
				p = append(p, time.Since(t1))
			}
			mu.Lock()
			direct, proxied = append(direct, d...), append(proxied, p...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	b.StopTimer()
	cpu1, err := bench.ReadCPU(e.serverPID)
	if err != nil {
		b.Fatal(err)
	}
	if len(direct) == 0 {
		return
	}
	slices.Sort(direct)
	slices.Sort(proxied)
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[min(len(d)-1, int(float64(len(d))*p))].Nanoseconds()) / 1e3
	}
	for _, p := range []struct {
		name string
		q    float64
	}{{"p50", 0.50}, {"p99", 0.99}} {
		dq, pq := pct(direct, p.q), pct(proxied, p.q)
		b.ReportMetric(dq, "direct-"+p.name+"-µs")
		b.ReportMetric(pq, "proxied-"+p.name+"-µs")
		b.ReportMetric(pq-dq, "added-"+p.name+"-µs")
	}
	b.ReportMetric(float64(cpu1-cpu0)/float64(len(proxied)), "server-cpu-ns/proxied")
	if testing.Verbose() {
		b.Logf("%d pairs, %d clients: direct p50 %.0f µs p99 %.0f µs; proxied p50 %.0f µs p99 %.0f µs",
			len(direct), clients, pct(direct, .5), pct(direct, .99), pct(proxied, .5), pct(proxied, .99))
	}
}
