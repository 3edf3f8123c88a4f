package sequencer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/events"
	"github.com/bluesky-social/indigo/events/schedulers/sequential"
	"github.com/gorilla/websocket"

	"github.com/hearth-pds/hearth/store"
)

// writeAndPublish is what a writer does: its transaction stores the event
// with its frame, then, after the commit, it publishes the same bytes.
func writeAndPublish(tb testing.TB, st *memStore, s *Sequencer, n int) []store.Event {
	out := make([]store.Event, 0, n)
	for range n {
		ev := st.write(tb, identityFrame)
		s.Publish(ev)
		out = append(out, ev)
	}
	return out
}

func TestLiveOnlyWithoutCursor(t *testing.T) {
	st := &memStore{}
	for range 5 {
		st.write(t, identityFrame)
	}
	s, url := newTestSequencer(t, st, Config{})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })

	writeAndPublish(t, st, s, 3)
	if got, want := readSeqs(t, c, 3), seqRange(6, 8); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestReplayThenLive(t *testing.T) {
	st := &memStore{}
	for range 1200 { // more than two replay pages
		st.write(t, identityFrame)
	}
	s, url := newTestSequencer(t, st, Config{})
	c := dial(t, url, "cursor=100")
	if got, want := readSeqs(t, c, 1100), seqRange(101, 1200); !slices.Equal(got, want) {
		t.Fatalf("replay: got %d events %v..., want 101..1200", len(got), got[:min(5, len(got))])
	}
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	writeAndPublish(t, st, s, 50)
	if got, want := readSeqs(t, c, 50), seqRange(1201, 1250); !slices.Equal(got, want) {
		t.Errorf("live: got %v, want %v", got, want)
	}
}

