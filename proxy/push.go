package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/serviceauth"
)

// Push serves registerPush and unregisterPush (nsid) as the official PDS
// does, whatever the case of nsid:
// the body names the notification service (serviceDid), which gets the
// request with a token addressed to it — at the configured AppView's URL
// when it is the AppView, else at the #bsky_notif endpoint of its DID
// document. The atproto-proxy header plays no part.
func (p *Proxy) Push(w http.ResponseWriter, r *http.Request, nsid string, c serviceauth.Caller) error {
	if err := authorize(w, nsid, c); err != nil {
		return err
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReportBody))
	if err != nil {
		return badRequest("request entity too large")
	}
	var in struct {
		ServiceDID string `json:"serviceDid"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.ServiceDID == "" {
		return badRequest(`Input must have the property "serviceDid"`)
	}
	svc, err := syntax.ParseDID(in.ServiceDID)
	if err != nil {
		return badRequest("Invalid DID (got \"" + in.ServiceDID + "\") at $.serviceDid")
	}
	var originURL string
	if p.cfg.AppView.Configured() && svc.String() == p.cfg.AppView.DID {
		originURL = origin(p.cfg.AppView.URL)
	} else {
		if !resolvable(svc.String()) {
			return badRequest("invalid notification service details")
		}
		doc, err := p.docs.Resolve(r.Context(), svc.String())
		if err != nil {
			return badRequest("invalid notification service details")
		}
		originURL = origin(doc.ServiceEndpoint("#bsky_notif"))
		if originURL == "" {
			return badRequest("invalid notification service details")
		}
	}
	token, err := p.tokens.Token(r.Context(), c.DID, svc.String(), nsid)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, originURL+"/xrpc/"+nsid, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		p.log.Warn("notification service unreachable", "origin", originURL, "err", err)
		return errUnreachable
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return p.upstreamError(resp)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	w.WriteHeader(http.StatusOK)
	return nil
}
