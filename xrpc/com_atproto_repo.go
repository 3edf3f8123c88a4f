package xrpc

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/records"
	"github.com/hearth-pds/hearth/repo"
)

// recordValue reads a record body as data-model values ($link, $bytes and
// blobs decoded), which is what validation and DAG-CBOR encoding expect.
func recordValue(in *input, key string) map[string]any {
	if in.err != nil {
		return nil
	}
	if !in.has(key) {
		in.err = missing(key)
		return nil
	}
	v, err := atdata.UnmarshalJSON(in.m[key])
	if err != nil {
		in.err = invalidRequest("Invalid record at $." + key + ": " + err.Error())
		return nil
	}
	return v
}

// optionalValidate reads the validate flag: absent, true or false (null
// is refused, as the lexicon has no null there).
func optionalValidate(in *input) *bool {
	raw, ok := in.m["validate"]
	if !ok || in.err != nil {
		return nil
	}
	if string(raw) == "null" {
		in.err = wrongType("validate", "boolean", raw)
		return nil
	}
	v := in.boolean("validate")
	return &v
}

// optionalRKey reads createRecord's rkey: absent means "pick a TID", but an
// empty one is refused.
func optionalRKey(in *input) string {
	rkey := in.str("rkey", false)
	if in.err == nil && in.has("rkey") && rkey == "" {
		in.err = invalidRequest(`Invalid record key (got "") at $.rkey`)
	}
	return rkey
}

// swapRecord reads swapRecord: absent (no check), null (must not exist,
// only where the lexicon allows null) or a CID.
func swapRecord(in *input, nullable bool) *string {
	raw, ok := in.m["swapRecord"]
	if !ok || in.err != nil {
		return nil
	}
	if string(raw) == "null" {
		if !nullable {
			return nil
		}
		empty := ""
		return &empty
	}
	v := in.str("swapRecord", false)
	return &v
}

type commitMeta struct {
	CID string `json:"cid"`
	Rev string `json:"rev"`
}

func commitOf(resp *records.Response) *commitMeta {
	if resp.Commit == nil {
		return nil
	}
	return &commitMeta{CID: resp.Commit.CID, Rev: resp.Commit.Rev}
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, c caller, in *input, swapCommit string, validate *bool, writes []records.Write) (*records.Response, error) {
	raw := in.str("repo", true)
	if in.err != nil {
		return nil, in.err
	}
	repoID, err := syntax.ParseAtIdentifier(raw)
	if err != nil {
		return nil, invalidRequest(`Invalid AT identifier (got "` + abbreviate(raw) + `") at $.repo`)
	}
	return s.records.Apply(r.Context(), records.Request{Repo: repoID, Caller: syntax.DID(c.DID), Validate: validate, Writes: writes, SwapCommit: swapCommit})
}

func (s *Server) createRecord(w http.ResponseWriter, r *http.Request, c caller) error {
	return s.writeRecord(w, r, c, func(in *input) records.Write {
		return records.Write{
			Action:     repo.Create,
			Collection: in.str("collection", true),
			RKey:       optionalRKey(in),
			Record:     recordValue(in, "record"),
		}
	})
}

func (s *Server) putRecord(w http.ResponseWriter, r *http.Request, c caller) error {
	return s.writeRecord(w, r, c, func(in *input) records.Write {
		return records.Write{
			Action:     records.Upsert,
			Collection: in.str("collection", true),
			RKey:       in.str("rkey", true),
			Record:     recordValue(in, "record"),
			SwapRecord: swapRecord(in, true),
		}
	})
}

