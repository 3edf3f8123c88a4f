package plc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/did-method-plc/go-didplc/didplc"

	"github.com/hearth-pds/hearth/datetime"
)

// Config configures a Directory. The zero value is an in-memory directory
// with a discarding logger.
type Config struct {
	// Dir holds the operation journal (a file named plc-operations.jsonl);
	// it is created if missing. Empty means memory only, for unit tests:
	// nothing survives Close.
	Dir string
	// Logger receives the directory's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock stamped on accepted operations, and so the clock of
	// the 72-hour recovery window. Nil means time.Now; tests move it.
	Now func() time.Time
	// Version is what GET /_health reports.
	Version string
}

// Directory is an embedded PLC directory: it verifies and keeps did:plc
// operations and serves them over the PLC directory HTTP API. It is safe
// for concurrent use. Submissions are serialized (verification, the
// journal write and its fsync happen under one lock, so no two writes can
// both extend the same head); reads run concurrently with each other.
type Directory struct {
	logger  *slog.Logger
	now     func() time.Time
	version string
	handler http.Handler

	mu      sync.RWMutex
	idx     *index
	journal *journal // nil in memory mode
	// last is the newest createdAt handed out. Timestamps strictly
	// increase across the whole directory: the library requires each
	// operation to be later than its prev, and /export pages by time.
	last   time.Time
	closed bool
}

var _ http.Handler = (*Directory)(nil)

// Open opens the directory whose operations are kept under dir (created
// if missing), replaying and re-verifying every operation in it. It fails
// if another process has the same dir open, or if the journal is damaged
// anywhere but a torn last line (which it drops: see journal).
func Open(dir string, logger *slog.Logger) (*Directory, error) {
	if dir == "" {
		return nil, errors.New("open plc directory: no directory given (use New with an empty Config.Dir for memory only)")
	}
	return New(Config{Dir: dir, Logger: logger})
}

// New creates a Directory from cfg; see Config. With a Dir it behaves as
// Open.
func New(cfg Config) (*Directory, error) {
	d := &Directory{
		logger:  cfg.Logger,
		now:     cfg.Now,
		version: cfg.Version,
		idx:     newIndex(),
	}
	if d.logger == nil {
		d.logger = slog.New(slog.DiscardHandler)
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.version == "" {
		d.version = "hearth"
	}
	d.handler = d.routes()
	if cfg.Dir == "" {
		return d, nil
	}
	start := time.Now()
	n := 0
	j, err := openJournal(cfg.Dir, d.logger, func(rec record, op didplc.Operation, createdAt time.Time) error {
		n++
		return d.replay(rec, op, createdAt)
	})
	if err != nil {
		return nil, err
	}
	d.journal = j
	d.logger.Info("plc directory opened", "path", j.path, "operations", n, "dids", len(d.idx.dids), "took", time.Since(start))
	return d, nil
}

// replay re-verifies a journal record exactly as it was verified when
// submitted (same DID, same createdAt), so signatures, the chain and the
// nullifications are checked again and derived again, not trusted.
func (d *Directory) replay(rec record, op didplc.Operation, createdAt time.Time) error {
	ctx := context.Background()
	p, err := didplc.VerifyOperation(ctx, d.idx, rec.DID, op, createdAt)
	if err != nil {
		return fmt.Errorf("operation %s of %s no longer verifies: %w", rec.CID, rec.DID, err)
	}
	if err := d.idx.CommitOperations(ctx, []*didplc.PreparedOperation{p}); err != nil {
		return fmt.Errorf("index operation %s of %s: %w", rec.CID, rec.DID, err)
	}
	if createdAt.After(d.last) {
		d.last = createdAt
	}
	return nil
}

// Close releases the journal. Afterwards every method returns ErrClosed
// and the HTTP API answers 503.
func (d *Directory) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	if d.journal != nil {
		return d.journal.close()
	}
	return nil
}

