package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hearth-pds/hearth/bench"
	"github.com/hearth-pds/hearth/testenv"
)

// These are benchmarks only: `go test ./bench/` compiles them and runs
// nothing. Run them with
//
//	go test -run '^$' -bench . ./bench/
//
// Each benchmark starts the built binary (testenv.Binary) as `hearth dev`
// against Hearth's own PLC directory served in this process on loopback.
// `hearth dev` rather than testenv.StartHearth (`hearth serve`) because
// serve listens on every interface and dev on 127.0.0.1 only; with
// PDS_DID_PLC_URL pointing elsewhere, dev starts no PLC directory of its
// own, so the server process is the PDS alone. Besides ns/op each reports
// the server's CPU time per operation and its memory after the run (VmRSS,
// VmHWM and RssAnon, the private part of RSS), read from /proc.

// server is a running `hearth dev`.
type server struct {
	url     string
	admin   string
	pid     int
	client  *bench.Client
	dataDir string
}

// startServer starts hearth on a free loopback port and stops it when b
// (and its sub-benchmarks) end.
func startServer(b *testing.B, plcURL string) *server {
	b.Helper()
	s, stop, err := launch(testenv.Binary(b), plcURL, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	return s
}

func launch(bin, plcURL, dataDir string) (*server, func(), error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin, "dev")
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
		"PDS_DATA_DIRECTORY=" + dataDir,
		"PDS_PORT=" + strconv.Itoa(port),
		"PDS_DID_PLC_URL=" + plcURL,
		"PDS_INVITE_REQUIRED=true",
		"LOG_ENABLED=false",
	}
	out := &limitedBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start hearth: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/xrpc/_health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			return nil, nil, fmt.Errorf("hearth exited (%s):\n%s", cmd.ProcessState, out)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("hearth did not answer on %s within 20s:\n%s", base, out)
		}
	}
	var sec struct {
		AdminPassword string `json:"adminPassword"`
	}
	if b, err := os.ReadFile(filepath.Join(dataDir, "dev-secrets.json")); err != nil {
		stop()
		return nil, nil, err
	} else if err := json.Unmarshal(b, &sec); err != nil {
		stop()
		return nil, nil, fmt.Errorf("dev-secrets.json: %w", err)
	}
	c, err := bench.NewClient(base, 64, 30*time.Second)
	if err != nil {
		stop()
		return nil, nil, err
	}
	s := &server{url: base, admin: sec.AdminPassword, pid: cmd.Process.Pid, client: c, dataDir: dataDir}
	return s, func() { c.Close(); stop() }, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// limitedBuffer keeps the first max bytes written, for error messages.
type limitedBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (l *limitedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.b)
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - len(l.b); room > 0 {
		l.b = append(l.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

// measure runs op b.N times, serially or from GOMAXPROCS goroutines, and
// reports the server's CPU time per op and its memory afterwards.
func (s *server) measure(b *testing.B, parallel bool, op func(ctx context.Context, i int) error) {
	b.Helper()
	ctx := context.Background()
	cpu0, err := bench.ReadCPU(s.pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if parallel {
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(ctx, int(next.Add(1)-1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	} else {
		for i := range b.N {
			if err := op(ctx, i); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	cpu1, err := bench.ReadCPU(s.pid)
	if err != nil {
		b.Fatal(err)
	}
	m, err := bench.ReadMemory(s.pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpu1-cpu0)/float64(b.N), "server-cpu-ns/op")
	b.ReportMetric(bench.MiB(m.RSS), "server-RSS-MiB")
	b.ReportMetric(bench.MiB(m.HWM), "server-HWM-MiB")
	b.ReportMetric(bench.MiB(m.Anon), "server-anon-MiB")
}

// BenchmarkStartup starts a fresh server per op (until /xrpc/_health
// answers) and reports its RSS at that moment.
func BenchmarkStartup(b *testing.B) {
	plcURL := testenv.StartEmbeddedPLC(b)
	bin := testenv.Binary(b)
	var rss, hwm, anon float64
	b.ResetTimer()
	for range b.N {
		dir := b.TempDir()
		s, stop, err := launch(bin, plcURL, dir)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		m, err := bench.ReadMemory(s.pid)
		stop()
		if err != nil {
			b.Fatal(err)
		}
		rss += bench.MiB(m.RSS)
		hwm += bench.MiB(m.HWM)
		anon += bench.MiB(m.Anon)
		b.StartTimer()
	}
	b.ReportMetric(rss/float64(b.N), "startup-RSS-MiB")
	b.ReportMetric(hwm/float64(b.N), "startup-HWM-MiB")
	b.ReportMetric(anon/float64(b.N), "startup-anon-MiB")
}

func BenchmarkDescribeServer(b *testing.B) {
	s := startServer(b, testenv.StartEmbeddedPLC(b))
	op := func(ctx context.Context, _ int) error {
		return s.client.Call(ctx, "com.atproto.server.describeServer", "", nil, nil)
	}
	b.Run("serial", func(b *testing.B) { s.measure(b, false, op) })
	b.Run("parallel", func(b *testing.B) { s.measure(b, true, op) })
}

func BenchmarkGetSession(b *testing.B) {
	s := startServer(b, testenv.StartEmbeddedPLC(b))
	ctx := context.Background()
	codes, err := s.client.CreateInviteCodes(ctx, s.admin, 1)
	if err != nil {
		b.Fatal(err)
	}
	a := bench.NewAccount{Handle: "bench.test", Email: "bench@example.com", Password: "bench-pass-123", InviteCode: codes[0]}
	if _, err := s.client.CreateAccount(ctx, a); err != nil {
		b.Fatal(err)
	}
	sess, err := s.client.CreateSession(ctx, a.Handle, a.Password)
	if err != nil {
		b.Fatal(err)
	}
	op := func(ctx context.Context, _ int) error { return s.client.GetSession(ctx, sess.AccessJWT) }
	b.Run("serial", func(b *testing.B) { s.measure(b, false, op) })
	b.Run("parallel", func(b *testing.B) { s.measure(b, true, op) })
}

func BenchmarkCreateAccount(b *testing.B) {
	s := startServer(b, testenv.StartEmbeddedPLC(b))
	var run atomic.Int64 // handles stay unique across the b.N rounds
	for _, mode := range []string{"serial", "parallel"} {
		b.Run(mode, func(b *testing.B) {
			codes, err := s.client.CreateInviteCodes(context.Background(), s.admin, b.N)
			if err != nil {
				b.Fatal(err)
			}
			r := run.Add(1)
			s.measure(b, mode == "parallel", func(ctx context.Context, i int) error {
				h := fmt.Sprintf("b%dn%d.test", r, i)
				_, err := s.client.CreateAccount(ctx, bench.NewAccount{
					Handle: h, Email: h + "@example.com", Password: "bench-pass-123", InviteCode: codes[i],
				})
				return err
			})
		})
	}
}
