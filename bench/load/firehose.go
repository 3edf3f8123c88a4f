package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hearth-pds/hearth/bench"
)

// dialers is how many subscribers connect at once: enough to open 500
// quickly, few enough not to overflow a listen backlog.
const dialers = 16

// drainTime bounds the wait for the last deliveries after the last write.
const drainTime = 10 * time.Second

// firehose opens -subscribers live subscribeRepos streams, makes
// -firehose-commits createRecords at -firehose-rate from one account, and
// measures, for every (commit, subscriber) pair, the time from the
// createRecord answer to the subscriber's receipt of that #commit.
//
// The receipt can precede the answer (the server publishes before it
// writes the HTTP response), so latencies may be negative; the phase also
// reports the time from the request's start, an upper bound.
func (s *session) firehose(ctx context.Context) (Phase, error) {
	o := s.o
	name := fmt.Sprintf("firehose-%d", o.Subscribers)
	w, err := s.writer(ctx)
	if err != nil {
		return Phase{}, err
	}
	for range writeWarmup {
		if _, err := s.post(ctx, w); err != nil {
			return Phase{}, fmt.Errorf("warm-up: %w", err)
		}
	}

	subs := make([]*bench.Subscriber, o.Subscribers)
	closeAll := func() {
		for _, sub := range subs {
			if sub != nil {
				sub.Close()
			}
		}
	}
	defer closeAll()
	var (
		wg      sync.WaitGroup
		dialErr error
		mu      sync.Mutex
		next    = make(chan int)
	)
	for range dialers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				sub, err := bench.Subscribe(ctx, s.o.URL, w.did)
				mu.Lock()
				if err != nil && dialErr == nil {
					dialErr = fmt.Errorf("subscriber %d: %w", i, err)
				}
				subs[i] = sub
				mu.Unlock()
			}
		}()
	}
	dialStart := time.Now()
	for i := range subs {
		next <- i
	}
	close(next)
	wg.Wait()
	if dialErr != nil {
		return Phase{}, dialErr
	}
	fmt.Fprintf(s.log, "load: %s: %d subscribers connected in %s\n", o.Label, len(subs), time.Since(dialStart).Round(time.Millisecond))
	// Let each server finish setting up its streams (the official PDS
	// starts a subscriber's outbox asynchronously).
	time.Sleep(time.Second)

	type sent struct{ start, answered time.Time }
	revs := make(map[string]sent, o.FirehoseN)
	order := make([]string, 0, o.FirehoseN) // revs in the order written
	var (
		writeErrs int
		firstErr  string
	)
	cpu0, err := cpu(o.PID)
	if err != nil {
		return Phase{}, err
	}
	self0, err := bench.ReadCPU(os.Getpid())
	if err != nil {
		return Phase{}, err
	}
	mem0 := memoryNow(o.PID)
	interval := time.Duration(float64(time.Second) / o.FirehoseRate)
	start := time.Now()
	for i := range o.FirehoseN {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return Phase{}, ctx.Err()
			}
		}
		t0 := time.Now()
		out, err := s.post(ctx, w)
		t1 := time.Now()
		if err == nil && out.Commit == nil {
			err = errors.New("createRecord answered no commit")
		}
		if err != nil {
			writeErrs++
			if firstErr == "" {
				firstErr = err.Error()
			}
			continue
		}
		revs[out.Commit.Rev] = sent{t0, t1}
		order = append(order, out.Commit.Rev)
	}
	writing := time.Since(start)

	// Wait for every subscriber to have every commit, or drainTime.
	deadline := time.Now().Add(drainTime)
	for time.Now().Before(deadline) {
		behind := 0
		for _, sub := range subs {
			if sub.Count() < len(revs) {
				behind++
			}
		}
		if behind == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cpu1, err := cpu(o.PID)
	if err != nil {
		return Phase{}, err
	}
	self1, err := bench.ReadCPU(os.Getpid())
	if err != nil {
		return Phase{}, err
	}
	after, err := memory(o.PID)
	if err != nil {
		return Phase{}, err
	}

	var (
		fromAnswer  = make([]time.Duration, 0, len(revs)*len(subs))
		fromRequest = make([]time.Duration, 0, len(revs)*len(subs))
		missing     int
		missedAt    = map[int]int{} // commit number → subscribers that missed it
		dropped     int
		firstDrop   error
	)
	for i, sub := range subs {
		got, _, streamErr := sub.Close()
		subs[i] = nil
		if streamErr != nil {
			dropped++
			if firstDrop == nil {
				firstDrop = streamErr
			}
		}
		seen := map[string]bool{}
		for _, d := range got {
			t, ok := revs[d.Rev]
			if !ok {
				continue // a warm-up commit still in flight
			}
			seen[d.Rev] = true
			fromAnswer = append(fromAnswer, d.At.Sub(t.answered))
			fromRequest = append(fromRequest, d.At.Sub(t.start))
		}
		missing += len(revs) - len(seen)
		for i, rev := range order {
			if !seen[rev] {
				missedAt[i]++
			}
		}
	}
	slices.Sort(fromAnswer)
	slices.Sort(fromRequest)
	ph := Phase{
		Name: name, Concurrency: o.Subscribers, OK: len(fromAnswer), Errors: missing + writeErrs,
		FirstError: firstErr,
		Seconds:    writing.Seconds(),
		OpsPerSec:  float64(len(fromAnswer)) / writing.Seconds(),
		P50ms:      ms(percentile(fromAnswer, 0.50)),
		P90ms:      ms(percentile(fromAnswer, 0.90)),
		P99ms:      ms(percentile(fromAnswer, 0.99)),
		After:      after,
		Extra: map[string]float64{
			"commits/s":                 float64(len(revs)) / writing.Seconds(),
			"p50 ms from request start": ms(percentile(fromRequest, 0.50)),
			"p99 ms from request start": ms(percentile(fromRequest, 0.99)),
			"missing deliveries":        float64(missing),
			"streams dropped":           float64(dropped),
		},
		ClientCPUms: ms(self1 - self0),
	}
	if len(fromAnswer) > 0 {
		ph.MaxMs = ms(fromAnswer[len(fromAnswer)-1])
	}
	if o.PID != 0 {
		ph.CPUms = ms(cpu1 - cpu0)
		ph.CPUPerOpMs = ph.CPUms / float64(max(1, len(revs)))
		if mem0 != nil {
			ph.Extra["server RSS growth MiB"] = after.RSS - mem0.RSS
		}
	}
	ph.Note = fmt.Sprintf("ops = deliveries (commits × subscribers); server CPU per commit; load tool CPU %.0f ms", ph.ClientCPUms)
	if dropped > 0 {
		ph.Note += fmt.Sprintf("; first dropped stream: %v", firstDrop)
	}
	if missing+writeErrs > 0 {
		var at []string
		for _, i := range slices.Sorted(maps.Keys(missedAt)) {
			if len(at) < 8 {
				at = append(at, fmt.Sprintf("#%d by %d", i+1, missedAt[i]))
			}
		}
		fmt.Fprintf(s.log, "load: %s: %s: %d deliveries missing (commits of %d: %s), %d write errors (first: %s), %d streams dropped\n",
			o.Label, name, missing, len(order), strings.Join(at, ", "), writeErrs, firstErr, dropped)
		ph.Note += fmt.Sprintf("; missed commits (number by subscribers): %s", strings.Join(at, ", "))
	}
	return ph, nil
}

// memoryNow is memory without an error, for a figure that is optional.
func memoryNow(pid int) *MemoryMiB {
	m, _ := memory(pid)
	return m
}
