// Command load measures one PDS on loopback: describeServer, getSession and
// createAccount (sequential and concurrent), with throughput, latency
// percentiles and, given the server's PID, its RSS and the CPU time it
// spent in each phase. It also prints two saved reports side by side.
//
//	go run ./bench/load -url http://127.0.0.1:2583 -pid 1234    # PDS_ADMIN_PASSWORD from the env
//	go run ./bench/load -compare official.json,hearth.json
//
// Every phase is bounded in requests and in time, and the tool refuses any
// URL or connection that is not on loopback.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hearth-pds/hearth/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

type usageError struct{ error }

// Hard limits, whatever the flags say: the tool is for a PDS on this
// machine, not for stress-testing anything for long.
const (
	maxRequests    = 1_000_000
	maxDuration    = 10 * time.Minute
	maxConcurrency = 256
	maxAccounts    = 5000
)

// Phase names, in the order they run.
const (
	phaseDescribe    = "describeServer"
	phaseGetSession  = "getSession"
	phaseCreateSess  = "createSession"
	phaseAccountSeq  = "createAccount-seq"
	phaseAccountConc = "createAccount-conc"
)

var allPhases = []string{phaseDescribe, phaseGetSession, phaseCreateSess, phaseAccountSeq, phaseAccountConc}

type options struct {
	URL           string
	AdminPassword string
	Label         string
	PID           int
	Duration      time.Duration
	Requests      int
	Warmup        int
	Concurrency   int
	Accounts      int
	AccountTime   time.Duration
	Timeout       time.Duration
	Phases        []string
	JSON          string
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var phases, compare string
	fs.StringVar(&o.URL, "url", "http://127.0.0.1:2583", "PDS base URL (loopback only)")
	fs.StringVar(&o.AdminPassword, "admin-password", "", "admin password, HTTP Basic user admin (default $PDS_ADMIN_PASSWORD)")
	fs.StringVar(&o.Label, "label", "", "name of this server in the report (default: the URL)")
	fs.IntVar(&o.PID, "pid", 0, "server process id: report its RSS and CPU time from /proc (0: none)")
	fs.DurationVar(&o.Duration, "duration", 5*time.Second, "time bound of each read phase (describeServer, getSession, createSession)")
	fs.IntVar(&o.Requests, "requests", 200000, "request bound of each read phase")
	fs.IntVar(&o.Warmup, "warmup", 200, "untimed requests before each read phase (lets a JIT warm up)")
	fs.IntVar(&o.Concurrency, "c", 8, "concurrent requests in the concurrent phases")
	fs.IntVar(&o.Accounts, "accounts", 40, "accounts created by each createAccount phase")
	fs.DurationVar(&o.AccountTime, "account-time", 2*time.Minute, "time bound of each createAccount phase")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "timeout of one request")
	fs.StringVar(&phases, "phases", strings.Join([]string{phaseDescribe, phaseGetSession, phaseAccountSeq, phaseAccountConc}, ","),
		"comma list of phases, from: "+strings.Join(allPhases, ","))
	fs.StringVar(&o.JSON, "json", "", "also write the report as JSON to this file")
	fs.StringVar(&compare, "compare", "", "print saved JSON reports A,B side by side with ratios A/B, and exit")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: load [flags]\n       load -compare A.json,B.json\n\n"+
			"Loads one PDS on loopback and reports ops/s, latency percentiles and,\n"+
			"with -pid, the server's RSS and CPU time per phase.\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if compare != "" {
		a, b, ok := strings.Cut(compare, ",")
		if !ok {
			return usageError{errors.New("-compare wants two files: A.json,B.json")}
		}
		return compareReports(stdout, a, b)
	}
	if o.AdminPassword == "" {
		o.AdminPassword = getenv("PDS_ADMIN_PASSWORD")
	}
	if o.Label == "" {
		o.Label = o.URL
	}
	for _, p := range strings.Split(phases, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if !slices.Contains(allPhases, p) {
			return usageError{fmt.Errorf("-phases: unknown phase %q (want %s)", p, strings.Join(allPhases, ","))}
		}
		o.Phases = append(o.Phases, p)
	}
	if err := o.validate(); err != nil {
		return usageError{err}
	}
	rep, err := load(ctx, o, stderr)
	if err != nil {
		return err
	}
	printReport(stdout, rep)
	if o.JSON != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(o.JSON, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	return nil
}

