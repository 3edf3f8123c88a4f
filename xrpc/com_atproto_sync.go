package xrpc

import (
	"bufio"
	"bytes"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/records"
)

const carType = "application/vnd.ipld.car"

// asReader lets the repository's owner or the admin, as the route's
// optional auth found them, read their deactivated repository.
func asReader(r *http.Request, c caller) *http.Request {
	switch {
	case c.Admin:
		return r.WithContext(records.AsAdmin(r.Context()))
	case c.DID != "":
		return r.WithContext(records.AsOwner(r.Context(), c.DID))
	}
	return r
}

// syncDID reads and checks the did parameter of a sync query.
func syncDID(p *query) syntax.DID {
	raw := p.str("did", true)
	if p.err != nil {
		return ""
	}
	did, err := syntax.ParseDID(raw)
	if err != nil {
		p.err = invalidRequest("Invalid did: " + raw)
	}
	return did
}

// carResponse buffers a small CAR so an error found while building it is
// still sent as an XRPC error rather than a truncated 200.
func carResponse(w http.ResponseWriter, build func(*bytes.Buffer) error) error {
	var buf bytes.Buffer
	if err := build(&buf); err != nil {
		return err
	}
	w.Header().Set("Content-Type", carType)
	_, err := w.Write(buf.Bytes())
	return err
}

func (s *Server) syncGetRepo(w http.ResponseWriter, r *http.Request, c caller) error {
	r = asReader(r, c)
	p := params(r)
	did, since := syncDID(p), p.str("since", false)
	if p.err != nil {
		return p.err
	}
	export, err := s.records.PrepareExport(r.Context(), did, since)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", carType)
	bw := bufio.NewWriterSize(w, 64<<10)
	if err := export.WriteTo(r.Context(), bw); err != nil {
		// Mid-stream: only a damaged store or a gone client gets here.
		s.log.Error("getRepo stream failed", "did", did, "err", err)
		return nil
	}
	return bw.Flush()
}

func (s *Server) syncGetRecord(w http.ResponseWriter, r *http.Request, c caller) error {
	r = asReader(r, c)
	p := params(r)
	did, collection, rkey := syncDID(p), p.str("collection", true), p.str("rkey", true)
	if p.err != nil {
		return p.err
	}
	return carResponse(w, func(b *bytes.Buffer) error {
		return s.records.RecordProof(r.Context(), b, did, collection, rkey)
	})
}

func (s *Server) syncGetBlocks(w http.ResponseWriter, r *http.Request, c caller) error {
	r = asReader(r, c)
	p := params(r)
	did, cids := syncDID(p), p.list("cids")
	if p.err != nil {
		return p.err
	}
	if len(cids) == 0 {
		return invalidRequest(`Params must have the property "cids"`)
	}
	return carResponse(w, func(b *bytes.Buffer) error {
		return s.records.Blocks(r.Context(), b, did, cids)
	})
}

func (s *Server) syncGetLatestCommit(w http.ResponseWriter, r *http.Request, c caller) error {
	head, err := s.syncHead(r, c)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]string{"cid": head.CID.String(), "rev": head.Rev.String()})
}

// syncGetHead is the deprecated predecessor of getLatestCommit.
func (s *Server) syncGetHead(w http.ResponseWriter, r *http.Request, c caller) error {
	head, err := s.syncHead(r, c)
	if err != nil {
		return err
	}
	return writeJSON(w, map[string]string{"root": head.CID.String()})
}

// syncHead reads the did parameter and returns that repository's head.
func (s *Server) syncHead(r *http.Request, c caller) (*records.Head, error) {
	r = asReader(r, c)
	p := params(r)
	did := syncDID(p)
	if p.err != nil {
		return nil, p.err
	}
	return s.records.LatestCommit(r.Context(), did)
}

func (s *Server) syncGetRepoStatus(w http.ResponseWriter, r *http.Request, _ caller) error {
	p := params(r)
	did := syncDID(p)
	if p.err != nil {
		return p.err
	}
	st, err := s.records.Status(r.Context(), did)
	if err != nil {
		return err
	}
	out := map[string]any{"did": st.DID, "active": st.Active}
	if st.Status != "" {
		out["status"] = st.Status
	}
	if st.Rev != "" {
		out["rev"] = st.Rev
	}
	return writeJSON(w, out)
}

func (s *Server) syncListRepos(w http.ResponseWriter, r *http.Request, _ caller) error {
	p := params(r)
	limit, cursor := p.integer("limit", 500, 1, 1000), p.str("cursor", false)
	if p.err != nil {
		return p.err
	}
	if cursor != "" {
		if _, err := syntax.ParseDID(cursor); err != nil {
			return invalidRequest("Malformed cursor")
		}
	}
	repos, next, err := s.records.ListRepos(r.Context(), cursor, limit)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(repos))
	for _, repo := range repos {
		item := map[string]any{"did": repo.DID, "head": repo.Head.String(), "rev": repo.Rev, "active": repo.Active}
		if repo.Status != "" {
			item["status"] = repo.Status
		}
		out = append(out, item)
	}
	body := map[string]any{"repos": out}
	if next != "" {
		body["cursor"] = next
	}
	return writeJSON(w, body)
}