func TestCursorZeroReplaysEverything(t *testing.T) {
	st := &memStore{}
	for range 10 {
		st.write(t, identityFrame)
	}
	_, url := newTestSequencer(t, st, Config{})
	c := dial(t, url, "cursor=0")
	if got, want := readSeqs(t, c, 10), seqRange(1, 10); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestHandoffUnderConcurrentWrites is the replay/live race: writers
// commit and publish concurrently (so publishes arrive out of seq order
// and the seq has gaps) while subscribers join with every kind of cursor,
// one of them indigo's consumer. Each must see exactly the stored events
// after its start, in order, once. Small pages and a small cutover bound
// make every subscriber cross the replay/live boundary, and some restart
// their replay.
func TestHandoffUnderConcurrentWrites(t *testing.T) {
	st := &memStore{}
	for range 300 {
		st.write(t, identityFrame)
	}
	s, url := newTestSequencer(t, st, Config{MaxBuffer: 100_000, PollInterval: 50 * time.Millisecond, pageSize: 16, cutoverCap: 32})

	// Writers run until every subscriber has joined, and a little longer.
	const writers = 4
	var wg sync.WaitGroup
	quit := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			for i := 0; ; i++ {
				select {
				case <-quit:
					return
				default:
				}
				if i%97 == 0 {
					st.skip() // a seq that is never used
				}
				ev := st.write(t, identityFrame)
				if rng.IntN(50) == 0 {
					continue // lost hand-off: only the store has it
				}
				if rng.IntN(4) == 0 {
					time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
				}
				s.Publish(ev)
			}
		}()
	}

	type result struct {
		name   string
		cursor int64 // -1: none
		got    []int64
		err    error
	}
	results := make(chan result)
	var final atomic.Int64 // set once writing is over
	subscribe := func(name string, cursor int64) {
		q := ""
		if cursor >= 0 {
			q = fmt.Sprint("cursor=", cursor)
		}
		c := dial(t, url, q)
		go func() {
			r := result{name: name, cursor: cursor}
			for {
				xev, err := tryReadEvent(c, 20*time.Second)
				if err != nil {
					r.err = err
					results <- r
					return
				}
				seq, ok := xev.GetSequence()
				if !ok {
					r.err = fmt.Errorf("unexpected frame: %s", describe(xev))
					results <- r
					return
				}
				r.got = append(r.got, seq)
				if f := final.Load(); f != 0 && seq >= f {
					results <- r
					return
				}
			}
		}()
	}
	indigo := func(name string, cursor int64) {
		c := dial(t, url, fmt.Sprint("cursor=", cursor))
		ctx, cancel := context.WithCancel(context.Background())
		r := result{name: name, cursor: cursor}
		var mu sync.Mutex
		sched := sequential.NewScheduler(name, func(_ context.Context, xev *events.XRPCStreamEvent) error {
			seq, ok := xev.GetSequence()
			if !ok {
				return fmt.Errorf("unexpected frame: %s", describe(xev))
			}
			mu.Lock()
			r.got = append(r.got, seq)
			mu.Unlock()
			if f := final.Load(); f != 0 && seq >= f {
				cancel()
			}
			return nil
		})
		go func() {
			err := events.HandleRepoStream(ctx, c, sched, slog.New(slog.NewTextHandler(io.Discard, nil)))
			mu.Lock()
			defer mu.Unlock()
			if ctx.Err() == nil {
				r.err = err
			}
			results <- r
		}()
	}

	n := 0
	subscribe("cursor-0", 0)
	subscribe("live", -1)
	indigo("indigo-0", 0)
	n += 3
	for i := range 9 {
		time.Sleep(time.Duration(5+i*7) * time.Millisecond)
		head, _ := st.MaxSeq(context.Background())
		switch i % 3 {
		case 0:
			subscribe(fmt.Sprint("head-", i), head)
		case 1:
			subscribe(fmt.Sprint("mid-", i), head/2)
		case 2:
			subscribe(fmt.Sprint("live-", i), -1)
		}
		n++
	}
	head, _ := st.MaxSeq(context.Background())
	indigo("indigo-mid", head/3)
	n++
	time.Sleep(100 * time.Millisecond)
	close(quit)
	wg.Wait()
	// One last event marks the end; subscribers stop when they see it.
	f, _ := st.MaxSeq(context.Background())
	f++
	final.Store(f)
	writeAndPublish(t, st, s, 1)

	for range n {
		r := <-results
		if r.err != nil {
			t.Errorf("%s (cursor %d): stream ended after %d events: %v", r.name, r.cursor, len(r.got), r.err)
			continue
		}
		from := r.cursor
		if from < 0 {
			if len(r.got) == 0 {
				t.Errorf("%s: received nothing", r.name)
				continue
			}
			from = r.got[0] - 1 // live: no gap from wherever it started
		}
		if want := st.seqsAfter(from); !slices.Equal(r.got, want) {
			t.Errorf("%s (cursor %d): got %d events, want the %d stored after %d; %s",
				r.name, r.cursor, len(r.got), len(want), from, firstDiff(r.got, want))
		}
	}
	t.Logf("stats: %+v, store reads: %d", s.Stats(), st.reads.Load())
}

func firstDiff(a, b []int64) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("index %d: got %d, want %d", i, a[i], b[i])
		}
	}
	return fmt.Sprintf("lengths %d and %d", len(a), len(b))
}

// A subscriber that receives more live events during its cutover than the
// cutover bound allows is not dropped: it starts its replay over and ends
// with every event, in order, once.
func TestCutoverOverflowRestartsReplay(t *testing.T) {
	st := &memStore{}
	for range 200 {
		st.write(t, identityFrame)
	}
	s, url := newTestSequencer(t, st, Config{MaxBuffer: 100_000, PollInterval: time.Hour, pageSize: 50, cutoverCap: 10})
	publish := func(n int) {
		writeAndPublish(t, st, s, n)
		waitFor(t, "delivery", 5*time.Second, func() bool {
			head, _ := st.MaxSeq(context.Background())
			return s.head.Load() == head
		})
	}
	var overflowed atomic.Bool
	hook := func(cursor int64) {
		switch {
		case cursor == 150:
			// The last replay page: the head moves on, so the subscriber
			// registers short of it and reads the store once more.
			publish(10)
		case s.registered() == 1 && overflowed.CompareAndSwap(false, true):
			// That cutover read: more live events arrive than it may hold.
			publish(20)
		}
	}
	st.onRead.Store(&hook)

	c := dial(t, url, "cursor=0")
	if got, want := readSeqs(t, c, 230), seqRange(1, 230); !slices.Equal(got, want) {
		t.Fatalf("got %d events: %s", len(got), firstDiff(got, want))
	}
	if !overflowed.Load() {
		t.Fatal("the cutover read did not happen")
	}
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	writeAndPublish(t, st, s, 1)
	if got := readSeqs(t, c, 1); got[0] != 231 {
		t.Errorf("live: got %v, want [231]", got)
	}
	if st := s.Stats(); st.Restarts != 1 || st.Dropped != 0 {
		t.Errorf("stats %+v: want 1 restart and no drops", st)
	}
}

