// Package sequencer is the firehose of the PDS: com.atproto.sync.subscribeRepos.
//
// Writers encode each event's frame once, inside the transaction that
// assigns its seq (EncodeCommit, EncodeSync, EncodeIdentity,
// EncodeAccount), store the bytes with the event and, after the commit,
// hand the same Event to Publish. Subscribers get exactly those bytes,
// whether replayed from the store or sent live: nothing is encoded per
// subscriber.
//
// # Terminology
//
//   - seq: the event's sequence number, assigned by the store, increasing,
//     with gaps allowed (a rolled-back PostgreSQL sequence value, events of
//     a deleted account).
//   - head: the highest seq the broadcaster has handed to live
//     subscribers.
//   - replay: sending stored events after a subscriber's cursor, read from
//     the Store in pages.
//   - live: sending events from the subscriber's in-memory queue, filled by
//     the broadcaster.
//   - cutover: the step from replay to live.
//
// # The broadcaster
//
// One goroutine takes published events from a channel and appends them,
// in seq order, to every live subscriber's queue. Publish never blocks: a
// full channel drops the event and marks a resync, and the broadcaster
// reads the store instead. Writers publish after their own commits, so
// events arrive out of order (writer B commits 6 and publishes before
// writer A publishes 5). The broadcaster therefore hands an event out only
// when it follows the head; when it does not, it reads the missing range
// from the store, which holds every committed event, and only then goes
// on. The same store read, on a timer (PollInterval), picks up committed
// events whose Publish never came, and retries after a failed read.
//
// This relies on the Store's visibility contract: once seq N is visible,
// every smaller seq that will ever exist is visible. Otherwise an event
// committing late with a smaller seq would be skipped for good.
//
// # Replay and live without gaps or duplicates
//
// The race: a subscriber reads the store up to seq 100 and then starts
// listening, but event 101 was handed out between the two; or it starts
// listening first and then gets 101 from both. The handoff here:
//
//  1. Replay pages from the store, unregistered, until within half a
//     page of the head (registering while far behind would only fill the
//     queue with events the store will serve anyway).
//  2. Register, and note the head at that instant, under the same lock
//     the broadcaster holds while it hands an event out. Every event up to
//     that head was handed out, hence committed, before registration, and
//     is in the store; every later one goes into the queue.
//  3. Read the store again up to that head (events beyond it may come
//     too).
//  4. Follow the queue, skipping every seq at or below the last one sent.
//
// Every event is thus sent from the store, the queue or both, and the seq
// filter writes it once, in order.
//
// # Backpressure
//
// A live subscriber's queue holds at most MaxBuffer events
// (PDS_MAX_SUBSCRIPTION_BUFFER). The broadcaster never waits for a
// subscriber: when a queue is full it unregisters the subscriber, and the
// subscriber's own goroutine tells the peer. Writers and other subscribers
// are not slowed, and the memory a lagging subscriber holds is bounded.
//
// What it tells the peer depends on whose fault the full queue is. If the
// subscriber already had MaxBuffer/2 events waiting when the broadcaster
// was last idle, it was falling behind on its own: it is sent the error
// frame ConsumerTooSlow and closed. Events already in the socket buffers
// reach the peer first, so a peer that resumes reading gets a gapless
// prefix, then the error. Otherwise one burst filled the queue (the
// broadcaster catching up from the store after a stall, a flood of
// commits): the subscriber goes back to replaying from the store, where
// every event of the burst is, and cuts over again. The official PDS drops
// every subscriber whose buffer a burst overfills; a relay would reconnect
// and replay the same events anyway.
//
// During the cutover (steps 2 and 3) the subscriber does not read its
// queue, so the bound there is larger (8 × max(MaxBuffer, 500)), and
// filling it also sends the subscriber back to replay, never drops it. A
// peer slower than the write rate may thus stay in replay; it costs store
// reads at its own pace, not memory.
//
// # What can go wrong
//
//   - A writer that publishes before its commit could have an event sent
//     that then rolls back. Publish only after the commit.
//   - A PostgreSQL store whose concurrent writers commit seqs out of order
//     breaks the visibility contract; serialize the assignment of seq
//     with the commit.
//   - MaxSeq must not shrink when events are pruned, or reconnecting
//     relays get FutureCursor.
//   - Pruning runs concurrently with replays: a replay that trails the
//     oldest kept event by less than the prune step can have events pruned
//     ahead of it, and no OutdatedCursor is sent after the first frame.
//     Only a replay at the very edge of the retention window is exposed.
//   - Hijacked connections are not tracked by http.Server: its Shutdown
//     does not end subscriptions; Close does, with a close frame 1001.
//   - A peer that stops reading while it is being replayed to has no queue
//     to overflow; the blocked write fails after WriteTimeout and frees
//     it, without an error frame (it would not be read). The same happens
//     to a peer that stops reading while the broadcaster is never idle
//     (sustained overload): its overflows count as bursts. An idle peer
//     that vanished without a FIN is noticed when it misses pongs for two
//     PingIntervals.
package sequencer
