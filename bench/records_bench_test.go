package bench_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"

	"github.com/hearth-pds/hearth/bench"
	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/pds"
	"github.com/hearth-pds/hearth/testenv"
)

// Record benchmarks: createRecord, applyWrites, getRepo and firehose
// delivery, on the built binary like the account benchmarks, plus two on
// a server in this process for CPU profiles:
//
//	go test -run '^$' -bench 'CreateRecord|ApplyWrites|GetRepo|Firehose' ./bench/
//	go test -run '^$' -bench InProcess -cpuprofile cpu.out ./bench/ && go tool pprof -top bench.test cpu.out

// writer is an account to write records to.
type writer struct{ did, token string }

var accountSeq atomic.Int64

// newWriter creates an account on s, with an invite code.
func (s *server) newWriter(b *testing.B) writer {
	b.Helper()
	ctx := context.Background()
	codes, err := s.client.CreateInviteCodes(ctx, s.admin, 1)
	if err != nil {
		b.Fatal(err)
	}
	h := fmt.Sprintf("w%dp%d.test", accountSeq.Add(1), os.Getpid())
	sess, err := s.client.CreateAccount(ctx, bench.NewAccount{Handle: h, Email: h + "@example.com", Password: "bench-pass-123", InviteCode: codes[0]})
	if err != nil {
		b.Fatal(err)
	}
	return writer{sess.DID, sess.AccessJWT}
}

var postSeq atomic.Int64

func createRecord(ctx context.Context, c *bench.Client, w writer) (bench.Created, error) {
	return c.CreateRecord(ctx, w.token, w.did, bench.PostCollection, bench.Post(int(postSeq.Add(1))))
}

// fill adds n records to w's repository in applyWrites batches of 200.
func fill(b *testing.B, c *bench.Client, w writer, n int) {
	b.Helper()
	for n > 0 {
		batch := make([]map[string]any, min(n, bench.MaxBatch))
		for i := range batch {
			batch[i] = bench.Post(int(postSeq.Add(1)))
		}
		if err := c.CreateRecords(context.Background(), w.token, w.did, bench.PostCollection, batch); err != nil {
			b.Fatal(err)
		}
		n -= len(batch)
	}
}

// clients is the SetParallelism factor that makes RunParallel start 16
// goroutines, the 16 concurrent clients of the load tool.
func clients() int { return max(1, 16/runtime.GOMAXPROCS(0)) }

// BenchmarkCreateRecord: one client; 16 clients each on its own account;
// 16 clients on one account (its writes are serialized).
func BenchmarkCreateRecord(b *testing.B) {
	s := startServer(b, testenv.StartEmbeddedPLC(b))
	b.Run("serial", func(b *testing.B) {
		w := s.newWriter(b)
		s.measure(b, false, func(ctx context.Context, _ int) error {
			_, err := createRecord(ctx, s.client, w)
			return err
		})
	})
	b.Run("parallel-accounts", func(b *testing.B) {
		ws := make([]writer, 16)
		for i := range ws {
			ws[i] = s.newWriter(b)
		}
		b.SetParallelism(clients())
		s.measure(b, true, func(ctx context.Context, i int) error {
			_, err := createRecord(ctx, s.client, ws[i%len(ws)])
			return err
		})
	})
	b.Run("parallel-one-repo", func(b *testing.B) {
		w := s.newWriter(b)
		b.SetParallelism(clients())
		s.measure(b, true, func(ctx context.Context, _ int) error {
			_, err := createRecord(ctx, s.client, w)
			return err
		})
	})
}

// BenchmarkCreateRecordAtSize times createRecord on repositories of 1k,
// 10k and 100k records (filled untimed by applyWrites).
func BenchmarkCreateRecordAtSize(b *testing.B) {
	s := startServer(b, testenv.StartEmbeddedPLC(b))
	w, have := s.newWriter(b), 0
	for _, size := range []int{1_000, 10_000, 100_000} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			// Filled here, so that -bench selects the sizes it fills.
			if have < size {
				fill(b, s.client, w, size-have)
				have = size
			}
			s.measure(b, false, func(ctx context.Context, _ int) error {
				_, err := createRecord(ctx, s.client, w)
				return err
			})
			have += b.N
		})
	}
}

// BenchmarkApplyWrites200: one op is one commit of 200 creates.
func BenchmarkApplyWrites200(b *testing.B) {
	s := startServer(b, testenv.StartEmbeddedPLC(b))
	w := s.newWriter(b)
	batch := make([]map[string]any, bench.MaxBatch)
	s.measure(b, false, func(ctx context.Context, _ int) error {
		for i := range batch {
			batch[i] = bench.Post(int(postSeq.Add(1)))
		}
		return s.client.CreateRecords(ctx, w.token, w.did, bench.PostCollection, batch)
	})
}

// BenchmarkGetRepo10k downloads a 10,000-record repository; B/s is the CAR.
func BenchmarkGetRepo10k(b *testing.B) {
	s := startServer(b, testenv.StartEmbeddedPLC(b))
	w := s.newWriter(b)
	fill(b, s.client, w, 10_000)
	size, err := s.client.GetRepo(context.Background(), w.did)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	s.measure(b, false, func(ctx context.Context, _ int) error {
		_, err := s.client.GetRepo(ctx, w.did)
		return err
	})
}

