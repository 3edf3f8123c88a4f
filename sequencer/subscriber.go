package sequencer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/store"
)

// closeWait is how long a subscriber's connection stays open after its
// close frame, for the peer's reply: closing the socket at once could reset
// the connection before the peer has read the last frames.
const closeWait = time.Second

// Ends of a stream that are not reported to the peer with an error frame.
var (
	errGone     = errors.New("peer went away")
	errShutdown = errors.New("sequencer closed")
	// errOverflow: the subscriber's queue overflowed without it being
	// too slow (see push); it replays from the store again.
	errOverflow = errors.New("cutover queue overflowed")
)

// streamError ends a stream with an error frame, then a close frame with
// code 1008 and the error name as reason, as the official PDS does.
type streamError struct {
	name, message string
	cause         error // logged, never sent
}

func (e *streamError) Error() string {
	if e.cause != nil {
		return e.name + ": " + e.cause.Error()
	}
	return e.name + ": " + e.message
}

// storeError ends the stream after a failed store read: a shutdown
// cancels reads in flight, which is no internal error.
func (sub *subscriber) storeError(err error) error {
	if sub.s.ctx.Err() != nil {
		return errShutdown
	}
	return &streamError{name: ErrorInternal, message: "Internal Server Error", cause: err}
}

var errTooSlow = &streamError{name: ErrorConsumerTooSlow, message: "Stream consumer too slow"}

// ServeHTTP serves GET /xrpc/com.atproto.sync.subscribeRepos[?cursor=N].
//
// Before the upgrade it answers with an XRPC JSON error: 405 for a method
// other than GET, 400 InvalidRequest for a cursor that is not an integer,
// 426 for a request that is not a WebSocket upgrade, 503 once Close has
// begun. After the upgrade, errors are frames: FutureCursor when the
// cursor is above the highest seq, ConsumerTooSlow when the subscriber
// falls MaxBuffer events behind, InternalServerError when the store
// fails; each is followed by a close frame. An empty cursor counts as no
// cursor, and a negative one as 0, as the official PDS reads them (it also
// reads a non-integer cursor as 0, where this answers 400).
func (s *Sequencer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		refusal.Write(w, refusal.WithStatus(http.StatusMethodNotAllowed, "InvalidRequest", "subscriptions only support GET"))
		return
	}
	cursor, err := parseCursor(r.URL.Query().Get("cursor"))
	if err != nil {
		refusal.Write(w, refusal.InvalidRequest("cursor must be an integer").Because(err))
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		w.Header().Set("Upgrade", "websocket")
		refusal.Write(w, refusal.WithStatus(http.StatusUpgradeRequired, "InvalidRequest", "subscriptions require a WebSocket upgrade"))
		return
	}
	sub := &subscriber{
		s:      s,
		state:  stateReplay, // until it registers
		gone:   make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	if !s.track(sub) {
		refusal.Write(w, refusal.WithStatus(http.StatusServiceUnavailable, "ServiceUnavailable", "server is shutting down"))
		return
	}
	defer s.untrack(sub)
	conn, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	s.connMu.Lock()
	sub.conn = conn
	s.connMu.Unlock()

	log := s.log.With("remote", r.RemoteAddr)
	if cursor != nil {
		log = log.With("cursor", *cursor)
	}
	log.Info("firehose subscriber connected", "user_agent", r.UserAgent())
	start := time.Now()

	sub.ping = time.NewTicker(s.cfg.PingInterval)
	defer sub.ping.Stop()
	go sub.readLoop()
	err = sub.stream(cursor)
	s.unregister(sub)
	sub.finish(err)

	attrs := []any{"last_seq", sub.last, "duration", time.Since(start).Round(time.Millisecond), "reason", err}
	var se *streamError
	if errors.As(err, &se) && se.cause != nil {
		log.Error("firehose subscriber ended by an internal error", attrs...)
	} else {
		log.Info("firehose subscriber disconnected", attrs...)
	}
}

