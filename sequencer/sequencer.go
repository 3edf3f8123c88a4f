package sequencer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/store"
)

// Defaults of Config.
const (
	DefaultMaxBuffer    = 500
	DefaultPingInterval = 25 * time.Second
	DefaultWriteTimeout = 15 * time.Second
	DefaultPollInterval = time.Second
)

const (
	// defaultPageSize is how many events one store read returns, for
	// replay and for the broadcaster's catch-up.
	defaultPageSize = 500
	// storeTimeout bounds one store read.
	storeTimeout = 10 * time.Second
	// closeGrace is how long Close waits for subscribers to take their
	// close frame before it cuts their connections.
	closeGrace = 2 * time.Second
	// readLimit caps a message from a subscriber. Clients have nothing to
	// say on this stream; their messages are read and ignored.
	readLimit = 1 << 20
)

// Config configures a Sequencer. Zero fields take the defaults.
type Config struct {
	// MaxBuffer is how many events a live subscriber may have waiting
	// (published, not yet written to its socket) before it is dropped with
	// ConsumerTooSlow (PDS_MAX_SUBSCRIPTION_BUFFER, default 500).
	MaxBuffer int
	// PingInterval is how often each subscriber is pinged (default 25 s,
	// inside the 60 s idle timeout of common ingresses). A subscriber that
	// sends nothing, pongs included, for two intervals is disconnected.
	PingInterval time.Duration
	// WriteTimeout bounds one write to a subscriber's socket (default
	// 15 s). It is what frees a peer that stopped reading while it was
	// being replayed to, when no queue can overflow.
	WriteTimeout time.Duration
	// PollInterval is how often the store is read for events that reached
	// it without a Publish (a failed store read to retry, a hand-off that
	// overflowed, another replica's writes). Default 1 s.
	PollInterval time.Duration
	// Logger receives the sequencer's logs; slog.Default when nil.
	Logger *slog.Logger

	// Derived bounds, settable by this package's tests.
	pageSize   int // events per store read
	cutoverCap int // see setDefaults
	inboxCap   int // see setDefaults
}

func (c *Config) setDefaults() {
	if c.MaxBuffer <= 0 {
		c.MaxBuffer = DefaultMaxBuffer
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.pageSize <= 0 {
		c.pageSize = defaultPageSize
	}
	// cutoverCap is how many live events a subscriber may collect while it
	// finishes its replay from the store. It is larger than MaxBuffer
	// because the subscriber is not reading its queue yet; past it the
	// subscriber starts the replay over rather than being dropped (see
	// doc.go).
	if c.cutoverCap <= 0 {
		c.cutoverCap = 8 * max(c.MaxBuffer, c.pageSize)
	}
	// inboxCap is how many published events may wait for the broadcaster;
	// past it Publish drops them and the broadcaster reads the store
	// instead.
	if c.inboxCap <= 0 {
		c.inboxCap = 8 * max(c.MaxBuffer, c.pageSize)
	}
}

// Sequencer serves com.atproto.sync.subscribeRepos: it replays stored
// events to subscribers that give a cursor and fans live events out to
// every subscriber. Create it with New; stop it with Close.
type Sequencer struct {
	store    Store
	cfg      Config
	log      *slog.Logger
	upgrader websocket.Upgrader

	// ctx is cancelled by Close; subscribers and the broadcaster watch it.
	ctx    context.Context
	cancel context.CancelFunc

	// The hand-off from Publish to the broadcaster. A channel rather than
	// a mutex-guarded slice: a writer never waits behind a broadcaster
	// that was descheduled while holding a lock.
	inbox  chan store.Event
	resync atomic.Bool // events were dropped from the inbox: read the store
	closed atomic.Bool // set by Close, under connMu

	// mu guards subs and is held while an event is handed to every
	// subscriber, so registering sees a clean boundary: events up to head
	// went out before, every later one goes into the new queue.
	mu   sync.Mutex
	subs map[*subscriber]struct{}
	head atomic.Int64 // highest seq handed to live subscribers

	connMu   sync.Mutex
	conns    map[*subscriber]struct{} // every connection being served
	handlers sync.WaitGroup

	broadcasterDone chan struct{}
	closeOnce       sync.Once

	dropped  atomic.Uint64
	restarts atomic.Uint64

	// round counts the times the broadcaster went idle; under mu.
	round uint64
}

// New returns a running Sequencer. It reads the store's highest seq, the
// point live streaming starts from; ctx bounds that read only.
func New(ctx context.Context, st Store, cfg Config) (*Sequencer, error) {
	if st == nil {
		return nil, errors.New("sequencer: nil store")
	}
	cfg.setDefaults()
	head, err := st.MaxSeq(ctx)
	if err != nil {
		return nil, fmt.Errorf("read max seq: %w", err)
	}
	s := &Sequencer{
		store: st,
		cfg:   cfg,
		log:   cfg.Logger,
		upgrader: websocket.Upgrader{
			HandshakeTimeout: 10 * time.Second,
			// A server frame goes out in one writev of the buffer (its
			// header and first bytes) and the rest of the shared frame, so
			// a small buffer is enough. A pool would cost an allocation
			// per message, more than the 4 KiB each subscriber keeps.
			WriteBufferSize: 4096,
			ReadBufferSize:  1024,
			// The firehose is public: any origin may subscribe.
			CheckOrigin: func(*http.Request) bool { return true },
			Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
				// The handshake's problem as the WebSocket library words
				// it: the one wire message not written here.
				refusal.Write(w, refusal.WithStatus(status, "InvalidRequest", reason.Error()))
			},
		},
		inbox:           make(chan store.Event, cfg.inboxCap),
		subs:            make(map[*subscriber]struct{}),
		conns:           make(map[*subscriber]struct{}),
		broadcasterDone: make(chan struct{}),
	}
	s.head.Store(head)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.broadcast()
	return s, nil
}