func (o options) validate() error {
	if _, err := bench.ParseLoopbackURL(o.URL); err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	switch {
	case o.Duration <= 0 || o.Duration > maxDuration:
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	case o.AccountTime <= 0 || o.AccountTime > maxDuration:
		return fmt.Errorf("-account-time must be in (0, %s]", maxDuration)
	case o.Requests < 1 || o.Requests > maxRequests:
		return fmt.Errorf("-requests must be in [1, %d]", maxRequests)
	case o.Warmup < 0 || o.Warmup > maxRequests:
		return fmt.Errorf("-warmup must be in [0, %d]", maxRequests)
	case o.Concurrency < 1 || o.Concurrency > maxConcurrency:
		return fmt.Errorf("-c must be in [1, %d]", maxConcurrency)
	case o.Accounts < 1 || o.Accounts > maxAccounts:
		return fmt.Errorf("-accounts must be in [1, %d]", maxAccounts)
	case o.Timeout <= 0 || o.Timeout > maxDuration:
		return fmt.Errorf("-timeout must be in (0, %s]", maxDuration)
	case len(o.Phases) == 0:
		return errors.New("-phases: no phase to run")
	case o.PID < 0:
		return errors.New("-pid must not be negative")
	}
	return nil
}

// Report is one run against one server; its JSON is what -json writes and
// -compare reads.
type Report struct {
	Label       string    `json:"label"`
	URL         string    `json:"url"`
	PID         int       `json:"pid,omitempty"`
	Started     time.Time `json:"started"`
	Concurrency int       `json:"concurrency"`
	// Before is the server's memory before any request of this run;
	// After is after the last phase.
	Before *MemoryMiB `json:"before,omitempty"`
	After  *MemoryMiB `json:"after,omitempty"`
	Phases []Phase    `json:"phases"`
}

// MemoryMiB is VmRSS, VmHWM, RssAnon and RssFile in MiB.
type MemoryMiB struct {
	RSS  float64 `json:"rssMiB"`
	HWM  float64 `json:"hwmMiB"`
	Anon float64 `json:"anonMiB"`
	File float64 `json:"fileMiB"`
}

// Phase is the outcome of one phase.
type Phase struct {
	Name        string  `json:"name"`
	Concurrency int     `json:"concurrency"`
	OK          int     `json:"ok"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"firstError,omitempty"`
	Seconds     float64 `json:"seconds"`
	OpsPerSec   float64 `json:"opsPerSec"`
	P50ms       float64 `json:"p50ms"`
	P90ms       float64 `json:"p90ms"`
	P99ms       float64 `json:"p99ms"`
	MaxMs       float64 `json:"maxMs"`
	// CPUms is the server's utime+stime during the phase; CPUPerOpMs
	// divides it by the requests made (successful or not).
	CPUms      float64    `json:"serverCpuMs,omitempty"`
	CPUPerOpMs float64    `json:"serverCpuPerOpMs,omitempty"`
	After      *MemoryMiB `json:"after,omitempty"`
}

