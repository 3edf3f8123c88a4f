package proxy

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

const (
	registerPush   = "app.bsky.notification.registerPush"
	unregisterPush = "app.bsky.notification.unregisterPush"
)

// push serves registerPush and unregisterPush as the official PDS does:
// the body names the notification service (serviceDid), which gets the
// request with a token addressed to it — at the configured AppView's URL
// when it is the AppView, else at the #bsky_notif endpoint of its DID
// document. The atproto-proxy header plays no part.
func (p *Proxy) push(w http.ResponseWriter, r *http.Request, nsid string, authenticate func(bool) (string, error)) error {
	did, err := p.auth(w, nsid, authenticate)
	if err != nil {
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
	token, err := p.tokens.Token(r.Context(), did, svc.String(), nsid)
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

// isPush reports whether nsid is one of the push registration methods.
func isPush(nsid string) bool {
	return strings.EqualFold(nsid, registerPush) || strings.EqualFold(nsid, unregisterPush)
}
