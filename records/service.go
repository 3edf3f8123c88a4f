// Package records is the record API of a PDS: it turns createRecord,
// putRecord, deleteRecord and applyWrites into one signed commit per call,
// validated against the official lexicons, stored with its firehose event in
// one transaction, and published to subscribers; and it reads records back.
//
// Writes to one repository are serialized here (a lock per DID) so each
// commit is built on the head the store still holds; different
// repositories only share the store's write lock, for the length of one
// transaction.
package records

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/handle"
	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
)

// Publisher hands stored events to firehose subscribers; it must not block.
type Publisher interface {
	Publish(events ...store.Event)
}

// BlobMover makes an uploaded blob permanent when a record first
// references it; it must be idempotent (a retried commit moves again).
type BlobMover interface {
	MakePermanent(ctx context.Context, did, tempKey string, c cid.Cid) error
}

// Service applies and reads record writes.
type Service struct {
	store   store.Store
	blobs   BlobMover
	engine  *repo.Engine
	events  Publisher
	catalog lexicon.Catalog
	log     *slog.Logger
	clock   *syntax.TIDClock

	locks sync.Map // DID → *sync.Mutex
	keys  sync.Map // DID → atcrypto.PrivateKey, parsed once
	heads sync.Map // DID → repo.Head of the last commit made here
}

// New builds a Service. catalog may be nil (every type is then unknown).
func New(st store.Store, blobs BlobMover, engine *repo.Engine, events Publisher, catalog lexicon.Catalog, log *slog.Logger) *Service {
	return &Service{store: st, blobs: blobs, engine: engine, events: events, catalog: catalog, log: log, clock: syntax.NewTIDClock(0)}
}

// Write is one record change asked for by a client.
type Write struct {
	Action     repo.Action
	Collection string
	RKey       string // optional for creates
	// Record is the record as JSON data-model values, for creates and
	// updates.
	Record map[string]any
	// SwapRecord, when set, is the CID the record must have now; an empty
	// string means it must not exist.
	SwapRecord *string
}

// Request is one call's writes.
type Request struct {
	DID string
	// Validate is the lexicon validation mode: nil validates known types
	// and accepts unknown ones; true requires a known, valid type; false
	// skips validation.
	Validate *bool
	Writes   []Write
	// SwapCommit, when set, is the commit CID the repository must be at.
	SwapCommit string
	// Account, when the caller already read it, saves a lookup.
	Account *store.Account
}

// Result is one write's outcome.
type Result struct {
	Action           repo.Action
	URI              string
	CID              string // empty for deletes
	ValidationStatus string // "valid", "unknown", or "" when not validated
}

// CommitMeta identifies the commit a request made.
type CommitMeta struct {
	CID string
	Rev string
}

// Response is what a request produced. Commit is nil when nothing changed
// (a delete of a missing record).
type Response struct {
	Commit  *CommitMeta
	Results []Result
}

