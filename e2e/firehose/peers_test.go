package firehose

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/cmd/relay/relay"
	"github.com/bluesky-social/indigo/cmd/relay/stream/eventmgr"
	"github.com/bluesky-social/indigo/cmd/relay/stream/persist/diskpersist"
	"github.com/bluesky-social/indigo/util/cliutil"

	"github.com/hearth-pds/hearth/testenv"
)

// ---------------------------------------------------------------------------
// (a) @atproto/sync in node: test/peers/firehose.mjs.

// nodeConsumer is a running firehose.mjs.
type nodeConsumer struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	cursor  atomic.Int64 // the runner's cursor: every event up to it handled
	summary chan *nodeSummary
	stderr  *lockedBuffer
	exited  chan struct{}
	waitErr error
}

// nodeSummary is what firehose.mjs prints when told to stop.
type nodeSummary struct {
	Cursor     int64            `json:"cursor"` // every event up to it handled
	MaxSeq     int64            `json:"maxSeq"`
	Counts     map[string]int   `json:"counts"`
	OpsBySeq   map[string]int   `json:"opsBySeq"`
	Identities []nodeIdentity   `json:"identities"`
	Accounts   []map[string]any `json:"accounts"`
	Syncs      []nodeSync       `json:"syncs"`
	Errors     []string         `json:"errors"`
}

type nodeSync struct {
	DID string `json:"did"`
	Rev string `json:"rev"`
	CID string `json:"cid"`
}

type nodeIdentity struct {
	Seq    int64   `json:"seq"`
	DID    string  `json:"did"`
	Handle *string `json:"handle"`
}

func startNodeConsumer(t *testing.T, name string, env ...string) *nodeConsumer {
	t.Helper()
	node := testenv.Node(t)
	peers := filepath.Join(testenv.RepoRoot(t), "test", "peers")
	if _, err := os.Stat(filepath.Join(peers, "node_modules", "@atproto", "sync")); err != nil {
		t.Fatalf("%s: @atproto/sync not installed; run scripts/install-test-peers.sh (%v)", name, err)
	}
	n := &nodeConsumer{name: name, summary: make(chan *nodeSummary, 1), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	n.cmd = exec.Command(node, filepath.Join(peers, "firehose.mjs"))
	n.cmd.Dir = peers
	n.cmd.Env = append(os.Environ(), env...)
	n.cmd.Stderr = n.stderr
	var err error
	if n.stdin, err = n.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	// Through a pipe of our own, so Wait returns only once every line
	// has been read.
	stdout, stdoutW := io.Pipe()
	n.cmd.Stdout = stdoutW
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("%s: start node: %v", name, err)
	}
	go func() {
		defer io.Copy(io.Discard, stdout)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			var line struct {
				Progress *int64       `json:"progress"`
				Summary  *nodeSummary `json:"summary"`
			}
			if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
				fmt.Fprintf(n.stderr, "unparsable stdout line: %q\n", sc.Text())
				continue
			}
			if line.Progress != nil {
				n.cursor.Store(*line.Progress)
			}
			if line.Summary != nil {
				n.summary <- line.Summary
			}
		}
	}()
	go func() {
		n.waitErr = n.cmd.Wait()
		stdoutW.Close()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.cmd.Process.Kill()
		<-n.exited
	})
	return n
}

// running reports an early exit as an error.
func (n *nodeConsumer) running() error {
	select {
	case <-n.exited:
		return fmt.Errorf("%s exited early: %v\nstderr:\n%s", n.name, n.waitErr, n.stderr)
	default:
		return nil
	}
}

// finish tells the script to stop and returns its summary.
func (n *nodeConsumer) finish(timeout time.Duration) (*nodeSummary, error) {
	n.stdin.Close()
	select {
	case s := <-n.summary:
		<-n.exited
		return s, nil
	case <-n.exited:
		select {
		case s := <-n.summary:
			return s, nil
		default:
		}
		return nil, fmt.Errorf("%s exited without a summary: %v\nstderr:\n%s", n.name, n.waitErr, n.stderr)
	case <-time.After(timeout):
		return nil, fmt.Errorf("%s: no summary within %s\nstderr:\n%s", n.name, timeout, n.stderr)
	}
}

