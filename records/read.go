package records

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
)

// Record is a stored record read back.
type Record struct {
	URI   string
	CID   string
	Value map[string]any // data-model values; json.Marshal renders them
}

// ResolveRepo turns a repo parameter (a DID or a hosted handle) into a
// hosted account.
func (s *Service) ResolveRepo(ctx context.Context, raw string) (*store.Account, error) {
	a, err := s.account(ctx, raw)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refusal.New("RepoNotFound", "Could not find repo for DID: "+raw)
	}
	return a, err
}

// account looks a hosted account up by DID or handle (store.ErrNotFound).
func (s *Service) account(ctx context.Context, raw string) (*store.Account, error) {
	if strings.HasPrefix(raw, "did:") {
		return s.store.AccountByDID(ctx, syntax.DID(raw))
	}
	return s.store.AccountByHandle(ctx, syntax.Handle(raw))
}

// GetRecord reads one record; wantCID, when set, must match the current
// version.
func (s *Service) GetRecord(ctx context.Context, did syntax.DID, collection, rkey, wantCID string) (*Record, error) {
	uri := "at://" + did.String() + "/" + collection + "/" + rkey
	notFound := refusal.New("RecordNotFound", "Could not locate record: "+uri)
	// A name that does not parse finds nothing.
	ref, err := s.store.Record(ctx, did, syntax.NSID(collection), syntax.RecordKey(rkey))
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	if wantCID != "" && wantCID != ref.CID.String() {
		return nil, notFound
	}
	value, err := s.recordValue(ctx, did, ref.CID)
	if err != nil {
		return nil, err
	}
	return &Record{URI: uri, CID: ref.CID.String(), Value: value}, nil
}

func (s *Service) recordValue(ctx context.Context, did syntax.DID, c cid.Cid) (map[string]any, error) {
	data, err := s.store.Block(ctx, did, c)
	if err != nil {
		return nil, fmt.Errorf("record block %s of %s: %w", c, did, err)
	}
	value, err := atdata.UnmarshalCBOR(data)
	if err != nil {
		return nil, fmt.Errorf("decode record %s of %s: %w", c, did, err)
	}
	return value, nil
}

// ListRecords lists a collection, newest record key first unless reverse.
// The cursor is the last record key of the previous page.
func (s *Service) ListRecords(ctx context.Context, did syntax.DID, collection string, limit int, cursor string, reverse bool) ([]Record, string, error) {
	refs, err := s.store.ListRecords(ctx, did, syntax.NSID(collection), limit, cursor, reverse)
	if err != nil {
		return nil, "", err
	}
	out := make([]Record, 0, len(refs))
	for _, ref := range refs {
		value, err := s.recordValue(ctx, did, ref.CID)
		if err != nil {
			return nil, "", err
		}
		out = append(out, Record{URI: "at://" + did.String() + "/" + collection + "/" + ref.RKey.String(), CID: ref.CID.String(), Value: value})
	}
	// Like the official PDS, every non-empty page names a cursor; the
	// client stops at an empty page.
	next := ""
	if len(refs) > 0 {
		next = refs[len(refs)-1].RKey.String()
	}
	return out, next, nil
}

// Collections lists the collections of a repository.
func (s *Service) Collections(ctx context.Context, did syntax.DID) ([]syntax.NSID, error) {
	return s.store.Collections(ctx, did)
}

// Head is a repository's current commit.
type Head struct {
	CID cid.Cid
	Rev syntax.TID
}

// LatestCommit returns a hosted repository's head; inactive accounts get
// the official refusals.
func (s *Service) LatestCommit(ctx context.Context, did syntax.DID) (*Head, error) {
	if err := s.Servable(ctx, did); err != nil {
		return nil, err
	}
	root, err := s.store.RepoRoot(ctx, did)
	if err != nil {
		return nil, err
	}
	return &Head{CID: root.CID, Rev: root.Rev}, nil
}

// Servable refuses reads of unknown, deactivated and taken-down
// repositories, with the official error names. A deactivated repository
// stays readable by its owner and the admin (see AsOwner, AsAdmin), as with the
// official PDS, so a user can still export it.
func (s *Service) Servable(ctx context.Context, did syntax.DID) error {
	a, err := s.store.AccountByDID(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return refusal.New("RepoNotFound", "Could not find repo for DID: "+did.String())
	}
	if err != nil {
		return err
	}
	if rd := readerOf(ctx); a.TakedownRef == "" && a.DeactivatedAt != nil && (rd.admin || rd.did == did.String()) {
		return nil
	}
	if !a.Active() {
		return accountInactive(a)
	}
	return nil
}

type readerKey struct{}

// reader is who reads, as the HTTP layer authenticated them.
type reader struct {
	did   string
	admin bool
}

// AsOwner marks ctx as a read by the account did, who may read their
// repository while it is deactivated.
func AsOwner(ctx context.Context, did string) context.Context {
	return context.WithValue(ctx, readerKey{}, reader{did: did})
}

// AsAdmin marks ctx as a read by the admin, who may read every
// deactivated repository.
func AsAdmin(ctx context.Context) context.Context {
	return context.WithValue(ctx, readerKey{}, reader{admin: true})
}