// Publish hands committed events to the live subscribers. Writers call it
// after their transaction commits, with the frames they stored; events may
// come in any order and from many goroutines, and an event published twice
// or already read from the store is ignored. Publish never blocks on
// subscribers, locks or I/O: it puts the events in a buffered channel and
// returns, and when the channel is full it drops them and has the
// broadcaster read them back from the store.
// After Close it does nothing.
//
// Publishing before the commit is a bug: a subscriber could be sent an
// event that then rolls back.
func (s *Sequencer) Publish(events ...store.Event) {
	if s.closed.Load() {
		return
	}
	for _, ev := range events {
		select {
		case s.inbox <- ev:
		default:
			// The broadcaster is far behind (a slow store read?). The
			// event is committed, so reading it back from the store later
			// loses nothing, while holding it could grow without bound.
			s.resync.Store(true)
		}
	}
}

// Stats is a snapshot of the sequencer's state, for metrics.
type Stats struct {
	// Subscribers is the number of open subscriptions.
	Subscribers int
	// Head is the highest seq handed to live subscribers.
	Head int64
	// Dropped counts subscribers dropped with ConsumerTooSlow.
	Dropped uint64
	// Restarts counts subscribers sent back to replay from the store
	// because their queue overflowed during their cutover or in one burst.
	Restarts uint64
}

// Stats returns a snapshot of the sequencer's state.
func (s *Sequencer) Stats() Stats {
	s.connMu.Lock()
	n := len(s.conns)
	s.connMu.Unlock()
	return Stats{Subscribers: n, Head: s.head.Load(), Dropped: s.dropped.Load(), Restarts: s.restarts.Load()}
}

// Close stops the sequencer: new subscriptions are refused with 503, every
// subscriber is sent a close frame (1001, going away), and connections
// still open after a short grace are cut. It returns once every
// subscription has ended. The HTTP server does not track hijacked
// connections, so its Shutdown does not do this: call Close as well.
func (s *Sequencer) Close() error {
	s.closeOnce.Do(func() {
		s.connMu.Lock()
		s.closed.Store(true)
		s.connMu.Unlock()
		s.cancel()
		<-s.broadcasterDone

		done := make(chan struct{})
		go func() {
			s.handlers.Wait()
			close(done)
		}()
		select {
		case <-done:
			return
		case <-time.After(closeGrace):
		}
		// Whoever is still here is stuck writing to a peer that does not
		// read; closing the socket ends the write.
		s.connMu.Lock()
		for sub := range s.conns {
			if sub.conn != nil {
				sub.conn.Close()
			}
		}
		s.connMu.Unlock()
		<-done
	})
	return nil
}