// writeRecord serves createRecord and putRecord: one write read from the
// body by read, applied, answered with the record's URI, CID, the commit
// and the validation status.
func (s *Server) writeRecord(w http.ResponseWriter, r *http.Request, c caller, read func(*input) records.Write) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	write := read(in)
	validate, swapCommit := optionalValidate(in), in.str("swapCommit", false)
	if in.err != nil {
		return in.err
	}
	resp, err := s.apply(w, r, c, in, swapCommit, validate, []records.Write{write})
	if err != nil {
		return err
	}
	res := resp.Results[0]
	out := map[string]any{"uri": res.URI, "cid": res.CID}
	if cm := commitOf(resp); cm != nil {
		out["commit"] = cm
	}
	if res.ValidationStatus != "" {
		out["validationStatus"] = res.ValidationStatus
	}
	return writeJSON(w, out)
}

func (s *Server) deleteRecord(w http.ResponseWriter, r *http.Request, c caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	write := records.Write{
		Action:     records.DeleteIfPresent,
		Collection: in.str("collection", true),
		RKey:       in.str("rkey", true),
		SwapRecord: swapRecord(in, false),
	}
	swapCommit := in.str("swapCommit", false)
	if in.err != nil {
		return in.err
	}
	resp, err := s.apply(w, r, c, in, swapCommit, nil, []records.Write{write})
	if err != nil {
		return err
	}
	out := map[string]any{}
	if cm := commitOf(resp); cm != nil {
		out["commit"] = cm
	}
	return writeJSON(w, out)
}

const applyWritesType = "com.atproto.repo.applyWrites"

func (s *Server) applyWrites(w http.ResponseWriter, r *http.Request, c caller) error {
	in, err := readInput(w, r)
	if err != nil {
		return err
	}
	validate, swapCommit := optionalValidate(in), in.str("swapCommit", false)
	if in.err != nil {
		return in.err
	}
	if !in.has("writes") {
		return missing("writes")
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(in.m["writes"], &raw); err != nil {
		return wrongType("writes", "array", in.m["writes"])
	}
	if len(raw) > repo.MaxWrites {
		return invalidRequest("Too many writes. Max: " + strconv.Itoa(repo.MaxWrites))
	}
	writes := make([]records.Write, 0, len(raw))
	for i, rw := range raw {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(rw, &fields); err != nil {
			return invalidRequest("Input/writes/" + strconv.Itoa(i) + " must be an object")
		}
		win := &input{m: fields}
		var write records.Write
		at := "$.writes[" + strconv.Itoa(i) + "]"
		if !win.has("$type") {
			return invalidRequest(`Expected an object which includes the "$type" property value type at ` + at)
		}
		switch t := win.str("$type", true); t {
		case applyWritesType + "#create":
			write = records.Write{Action: repo.Create, Collection: win.str("collection", true), RKey: optionalRKey(win), Record: recordValue(win, "value")}
		case applyWritesType + "#update":
			write = records.Write{Action: repo.Update, Collection: win.str("collection", true), RKey: win.str("rkey", true), Record: recordValue(win, "value")}
		case applyWritesType + "#delete":
			write = records.Write{Action: repo.Delete, Collection: win.str("collection", true), RKey: win.str("rkey", true)}
		default:
			if win.err == nil {
				return invalidRequest(`Expected one of "` + applyWritesType + `#create", "` + applyWritesType + `#update" or "` +
					applyWritesType + `#delete" (got "` + abbreviate(t) + `") at ` + at + ".$type")
			}
		}
		if win.err != nil {
			return win.err
		}
		writes = append(writes, write)
	}
	resp, err := s.apply(w, r, c, in, swapCommit, validate, writes)
	if err != nil {
		return err
	}
	results := make([]map[string]any, 0, len(resp.Results))
	for i, res := range resp.Results {
		out := map[string]any{}
		switch {
		case res.Action == repo.Delete:
			out["$type"] = applyWritesType + "#deleteResult"
		case writes[i].Action == repo.Create:
			out["$type"] = applyWritesType + "#createResult"
		default:
			out["$type"] = applyWritesType + "#updateResult"
		}
		if res.Action != repo.Delete {
			out["uri"], out["cid"] = res.URI, res.CID
			if res.ValidationStatus != "" {
				out["validationStatus"] = res.ValidationStatus
			}
		}
		results = append(results, out)
	}
	body := map[string]any{"results": results}
	if cm := commitOf(resp); cm != nil {
		body["commit"] = cm
	}
	return writeJSON(w, body)
}

func (s *Server) getRecord(w http.ResponseWriter, r *http.Request, _ caller) error {
	p := params(r)
	repoParam, collection, rkey, cidParam := p.str("repo", true), p.str("collection", true), p.str("rkey", true), p.str("cid", false)
	if p.err != nil {
		return p.err
	}
	// An unknown or inactive repository reads as a missing record, as
	// with the official PDS.
	a, err := s.records.ResolveRepo(r.Context(), repoParam)
	if err == nil && !a.Active() {
		err = errors.New("inactive")
	}
	if err != nil {
		return invalidRequest("Could not locate record: at://" + repoParam + "/" + collection + "/" + rkey)
	}
	rec, err := s.records.GetRecord(r.Context(), a.DID, collection, rkey, cidParam)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]any{"uri": rec.URI, "cid": rec.CID, "value": rec.Value})
}