// ---------------------------------------------------------------------------
// (c) goat firehose.

// goatConsumer is a running `goat firehose --verify-basic --verify-sig
// --verify-mst`. It prints each event as a JSON line on stdout, which is
// counted here, and logs verification failures as warnings on stderr
// while exiting 0, which is why every stderr line is read.
type goatConsumer struct {
	name    string
	cmd     *exec.Cmd
	stderr  *lockedBuffer
	exited  chan struct{}
	scanned chan struct{} // every stdout line counted
	err     error

	mu      sync.Mutex
	maxSeq  int64
	counts  map[string]int
	badLine []string
}

func startGoatConsumer(t *testing.T, name, goat, hostURL string, cursor *int64, plc *plcInterceptor) *goatConsumer {
	t.Helper()
	args := []string{"firehose", "--relay-host", hostURL, "--verify-basic", "--verify-sig", "--verify-mst"}
	if cursor != nil {
		args = append(args, "--cursor", fmt.Sprint(*cursor))
	}
	g := &goatConsumer{name: name, stderr: &lockedBuffer{}, exited: make(chan struct{}), scanned: make(chan struct{}), counts: map[string]int{}}
	g.cmd = exec.Command(goat, args...)
	home := t.TempDir()
	g.cmd.Env = append(testenv.WithoutEnv(os.Environ(), "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy", "ALL_PROXY", "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "LOG_LEVEL", "GO_LOG_LEVEL"),
		"HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_STATE_HOME="+home, "XDG_DATA_HOME="+home,
		"GOAT_LOG_LEVEL=info",
		"ATP_PLC_HOST="+plc.target,
	)
	g.cmd.Env = append(g.cmd.Env, plc.env()...)
	g.cmd.Stderr = g.stderr
	// Through a pipe of our own, so Wait returns only once every line
	// has been read.
	stdout, stdoutW := io.Pipe()
	g.cmd.Stdout = stdoutW
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("%s: start goat: %v", name, err)
	}
	go func() {
		defer close(g.scanned)
		defer io.Copy(io.Discard, stdout)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 64<<20)
		for sc.Scan() {
			g.line(sc.Bytes())
		}
	}()
	go func() {
		g.err = g.cmd.Wait()
		stdoutW.Close()
		close(g.exited)
	}()
	t.Cleanup(g.stop)
	return g
}

func (g *goatConsumer) line(b []byte) {
	var ev struct {
		Type    string `json:"type"`
		Payload struct {
			Seq int64 `json:"seq"`
			Ops []struct {
				Action string `json:"action"`
			} `json:"ops"`
		} `json:"payload"`
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := json.Unmarshal(b, &ev); err != nil || ev.Type == "" {
		g.badLine = append(g.badLine, string(b))
		return
	}
	g.counts["#"+ev.Type]++
	for _, op := range ev.Payload.Ops {
		g.counts[op.Action]++
	}
	g.maxSeq = max(g.maxSeq, ev.Payload.Seq)
}

func (g *goatConsumer) seq() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.maxSeq
}

func (g *goatConsumer) running() error {
	select {
	case <-g.exited:
		return fmt.Errorf("%s exited early: %v\nstderr:\n%s", g.name, g.err, g.stderr)
	default:
		return nil
	}
}

// stop ends goat and waits until its output is read.
func (g *goatConsumer) stop() {
	select {
	case <-g.exited:
	default:
		g.cmd.Process.Signal(os.Interrupt)
		select {
		case <-g.exited:
		case <-time.After(3 * time.Second):
			g.cmd.Process.Kill()
			<-g.exited
		}
	}
	<-g.scanned
}

// eventCounts returns the events and ops counted so far.
func (g *goatConsumer) eventCounts() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.counts)
}