// parseCursor reads the cursor parameter: nil when absent or empty.
func parseCursor(v string) (*int64, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return nil, errors.New("cursor must be an integer")
	}
	n = max(n, 0)
	return &n, nil
}

// subState is where a subscriber is between replay and live.
type subState int

const (
	// stateReplay: not registered; the subscriber reads the store.
	stateReplay subState = iota
	// stateCutover: registered, still reading the store up to the head it
	// registered at; its queue may grow to cutoverCap.
	stateCutover
	// stateLive: registered and following its queue, bounded by MaxBuffer.
	stateLive
	// stateOverflowed: unregistered because its queue filled during its
	// cutover or in one burst; it replays again.
	stateOverflowed
	// stateTooSlow: unregistered because its live queue filled while it was
	// already behind; it gets ConsumerTooSlow.
	stateTooSlow
)

// subscriber is one subscription. Its handler goroutine writes every frame
// (the only writer of the connection, apart from gorilla's control frames);
// readLoop notices the peer leaving; the broadcaster only appends to queue.
type subscriber struct {
	s    *Sequencer
	conn *websocket.Conn // set after the upgrade, under s.connMu
	gone chan struct{}   // closed when readLoop ends: the peer is gone
	ping *time.Ticker
	last int64 // seq of the last event written

	deadlineSet time.Time // when the write deadline was last moved

	// mu guards the fields below; push and reset run under it on the
	// broadcaster's side, pop on the subscriber's.
	mu      sync.Mutex
	state   subState
	queue   queue
	round   uint64        // the broadcaster round backlog was taken in
	backlog int           // queue length when that round began
	notify  chan struct{} // capacity 1: something was queued
	evicted chan struct{} // closed when the broadcaster unregisters it
}

// stream sends the subscription's frames until it ends, and returns why.
func (sub *subscriber) stream(cursor *int64) error {
	replay := cursor != nil
	if replay {
		if err := sub.start(*cursor); err != nil {
			return err
		}
	} else {
		sub.last = sub.s.register(sub, stateLive)
	}
	for {
		if replay {
			if err := sub.replay(); err != nil {
				return err
			}
		}
		err := sub.follow()
		if !errors.Is(err, errOverflow) {
			return err
		}
		replay = true
	}
}

// start checks the cursor against the store and sets where replay starts.
func (sub *subscriber) start(cursor int64) error {
	ctx, cancel := context.WithTimeout(sub.s.ctx, storeTimeout)
	defer cancel()
	head, err := sub.s.store.MaxSeq(ctx)
	if err != nil {
		return sub.storeError(fmt.Errorf("read max seq: %w", err))
	}
	if cursor > head {
		return &streamError{name: ErrorFutureCursor, message: "Cursor in the future."}
	}
	oldest, err := sub.s.store.OldestSeq(ctx)
	if err != nil {
		return sub.storeError(fmt.Errorf("read oldest seq: %w", err))
	}
	from := cursor
	switch {
	case oldest > 0 && cursor < oldest-1:
		from = oldest - 1
	case oldest == 0 && cursor < head:
		from = head // every event was pruned
	}
	if from != cursor {
		// Seqs may have gaps, so the pruned range may have held nothing;
		// hence "possibly".
		info := EncodeInfo(InfoOutdatedCursor, "Requested cursor exceeded limit. Possibly missing events")
		if err := sub.write(info); err != nil {
			return err
		}
	}
	sub.last = from
	return nil
}