func (s *Service) lock(did string) func() {
	m, _ := s.locks.LoadOrStore(did, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Apply validates writes and makes one commit of them.
func (s *Service) Apply(ctx context.Context, req Request) (*Response, error) {
	if len(req.Writes) > repo.MaxWrites {
		return nil, invalidRequest("Too many writes. Max: %d", repo.MaxWrites)
	}
	did, err := syntax.ParseDID(req.DID)
	if err != nil {
		return nil, invalidRequest("Invalid repo: %s", req.DID)
	}
	// The account's state is checked before its input, as the official
	// PDS's auth layer does.
	acct := req.Account
	if acct == nil || acct.DID != did.String() {
		acct, err = s.store.AccountByDID(ctx, did.String())
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, refusal.New("AccountNotFound", "Account not found")
	}
	if err != nil {
		return nil, err
	}
	if acct.TakedownRef != "" {
		return nil, refusal.New("AccountTakedown", "Account has been taken down")
	}
	if acct.DeactivatedAt != nil {
		return nil, refusal.New("AccountDeactivated", "Account is deactivated")
	}
	prepared := make([]prepared, 0, len(req.Writes))
	for i, w := range req.Writes {
		p, err := s.prepare(did, w, req.Validate)
		if err != nil {
			if len(req.Writes) > 1 {
				return nil, fmt.Errorf("writes[%d]: %w", i, err)
			}
			return nil, err
		}
		prepared = append(prepared, p)
	}

	unlock := s.lock(did.String())
	defer unlock()

	root, err := s.store.RepoRoot(ctx, did.String())
	if err != nil {
		return nil, fmt.Errorf("repo root of %s: %w", did, err)
	}
	if req.SwapCommit != "" {
		if _, err := cid.Decode(req.SwapCommit); err != nil {
			return nil, invalidRequest("Invalid CID string (got %q) at $.swapCommit", req.SwapCommit)
		}
	}
	if req.SwapCommit != "" && req.SwapCommit != root.CID {
		return nil, refusal.New("InvalidSwap", "Commit was at "+root.CID)
	}
	src := blockSource{store: s.store, did: did.String()}
	headCID, err := cid.Decode(root.CID)
	if err != nil {
		return nil, fmt.Errorf("repo root of %s: %w", did, err)
	}
	head, err := s.head(ctx, src, did, headCID)
	if err != nil {
		return nil, err
	}

	pl, err := s.plan(ctx, did, prepared)
	if err != nil {
		return nil, err
	}
	results, writes, blobRefs, claims := pl.results, pl.writes, pl.blobRefs, pl.claims
	// Writes that all changed nothing make no commit; an empty request
	// makes an empty one (the official PDS does, advancing the rev).
	if !pl.changed && len(req.Writes) > 0 {
		return &Response{Results: results}, nil
	}

	if err := s.claimBlobs(ctx, did.String(), claims); err != nil {
		return nil, err
	}
	key, err := s.signingKey(ctx, did.String())
	if err != nil {
		return nil, err
	}
	rev := repo.NextRev(s.clock, head.Rev)
	res, err := s.engine.Apply(ctx, src, head, key, rev, writes)
	if err != nil {
		return nil, mapRepoError(err)
	}
	commit := store.Commit{
		DID:      did.String(),
		PrevCID:  root.CID,
		CID:      res.Commit.CID.String(),
		Rev:      res.Commit.Rev.String(),
		BlobRefs: blobRefs,
	}
	for _, b := range res.Blocks {
		commit.Blocks = append(commit.Blocks, store.Block{CID: b.CID.String(), Content: b.Data})
	}
	for _, c := range res.Removed {
		commit.Removed = append(commit.Removed, c.String())
	}
	for _, op := range res.Ops {
		collection, rkey, _ := strings.Cut(op.Path, "/")
		ref := store.RecordRef{Collection: collection, RKey: rkey}
		if op.Prev.Defined() {
			commit.Released = append(commit.Released, op.Prev.String())
		}
		if op.Action == repo.Delete {
			commit.Deletes = append(commit.Deletes, ref)
		} else {
			ref.CID = op.CID.String()
			commit.Puts = append(commit.Puts, ref)
		}
	}
	event, err := commitEvent(did.String(), res)
	if err != nil {
		return nil, err
	}
	commit.Events = []store.NewEvent{event}
	stored, err := s.store.ApplyCommit(ctx, commit)
	if err != nil {
		// The cached tree moved ahead of the store: drop it.
		s.engine.Cache().Forget(did)
		if errors.Is(err, store.ErrBlobNotFound) {
			return nil, refusal.New("BlobNotFound", "Could not find blob: "+strings.TrimPrefix(err.Error(), store.ErrBlobNotFound.Error()+": "))
		}
		return nil, fmt.Errorf("store commit: %w", err)
	}
	s.heads.Store(did.String(), repo.Head{DID: did, Commit: res.Commit.CID, Rev: res.Commit.Rev, Data: res.Commit.Data})
	s.events.Publish(stored...)
	return &Response{Commit: &CommitMeta{CID: commit.CID, Rev: commit.Rev}, Results: results}, nil
}

// plan is a request's writes run against the record index: one result
// per write, and the net change of each path for the commit.
type plan struct {
	results  []Result
	writes   []repo.Write // one per changed path, in the order paths first appear
	blobRefs []store.BlobRef
	claims   []atdata.Blob
	// changed: some write did something (a request whose writes all
	// changed nothing makes no commit).
	changed bool
}

// pathState is one path as the writes before the current one left it.
type pathState struct {
	before string    // record CID in the index before the call ("" absent)
	now    string    // record CID after the writes so far
	put    *prepared // the write that put now
}

// plan runs the writes in order, each checked against the path as the
// writes before it in the call left it, which is the official PDS's rule
// (it applies them one by one to the tree): a path may be named more than
// once, so create then delete, create then update, update then update,
// update then delete and delete then create of one path are accepted, and
// a second create of a path, or an update or delete of one the call
// already deleted, are refused. The official's #commit then lists one op
// per write, with prev read before the call; consumers refuse a path
// named twice (indigo's NormalizeOps) and a create whose record is not in
// the tree, so Hearth's commit carries the net change per path instead:
// create then delete of a new path is no op, delete then create an update,
// and so on. The XRPC answer still has one result per write.
func (s *Service) plan(ctx context.Context, did syntax.DID, prepared []prepared) (*plan, error) {
	pl := &plan{}
	paths := make(map[string]*pathState, len(prepared))
	var order []string
	for i := range prepared {
		p := &prepared[i]
		path := p.collection.String() + "/" + p.rkey.String()
		st, ok := paths[path]
		if !ok {
			current, err := s.store.Record(ctx, did.String(), p.collection.String(), p.rkey.String())
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			st = &pathState{}
			if err == nil {
				st.before, st.now = current.CID, current.CID
			}
			paths[path] = st
			order = append(order, path)
		}
		res, changed, err := st.step(did, p)
		if err != nil {
			return nil, err
		}
		pl.results = append(pl.results, res)
		pl.changed = pl.changed || changed
	}
	for _, path := range order {
		st := paths[path]
		if st.before == st.now {
			continue
		}
		p := st.put
		if st.now == "" {
			collection, rkey, _ := strings.Cut(path, "/")
			pl.writes = append(pl.writes, repo.Write{Action: repo.Delete, Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey)})
			continue
		}
		action := repo.Update
		if st.before == "" {
			action = repo.Create
		}
		pl.writes = append(pl.writes, repo.Write{Action: action, Collection: p.collection, RKey: p.rkey, Record: p.cbor})
		for _, b := range p.blobs {
			pl.blobRefs = append(pl.blobRefs, store.BlobRef{Collection: p.collection.String(), RKey: p.rkey.String(), CID: b.Ref.String()})
			pl.claims = append(pl.claims, b)
		}
	}
	return pl, nil
}

// step applies one write to its path and returns the write's result;
// changed is false for a write that changes nothing (deleteRecord of an
// absent record, a record rewritten as it is).
func (st *pathState) step(did syntax.DID, p *prepared) (res Result, changed bool, err error) {
	exists := st.now != ""
	if p.action == repo.Delete && !exists && p.lenient {
		// deleteRecord of what is not there changes nothing, whatever its
		// swap says, as with the official PDS: no commit.
		return Result{Action: repo.Delete, URI: p.uri(did)}, false, nil
	}
	if p.swapRecord != nil {
		switch {
		case *p.swapRecord == "" && exists:
			return res, false, refusal.New("InvalidSwap", "Record was at "+st.now)
		case *p.swapRecord != "" && st.now != *p.swapRecord:
			if exists {
				return res, false, refusal.New("InvalidSwap", "Record was at "+st.now)
			}
			return res, false, refusal.New("InvalidSwap", "Record was at null")
		}
	}
	action := p.action
	switch {
	case action == repo.Create && exists && p.upsert:
		action = repo.Update
	case action == repo.Create && exists:
		return res, false, invalidRequest("Record already exists: %s", p.uri(did))
	case action == repo.Update && !exists && p.upsert:
		action = repo.Create
	case action == repo.Update && !exists:
		return res, false, invalidRequest("Could not find record: %s", p.uri(did))
	case action == repo.Update && st.now == p.cid:
		// Rewriting a record as it is changes nothing: no commit, as with
		// the official PDS.
		return Result{Action: repo.Update, URI: p.uri(did), CID: p.cid, ValidationStatus: p.status}, false, nil
	case action == repo.Delete && !exists:
		return res, false, invalidRequest("Could not find record: %s", p.uri(did))
	}
	if action == repo.Delete {
		st.now, st.put = "", nil
	} else {
		st.now, st.put = p.cid, p
	}
	return Result{Action: action, URI: p.uri(did), CID: p.cid, ValidationStatus: p.status}, true, nil
}

// head returns the repository head at commit c: remembered from the last
// commit made here when it is still the current one (the store decides),
// read from the commit block otherwise.
func (s *Service) head(ctx context.Context, src repo.BlockSource, did syntax.DID, c cid.Cid) (repo.Head, error) {
	if h, ok := s.heads.Load(did.String()); ok && h.(repo.Head).Commit == c {
		return h.(repo.Head), nil
	}
	return repo.LoadHead(ctx, src, did, c)
}

// claimBlobs checks that the account uploaded every blob the writes
// reference and moves first-time ones out of the temporary area. Every
// reference is checked before any is moved, so a refused write moves
// nothing. The moves happen before the commit: if the commit then fails,
// a moved blob stays an unreferenced upload for the collector, never a
// reference to nothing.
func (s *Service) claimBlobs(ctx context.Context, did string, refs []atdata.Blob) error {
	type move struct {
		key string
		c   cid.Cid
	}
	var moves []move
	seen := map[string]bool{}
	for _, ref := range refs {
		c := ref.Ref.String()
		if seen[c] {
			continue
		}
		seen[c] = true
		b, err := s.store.Blob(ctx, did, c)
		if errors.Is(err, store.ErrNotFound) || (err == nil && b.TakedownRef != "") {
			return refusal.New("BlobNotFound", "Could not find blob: "+c)
		}
		if err != nil {
			return err
		}
		if b.TempKey == "" {
			continue
		}
		// The first reference must describe the upload truthfully, as the
		// official PDS checks (later ones are not re-checked there either).
		if ref.MimeType != b.MimeType {
			return refusal.New("InvalidMimeType", fmt.Sprintf("Referenced Mimetype does not match stored blob. Expected: %s, Got: %s", b.MimeType, ref.MimeType))
		}
		if ref.Size != b.Size {
			return refusal.New("InvalidSize", fmt.Sprintf("Referenced Size does not match stored blob. Expected: %d, Got: %d", b.Size, ref.Size))
		}
		moves = append(moves, move{b.TempKey, ref.Ref.CID()})
	}
	for _, m := range moves {
		if err := s.blobs.MakePermanent(ctx, did, m.key, m.c); err != nil {
			return fmt.Errorf("make blob %s of %s permanent: %w", m.c, did, err)
		}
	}
	return nil
}

// signingKey returns an account's parsed signing key. Keys do not change
// while an account lives here, so each is read and parsed once.
func (s *Service) signingKey(ctx context.Context, did string) (atcrypto.PrivateKey, error) {
	if k, ok := s.keys.Load(did); ok {
		return k.(atcrypto.PrivateKey), nil
	}
	raw, err := s.store.SigningKey(ctx, did)
	if err != nil {
		return nil, fmt.Errorf("signing key of %s: %w", did, err)
	}
	key, err := atcrypto.ParsePrivateBytesK256(raw)
	if err != nil {
		return nil, fmt.Errorf("parse signing key of %s: %w", did, err)
	}
	s.keys.Store(did, key)
	return key, nil
}

// prepared is a write checked and encoded before the repository is locked.
type prepared struct {
	action     repo.Action
	upsert     bool // putRecord: create or update
	lenient    bool // deleteRecord: absent is fine
	collection syntax.NSID
	rkey       syntax.RecordKey
	cbor       []byte
	cid        string
	status     string
	swapRecord *string
	blobs      []atdata.Blob // blobs the record references
}

func (p prepared) uri(did syntax.DID) string {
	return "at://" + did.String() + "/" + p.collection.String() + "/" + p.rkey.String()
}

// Actions of the record API beyond repo's create, update and delete.
const (
	// Upsert is putRecord's create-or-update.
	Upsert repo.Action = "upsert"
	// DeleteIfPresent is deleteRecord's delete, a no-op when the record
	// is absent (applyWrites' delete refuses that).
	DeleteIfPresent repo.Action = "delete-if-present"
)

// prepare checks one write: names, record key, $type, lexicon, and
// encodes its record as DAG-CBOR.
func (s *Service) prepare(did syntax.DID, w Write, validate *bool) (prepared, error) {
	p := prepared{action: w.Action, swapRecord: w.SwapRecord}
	switch w.Action {
	case Upsert:
		p.action, p.upsert = repo.Update, true
	case DeleteIfPresent:
		p.action, p.lenient = repo.Delete, true
	}
	collection, err := syntax.ParseNSID(w.Collection)
	if err != nil {
		return p, invalidRequest("Invalid NSID (got %q) at $.collection", w.Collection)
	}
	p.collection = collection
	switch {
	case w.RKey == "" && p.action == repo.Create:
		p.rkey = syntax.RecordKey(s.clock.Next().String())
	default:
		rkey, err := syntax.ParseRecordKey(w.RKey)
		if err != nil {
			return p, invalidRequest("Invalid record key (got %q) at $.rkey", w.RKey)
		}
		p.rkey = rkey
	}
	if handle.HasExplicitSlur(p.rkey.String()) {
		return p, invalidRequest("Unacceptable slur in record key")
	}
	if p.action == repo.Delete {
		return p, nil
	}
	if w.Record == nil {
		return p, invalidRequest("Record is required")
	}
	record := w.Record
	mustValidate := validate == nil || *validate
	// The $type is filled in or checked whatever validate says: a record
	// claiming another type would be misread by every consumer.
	if t, ok := record["$type"]; !ok {
		record["$type"] = collection.String()
	} else if ts, _ := t.(string); ts != collection.String() {
		return p, invalidRequest("Invalid $type: expected %s, got %v", collection, t)
	}
	if mustValidate {
		status, err := s.validate(collection, p.rkey, record, validate != nil)
		if err != nil {
			return p, err
		}
		p.status = status
	}
	p.blobs = atdata.ExtractBlobs(record)
	for _, b := range p.blobs {
		// A {cid, mimeType} ref (atdata gives it size -1) names no size to
		// check; the official PDS refuses to write new ones.
		if b.Size < 0 {
			return p, invalidRequest("Legacy blobs are not allowed (%s)", b.Ref)
		}
	}
	cbor, err := atdata.MarshalCBOR(record)
	if err != nil {
		return p, invalidRequest("Invalid record: %v", err)
	}
	if len(cbor) > MaxRecordBytes {
		return p, invalidRequest("Record is too large: %d bytes, limit %d", len(cbor), MaxRecordBytes)
	}
	c, err := recordCID(cbor)
	if err != nil {
		return p, err
	}
	p.cbor, p.cid = cbor, c.String()
	return p, nil
}

// MaxRecordBytes bounds one record's DAG-CBOR encoding. Relays and the
// official PDS refuse records over 1 MiB; JSON bodies are smaller still.
const MaxRecordBytes = 1 << 20

// validate checks a record against its lexicon. Unknown types are
// "unknown" unless required says a known type is required.
func (s *Service) validate(collection syntax.NSID, rkey syntax.RecordKey, record map[string]any, required bool) (string, error) {
	var schema *lexicon.Schema
	if s.catalog != nil {
		schema, _ = s.catalog.Resolve(collection.String())
	}
	if schema == nil {
		if required {
			return "", invalidRequest("Unknown lexicon type: %s", collection)
		}
		return "unknown", nil
	}
	def, ok := schema.Def.(lexicon.SchemaRecord)
	if !ok {
		return "", invalidRequest("Unknown lexicon type: %s is not a record type", collection)
	}
	if err := checkKey(collection, def.Key, rkey); err != nil {
		return "", err
	}
	if err := lexicon.ValidateRecord(s.catalog, record, collection.String(), 0); err != nil {
		return "", invalidRequest("Invalid %s record: %v", collection, err)
	}
	return "valid", nil
}

// checkKey applies a record schema's key rule ("tid", "nsid", "any",
// "literal:<value>").
func checkKey(collection syntax.NSID, rule string, rkey syntax.RecordKey) error {
	bad := func(why string) error {
		return invalidRequest("Invalid record key for %s: %s (got %q) at $", collection, why, rkey)
	}
	switch {
	case rule == "tid":
		if _, err := syntax.ParseTID(rkey.String()); err != nil {
			return bad("Invalid TID string")
		}
	case rule == "nsid":
		if _, err := syntax.ParseNSID(rkey.String()); err != nil {
			return bad("Invalid NSID")
		}
	case strings.HasPrefix(rule, "literal:"):
		if want := strings.TrimPrefix(rule, "literal:"); rkey.String() != want {
			return bad(fmt.Sprintf("Expected %q", want))
		}
	}
	return nil
}

func accountInactive(a *store.Account) error {
	if a.TakedownRef != "" {
		return refusal.New("RepoTakendown", "Repo has been takendown: "+a.DID)
	}
	return refusal.New("RepoDeactivated", "Repo has been deactivated: "+a.DID)
}

func mapRepoError(err error) error {
	switch {
	case errors.Is(err, repo.ErrDuplicatePath):
		return invalidRequest("Duplicate record path in writes")
	case errors.Is(err, repo.ErrTooManyWrites):
		return invalidRequest("Too many writes. Max: %d", repo.MaxWrites)
	case errors.Is(err, repo.ErrRecordExists), errors.Is(err, repo.ErrRecordNotFound), errors.Is(err, repo.ErrInvalidWrite):
		return invalidRequest("%v", err)
	}
	return err
}

// blockSource reads one repository's blocks from the store.
type blockSource struct {
	store store.Store
	did   string
}

func (b blockSource) GetBlock(ctx context.Context, c cid.Cid) ([]byte, error) {
	data, err := b.store.Block(ctx, b.did, c.String())
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", repo.ErrBlockNotFound, c)
	}
	return data, err
}

var _ repo.BlockSource = blockSource{}
