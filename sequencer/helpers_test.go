package sequencer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
	"github.com/gorilla/websocket"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/store"
)

// memStore is an in-memory Store. write plays a writer's transaction: it
// assigns the next seq, encodes the frame with it and stores it, all under
// one lock, as the single SQLite writer does.
type memStore struct {
	mu     sync.Mutex
	events []store.Event // kept events, increasing seq
	max    int64         // highest seq ever assigned

	readDelay atomic.Int64 // nanoseconds each EventsAfter sleeps
	failReads atomic.Bool
	reads     atomic.Int64
	onRead    atomic.Pointer[func(cursor int64)] // runs before each read
}

var _ Store = (*memStore)(nil)

var errStoreDown = errors.New("store is down")

func (m *memStore) EventsAfter(ctx context.Context, cursor int64, limit int) ([]store.Event, error) {
	m.reads.Add(1)
	if f := m.onRead.Load(); f != nil {
		(*f)(cursor)
	}
	if d := time.Duration(m.readDelay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if m.failReads.Load() {
		return nil, errStoreDown
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.events), func(i int) bool { return m.events[i].Seq > cursor })
	n := min(limit, len(m.events)-i)
	return slices.Clone(m.events[i : i+n]), nil
}

func (m *memStore) MaxSeq(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.max, nil
}

func (m *memStore) OldestSeq(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.events) == 0 {
		return 0, nil
	}
	return m.events[0].Seq, nil
}

// write stores the next event, framed by frame(seq), and returns it.
func (m *memStore) write(tb testing.TB, frame func(seq int64) ([]byte, error)) store.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	seq := m.max + 1
	b, err := frame(seq)
	if err != nil {
		tb.Errorf("encode event %d: %v", seq, err)
	}
	ev := store.Event{Seq: seq, Time: time.Now(), Frame: b}
	m.events = append(m.events, ev)
	m.max = seq
	return ev
}

// skip burns a seq without storing an event: a gap, as a rolled-back
// PostgreSQL sequence value leaves.
func (m *memStore) skip() {
	m.mu.Lock()
	m.max++
	m.mu.Unlock()
}

// prune drops the events with seq < keepFrom.
func (m *memStore) prune(keepFrom int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := sort.Search(len(m.events), func(i int) bool { return m.events[i].Seq >= keepFrom })
	m.events = slices.Delete(m.events, 0, i)
}

// seqsAfter lists the stored seqs above cursor.
func (m *memStore) seqsAfter(cursor int64) []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for _, ev := range m.events {
		if ev.Seq > cursor {
			out = append(out, ev.Seq)
		}
	}
	return out
}

const testTime = "2026-11-22T10:00:00.000Z"

// identityFrame is a small realistic frame.
func identityFrame(seq int64) ([]byte, error) {
	h := fmt.Sprintf("user%d.test", seq%1000)
	return EncodeIdentity(seq, &comatproto.SyncSubscribeRepos_Identity{
		Did: fmt.Sprintf("did:plc:user%020d", seq%1000), Handle: &h, Time: testTime,
	})
}

func testCID(data string) lexutil.LexLink {
	sum := sha256.Sum256([]byte(data))
	mh, err := multihash.Encode(sum[:], multihash.SHA2_256)
	if err != nil {
		panic(err)
	}
	return lexutil.LexLink(cid.NewCidV1(cid.DagCBOR, mh))
}

// commitFrame returns a #commit frame whose blocks field has size bytes.
func commitFrame(size int) func(seq int64) ([]byte, error) {
	blocks := bytes.Repeat([]byte{0xAB}, size)
	return func(seq int64) ([]byte, error) {
		since := "3kabc2222222a"
		rec := testCID(fmt.Sprint("record", seq))
		return EncodeCommit(seq, &comatproto.SyncSubscribeRepos_Commit{
			Repo:     "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
			Commit:   testCID(fmt.Sprint("commit", seq)),
			Rev:      "3kabc2222223a",
			Since:    &since,
			Time:     testTime,
			Blocks:   blocks,
			PrevData: ptr(testCID("prev")),
			Ops: []*comatproto.SyncSubscribeRepos_RepoOp{
				{Action: "create", Path: "app.bsky.feed.post/3kabc2222223a", Cid: &rec},
			},
			Blobs: []lexutil.LexLink{},
		})
	}
}

func ptr[T any](v T) *T { return &v }

// newTestSequencer starts a Sequencer over st behind an httptest server
// and returns it with the server's ws:// URL. Both are closed at cleanup.
func newTestSequencer(tb testing.TB, st Store, cfg Config) (*Sequencer, string) {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s, err := New(context.Background(), st, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(s)
	tb.Cleanup(func() {
		s.Close()
		srv.Close()
	})
	return s, "ws" + strings.TrimPrefix(srv.URL, "http") + "/xrpc/com.atproto.sync.subscribeRepos"
}

// dial subscribes; query is "" or e.g. "cursor=5".
func dial(tb testing.TB, url, query string) *websocket.Conn {
	tb.Helper()
	if query != "" {
		url += "?" + query
	}
	c, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// readEvent reads one frame and decodes it with indigo's decoder.
func readEvent(tb testing.TB, c *websocket.Conn) *events.XRPCStreamEvent {
	tb.Helper()
	xev, err := tryReadEvent(c, 10*time.Second)
	if err != nil {
		tb.Fatalf("read frame: %v", err)
	}
	return xev
}

func tryReadEvent(c *websocket.Conn, timeout time.Duration) (*events.XRPCStreamEvent, error) {
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	typ, msg, err := c.ReadMessage()
	if err != nil {
		return nil, err
	}
	if typ != websocket.BinaryMessage {
		return nil, fmt.Errorf("message type %d, want binary", typ)
	}
	var xev events.XRPCStreamEvent
	if err := xev.Deserialize(bytes.NewReader(msg)); err != nil {
		return nil, fmt.Errorf("decode frame: %w", err)
	}
	return &xev, nil
}

// readSeqs reads n sequenced events and returns their seqs.
func readSeqs(tb testing.TB, c *websocket.Conn, n int) []int64 {
	tb.Helper()
	out := make([]int64, 0, n)
	for range n {
		xev := readEvent(tb, c)
		seq, ok := xev.GetSequence()
		if !ok {
			tb.Fatalf("after %v: got a frame without seq: %+v", out, describe(xev))
		}
		out = append(out, seq)
	}
	return out
}

func describe(xev *events.XRPCStreamEvent) string {
	switch {
	case xev.Error != nil:
		return "error " + xev.Error.Error + ": " + xev.Error.Message
	case xev.RepoInfo != nil:
		return "info " + xev.RepoInfo.Name
	}
	seq, _ := xev.GetSequence()
	return fmt.Sprint("event ", seq)
}

// expectClose reads until the connection closes and returns its close
// code; frames before the close are returned too.
func expectClose(tb testing.TB, c *websocket.Conn) (int, []*events.XRPCStreamEvent) {
	tb.Helper()
	var got []*events.XRPCStreamEvent
	for {
		xev, err := tryReadEvent(c, 10*time.Second)
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, got
			}
			tb.Fatalf("after %d frames: want a close frame, got %v", len(got), err)
		}
		got = append(got, xev)
	}
}

func seqRange(from, to int64) []int64 {
	var out []int64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(tb testing.TB, what string, timeout time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// registered is how many subscribers receive live events.
func (s *Sequencer) registered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.subs)
}