// replay sends stored events after sub.last until it is near the live head,
// registers for live events, then reads the store once more up to the head
// seen at registration. Every event up to that head was committed before
// the registration, so the store has it; every later one is queued. Events
// in both are written once: follow skips what replay already sent.
func (sub *subscriber) replay() error {
	for {
		evs, err := sub.s.readPage(sub.last)
		if err != nil {
			return sub.storeError(err)
		}
		if err := sub.writeEvents(evs); err != nil {
			return err
		}
		// Near the head, the last reads are done registered. Far from it,
		// registering would only fill the queue with events the store
		// will serve anyway.
		if len(evs) < sub.s.cfg.pageSize || sub.s.head.Load()-sub.last < int64(sub.s.cfg.pageSize/2) {
			break
		}
	}
	head := sub.s.register(sub, stateCutover)
	for sub.last < head {
		evs, err := sub.s.readPage(sub.last)
		if err != nil {
			return sub.storeError(err)
		}
		if err := sub.writeEvents(evs); err != nil {
			return err
		}
		if len(evs) < sub.s.cfg.pageSize {
			break // the seqs up to head that are missing were never used
		}
	}
	return nil
}

// follow writes queued live events until the stream ends.
func (sub *subscriber) follow() error {
	for {
		ev, ok, st := sub.pop()
		switch st {
		case stateOverflowed:
			return errOverflow
		case stateTooSlow:
			return errTooSlow
		}
		if ok {
			if ev.Seq > sub.last {
				if err := sub.write(ev.Frame); err != nil {
					return err
				}
				sub.last = ev.Seq
			}
			if err := sub.interrupted(); err != nil {
				return err
			}
			continue
		}
		select {
		case <-sub.notify:
		case <-sub.evicted:
		case <-sub.ping.C:
			if err := sub.sendPing(); err != nil {
				return err
			}
		case <-sub.gone:
			return errGone
		case <-sub.s.ctx.Done():
			return errShutdown
		}
	}
}

// writeEvents writes the stored events above sub.last.
func (sub *subscriber) writeEvents(evs []store.Event) error {
	for _, ev := range evs {
		if ev.Seq <= sub.last {
			continue
		}
		if err := sub.write(ev.Frame); err != nil {
			return err
		}
		sub.last = ev.Seq
		if err := sub.interrupted(); err != nil {
			return err
		}
	}
	return nil
}

// interrupted checks, without waiting, whether the stream must end, and
// sends a due ping: a long replay still needs pongs to keep the peer's
// read deadline alive.
func (sub *subscriber) interrupted() error {
	select {
	case <-sub.gone:
		return errGone
	case <-sub.s.ctx.Done():
		return errShutdown
	case <-sub.ping.C:
		return sub.sendPing()
	default:
		return nil
	}
}

// write writes one frame. The write deadline is moved forward only when a
// quarter of WriteTimeout has passed since it was last set, which saves a
// timer update per frame; a stalled write still fails within WriteTimeout.
func (sub *subscriber) write(frame []byte) error {
	now := time.Now()
	if now.Sub(sub.deadlineSet) > sub.s.cfg.WriteTimeout/4 {
		if err := sub.conn.SetWriteDeadline(now.Add(sub.s.cfg.WriteTimeout)); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		sub.deadlineSet = now
	}
	if err := sub.conn.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

func (sub *subscriber) sendPing() error {
	if err := sub.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(sub.s.cfg.WriteTimeout)); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// finish tells the peer why the stream ends, when it can be told, and
// closes the connection.
func (sub *subscriber) finish(err error) {
	c := sub.conn
	var se *streamError
	switch {
	case errors.As(err, &se):
		if sub.write(EncodeError(se.name, se.message)) != nil {
			break
		}
		msg := websocket.FormatCloseMessage(websocket.ClosePolicyViolation, se.name)
		if c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(sub.s.cfg.WriteTimeout)) == nil {
			sub.awaitClose()
		}
	case errors.Is(err, errShutdown):
		msg := websocket.FormatCloseMessage(websocket.CloseGoingAway, "server shutting down")
		if c.WriteControl(websocket.CloseMessage, msg, time.Now().Add(closeWait)) == nil {
			sub.awaitClose()
		}
	}
	c.Close()
	<-sub.gone
}

