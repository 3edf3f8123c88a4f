package sequencer

import (
	"context"

	"github.com/hearth-pds/hearth/store"
)

// Store is what the sequencer needs from the database holding the events.
// The write path (assigning seq and inserting the event in the same
// transaction as the commit it describes) belongs to the store's own API;
// this interface only reads. Every method is safe for concurrent use.
//
// Visibility contract: once an event with seq N is visible to EventsAfter,
// every event with a smaller seq that will ever exist is visible too. A
// single-writer SQLite database gives this for free; PostgreSQL with
// concurrent writers must serialize the assignment of seq with the commit
// (e.g. a transaction-scoped advisory lock), or a subscriber could skip an
// event that commits late with a smaller seq.
type Store interface {
	// EventsAfter returns up to limit events with seq > cursor, in
	// increasing seq order; an empty slice when there are none. The frame
	// bytes may be retained by the caller, so a store must not reuse them.
	EventsAfter(ctx context.Context, cursor int64, limit int) ([]store.Event, error)
	// MaxSeq returns the highest seq ever assigned, or 0 when none was. It
	// must not go down when events are pruned (keep the newest row, or read
	// the sequence counter): a relay that reconnects with the last seq it
	// saw would otherwise be told its cursor is in the future.
	MaxSeq(ctx context.Context) (int64, error)
	// OldestSeq returns the smallest seq still kept, or 0 when no event is
	// kept. Events older than the retention window
	// (PDS_REPO_BACKFILL_LIMIT_MS) are pruned by the store; a cursor
	// before the oldest kept event gets an OutdatedCursor info frame.
	OldestSeq(ctx context.Context) (int64, error)
}