func load(ctx context.Context, o options, logw io.Writer) (*Report, error) {
	rep := &Report{Label: o.Label, URL: o.URL, PID: o.PID, Started: time.Now().UTC(), Concurrency: o.Concurrency}
	var err error
	if rep.Before, err = memory(o.PID); err != nil {
		return nil, err
	}
	c, err := bench.NewClient(o.URL, o.Concurrency, o.Timeout)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	desc, err := c.DescribeServer(ctx)
	if err != nil {
		return nil, fmt.Errorf("describeServer: %w", err)
	}
	if len(desc.AvailableUserDomains) == 0 {
		return nil, errors.New("describeServer lists no availableUserDomains")
	}
	s := &session{o: o, c: c, domain: desc.AvailableUserDomains[0], runID: randomID(5), log: logw}

	// Every account this run creates needs a code when the server wants
	// invites: make them all now, outside the measured phases.
	if desc.InviteCodeRequired {
		if o.AdminPassword == "" {
			return nil, errors.New("the server requires invite codes: give -admin-password or $PDS_ADMIN_PASSWORD")
		}
		n := 1
		for _, p := range o.Phases {
			if p == phaseAccountSeq || p == phaseAccountConc {
				n += o.Accounts
			}
		}
		if s.invites, err = c.CreateInviteCodes(ctx, o.AdminPassword, n); err != nil {
			return nil, err
		}
	}

	for _, name := range o.Phases {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		fmt.Fprintf(logw, "load: %s: %s ...\n", o.Label, name)
		ph, err := s.phase(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rep.Phases = append(rep.Phases, ph)
	}
	if rep.After, err = memory(o.PID); err != nil {
		return nil, err
	}
	return rep, nil
}

// session is the state of one run: its client, invite codes and the
// account the session phases log in to.
type session struct {
	o       options
	c       *bench.Client
	domain  string
	runID   string
	log     io.Writer
	invites []string
	next    atomic.Int64 // next invite and handle number

	user  *bench.NewAccount
	token string
}

const password = "bench-pass-123"

func (s *session) newAccount() bench.NewAccount {
	n := s.next.Add(1) - 1
	// "lt" + 5 + up to 5 digits stays under the 18-character label limit.
	h := fmt.Sprintf("lt%s%d%s", s.runID, n, s.domain)
	a := bench.NewAccount{Handle: h, Email: h + "@example.com", Password: password}
	if s.invites != nil {
		a.InviteCode = s.invites[n]
	}
	return a
}

// loggedIn makes the account the session phases use, untimed.
func (s *session) loggedIn(ctx context.Context) error {
	if s.user != nil {
		return nil
	}
	a := s.newAccount()
	if _, err := s.c.CreateAccount(ctx, a); err != nil {
		return fmt.Errorf("create the session account: %w", err)
	}
	sess, err := s.c.CreateSession(ctx, a.Handle, a.Password)
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	s.user, s.token = &a, sess.AccessJWT
	return nil
}

func (s *session) phase(ctx context.Context, name string) (Phase, error) {
	o := s.o
	switch name {
	case phaseDescribe:
		return s.measure(ctx, name, o.Concurrency, o.Requests, o.Duration, o.Warmup, func(ctx context.Context) error {
			return s.c.Call(ctx, "com.atproto.server.describeServer", "", nil, nil)
		})
	case phaseGetSession:
		if err := s.loggedIn(ctx); err != nil {
			return Phase{}, err
		}
		return s.measure(ctx, name, o.Concurrency, o.Requests, o.Duration, o.Warmup, func(ctx context.Context) error {
			return s.c.GetSession(ctx, s.token)
		})
	case phaseCreateSess:
		if err := s.loggedIn(ctx); err != nil {
			return Phase{}, err
		}
		// Password hashing is the cost here: warm up a little only.
		return s.measure(ctx, name, o.Concurrency, o.Requests, o.Duration, min(o.Warmup, 10), func(ctx context.Context) error {
			_, err := s.c.CreateSession(ctx, s.user.Handle, s.user.Password)
			return err
		})
	case phaseAccountSeq, phaseAccountConc:
		conc := 1
		if name == phaseAccountConc {
			conc = o.Concurrency
		}
		return s.measure(ctx, name, conc, o.Accounts, o.AccountTime, 0, func(ctx context.Context) error {
			_, err := s.c.CreateAccount(ctx, s.newAccount())
			return err
		})
	}
	return Phase{}, fmt.Errorf("unknown phase %q", name)
}

// measure runs op from conc workers until n calls have been made or d has
// passed, after warmup untimed calls, and measures the server around it.
func (s *session) measure(ctx context.Context, name string, conc, n int, d time.Duration, warmup int,
	op func(context.Context) error) (Phase, error) {
	for i := 0; i < warmup; i++ {
		if err := op(ctx); err != nil {
			return Phase{}, fmt.Errorf("warm-up: %w", err)
		}
	}
	// A fresh set of connections per phase: an idle one the server closed
	// between phases would fail a POST.
	s.c.Close()
	ctx, cancel := context.WithTimeout(ctx, d+s.o.Timeout)
	defer cancel()

	cpu0, err := cpu(s.o.PID)
	if err != nil {
		return Phase{}, err
	}
	var (
		issued   atomic.Int64
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, min(n, 1<<16))
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			var localErrs int
			var localFirst string
			for issued.Add(1) <= int64(n) && time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := op(ctx)
				if err != nil {
					localErrs++
					if localFirst == "" {
						localFirst = err.Error()
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += localErrs
			if firstErr == "" {
				firstErr = localFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := ctx.Err(); err != nil && errors.Is(context.Cause(ctx), context.Canceled) {
		return Phase{}, err
	}
	cpu1, err := cpu(s.o.PID)
	if err != nil {
		return Phase{}, err
	}
	after, err := memory(s.o.PID)
	if err != nil {
		return Phase{}, err
	}

	slices.Sort(lat)
	ph := Phase{
		Name: name, Concurrency: conc, OK: len(lat), Errors: errs, FirstError: firstErr,
		Seconds:   elapsed.Seconds(),
		OpsPerSec: float64(len(lat)) / elapsed.Seconds(),
		P50ms:     ms(percentile(lat, 0.50)),
		P90ms:     ms(percentile(lat, 0.90)),
		P99ms:     ms(percentile(lat, 0.99)),
		After:     after,
	}
	if len(lat) > 0 {
		ph.MaxMs = ms(lat[len(lat)-1])
	}
	if s.o.PID != 0 {
		ph.CPUms = ms(cpu1 - cpu0)
		if total := len(lat) + errs; total > 0 {
			ph.CPUPerOpMs = ph.CPUms / float64(total)
		}
	}
	if errs > 0 {
		fmt.Fprintf(s.log, "load: %s: %s: %d errors, first: %s\n", s.o.Label, name, errs, firstErr)
	}
	return ph, nil
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func memory(pid int) (*MemoryMiB, error) {
	if pid == 0 {
		return nil, nil
	}
	m, err := bench.ReadMemory(pid)
	if err != nil {
		return nil, err
	}
	return &MemoryMiB{RSS: bench.MiB(m.RSS), HWM: bench.MiB(m.HWM), Anon: bench.MiB(m.Anon), File: bench.MiB(m.File)}, nil
}

func cpu(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	return bench.ReadCPU(pid)
}

// randomID is n lower-case letters and digits, starting with a letter, so
// that handles of repeated runs against one server do not collide.
func randomID(n int) string {
	const letters, alnum = "abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		if i == 0 {
			b[i] = letters[int(b[i])%len(letters)]
		} else {
			b[i] = alnum[int(b[i])%len(alnum)]
		}
	}
	return string(b)
}

func printReport(w io.Writer, r *Report) {
	fmt.Fprintf(w, "%s  %s", r.Label, r.URL)
	if r.PID != 0 {
		fmt.Fprintf(w, "  pid %d", r.PID)
	}
	fmt.Fprintln(w)
	if r.Before != nil && r.After != nil {
		fmt.Fprintf(w, "server RSS before load %.1f MiB (anon %.1f, file %.1f; peak %.1f), after %.1f MiB (anon %.1f, file %.1f; peak %.1f)\n",
			r.Before.RSS, r.Before.Anon, r.Before.File, r.Before.HWM, r.After.RSS, r.After.Anon, r.After.File, r.After.HWM)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	width := len("phase")
	for _, p := range r.Phases {
		width = max(width, len(p.Name))
	}
	fmt.Fprintf(tw, "%-*s\tconc\tok\terrors\tops/s\tp50 ms\tp90 ms\tp99 ms\tmax ms\tserver CPU ms/op\tRSS after MiB\t\n", width, "phase")
	for _, p := range r.Phases {
		cpu, rss := "-", "-"
		if r.PID != 0 {
			cpu = fmt.Sprintf("%.3f", p.CPUPerOpMs)
		}
		if p.After != nil {
			rss = fmt.Sprintf("%.1f", p.After.RSS)
		}
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t%s\t\n",
			width, p.Name, p.Concurrency, p.OK, p.Errors, p.OpsPerSec, p.P50ms, p.P90ms, p.P99ms, p.MaxMs, cpu, rss)
	}
	tw.Flush()
}

func readReport(path string) (*Report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// compareReports prints two reports side by side: each figure of A, of B,
// and the ratio A/B, with the direction that is better.
func compareReports(w io.Writer, pathA, pathB string) error {
	a, err := readReport(pathA)
	if err != nil {
		return err
	}
	b, err := readReport(pathB)
	if err != nil {
		return err
	}
	width := len("  of which file-backed, RssFile (MiB)")
	for _, p := range a.Phases {
		width = max(width, len(fmt.Sprintf("%s c=%d server CPU ms/op", p.Name, p.Concurrency)))
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tbetter\t%s\t%s\t%s/%s\t\n", width, "figure", a.Label, b.Label, a.Label, b.Label)
	row := func(name, better string, x, y float64, format string) {
		ratio := "-"
		if y != 0 {
			ratio = fmt.Sprintf("%.2fx", x/y)
		}
		fmt.Fprintf(tw, "%-*s\t%s\t"+format+"\t"+format+"\t%s\t\n", width, name, better, x, y, ratio)
	}
	if a.Before != nil && b.Before != nil {
		row("RSS idle, before load (MiB)", "lower", a.Before.RSS, b.Before.RSS, "%.1f")
		row("  of which anonymous, RssAnon (MiB)", "lower", a.Before.Anon, b.Before.Anon, "%.1f")
		row("  of which file-backed, RssFile (MiB)", "lower", a.Before.File, b.Before.File, "%.1f")
	}
	if a.After != nil && b.After != nil {
		row("RSS after load (MiB)", "lower", a.After.RSS, b.After.RSS, "%.1f")
		row("  of which anonymous, RssAnon (MiB)", "lower", a.After.Anon, b.After.Anon, "%.1f")
		row("peak RSS, VmHWM (MiB)", "lower", a.After.HWM, b.After.HWM, "%.1f")
	}
	for _, pa := range a.Phases {
		i := slices.IndexFunc(b.Phases, func(p Phase) bool { return p.Name == pa.Name })
		if i < 0 {
			continue
		}
		pb := b.Phases[i]
		n := fmt.Sprintf("%s c=%d", pa.Name, pa.Concurrency)
		row(n+" ops/s", "higher", pa.OpsPerSec, pb.OpsPerSec, "%.1f")
		row(n+" p50 ms", "lower", pa.P50ms, pb.P50ms, "%.2f")
		row(n+" p90 ms", "lower", pa.P90ms, pb.P90ms, "%.2f")
		row(n+" p99 ms", "lower", pa.P99ms, pb.P99ms, "%.2f")
		if a.PID != 0 && b.PID != 0 {
			row(n+" server CPU ms/op", "lower", pa.CPUPerOpMs, pb.CPUPerOpMs, "%.3f")
		}
		if pa.Errors+pb.Errors > 0 {
			row(n+" errors", "lower", float64(pa.Errors), float64(pb.Errors), "%.0f")
		}
	}
	return tw.Flush()
}