// A burst larger than MaxBuffer reaching a subscriber that was keeping up
// (here, the broadcaster catching up from the store after a stall) sends
// it back to the store rather than dropping it.
func TestBurstSendsBackToStore(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{MaxBuffer: 50, PollInterval: time.Hour})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	for range 2000 {
		st.write(t, identityFrame) // committed while the hand-off was lost
	}
	s.Publish(st.write(t, identityFrame)) // the gap makes the broadcaster read 2000 events
	if got, want := readSeqs(t, c, 2001), seqRange(1, 2001); !slices.Equal(got, want) {
		t.Fatalf("got %d events: %s", len(got), firstDiff(got, want))
	}
	if st := s.Stats(); st.Restarts == 0 || st.Dropped != 0 {
		t.Errorf("stats %+v: want restarts and no drops", st)
	}
}

func TestPublishOutOfOrderFillsFromStore(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{PollInterval: time.Hour})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })

	e1 := st.write(t, identityFrame)
	e2 := st.write(t, identityFrame)
	e3 := st.write(t, identityFrame)
	s.Publish(e3) // e1 and e2's writers are slower
	if got, want := readSeqs(t, c, 3), seqRange(1, 3); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	s.Publish(e2, e1)
	s.Publish(e3)
	e4 := st.write(t, identityFrame)
	s.Publish(e4)
	if got := readSeqs(t, c, 1); got[0] != 4 {
		t.Errorf("after late publishes got %v, want [4]", got)
	}
}

func TestPublishAcrossUnusedSeq(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{PollInterval: time.Hour})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })

	s.Publish(st.write(t, identityFrame))
	st.skip()
	s.Publish(st.write(t, identityFrame))
	if got, want := readSeqs(t, c, 2), []int64{1, 3}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPollDeliversUnpublished(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{PollInterval: 20 * time.Millisecond})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	st.write(t, identityFrame) // committed, never published
	if got := readSeqs(t, c, 1); got[0] != 1 {
		t.Errorf("got %v, want [1]", got)
	}
}

func TestBroadcastRecoversFromStoreFailure(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{PollInterval: 20 * time.Millisecond})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })

	st.failReads.Store(true)
	st.write(t, identityFrame)
	s.Publish(st.write(t, identityFrame)) // the gap before it cannot be filled yet
	time.Sleep(60 * time.Millisecond)
	st.failReads.Store(false)
	if got, want := readSeqs(t, c, 2), seqRange(1, 2); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPublishOverflowFallsBackToStore(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{PollInterval: time.Hour, inboxCap: 4})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	var batch []store.Event
	for range 10 {
		batch = append(batch, st.write(t, identityFrame))
	}
	s.Publish(batch...) // too many for the hand-off: dropped, resync
	if got, want := readSeqs(t, c, 10), seqRange(1, 10); !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Writers never wait for the broadcaster, even while it is stuck in a
// slow store read: the hand-off overflows, and the events come back from
// the store afterwards.
func TestPublishDoesNotWaitForStuckBroadcaster(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{PollInterval: time.Hour, inboxCap: 64})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })

	st.readDelay.Store(int64(300 * time.Millisecond))
	st.write(t, identityFrame)
	s.Publish(st.write(t, identityFrame)) // a gap: the broadcaster reads the store
	waitFor(t, "the broadcaster's store read", 5*time.Second, func() bool { return st.reads.Load() > 0 })

	const total = 5000
	var slowest time.Duration
	start := time.Now()
	for range total {
		ev := st.write(t, identityFrame)
		t0 := time.Now()
		s.Publish(ev)
		slowest = max(slowest, time.Since(t0))
	}
	elapsed := time.Since(start)
	t.Logf("%d publishes in %v while the broadcaster was stuck; slowest %v", total, elapsed, slowest)
	if elapsed > 250*time.Millisecond {
		t.Errorf("publishing took %v: it waited for the broadcaster", elapsed)
	}
	st.readDelay.Store(0)
	if got, want := readSeqs(t, c, total+2), seqRange(1, total+2); !slices.Equal(got, want) {
		t.Errorf("got %d events: %s", len(got), firstDiff(got, want))
	}
}