// broadcast is the one goroutine that moves events from the hand-off (and,
// when needed, the store) to the subscribers' queues, in seq order.
func (s *Sequencer) broadcast() {
	defer close(s.broadcasterDone)
	poll := time.NewTicker(s.cfg.PollInterval)
	defer poll.Stop()
	batch := make([]store.Event, 0, 64)
	for {
		batch = batch[:0]
		readStore := false
		select {
		case ev := <-s.inbox:
			batch = append(batch, ev)
		default:
			// Idle: caught up with every publish. What subscribers have
			// queued from here on counts as their own backlog (see push).
			s.mu.Lock()
			s.round++
			s.mu.Unlock()
			select {
			case <-s.ctx.Done():
				return
			case ev := <-s.inbox:
				batch = append(batch, ev)
			case <-poll.C:
				readStore = true
			}
		}
	drain:
		for len(batch) > 0 && len(batch) < s.cfg.inboxCap {
			select {
			case ev := <-s.inbox:
				batch = append(batch, ev)
			default:
				break drain
			}
		}
		// A Publish that finds the inbox full after this swap is caught
		// by the next batch or, at the latest, the next poll.
		if s.resync.Swap(false) {
			readStore = true
		}
		if err := s.advance(batch, readStore); err != nil && s.ctx.Err() == nil {
			// What was not handed out is in the store; the next poll
			// reads it from where the head stopped.
			s.log.Error("firehose broadcast: store read failed", "head", s.head.Load(), "err", err)
		}
	}
}

// advance hands out the published events in seq order. An event that does
// not follow the head directly means another one is missing from the
// hand-off (a concurrent writer's Publish still on its way, or a seq never
// used): the store, which holds every committed event, fills the gap.
func (s *Sequencer) advance(batch []store.Event, readStore bool) error {
	slices.SortFunc(batch, func(a, b store.Event) int { return cmp.Compare(a.Seq, b.Seq) })
	head := s.head.Load()
	start := 0 // batch[start:] is not handed out yet
	for i, ev := range batch {
		if ev.Seq <= head+1 {
			head = max(head, ev.Seq)
			continue
		}
		s.deliver(batch[start:i])
		start = i
		h, err := s.catchUp(ev.Seq)
		if err != nil {
			return err
		}
		// When the store has nothing up to ev, the seqs between were
		// never used; ev itself is committed and goes out next.
		head = max(h, ev.Seq)
	}
	s.deliver(batch[start:])
	if readStore {
		_, err := s.catchUp(MaxSeq)
		return err
	}
	return nil
}

// catchUp hands out events from the store until the head reaches target or
// the store has nothing more. It returns the new head.
func (s *Sequencer) catchUp(target int64) (int64, error) {
	for {
		head := s.head.Load()
		if head >= target {
			return head, nil
		}
		ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
		evs, err := s.store.EventsAfter(ctx, head, s.cfg.pageSize)
		cancel()
		if err != nil {
			return head, fmt.Errorf("read events after %d: %w", head, err)
		}
		s.deliver(evs)
		if len(evs) < s.cfg.pageSize {
			return s.head.Load(), nil
		}
	}
}

// deliver appends events (in increasing seq order; any at or below the
// head are skipped) to every registered subscriber's queue and moves the
// head. A subscriber whose queue is full is unregistered.
func (s *Sequencer) deliver(evs []store.Event) {
	if len(evs) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	head := s.head.Load()
	for _, ev := range evs {
		if ev.Seq <= head {
			continue
		}
		for sub := range s.subs {
			if !sub.push(ev, s.round) {
				delete(s.subs, sub)
			}
		}
		head = ev.Seq
		s.head.Store(head)
	}
}

// register adds sub to the live fan-out with an empty queue and returns
// the head at that instant: every event above it will be queued for sub.
func (s *Sequencer) register(sub *subscriber, st subState) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	sub.reset(st)
	s.subs[sub] = struct{}{}
	return s.head.Load()
}

func (s *Sequencer) unregister(sub *subscriber) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
}

// track records a new connection, or reports false once Close has begun.
func (s *Sequencer) track(sub *subscriber) bool {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closed.Load() {
		return false
	}
	s.conns[sub] = struct{}{}
	s.handlers.Add(1)
	return true
}

func (s *Sequencer) untrack(sub *subscriber) {
	s.connMu.Lock()
	delete(s.conns, sub)
	s.connMu.Unlock()
	s.handlers.Done()
}

// readPage reads one page of stored events after cursor.
func (s *Sequencer) readPage(cursor int64) ([]store.Event, error) {
	ctx, cancel := context.WithTimeout(s.ctx, storeTimeout)
	defer cancel()
	evs, err := s.store.EventsAfter(ctx, cursor, s.cfg.pageSize)
	if err != nil {
		return nil, fmt.Errorf("read events after %d: %w", cursor, err)
	}
	return evs, nil
}