func readerOf(ctx context.Context) reader {
	rd, _ := ctx.Value(readerKey{}).(reader)
	return rd
}

// Export is a checked getRepo, ready to stream.
type Export struct {
	store  Store
	did    syntax.DID
	since  syntax.TID
	root   cid.Cid
	commit []byte
}

// PrepareExport checks a getRepo (servable repository, since a TID) and
// reads its head, so refusals are XRPC errors before any byte is sent.
func (s *Service) PrepareExport(ctx context.Context, did syntax.DID, since string) (*Export, error) {
	var rev syntax.TID
	if since != "" {
		var err error
		if rev, err = syntax.ParseTID(since); err != nil {
			return nil, invalidRequest("Invalid since: %s", since)
		}
	}
	head, err := s.LatestCommit(ctx, did)
	if err != nil {
		return nil, err
	}
	commit, err := s.store.Block(ctx, did, head.CID)
	if err != nil {
		return nil, fmt.Errorf("commit block of %s: %w", did, err)
	}
	return &Export{store: s.store, did: did, since: rev, root: head.CID, commit: commit}, nil
}

// WriteTo streams the repository as a CAR v1: the commit, then every other
// block of the repository, or with since only those written after that
// rev. The store keeps exactly the live blocks of a repository (commits
// delete what they replace), so one cursor over them is the whole
// repository: one query instead of a tree walk's query per block.
func (e *Export) WriteTo(ctx context.Context, w io.Writer) error {
	cw, err := repo.NewCARWriter(w, e.root)
	if err != nil {
		return err
	}
	if err := cw.Write(e.root, e.commit); err != nil {
		return err
	}
	err = e.store.BlocksSince(ctx, e.did, e.since, func(b store.Block) error {
		if b.CID == e.root {
			return nil
		}
		return cw.Write(b.CID, b.Content)
	})
	if err != nil {
		return err
	}
	return cw.Flush()
}

// RecordProof writes a CAR proving a record's presence or absence at the
// current commit.
func (s *Service) RecordProof(ctx context.Context, w io.Writer, did syntax.DID, collection, rkey string) error {
	head, err := s.LatestCommit(ctx, did)
	if err != nil {
		return err
	}
	nsid, err := syntax.ParseNSID(collection)
	if err != nil {
		return invalidRequest("Invalid collection: %s", collection)
	}
	key, err := syntax.ParseRecordKey(rkey)
	if err != nil {
		return invalidRequest("Invalid record key: %s", rkey)
	}
	// A missing record gets its proof of absence, as the official PDS
	// answers.
	blocks, _, err := repo.RecordProof(ctx, blockSource{store: s.store, did: did}, head.CID, nsid, key)
	if err != nil {
		return err
	}
	return repo.WriteCAR(w, head.CID, blocks)
}

// Blocks writes the requested blocks of a repository as a CAR rooted at
// its head; an unknown CID is refused.
func (s *Service) Blocks(ctx context.Context, w io.Writer, did syntax.DID, cids []string) error {
	head, err := s.LatestCommit(ctx, did)
	if err != nil {
		return err
	}
	blocks := make([]repo.Block, 0, len(cids))
	var missing []string
	for _, raw := range cids {
		c, err := cid.Decode(raw)
		if err != nil {
			return invalidRequest("Invalid CID string (got %q) at $.cids", raw)
		}
		data, err := s.store.Block(ctx, did, c)
		if errors.Is(err, store.ErrNotFound) {
			missing = append(missing, raw)
			continue
		}
		if err != nil {
			return err
		}
		blocks = append(blocks, repo.Block{CID: c, Data: data})
	}
	if len(missing) > 0 {
		return invalidRequest("Could not find cids: %s", strings.Join(missing, ","))
	}
	return repo.WriteCAR(w, head.CID, blocks)
}

// RepoStatus is com.atproto.sync.getRepoStatus's answer.
type RepoStatus struct {
	DID    syntax.DID
	Active bool
	Status string
	Rev    syntax.TID
}

// Status reports whether a repository is served, and its rev when active.
func (s *Service) Status(ctx context.Context, did syntax.DID) (*RepoStatus, error) {
	a, err := s.store.AccountByDID(ctx, did)
	if errors.Is(err, store.ErrNotFound) {
		return nil, refusal.New("RepoNotFound", "Could not find repo for DID: "+did.String())
	}
	if err != nil {
		return nil, err
	}
	st := &RepoStatus{DID: did, Active: a.Active(), Status: a.Status()}
	if st.Active {
		root, err := s.store.RepoRoot(ctx, did)
		if err != nil {
			return nil, err
		}
		st.Rev = root.Rev
	}
	return st, nil
}

// ListRepos pages through hosted repositories by DID.
func (s *Service) ListRepos(ctx context.Context, cursor string, limit int) ([]store.RepoInfo, string, error) {
	repos, err := s.store.ListRepos(ctx, cursor, limit)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(repos) == limit && limit > 0 {
		next = repos[len(repos)-1].DID.String()
	}
	return repos, next, nil
}