func TestOutdatedCursor(t *testing.T) {
	st := &memStore{}
	for range 100 {
		st.write(t, identityFrame)
	}
	st.prune(51)
	s, url := newTestSequencer(t, st, Config{})

	c := dial(t, url, "cursor=10")
	xev := readEvent(t, c)
	if xev.RepoInfo == nil || xev.RepoInfo.Name != "OutdatedCursor" || xev.RepoInfo.Message == nil {
		t.Fatalf("first frame: got %s, want info OutdatedCursor", describe(xev))
	}
	if got, want := readSeqs(t, c, 50), seqRange(51, 100); !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	writeAndPublish(t, st, s, 1)
	if got := readSeqs(t, c, 1); got[0] != 101 {
		t.Errorf("live: got %v, want [101]", got)
	}

	// A cursor just before the oldest kept event has missed nothing.
	c2 := dial(t, url, "cursor=50")
	if got, want := readSeqs(t, c2, 51), seqRange(51, 101); !slices.Equal(got, want) {
		t.Errorf("cursor 50: got %v, want %v", got, want)
	}
}

func TestOutdatedCursorEverythingPruned(t *testing.T) {
	st := &memStore{}
	for range 20 {
		st.write(t, identityFrame)
	}
	st.prune(21) // nothing kept; the max seq stays 20
	s, url := newTestSequencer(t, st, Config{})
	c := dial(t, url, "cursor=5")
	if xev := readEvent(t, c); xev.RepoInfo == nil || xev.RepoInfo.Name != "OutdatedCursor" {
		t.Fatalf("first frame: got %s, want info OutdatedCursor", describe(xev))
	}
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	writeAndPublish(t, st, s, 1)
	if got := readSeqs(t, c, 1); got[0] != 21 {
		t.Errorf("got %v, want [21]", got)
	}
}

func TestFutureCursor(t *testing.T) {
	st := &memStore{}
	for range 5 {
		st.write(t, identityFrame)
	}
	s, url := newTestSequencer(t, st, Config{})

	c := dial(t, url, "cursor=6")
	code, frames := expectClose(t, c)
	if len(frames) != 1 || frames[0].Error == nil || frames[0].Error.Error != "FutureCursor" {
		t.Fatalf("got frames %v, want one FutureCursor error", frames)
	}
	if code != websocket.ClosePolicyViolation {
		t.Errorf("close code %d, want %d", code, websocket.ClosePolicyViolation)
	}

	// The current seq itself is not in the future.
	c2 := dial(t, url, "cursor=5")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	writeAndPublish(t, st, s, 1)
	if got := readSeqs(t, c2, 1); got[0] != 6 {
		t.Errorf("got %v, want [6]", got)
	}
}

func TestRequestErrorsBeforeUpgrade(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{})
	httpURL := "http" + strings.TrimPrefix(url, "ws")

	for _, tc := range []struct {
		name, method, query string
		upgrade             bool
		status              int
		errName             string
	}{
		{"bad cursor", http.MethodGet, "cursor=abc", true, http.StatusBadRequest, "InvalidRequest"},
		{"float cursor", http.MethodGet, "cursor=1.5", true, http.StatusBadRequest, "InvalidRequest"},
		{"post", http.MethodPost, "", true, http.StatusMethodNotAllowed, "InvalidRequest"},
		{"no upgrade", http.MethodGet, "", false, http.StatusUpgradeRequired, "InvalidRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, httpURL+"?"+tc.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.upgrade {
				req.Header.Set("Connection", "Upgrade")
				req.Header.Set("Upgrade", "websocket")
				req.Header.Set("Sec-WebSocket-Version", "13")
				req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct{ Error, Message string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("body: %v", err)
			}
			if resp.StatusCode != tc.status || body.Error != tc.errName {
				t.Errorf("got %d %+v, want %d %s", resp.StatusCode, body, tc.status, tc.errName)
			}
		})
	}
	if n := s.Stats().Subscribers; n != 0 {
		t.Errorf("%d subscribers left behind", n)
	}

	// The dialer sees the refusal as a failed handshake with the status.
	_, resp, err := websocket.DefaultDialer.Dial(url+"?cursor=x", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("dial with a bad cursor: err %v, resp %v", err, resp)
	}
}

