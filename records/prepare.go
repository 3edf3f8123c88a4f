package records

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/lexicon"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/handle"
	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
)

// call is a request checked before its repository is locked: the
// account may write, every write is well formed and encoded.
type call struct {
	did        syntax.DID
	writes     []prepared
	swapCommit cid.Cid // cid.Undef for no check
}

// prepareCall checks what a request can be checked for alone: the write
// count, that the caller owns the repository and may write to it (checked
// before the writes, as the official PDS's auth layer does), each write,
// and the swapCommit CID.
func (s *Service) prepareCall(ctx context.Context, req Request) (*call, error) {
	if len(req.Writes) > repo.MaxWrites {
		return nil, invalidRequest("Too many writes. Max: %d", repo.MaxWrites)
	}
	did, err := s.writable(ctx, req.Repo, req.Caller)
	if err != nil {
		return nil, err
	}
	c := &call{did: did, writes: make([]prepared, 0, len(req.Writes))}
	for i, w := range req.Writes {
		p, err := s.prepare(did, w, req.Validate)
		if err != nil {
			if len(req.Writes) > 1 {
				return nil, fmt.Errorf("writes[%d]: %w", i, err)
			}
			return nil, err
		}
		c.writes = append(c.writes, p)
	}
	if req.SwapCommit != "" {
		if c.swapCommit, err = cid.Decode(req.SwapCommit); err != nil {
			return nil, invalidRequest("Invalid CID string (got %q) at $.swapCommit", req.SwapCommit)
		}
	}
	return c, nil
}

// writable resolves the repository a write names and checks that caller
// owns it and that it is active, with the official PDS's refusals.
func (s *Service) writable(ctx context.Context, repoID syntax.AtIdentifier, caller syntax.DID) (syntax.DID, error) {
	a, err := s.account(ctx, repoID.String())
	if errors.Is(err, store.ErrNotFound) {
		return "", refusal.ErrAccountNotFound
	}
	if err != nil {
		return "", err
	}
	if a.DID != caller {
		return "", refusal.New("AuthenticationRequired", "Authentication Required")
	}
	if a.TakedownRef != "" {
		return "", refusal.New("AccountTakedown", "Account has been taken down")
	}
	if a.DeactivatedAt != nil {
		return "", refusal.New("AccountDeactivated", "Account is deactivated")
	}
	return caller, nil
}

// prepared is a write checked and encoded before the repository is locked.
type prepared struct {
	action     repo.Action
	upsert     bool // putRecord: create or update
	lenient    bool // deleteRecord: absent is fine
	collection syntax.NSID
	rkey       syntax.RecordKey
	cbor       []byte
	cid        cid.Cid
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

// prepare checks one write: names, record key, and its record (see
// prepareRecord).
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
	return p, s.prepareRecord(&p, w.Record, validate)
}

// prepareRecord checks a create's or update's record ($type, lexicon,
// blobs, size) and encodes it as DAG-CBOR into p.
func (s *Service) prepareRecord(p *prepared, record map[string]any, validate *bool) error {
	// The $type is filled in or checked whatever validate says: a record
	// claiming another type would be misread by every consumer.
	if t, ok := record["$type"]; !ok {
		record["$type"] = p.collection.String()
	} else if ts, _ := t.(string); ts != p.collection.String() {
		return invalidRequest("Invalid $type: expected %s, got %v", p.collection, t)
	}
	if validate == nil || *validate {
		status, err := s.validate(p.collection, p.rkey, record, validate != nil)
		if err != nil {
			return err
		}
		p.status = status
	}
	p.blobs = atdata.ExtractBlobs(record)
	for _, b := range p.blobs {
		// A {cid, mimeType} ref (atdata gives it size -1) names no size to
		// check; the official PDS refuses to write new ones.
		if b.Size < 0 {
			return invalidRequest("Legacy blobs are not allowed (%s)", b.Ref)
		}
	}
	cbor, err := atdata.MarshalCBOR(record)
	if err != nil {
		return invalidRequest("Invalid record: %v", err)
	}
	if len(cbor) > MaxRecordBytes {
		return invalidRequest("Record is too large: %d bytes, limit %d", len(cbor), MaxRecordBytes)
	}
	c, err := recordCID(cbor)
	if err != nil {
		return err
	}
	p.cbor, p.cid = cbor, c
	return nil
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
