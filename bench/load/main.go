// Command load measures one PDS on loopback: describeServer, getSession and
// createAccount (sequential and concurrent); createRecord (sequential, and
// concurrent across accounts or on one repository), createRecord at repo
// sizes, getRepo and firehose delivery to many subscribers (records.go,
// firehose.go); uploadBlob and getBlob throughput at blob sizes
// (blobs.go). It reports throughput, latency percentiles and, given the
// server's PID, its RSS and the CPU time it spent in each phase. It also
// prints two saved reports side by side.
//
//	go run ./bench/load -url http://127.0.0.1:2583 -pid 1234    # PDS_ADMIN_PASSWORD from the env
//	go run ./bench/load -phases createRecord-seq,firehose -c 16 -pid 1234
//	go run ./bench/load -phases blobs-upload,blobs-get -blob-sizes 64k,1m,16m -c 4 -pid 1234
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
	"maps"
	"math"
	"os"
	"os/signal"
	"slices"
	"strconv"
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
	maxRecords     = 200_000 // records in one phase or one filled repository
	maxSubscribers = 2000
)

// Phase names, in the order they run.
const (
	phaseDescribe    = "describeServer"
	phaseGetSession  = "getSession"
	phaseCreateSess  = "createSession"
	phaseAccountSeq  = "createAccount-seq"
	phaseAccountConc = "createAccount-conc"
	phaseRecordSeq   = "createRecord-seq"
	phaseRecordConc  = "createRecord-conc"  // one account per client
	phaseRecordOne   = "createRecord-1repo" // every client on one account
	phaseRepoSize    = "repoSize"           // createRecord at growing repo sizes
	phaseGetRepo     = "getRepo"
	phaseFirehose    = "firehose"
)