// Submit verifies op as the next operation of did and, if valid, keeps it
// (durably, before returning, when the directory has a Dir).
//
// A genesis operation must hash to did. Any other operation's prev must
// name a non-nullified operation of did that is not a tombstone, and it
// must be signed by one of that operation's rotation keys. When prev is
// not the current head, op forks history: it must be signed by a key
// ranked above the key that signed the first operation it displaces, and
// within 72 hours of that operation; the displaced operations become
// nullified.
//
// The directory keeps op itself: do not modify it afterwards.
//
// Errors: ErrInvalidOperation (wrapped, with the reason) for any
// rejection, ErrClosed, or a storage error.
func (d *Directory) Submit(ctx context.Context, did syntax.DID, op didplc.Operation) error {
	if err := checkSubmitted(op); err != nil {
		return err
	}
	if op.IsGenesis() {
		// The library says only "does not match"; a developer whose PDS
		// derived the DID wrongly wants to see both.
		if want, err := op.DID(); err == nil && want != did.String() {
			return fmt.Errorf("%w: genesis operation hashes to %s, not %s", ErrInvalidOperation, want, did)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return ErrClosed
	}
	createdAt := d.stamp()
	p, err := didplc.VerifyOperation(ctx, d.idx, did.String(), op, createdAt)
	if err != nil {
		return rejection(err, "verify operation for "+did.String())
	}
	// Check against the index before writing, so nothing reaches the
	// journal that replay would then refuse.
	if err := d.idx.check(p); err != nil {
		return rejection(err, "index operation for "+did.String())
	}
	if d.journal != nil {
		err := d.journal.append(record{
			DID:       p.DID,
			CID:       p.OpCid,
			CreatedAt: createdAt.Format(datetime.Layout),
			Operation: op.AsOpEnum(),
		})
		if err != nil {
			return fmt.Errorf("keep operation for %s: %w", did, err)
		}
	}
	d.idx.apply(p)
	d.last = createdAt
	d.logger.Info("plc operation accepted", "did", p.DID, "cid", p.OpCid, "nullified", len(p.NullifiedOps))
	return nil
}

// rejection turns the library's ErrInvalidOperation into ours, keeping
// its reason; any other error is a failure of the directory itself.
func rejection(err error, context string) error {
	if errors.Is(err, didplc.ErrInvalidOperation) {
		reason := strings.TrimPrefix(err.Error(), didplc.ErrInvalidOperation.Error()+": ")
		return fmt.Errorf("%w: %s", ErrInvalidOperation, reason)
	}
	return fmt.Errorf("%s: %w", context, err)
}

// stamp returns the createdAt for the next operation: the clock at
// millisecond precision (what the journal and the API keep), moved past
// the previous operation's if the clock has not advanced or went back.
func (d *Directory) stamp() time.Time {
	t := d.now().UTC().Truncate(time.Millisecond)
	if !t.After(d.last) {
		t = d.last.Add(time.Millisecond)
	}
	return t
}

// Data returns did's current state. Errors: ErrNotRegistered,
// ErrDeactivated (its current operation is a tombstone), ErrClosed.
func (d *Directory) Data(did syntax.DID) (Data, error) {
	head, err := d.head(did)
	if err != nil {
		return Data{}, err
	}
	return dataOf(did.String(), head.Op)
}

// Document returns did's DID document; errors as Data.
func (d *Directory) Document(did syntax.DID) (Document, error) {
	data, err := d.Data(did)
	if err != nil {
		return Document{}, err
	}
	return documentOf(data)
}

// LastOp returns did's current operation (its head: the newest one not
// nullified), a tombstone included. Its CID is the prev of the next
// update. The operation is shared: do not modify it. Errors:
// ErrNotRegistered, ErrClosed.
func (d *Directory) LastOp(did syntax.DID) (didplc.Operation, error) {
	head, err := d.head(did)
	if err != nil {
		return nil, err
	}
	return head.Op, nil
}

// AuditLog returns every operation of did, nullified ones included,
// oldest first, in the form didplc.VerifyOpLog checks. The operations are
// shared: do not modify them. Errors: ErrNotRegistered, ErrClosed.
func (d *Directory) AuditLog(did syntax.DID) ([]didplc.LogEntry, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, ErrClosed
	}
	entries, _ := d.idx.GetAllEntries(context.Background(), did.String())
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, did)
	}
	out := make([]didplc.LogEntry, len(entries))
	for i, e := range entries {
		out[i] = logEntry(e)
	}
	return out, nil
}

// opLog returns did's operations that are not nullified, oldest first:
// the chain from genesis to head.
func (d *Directory) opLog(did syntax.DID) ([]*didplc.OpEnum, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, ErrClosed
	}
	entries, _ := d.idx.GetAllEntries(context.Background(), did.String())
	if len(entries) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, did)
	}
	var out []*didplc.OpEnum
	for _, e := range entries {
		if !e.Nullified {
			out = append(out, e.Op.AsOpEnum())
		}
	}
	return out, nil
}

// export returns up to count operations of all DIDs created after the
// given time, oldest first, for GET /export.
func (d *Directory) export(after time.Time, count int) ([]didplc.LogEntry, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, ErrClosed
	}
	all := d.idx.all
	// createdAt strictly increases along all (see stamp and replay).
	lo, hi := 0, len(all)
	for lo < hi {
		mid := (lo + hi) / 2
		if all[mid].CreatedAt.After(after) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	all = all[lo:]
	if len(all) > count {
		all = all[:count]
	}
	out := make([]didplc.LogEntry, len(all))
	for i, e := range all {
		out[i] = logEntry(e)
	}
	return out, nil
}

func (d *Directory) head(did syntax.DID) (*didplc.OpEntry, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return nil, ErrClosed
	}
	head, _ := d.idx.GetLatest(context.Background(), did.String())
	if head == nil {
		return nil, fmt.Errorf("%w: %s", ErrNotRegistered, did)
	}
	return head, nil
}

func logEntry(e *didplc.OpEntry) didplc.LogEntry {
	return didplc.LogEntry{
		DID:       e.DID,
		Operation: *e.Op.AsOpEnum(),
		CID:       e.OpCid,
		Nullified: e.Nullified,
		CreatedAt: e.CreatedAt.UTC().Format(datetime.Layout),
	}
}