func (s *Server) listRecords(w http.ResponseWriter, r *http.Request, _ caller) error {
	p := params(r)
	repoParam, collection, cursorParam := p.str("repo", true), p.str("collection", true), p.str("cursor", false)
	limit, reverse := p.integer("limit", 50, 1, 100), p.boolean("reverse", false)
	if p.err != nil {
		return p.err
	}
	if _, err := syntax.ParseNSID(collection); err != nil {
		return invalidRequest(`Invalid NSID (got "` + abbreviate(collection) + `") at $.collection`)
	}
	a, err := s.records.ResolveRepo(r.Context(), repoParam)
	if err == nil && !a.Active() {
		err = errors.New("inactive")
	}
	if err != nil {
		return invalidRequest("Could not find repo: " + repoParam)
	}
	recs, cursor, err := s.records.ListRecords(r.Context(), a.DID, collection, limit, cursorParam, reverse)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(recs))
	for _, rec := range recs {
		out = append(out, map[string]any{"uri": rec.URI, "cid": rec.CID, "value": rec.Value})
	}
	body := map[string]any{"records": out}
	if cursor != "" {
		body["cursor"] = cursor
	}
	return writeJSON(w, body)
}

func (s *Server) describeRepo(w http.ResponseWriter, r *http.Request, _ caller) error {
	p := params(r)
	repoParam := p.str("repo", true)
	if p.err != nil {
		return p.err
	}
	a, err := s.records.ResolveRepo(r.Context(), repoParam)
	if err != nil {
		return err
	}
	if err := s.records.Servable(r.Context(), a.DID); err != nil {
		return err
	}
	cols, err := s.records.Collections(r.Context(), a.DID)
	if err != nil {
		return err
	}
	if cols == nil {
		cols = []syntax.NSID{}
	}
	doc, err := s.accounts.DIDDocument(r.Context(), a.DID.String())
	if err != nil {
		return err
	}
	handleIsCorrect := a.Handle != "" && documentNamesHandle(doc, a.Handle.String())
	return writeJSON(w, map[string]any{
		"handle": handleOrInvalid(a.Handle.String()), "did": a.DID, "didDoc": doc, "collections": cols, "handleIsCorrect": handleIsCorrect,
	})
}

// documentNamesHandle reports whether a DID document claims handle first
// in alsoKnownAs.
func documentNamesHandle(doc json.RawMessage, handle string) bool {
	var d struct {
		AlsoKnownAs []string `json:"alsoKnownAs"`
	}
	if json.Unmarshal(doc, &d) != nil {
		return false
	}
	for _, aka := range d.AlsoKnownAs {
		if len(aka) > 5 && aka[:5] == "at://" {
			return aka[5:] == handle
		}
	}
	return false
}
