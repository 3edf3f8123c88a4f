package pds

import (
	"context"
	"log/slog"
	"time"

	"github.com/hearth-pds/hearth/crawlers"
	"github.com/hearth-pds/hearth/sequencer"
	"github.com/hearth-pds/hearth/store"
)

// eventLog adapts the store's event bounds to what the sequencer reads.
type eventLog struct{ store store.Store }

var _ sequencer.Store = eventLog{}

func (l eventLog) EventsAfter(ctx context.Context, cursor int64, limit int) ([]store.Event, error) {
	return l.store.EventsAfter(ctx, cursor, limit)
}

func (l eventLog) MaxSeq(ctx context.Context) (int64, error) {
	_, newest, err := l.store.EventBounds(ctx)
	return newest, err
}

func (l eventLog) OldestSeq(ctx context.Context) (int64, error) {
	oldest, _, err := l.store.EventBounds(ctx)
	return oldest, err
}

// firehose publishes stored events to the sequencer's subscribers, and
// lets the crawler notifier know the repositories changed.
type firehose struct {
	seq      *sequencer.Sequencer
	crawlers *crawlers.Notifier
}

func (f firehose) Publish(events ...store.Event) {
	f.seq.Publish(events...)
	f.crawlers.Wrote()
}

// pruneEvents deletes events older than the backfill window every few
// minutes until ctx ends.
func pruneEvents(ctx context.Context, st store.Store, window time.Duration, log *slog.Logger) {
	tick := time.NewTicker(5 * time.Minute)
	defer tick.Stop()
	for {
		if n, err := st.PruneEvents(ctx, time.Now().Add(-window)); err != nil {
			if ctx.Err() == nil {
				log.Error("prune firehose events", "err", err)
			}
		} else if n > 0 {
			log.Info("pruned firehose events", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
