package sequencer

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

var (
	fanoutSubs  = flag.Int("fanout.subs", 500, "BenchmarkFanout: subscribers")
	fanoutRates = flag.String("fanout.rates", "100,500", "BenchmarkFanout: publish rates (events/s), comma-separated")
	fanoutSize  = flag.Int("fanout.size", 1500, "BenchmarkFanout: bytes of blocks per commit frame")
)

// BenchmarkFanout measures delivery latency, from Publish to the frame's
// arrival at a subscriber, with many subscribers on loopback. Events are
// published at a fixed rate (a PDS's writes are paced by its clients, and
// an unpaced loop would measure queueing, not latency); b.N is the number
// of events. Every delivery is one sample: p50, p99 and max over
// subscribers × events.
func BenchmarkFanout(b *testing.B) {
	var rates []int
	for _, f := range strings.Split(*fanoutRates, ",") {
		var r int
		if _, err := fmt.Sscan(f, &r); err != nil || r <= 0 {
			b.Fatalf("bad -fanout.rates entry %q", f)
		}
		rates = append(rates, r)
	}
	for _, rate := range rates {
		b.Run(fmt.Sprintf("subs=%d/rate=%d", *fanoutSubs, rate), func(b *testing.B) {
			benchFanout(b, *fanoutSubs, rate, *fanoutSize)
		})
	}
}

func benchFanout(b *testing.B, subs, rate, size int) {
	st := &memStore{}
	s, url := newTestSequencer(b, st, Config{})
	n := b.N

	// Each subscriber records when its k-th frame arrived; frames arrive
	// in seq order, so the k-th frame is the k-th event published.
	recv := make([][]time.Time, subs)
	var ready, done sync.WaitGroup
	for i := range subs {
		c := dial(b, url, "")
		recv[i] = make([]time.Time, 0, n)
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Minute))
			for len(recv[i]) < n {
				typ, r, err := c.NextReader()
				if err != nil {
					b.Errorf("subscriber %d: %v after %d frames", i, err, len(recv[i]))
					return
				}
				recv[i] = append(recv[i], time.Now())
				if typ != websocket.BinaryMessage {
					b.Errorf("subscriber %d: message type %d", i, typ)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Errorf("subscriber %d: %v", i, err)
					return
				}
			}
		}()
	}
	ready.Wait()
	deadline := time.Now().Add(30 * time.Second)
	for s.registered() < subs {
		if time.Now().After(deadline) {
			b.Fatalf("only %d of %d subscribers registered", s.registered(), subs)
		}
		time.Sleep(time.Millisecond)
	}

	// Frames are encoded ahead so that pacing is not skewed; each event
	// is stored right before its Publish, as a writer commits then
	// publishes.
	encode := commitFrame(size)
	frames := make([][]byte, n)
	for i := range n {
		var err error
		if frames[i], err = encode(int64(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
	stored := func(seq int64) ([]byte, error) { return frames[seq-1], nil }
	sent := make([]time.Time, n)
	var slowestPublish time.Duration
	interval := time.Second / time.Duration(rate)
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for i := range n {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		ev := st.write(b, stored)
		sent[i] = time.Now()
		s.Publish(ev)
		slowestPublish = max(slowestPublish, time.Since(sent[i]))
	}
	done.Wait()
	b.StopTimer()
	cpu := cpuTime() - cpu0

	lat := make([]time.Duration, 0, subs*n)
	for _, times := range recv {
		for k, at := range times {
			lat = append(lat, at.Sub(sent[k]))
		}
	}
	if len(lat) != subs*n {
		b.Fatalf("%d deliveries, want %d", len(lat), subs*n)
	}
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.ReportMetric(float64(subs*n)/time.Since(start).Seconds(), "deliveries/s")
	b.ReportMetric(float64(slowestPublish)/float64(time.Microsecond), "max-publish-us")
	// CPU of the whole process (server and the in-process clients) per
	// delivery: unlike latency, it does not depend on what else runs on
	// the machine.
	b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(subs*n), "cpu-us/delivery")
	if d := s.Stats().Dropped; d != 0 {
		b.Errorf("%d subscribers dropped", d)
	}
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