var allPhases = []string{
	phaseDescribe, phaseGetSession, phaseCreateSess, phaseAccountSeq, phaseAccountConc,
	phaseRecordSeq, phaseRecordConc, phaseRecordOne, phaseRepoSize, phaseGetRepo, phaseFirehose,
	phaseBlobUpload, phaseBlobGet,
}

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

	Records        int // per createRecord phase
	RecordTime     time.Duration
	Sizes          []int // repoSize: the repository sizes to measure at
	SizeSamples    int   // repoSize: createRecords timed at each size
	FillTime       time.Duration
	GetRepoRecords int
	GetRepoN       int
	Subscribers    int
	FirehoseRate   float64 // commits per second
	FirehoseN      int     // commits

	blobOptions // blobs.go
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
	fs.IntVar(&o.Records, "records", 1000, "records created by each createRecord phase")
	fs.DurationVar(&o.RecordTime, "record-time", 2*time.Minute, "time bound of each createRecord phase")
	var sizes string
	fs.StringVar(&sizes, "sizes", "1000,10000,100000", "repoSize: repository sizes, in records, filled by applyWrites batches of 200")
	fs.IntVar(&o.SizeSamples, "size-samples", 200, "repoSize: sequential createRecords timed at each size")
	fs.DurationVar(&o.FillTime, "fill-time", 5*time.Minute, "time bound of filling one repository (repoSize, getRepo)")
	fs.IntVar(&o.GetRepoRecords, "getrepo-records", 10000, "getRepo: records in the downloaded repository")
	fs.IntVar(&o.GetRepoN, "getrepo-n", 5, "getRepo: downloads timed")
	fs.IntVar(&o.Subscribers, "subscribers", 500, "firehose: WebSocket subscribers")
	fs.Float64Var(&o.FirehoseRate, "firehose-rate", 20, "firehose: createRecords per second")
	fs.IntVar(&o.FirehoseN, "firehose-commits", 200, "firehose: createRecords made while subscribed")
	var blobSizes string
	o.blobOptions.flags(fs, &blobSizes)
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
	for _, f := range strings.Split(sizes, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			return usageError{fmt.Errorf("-sizes: %q is not a number", f)}
		}
		o.Sizes = append(o.Sizes, n)
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
	if err := o.blobOptions.parse(blobSizes); err != nil {
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
	case o.Records < 1 || o.Records > maxRecords:
		return fmt.Errorf("-records must be in [1, %d]", maxRecords)
	case o.RecordTime <= 0 || o.RecordTime > maxDuration:
		return fmt.Errorf("-record-time must be in (0, %s]", maxDuration)
	case o.FillTime <= 0 || o.FillTime > maxDuration:
		return fmt.Errorf("-fill-time must be in (0, %s]", maxDuration)
	case o.SizeSamples < 1 || o.SizeSamples > 10_000:
		return errors.New("-size-samples must be in [1, 10000]")
	case o.GetRepoRecords < 1 || o.GetRepoRecords > maxRecords:
		return fmt.Errorf("-getrepo-records must be in [1, %d]", maxRecords)
	case o.GetRepoN < 1 || o.GetRepoN > 1000:
		return errors.New("-getrepo-n must be in [1, 1000]")
	case o.Subscribers < 1 || o.Subscribers > maxSubscribers:
		return fmt.Errorf("-subscribers must be in [1, %d]", maxSubscribers)
	case o.FirehoseRate <= 0 || o.FirehoseRate > 1000:
		return errors.New("-firehose-rate must be in (0, 1000]")
	case o.FirehoseN < 1 || o.FirehoseN > 100_000:
		return errors.New("-firehose-commits must be in [1, 100000]")
	case float64(o.FirehoseN)/o.FirehoseRate > maxDuration.Seconds():
		return fmt.Errorf("-firehose-commits / -firehose-rate must stay under %s", maxDuration)
	}
	for _, n := range o.Sizes {
		if n < 1 || n > maxRecords {
			return fmt.Errorf("-sizes: %d is not in [1, %d]", n, maxRecords)
		}
	}
	if slices.Contains(o.Phases, phaseRepoSize) && len(o.Sizes) == 0 {
		return errors.New("-sizes: no size for the repoSize phase")
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
	// ClientCPUms is this tool's own utime+stime during the phase, where
	// the load itself is heavy (the firehose's subscribers).
	ClientCPUms float64 `json:"clientCpuMs,omitempty"`
	// Bytes is the size of one answer (getRepo's CAR).
	Bytes int64 `json:"bytes,omitempty"`
	// Extra holds a phase's own figures, by name, each "lower is better"
	// unless its name ends in "/s".
	Extra map[string]float64 `json:"extra,omitempty"`
	Note  string             `json:"note,omitempty"`
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
			switch p {
			case phaseAccountSeq, phaseAccountConc:
				n += o.Accounts
			case phaseRecordConc:
				n += o.Concurrency
			case phaseRecordSeq, phaseRecordOne, phaseGetRepo, phaseFirehose, phaseBlobUpload, phaseBlobGet:
				n++
			case phaseRepoSize:
				n += len(o.Sizes) // at most one account per size
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
		phs, err := s.phase(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		rep.Phases = append(rep.Phases, phs...)
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
	posts   atomic.Int64 // records made, for distinct texts

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

// phase runs one phase; most make one Phase, repoSize one per size.
func (s *session) phase(ctx context.Context, name string) ([]Phase, error) {
	switch name {
	case phaseRecordSeq, phaseRecordConc, phaseRecordOne, phaseRepoSize, phaseGetRepo:
		return s.recordPhase(ctx, name)
	case phaseFirehose:
		ph, err := s.firehose(ctx)
		return []Phase{ph}, err
	case phaseBlobUpload, phaseBlobGet:
		return s.blobPhase(ctx, name)
	}
	ph, err := s.accountPhase(ctx, name)
	return []Phase{ph}, err
}

func (s *session) accountPhase(ctx context.Context, name string) (Phase, error) {
	o := s.o
	switch name {
	case phaseDescribe:
		return s.measure(ctx, name, o.Concurrency, o.Requests, o.Duration, o.Warmup, func(ctx context.Context, _ int) error {
			return s.c.Call(ctx, "com.atproto.server.describeServer", "", nil, nil)
		})
	case phaseGetSession:
		if err := s.loggedIn(ctx); err != nil {
			return Phase{}, err
		}
		return s.measure(ctx, name, o.Concurrency, o.Requests, o.Duration, o.Warmup, func(ctx context.Context, _ int) error {
			return s.c.GetSession(ctx, s.token)
		})
	case phaseCreateSess:
		if err := s.loggedIn(ctx); err != nil {
			return Phase{}, err
		}
		// Password hashing is the cost here: warm up a little only.
		return s.measure(ctx, name, o.Concurrency, o.Requests, o.Duration, min(o.Warmup, 10), func(ctx context.Context, _ int) error {
			_, err := s.c.CreateSession(ctx, s.user.Handle, s.user.Password)
			return err
		})
	case phaseAccountSeq, phaseAccountConc:
		conc := 1
		if name == phaseAccountConc {
			conc = o.Concurrency
		}
		return s.measure(ctx, name, conc, o.Accounts, o.AccountTime, 0, func(ctx context.Context, _ int) error {
			_, err := s.c.CreateAccount(ctx, s.newAccount())
			return err
		})
	}
	return Phase{}, fmt.Errorf("unknown phase %q", name)
}

// measure runs op from conc workers (numbered 0..conc-1, op's second
// argument) until n calls have been made or d has passed, after warmup
// untimed calls spread over the workers, and measures the server around it.
func (s *session) measure(ctx context.Context, name string, conc, n int, d time.Duration, warmup int,
	op func(ctx context.Context, worker int) error) (Phase, error) {
	for i := 0; i < warmup; i++ {
		if err := op(ctx, i%conc); err != nil {
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
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			var localErrs int
			var localFirst string
			for issued.Add(1) <= int64(n) && time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				err := op(ctx, w)
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
	for _, p := range r.Phases {
		if p.Note == "" && len(p.Extra) == 0 && p.Bytes == 0 && p.FirstError == "" {
			continue
		}
		fmt.Fprintf(w, "  %s:", p.Name)
		if p.Bytes != 0 {
			fmt.Fprintf(w, " %d bytes;", p.Bytes)
		}
		for _, k := range slices.Sorted(maps.Keys(p.Extra)) {
			fmt.Fprintf(w, " %s %.2f;", k, p.Extra[k])
		}
		if p.Note != "" {
			fmt.Fprintf(w, " %s", p.Note)
		}
		if p.FirstError != "" {
			fmt.Fprintf(w, " first error: %s", p.FirstError)
		}
		fmt.Fprintln(w)
	}
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
	// Every phase of either report, in A's order then B's: a phase one
	// server could not run (a repo size too slow to fill) shows as "-".
	var names []string
	for _, r := range []*Report{a, b} {
		for _, p := range r.Phases {
			if !slices.Contains(names, p.Name) {
				names = append(names, p.Name)
			}
		}
	}
	find := func(r *Report, name string) *Phase {
		if i := slices.IndexFunc(r.Phases, func(p Phase) bool { return p.Name == name }); i >= 0 {
			return &r.Phases[i]
		}
		return nil
	}
	width := len("  of which file-backed, RssFile (MiB)")
	for _, name := range names {
		p := find(a, name)
		if p == nil {
			p = find(b, name)
		}
		width = max(width, len(fmt.Sprintf("%s c=%d server CPU ms/op", p.Name, p.Concurrency)))
		for k := range p.Extra {
			width = max(width, len(p.Name)+1+len(k))
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tbetter\t%s\t%s\t%s/%s\t\n", width, "figure", a.Label, b.Label, a.Label, b.Label)
	missing := math.NaN()
	row := func(name, better string, x, y float64, format string) {
		if math.IsNaN(x) && math.IsNaN(y) {
			return
		}
		ratio := "-"
		if y != 0 && !math.IsNaN(x) && !math.IsNaN(y) {
			ratio = fmt.Sprintf("%.2fx", x/y)
		}
		fx, fy := "-", "-"
		if !math.IsNaN(x) {
			fx = fmt.Sprintf(format, x)
		}
		if !math.IsNaN(y) {
			fy = fmt.Sprintf(format, y)
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t\n", width, name, better, fx, fy, ratio)
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
	for _, name := range names {
		pa, pb := find(a, name), find(b, name)
		get := func(p *Phase, f func(*Phase) float64) float64 {
			if p == nil {
				return missing
			}
			return f(p)
		}
		both := func(f func(*Phase) float64) (float64, float64) { return get(pa, f), get(pb, f) }
		p := pa
		if p == nil {
			p = pb
		}
		n := fmt.Sprintf("%s c=%d", p.Name, p.Concurrency)
		x, y := both(func(p *Phase) float64 { return p.OpsPerSec })
		row(n+" ops/s", "higher", x, y, "%.1f")
		x, y = both(func(p *Phase) float64 { return p.P50ms })
		row(n+" p50 ms", "lower", x, y, "%.2f")
		x, y = both(func(p *Phase) float64 { return p.P90ms })
		row(n+" p90 ms", "lower", x, y, "%.2f")
		x, y = both(func(p *Phase) float64 { return p.P99ms })
		row(n+" p99 ms", "lower", x, y, "%.2f")
		if a.PID != 0 && b.PID != 0 {
			x, y = both(func(p *Phase) float64 { return p.CPUPerOpMs })
			row(n+" server CPU ms/op", "lower", x, y, "%.3f")
			x, y = both(func(p *Phase) float64 {
				if p.After == nil {
					return math.NaN()
				}
				return p.After.RSS
			})
			row(n+" RSS after (MiB)", "lower", x, y, "%.1f")
		}
		if p.Bytes != 0 {
			x, y = both(func(p *Phase) float64 { return float64(p.Bytes) })
			row(n+" bytes", "lower", x, y, "%.0f")
		}
		if p.ClientCPUms != 0 {
			x, y = both(func(p *Phase) float64 { return p.ClientCPUms })
			row(n+" load tool CPU ms", "lower", x, y, "%.0f")
		}
		keys := map[string]bool{}
		for _, q := range []*Phase{pa, pb} {
			if q != nil {
				for k := range q.Extra {
					keys[k] = true
				}
			}
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			better := "lower"
			if strings.HasSuffix(k, "/s") {
				better = "higher"
			}
			x, y = both(func(p *Phase) float64 {
				if v, ok := p.Extra[k]; ok {
					return v
				}
				return math.NaN()
			})
			row(p.Name+" "+k, better, x, y, "%.2f")
		}
		x, y = both(func(p *Phase) float64 { return float64(p.Errors) })
		if (!math.IsNaN(x) && x > 0) || (!math.IsNaN(y) && y > 0) {
			row(n+" errors", "lower", x, y, "%.0f")
		}
	}
	return tw.Flush()
}