func TestEmptyAndNegativeCursor(t *testing.T) {
	st := &memStore{}
	for range 3 {
		st.write(t, identityFrame)
	}
	s, url := newTestSequencer(t, st, Config{})
	c := dial(t, url, "cursor=-7") // read as 0
	if got, want := readSeqs(t, c, 3), seqRange(1, 3); !slices.Equal(got, want) {
		t.Errorf("negative cursor: got %v, want %v", got, want)
	}
	c2 := dial(t, url, "cursor=") // read as no cursor
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 2 })
	writeAndPublish(t, st, s, 1)
	if got := readSeqs(t, c2, 1); got[0] != 4 {
		t.Errorf("empty cursor: got %v, want [4]", got)
	}
}

// A subscriber that stops reading is dropped with ConsumerTooSlow once
// MaxBuffer events wait for it, while another subscriber receives every
// event and Publish never waits for either.
func TestConsumerTooSlow(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{MaxBuffer: 20, PingInterval: time.Minute, WriteTimeout: 30 * time.Second})
	slow := dial(t, url, "")
	fast := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 2 })

	// 64 KiB frames fill the loopback socket buffers after some megabytes.
	const total = 400
	fastGot := make(chan []int64, 1)
	go func() {
		var got []int64
		for range total {
			xev, err := tryReadEvent(fast, 20*time.Second)
			if err != nil {
				t.Errorf("fast subscriber: %v after %d events", err, len(got))
				break
			}
			seq, _ := xev.GetSequence()
			got = append(got, seq)
		}
		fastGot <- got
	}()

	frame := commitFrame(64 << 10)
	var slowest time.Duration
	for range total {
		ev := st.write(t, frame)
		start := time.Now()
		s.Publish(ev)
		slowest = max(slowest, time.Since(start))
		time.Sleep(200 * time.Microsecond)
	}
	t.Logf("slowest Publish: %v", slowest)
	if slowest > 50*time.Millisecond {
		t.Errorf("a Publish took %v", slowest)
	}
	if got := <-fastGot; !slices.Equal(got, seqRange(1, total)) {
		t.Errorf("fast subscriber: got %d events, want 1..%d (%s)", len(got), total, firstDiff(got, seqRange(1, total)))
	}
	waitFor(t, "the slow subscriber's drop", 10*time.Second, func() bool { return s.Stats().Dropped == 1 })

	// The slow subscriber reads at last: the events that fitted in the
	// socket buffers, in order, then the error frame and the close.
	code, frames := expectClose(t, slow)
	if len(frames) < 2 {
		t.Fatalf("slow subscriber got %d frames", len(frames))
	}
	last := frames[len(frames)-1]
	if last.Error == nil || last.Error.Error != "ConsumerTooSlow" {
		t.Fatalf("last frame: got %s, want error ConsumerTooSlow", describe(last))
	}
	var seqs []int64
	for _, f := range frames[:len(frames)-1] {
		seq, ok := f.GetSequence()
		if !ok {
			t.Fatalf("unexpected frame %s", describe(f))
		}
		seqs = append(seqs, seq)
	}
	if want := seqRange(1, int64(len(seqs))); !slices.Equal(seqs, want) || len(seqs) >= total {
		t.Errorf("slow subscriber got %d events before the error (%s)", len(seqs), firstDiff(seqs, want))
	}
	if code != websocket.ClosePolicyViolation {
		t.Errorf("close code %d, want %d", code, websocket.ClosePolicyViolation)
	}
	t.Logf("slow subscriber got %d events before ConsumerTooSlow", len(seqs))
	waitFor(t, "the slow subscriber to be gone", 5*time.Second, func() bool { return s.Stats().Subscribers == 1 })
}

