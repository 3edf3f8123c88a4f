package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/hearth-pds/hearth/bench"
)

// writeWarmup is how many untimed createRecords precede a write phase: a
// JIT's warm-up, and the first write of an account (its cached key).
const writeWarmup = 20

// writer is an account the record phases write to.
type writer struct {
	did, token string
	records    int // records the load made in it
}

// writer creates a fresh account, untimed.
func (s *session) writer(ctx context.Context) (*writer, error) {
	sess, err := s.c.CreateAccount(ctx, s.newAccount())
	if err != nil {
		return nil, fmt.Errorf("create a writing account: %w", err)
	}
	return &writer{did: sess.DID, token: sess.AccessJWT}, nil
}

// post creates one record in w's repository.
func (s *session) post(ctx context.Context, w *writer) (bench.Created, error) {
	n := int(s.posts.Add(1))
	return s.c.CreateRecord(ctx, w.token, w.did, bench.PostCollection, bench.Post(n))
}

func (s *session) recordPhase(ctx context.Context, name string) ([]Phase, error) {
	o := s.o
	switch name {
	case phaseRecordSeq, phaseRecordConc, phaseRecordOne:
		conc, accounts := o.Concurrency, o.Concurrency
		switch name {
		case phaseRecordSeq:
			conc, accounts = 1, 1
		case phaseRecordOne:
			accounts = 1
		}
		ws := make([]*writer, accounts)
		for i := range ws {
			w, err := s.writer(ctx)
			if err != nil {
				return nil, err
			}
			ws[i] = w
		}
		ph, err := s.measure(ctx, name, conc, o.Records, o.RecordTime, writeWarmup, func(ctx context.Context, worker int) error {
			_, err := s.post(ctx, ws[worker%len(ws)])
			return err
		})
		ph.Note = fmt.Sprintf("%d account(s)", accounts)
		return []Phase{ph}, err

	case phaseRepoSize:
		return s.repoSizes(ctx)

	case phaseGetRepo:
		w, err := s.writer(ctx)
		if err != nil {
			return nil, err
		}
		fill, err := s.fill(ctx, w, o.GetRepoRecords)
		if err != nil {
			return nil, err
		}
		var size atomic.Int64
		ph, err := s.measure(ctx, fmt.Sprintf("getRepo-%s", count(o.GetRepoRecords)), 1, o.GetRepoN, o.FillTime, 1,
			func(ctx context.Context, _ int) error {
				n, err := s.c.GetRepo(ctx, w.did)
				size.Store(n)
				return err
			})
		ph.Bytes = size.Load()
		if ph.P50ms > 0 {
			ph.Extra = map[string]float64{"throughput at p50, MiB/s": bench.MiB(ph.Bytes) / (ph.P50ms / 1000)}
		}
		ph.Note = fmt.Sprintf("%d records, %.1f MiB CAR; fill %s", w.records, bench.MiB(ph.Bytes), fill)
		return []Phase{fill.phase(ph.Name), ph}, err
	}
	return nil, fmt.Errorf("unknown phase %q", name)
}

// repoSizes fills one repository to each of the sizes in turn and times
// single createRecords at each.
func (s *session) repoSizes(ctx context.Context) ([]Phase, error) {
	o := s.o
	sizes := slices.Clone(o.Sizes)
	slices.Sort(sizes)
	var (
		out []Phase
		w   *writer
	)
	for _, size := range sizes {
		if w == nil || w.records > size {
			var err error
			if w, err = s.writer(ctx); err != nil {
				return out, err
			}
		}
		fmt.Fprintf(s.log, "load: %s: filling a repository to %d records ...\n", o.Label, size)
		fill, err := s.fill(ctx, w, size)
		if err != nil {
			return out, err
		}
		name := "createRecord@" + count(size)
		out = append(out, fill.phase(name))
		ph, err := s.measure(ctx, name, 1, o.SizeSamples, o.RecordTime, 0, func(ctx context.Context, _ int) error {
			_, err := s.post(ctx, w)
			w.records++ // a failed one may have been written: an estimate
			return err
		})
		if err != nil {
			return out, err
		}
		ph.Note = fmt.Sprintf("at %d records; fill %s", size, fill)
		out = append(out, ph)
	}
	return out, nil
}

// fillResult is how a repository was filled.
type fillResult struct {
	records int
	batches int
	elapsed time.Duration
	cpu     time.Duration
	lat     []time.Duration // of each applyWrites, sorted
}

func (f fillResult) String() string {
	if f.batches == 0 {
		return "none needed"
	}
	return fmt.Sprintf("%d records in %d applyWrites, %.0f records/s", f.records, f.batches, float64(f.records)/f.elapsed.Seconds())
}

// phase is the fill as its own report row, "applyWrites200 fill→<next>".
func (f fillResult) phase(next string) Phase {
	ph := Phase{
		Name: "applyWrites200 fill→" + next, Concurrency: 1, OK: f.batches, Seconds: f.elapsed.Seconds(),
		P50ms: ms(percentile(f.lat, 0.50)),
		P90ms: ms(percentile(f.lat, 0.90)),
		P99ms: ms(percentile(f.lat, 0.99)),
	}
	if len(f.lat) > 0 {
		ph.MaxMs = ms(f.lat[len(f.lat)-1])
	}
	if f.elapsed > 0 {
		ph.OpsPerSec = float64(f.batches) / f.elapsed.Seconds()
		ph.Extra = map[string]float64{"records/s": float64(f.records) / f.elapsed.Seconds()}
	}
	if f.batches > 0 && f.cpu > 0 {
		ph.CPUms = ms(f.cpu)
		ph.CPUPerOpMs = ph.CPUms / float64(f.batches)
	}
	ph.Note = "one op = one applyWrites of up to 200 creates"
	return ph
}

// fill adds records to w's repository with applyWrites batches of 200
// until it holds size, bounded by -fill-time.
func (s *session) fill(ctx context.Context, w *writer, size int) (fillResult, error) {
	var f fillResult
	ctx, cancel := context.WithTimeout(ctx, s.o.FillTime)
	defer cancel()
	cpu0, err := cpu(s.o.PID)
	if err != nil {
		return f, err
	}
	start := time.Now()
	batch := make([]map[string]any, 0, bench.MaxBatch)
	for w.records < size {
		batch = batch[:0]
		for range min(bench.MaxBatch, size-w.records) {
			batch = append(batch, bench.Post(int(s.posts.Add(1))))
		}
		t0 := time.Now()
		if err := s.c.CreateRecords(ctx, w.token, w.did, bench.PostCollection, batch); err != nil {
			return f, fmt.Errorf("fill to %d records (at %d): %w", size, w.records, err)
		}
		f.lat = append(f.lat, time.Since(t0))
		w.records += len(batch)
		f.records += len(batch)
		f.batches++
	}
	f.elapsed = time.Since(start)
	cpu1, err := cpu(s.o.PID)
	if err != nil {
		return f, err
	}
	f.cpu = cpu1 - cpu0
	slices.Sort(f.lat)
	return f, nil
}

// count is n as 1k, 10k, 100k, or the plain number.
func count(n int) string {
	if n >= 1000 && n%1000 == 0 {
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}