// BenchmarkFirehose500: one op is a createRecord delivered to 500 live
// subscribers; reports publish→receipt latency (from the createRecord
// answer) over every delivery. The subscribers run in this process and
// share the machine's cores with the server.
func BenchmarkFirehose500(b *testing.B) {
	s := startServer(b, testenv.StartEmbeddedPLC(b))
	w := s.newWriter(b)
	ctx := context.Background()
	subs := make([]*bench.Subscriber, 500)
	for i := range subs {
		sub, err := bench.Subscribe(ctx, s.url, w.did)
		if err != nil {
			b.Fatal(err)
		}
		subs[i] = sub
	}
	b.Cleanup(func() {
		for _, sub := range subs {
			sub.Close()
		}
	})
	time.Sleep(200 * time.Millisecond)
	answered := map[string]time.Time{}
	s.measure(b, false, func(ctx context.Context, _ int) error {
		out, err := createRecord(ctx, s.client, w)
		if err == nil {
			answered[out.Commit.Rev] = time.Now()
		}
		// A steady 50 commits/s rather than as fast as possible: this
		// measures delivery, not a backlog.
		time.Sleep(20 * time.Millisecond)
		return err
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, sub := range subs {
		for sub.Count() < len(answered) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	var lat []time.Duration
	missing := 0
	for i, sub := range subs {
		got, _, _ := sub.Close()
		subs[i] = nil
		seen := 0
		for _, d := range got {
			if t, ok := answered[d.Rev]; ok {
				lat = append(lat, d.At.Sub(t))
				seen++
			}
		}
		missing += len(answered) - seen
	}
	subs = subs[:0]
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))]) / 1e6
	}
	b.ReportMetric(pct(0.50), "delivery-p50-ms")
	b.ReportMetric(pct(0.99), "delivery-p99-ms")
	b.ReportMetric(float64(missing), "missing-deliveries")
}

// startInProcess runs the server in this process (pds.New on
// 127.0.0.1:0, the embedded PLC directory beside it) so that -cpuprofile
// and -memprofile see its code; the client's HTTP work is in the same
// profile, and the "server" CPU and memory figures are this whole process.
func startInProcess(b *testing.B) *server {
	b.Helper()
	plcURL := testenv.StartEmbeddedPLC(b)
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	env := map[string]string{
		"PDS_HOSTNAME":       "localhost",
		"PDS_PORT":           strconv.Itoa(port),
		"PDS_DATA_DIRECTORY": b.TempDir(),
		"PDS_JWT_SECRET":     "bench-jwt-secret",
		"PDS_ADMIN_PASSWORD": "bench-admin",
		"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": hex.EncodeToString(key.Bytes()),
		"PDS_DID_PLC_URL":     plcURL,
		"PDS_DEV_MODE":        "true",
		"PDS_INVITE_REQUIRED": "true",
		"LOG_ENABLED":         "false",
	}
	cfg, _, err := config.FromEnv(func(k string) string { return env[k] }, nil)
	if err != nil {
		ln.Close()
		b.Fatal(err)
	}
	p, err := pds.New(context.Background(), cfg, "bench", slog.New(slog.DiscardHandler))
	if err != nil {
		ln.Close()
		b.Fatal(err)
	}
	go p.Serve(ln)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Shutdown(ctx)
	})
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	c, err := bench.NewClient(base, 64, 30*time.Second)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return &server{url: base, admin: env["PDS_ADMIN_PASSWORD"], pid: os.Getpid(), client: c}
}

// BenchmarkCreateRecordInProcess: one client, one account, at 1k, 10k and
// 100k records, on a server in this process. Profile one size alone with
//
//	go test -run '^$' -bench 'InProcess/size=100000$' -benchtime 3000x -cpuprofile cpu.out ./bench/
//	go tool pprof -top -cum -focus 'xrpc.\(\*Server\).createRecord' bench.test cpu.out
func BenchmarkCreateRecordInProcess(b *testing.B) {
	s := startInProcess(b)
	w, have := s.newWriter(b), 0
	for _, size := range []int{1_000, 10_000, 100_000} {
		b.Run("size="+strconv.Itoa(size), func(b *testing.B) {
			if have < size {
				fill(b, s.client, w, size-have)
				have = size
			}
			s.measure(b, false, func(ctx context.Context, _ int) error {
				_, err := createRecord(ctx, s.client, w)
				return err
			})
			have += b.N
		})
	}
}

// BenchmarkGetRepoInProcess is BenchmarkGetRepo10k on a server in this
// process, for profiles (-focus 'syncGetRepo').
func BenchmarkGetRepoInProcess(b *testing.B) {
	s := startInProcess(b)
	w := s.newWriter(b)
	fill(b, s.client, w, 10_000)
	size, err := s.client.GetRepo(context.Background(), w.did)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(size)
	s.measure(b, false, func(ctx context.Context, _ int) error {
		_, err := s.client.GetRepo(ctx, w.did)
		return err
	})
}