// problems reads goat's log. Every line is a JSON record; the only ones
// expected are the start-up line and, for a repository's first commit
// (which has no previous data to invert to), "prevData is nil, skipping
// MST check". Anything else at any level is a finding.
func (g *goatConsumer) problems(genesis map[int64]bool) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(g.stderr.String()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var rec struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Seq   int64  `json:"seq"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			out = append(out, "stderr: "+sc.Text())
			continue
		}
		switch {
		case rec.Level == "INFO" && rec.Msg == "starting firehose consumer":
		case rec.Level == "WARN" && rec.Msg == "prevData is nil, skipping MST check" && genesis[rec.Seq]:
		default:
			out = append(out, "stderr: "+sc.Text())
		}
	}
	g.mu.Lock()
	for _, l := range g.badLine {
		out = append(out, "stdout: "+l)
	}
	g.mu.Unlock()
	return out
}

// plcInterceptor stands in for https://plc.directory. The pinned goat's
// firehose command resolves DIDs with a directory whose PLC URL is fixed
// at https://plc.directory (it ignores ATP_PLC_HOST), so goat is started
// with an HTTPS proxy on loopback (HTTPS_PROXY) that accepts CONNECT to
// plc.directory:443 only, ends TLS with a throwaway certificate that goat
// trusts through SSL_CERT_FILE, and forwards each request to the test's
// PLC directory. Nothing is resolved by DNS; any other destination is
// refused and reported.
type plcInterceptor struct {
	target   string // the loopback PLC directory
	proxyURL string
	caFile   string
	requests atomic.Int64

	mu      sync.Mutex
	refused []string
}

const publicPLCHost = "plc.directory:443"

func startPLCInterceptor(t *testing.T, plcURL string) *plcInterceptor {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "hearth e2e throwaway CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "plc.directory"},
		DNSNames:     []string{"plc.directory"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	p := &plcInterceptor{target: plcURL, caFile: filepath.Join(t.TempDir(), "ca.pem")}
	if err := os.WriteFile(p.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: leafKey}}}

	target, err := url.Parse(plcURL)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	inner := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		forward.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second}
	tunnels := &connListener{conns: make(chan net.Conn), done: make(chan struct{})}
	go inner.Serve(tunnels)

	outer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != publicPLCHost {
			p.mu.Lock()
			p.refused = append(p.refused, r.Method+" "+r.Host+r.URL.Path)
			p.mu.Unlock()
			http.Error(w, "only plc.directory is reachable from this test", http.StatusForbidden)
			return
		}
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		if buf.Reader.Buffered() > 0 {
			conn.Close() // a client does not speak before the 200
			return
		}
		if _, err := conn.Write([]byte("HTTP/1.1 200 Connection Established\r\n\r\n")); err != nil {
			conn.Close()
			return
		}
		select {
		case tunnels.conns <- tls.Server(conn, tlsConf):
		case <-tunnels.done:
			conn.Close()
		}
	}))
	p.proxyURL = outer.URL
	t.Cleanup(func() {
		outer.Close()
		tunnels.Close()
		inner.Close()
	})
	return p
}

// env is what makes a Go program use the interceptor.
func (p *plcInterceptor) env() []string {
	return []string{
		"HTTPS_PROXY=" + p.proxyURL, "https_proxy=" + p.proxyURL,
		"HTTP_PROXY=" + p.proxyURL, "http_proxy=" + p.proxyURL,
		"SSL_CERT_FILE=" + p.caFile,
	}
}

func (p *plcInterceptor) refusedRequests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.refused...)
}

// connListener hands connections accepted elsewhere to an http.Server.
type connListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

// ---------------------------------------------------------------------------
// (d) indigo's relay, embedded.

// embeddedRelay is indigo's relay (cmd/relay/relay) run as a library, as
// its own test runner does (cmd/relay/testing/runner.go): in-memory SQLite,
// disk persistence in a temporary folder, a mock host checker. Unlike the
// runner it keeps the account/host check on, so every account's DID
// document must name the host it is subscribed to, and the host is
// trusted so its rate limits do not throttle the test.
type embeddedRelay struct {
	r        *relay.Relay
	host     string // localhost:PORT
	url      string // its own subscribeRepos, ws://127.0.0.1:PORT
	logs     *logCapture
	shutdown func()
}

func startRelay(t *testing.T, host string, dir identity.Directory, logs *logCapture) *embeddedRelay {
	t.Helper()
	// The relay and its parts take their loggers from slog.Default when
	// they are built, and some log through it later: capture it all.
	prev := slog.Default()
	slog.SetDefault(slog.New(logs))
	t.Cleanup(func() { slog.SetDefault(prev) })

	db, err := cliutil.SetupDatabase("sqlite://:memory:", 40)
	if err != nil {
		t.Fatalf("relay database: %v", err)
	}
	persister, err := diskpersist.NewDiskPersistence(t.TempDir(), "", db, diskpersist.DefaultDiskPersistOptions())
	if err != nil {
		t.Fatalf("relay persister: %v", err)
	}
	evtman := eventmgr.NewEventManager(persister)
	cfg := relay.DefaultRelayConfig()
	cfg.TrustedDomains = []string{host}
	r, err := relay.NewRelay(db, evtman, dir, cfg)
	if err != nil {
		t.Fatalf("relay: %v", err)
	}
	persister.SetUidSource(r)
	checker := relay.NewMockHostChecker()
	checker.Hosts["http://"+host] = true
	r.HostChecker = checker

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.HandleSubscribeRepos(w, req, nil, "127.0.0.1"); err != nil {
			logs.Handle(context.Background(), slog.NewRecord(time.Now(), slog.LevelError, "relay subscribeRepos: "+err.Error(), 0))
		}
	}))
	er := &embeddedRelay{r: r, host: host, url: "ws" + strings.TrimPrefix(srv.URL, "http") + "/xrpc/com.atproto.sync.subscribeRepos", logs: logs}
	var once sync.Once
	er.shutdown = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = r.Slurper.KillUpstreamConnection(ctx, host, false)
			_ = r.Slurper.Shutdown()
			srv.CloseClientConnections()
			srv.Close()
			_ = evtman.Shutdown(ctx)
			if sqlDB, err := db.DB(); err == nil {
				sqlDB.Close()
			}
		})
	}
	t.Cleanup(er.shutdown)
	return er
}

// subscribe points the relay at the PDS.
func (er *embeddedRelay) subscribe(ctx context.Context) error {
	return er.r.SubscribeToHost(ctx, er.host, true, true)
}

// repoState is the relay's view of an account: its status and the rev
// and commit it last accepted.
func (er *embeddedRelay) repoState(ctx context.Context, did string) (rev, commit, status string, err error) {
	acc, err := er.r.GetAccount(ctx, syntax.DID(did))
	if err != nil {
		return "", "", "", err
	}
	st, err := er.r.GetAccountRepo(ctx, acc.UID)
	if err != nil {
		return "", "", string(acc.AccountStatus()), err
	}
	return st.Rev, st.CommitCID, string(acc.AccountStatus()), nil
}

// logCapture is a slog.Handler that keeps every record at Warn or above,
// with its attributes, as one line each.
type logCapture struct {
	mu    sync.Mutex
	warns []string
}

func (l *logCapture) Enabled(_ context.Context, level slog.Level) bool {
	return level >= slog.LevelWarn
}

func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	return l.keep(r, nil)
}

func (l *logCapture) keep(r slog.Record, with []slog.Attr) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	add := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	}
	r.Attrs(add)
	for _, a := range with {
		add(a)
	}
	l.mu.Lock()
	l.warns = append(l.warns, b.String())
	l.mu.Unlock()
	return nil
}

func (l *logCapture) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &capturedWith{root: l, attrs: attrs}
}

func (l *logCapture) WithGroup(string) slog.Handler { return l }

func (l *logCapture) warnings() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.warns...)
}

// capturedWith is a logger.With(...) of a logCapture.
type capturedWith struct {
	root  *logCapture
	attrs []slog.Attr
}

func (c *capturedWith) Enabled(ctx context.Context, level slog.Level) bool {
	return c.root.Enabled(ctx, level)
}

func (c *capturedWith) Handle(_ context.Context, r slog.Record) error {
	return c.root.keep(r, c.attrs)
}

func (c *capturedWith) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &capturedWith{root: c.root, attrs: append(slices.Clone(c.attrs), attrs...)}
}

func (c *capturedWith) WithGroup(string) slog.Handler { return c }

// ---------------------------------------------------------------------------

// lockedBuffer collects a process's output from its copying goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 8<<20 {
		b.buf.Write(p)
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