// awaitClose waits a little for the peer to answer the close frame.
func (sub *subscriber) awaitClose() {
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-sub.gone:
	case <-t.C:
	}
}

// readLoop reads and drops what the peer sends (nothing is expected) so
// that control frames are processed, and closes sub.gone when the peer
// leaves, fails to answer pings for two intervals, or the connection is
// closed.
func (sub *subscriber) readLoop() {
	defer close(sub.gone)
	c := sub.conn
	wait := 2 * sub.s.cfg.PingInterval
	alive := func() error { return c.SetReadDeadline(time.Now().Add(wait)) }
	c.SetReadLimit(readLimit)
	_ = alive()
	c.SetPongHandler(func(string) error { return alive() })
	c.SetPingHandler(func(data string) error {
		if err := alive(); err != nil {
			return err
		}
		err := c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(sub.s.cfg.WriteTimeout))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || (errors.As(err, &ne) && ne.Timeout()) {
			// A pong stuck behind a long write is not the peer's fault.
			return nil
		}
		return err
	})
	for {
		_, r, err := c.NextReader()
		if err != nil {
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
		if alive() != nil {
			return
		}
	}
}

// reset empties the queue for a new registration. Called with s.mu held.
func (sub *subscriber) reset(st subState) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	sub.state = st
	sub.queue = queue{}
	sub.evicted = make(chan struct{})
	select {
	case <-sub.notify:
	default:
	}
}

// push queues a live event, or, when the queue is at its bound, evicts the
// subscriber and reports false. Called by the broadcaster with s.mu held;
// it never blocks.
//
// A full live queue means ConsumerTooSlow only if the subscriber already
// had half of MaxBuffer waiting when the broadcaster was last idle (the
// start of round): it was falling behind on its own. A queue filled from
// less than that by one burst (the broadcaster catching up from the store
// after a stall, a flood of commits) is the server's doing; the subscriber
// reads the burst from the store instead of being dropped.
func (sub *subscriber) push(ev store.Event, round uint64) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	if sub.round != round {
		sub.round, sub.backlog = round, sub.queue.n
	}
	limit := sub.s.cfg.MaxBuffer
	if sub.state == stateCutover {
		limit = sub.s.cfg.cutoverCap
	}
	if sub.queue.n < limit {
		sub.queue.push(ev)
		select {
		case sub.notify <- struct{}{}:
		default:
		}
		return true
	}
	if sub.state == stateLive && sub.backlog >= sub.s.cfg.MaxBuffer/2 {
		sub.state = stateTooSlow
		sub.s.dropped.Add(1)
	} else {
		sub.state = stateOverflowed
		sub.s.restarts.Add(1)
	}
	sub.queue = queue{}
	close(sub.evicted)
	return false
}

// pop takes the oldest queued event. A cutover subscriber becomes live once
// its backlog is within MaxBuffer.
func (sub *subscriber) pop() (store.Event, bool, subState) {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	ev, ok := sub.queue.pop()
	if sub.state == stateCutover && sub.queue.n < sub.s.cfg.MaxBuffer {
		sub.state = stateLive
	}
	return ev, ok, sub.state
}

// queue is a FIFO ring of events that grows as needed; push enforces the
// bound.
type queue struct {
	buf  []store.Event
	head int
	n    int
}

func (q *queue) push(ev store.Event) {
	if q.n == len(q.buf) {
		buf := make([]store.Event, max(16, 2*len(q.buf)))
		for i := range q.n {
			buf[i] = q.buf[(q.head+i)%len(q.buf)]
		}
		q.buf, q.head = buf, 0
	}
	q.buf[(q.head+q.n)%len(q.buf)] = ev
	q.n++
}

func (q *queue) pop() (store.Event, bool) {
	if q.n == 0 {
		return store.Event{}, false
	}
	ev := q.buf[q.head]
	q.buf[q.head] = store.Event{} // let the frame go once every queue is done with it
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return ev, true
}

var _ http.Handler = (*Sequencer)(nil)