func TestPing(t *testing.T) {
	st := &memStore{}
	_, url := newTestSequencer(t, st, Config{PingInterval: 40 * time.Millisecond})
	c := dial(t, url, "")
	var pings atomic.Int32
	c.SetPingHandler(func(data string) error {
		pings.Add(1)
		return c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go func() {
		for {
			if _, _, err := c.NextReader(); err != nil {
				return
			}
		}
	}()
	// The peer answers every ping, so it outlives many pong deadlines.
	time.Sleep(400 * time.Millisecond)
	if n := pings.Load(); n < 5 {
		t.Errorf("%d pings in 400 ms at a 40 ms interval", n)
	}
}

// A peer that answers no ping (it reads nothing) is disconnected after two
// intervals, even when no event is flowing.
func TestSilentPeerIsDisconnected(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{PingInterval: 40 * time.Millisecond})
	dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	waitFor(t, "disconnection", 5*time.Second, func() bool { return s.Stats().Subscribers == 0 })
	if s.registered() != 0 {
		t.Error("the subscriber is still registered")
	}
}

func TestPeerCloseIsNoticed(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{})
	c := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	c.Close() // no close frame: the TCP connection just goes
	waitFor(t, "disconnection", 5*time.Second, func() bool { return s.Stats().Subscribers == 0 })

	c2 := dial(t, url, "")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
	if err := c2.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "disconnection", 5*time.Second, func() bool { return s.Stats().Subscribers == 0 })
}

func TestStoreFailureDuringReplay(t *testing.T) {
	st := &memStore{}
	for range 10 {
		st.write(t, identityFrame)
	}
	_, url := newTestSequencer(t, st, Config{})
	st.failReads.Store(true)
	c := dial(t, url, "cursor=0")
	code, frames := expectClose(t, c)
	if len(frames) != 1 || frames[0].Error == nil || frames[0].Error.Error != "InternalServerError" {
		t.Fatalf("got %d frames, want one InternalServerError", len(frames))
	}
	if code != websocket.ClosePolicyViolation {
		t.Errorf("close code %d", code)
	}
}

// Close sends every subscriber a close frame, live or mid-replay, refuses
// new ones, and makes Publish a no-op.
func TestCloseSendsCloseFrames(t *testing.T) {
	st := &memStore{}
	for range 2000 {
		st.write(t, identityFrame)
	}
	st.readDelay.Store(int64(5 * time.Millisecond))
	s, url := newTestSequencer(t, st, Config{pageSize: 10})
	live := dial(t, url, "")
	live2 := dial(t, url, "")
	replaying := dial(t, url, "cursor=0")
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 2 })
	readSeqs(t, replaying, 5)

	start := time.Now()
	closed := make(chan struct{})
	go func() {
		s.Close()
		close(closed)
	}()
	for name, c := range map[string]*websocket.Conn{"live": live, "live2": live2, "replaying": replaying} {
		code, _ := expectClose(t, c)
		if code != websocket.CloseGoingAway {
			t.Errorf("%s: close code %d, want %d", name, code, websocket.CloseGoingAway)
		}
	}
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	t.Logf("Close took %v", time.Since(start))
	if n := s.Stats().Subscribers; n != 0 {
		t.Errorf("%d subscribers after Close", n)
	}
	s.Publish(st.write(t, identityFrame)) // must not panic or block

	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if !errors.Is(err, websocket.ErrBadHandshake) || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: %v, %v", err, resp)
	}
}

// Close cuts a subscriber stuck writing to a peer that reads nothing.
func TestCloseCutsStuckSubscriber(t *testing.T) {
	st := &memStore{}
	s, url := newTestSequencer(t, st, Config{MaxBuffer: 100_000, WriteTimeout: time.Minute})
	dial(t, url, "") // never reads
	waitFor(t, "registration", 5*time.Second, func() bool { return s.registered() == 1 })
	frame := commitFrame(256 << 10)
	for range 100 { // 25 MiB: more than the socket buffers hold
		s.Publish(st.write(t, frame))
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > closeGrace+2*closeWait+time.Second {
		t.Errorf("Close took %v", d)
	}
	if n := s.Stats().Subscribers; n != 0 {
		t.Errorf("%d subscribers after Close", n)
	}
}
