package proxy

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/serviceauth"
)

const (
	getFeedNSID         = "app.bsky.feed.getFeed"
	getFeedSkeletonNSID = "app.bsky.feed.getFeedSkeleton"
	getRecordNSID       = "com.atproto.repo.getRecord"
)

// The methods below are the ones the official PDS serves with a route of
// its own rather than its catch-all (the router lists them with the same
// verbs; other verbs go to Route and Forward). Each is called with its
// caller authenticated.

// ServesFeeds reports whether GetFeed can serve: it needs the AppView.
func (p *Proxy) ServesFeeds() bool { return p.cfg.AppView.Configured() }

// CheckFeedParams checks getFeed's parameters, before its caller (a 500
// in the official PDS, a 400 saying what is wrong here).
func CheckFeedParams(q url.Values) error {
	_, err := feedParams(q)
	return err
}

// GetFeed serves app.bsky.feed.getFeed as the official PDS does when an
// AppView is configured: it looks the feed generator record up on the
// AppView, then forwards the request to the AppView (or the proxy
// header's service) with a token addressed to the generator's DID for
// getFeedSkeleton, which the AppView passes on to the generator.
func (p *Proxy) GetFeed(w http.ResponseWriter, r *http.Request, c serviceauth.Caller) error {
	uri, err := feedParams(r.URL.Query())
	if err != nil {
		return err
	}
	if err := authorize(w, getFeedNSID, c); err != nil {
		return err
	}
	feedDID, err := p.feedGenerator(r.Context(), uri)
	if err != nil {
		return err
	}
	piped, err := p.Pipethrough(r, getFeedNSID, PipeOptions{Issuer: c.DID, Audience: feedDID, Method: getFeedSkeletonNSID})
	if err != nil {
		return err
	}
	return piped.Write(w)
}

// single reads a parameter that may appear once.
func single(q url.Values, name string, required bool) (string, error) {
	v := q[name]
	switch {
	case len(v) > 1:
		return "", badRequest("Expected a single value at $." + name)
	case len(v) == 0 || v[0] == "":
		if required {
			return "", badRequest(`Params must have the property "` + name + `"`)
		}
		return "", nil
	}
	return v[0], nil
}

// feedParams checks getFeed's parameters and returns the feed's URI.
func feedParams(q url.Values) (syntax.ATURI, error) {
	feed, err := single(q, "feed", true)
	if err != nil {
		return "", err
	}
	uri, err := syntax.ParseATURI(feed)
	if err != nil || uri.Collection() == "" || uri.RecordKey() == "" {
		return "", badRequest(`Invalid at-uri (got "` + feed + `") at $.feed`)
	}
	limit, err := single(q, "limit", false)
	if err != nil {
		return "", err
	}
	if limit != "" {
		n, err := strconv.Atoi(limit)
		switch {
		case err != nil:
			return "", badRequest("limit must be an integer")
		case n < 1:
			return "", badRequest("limit can not be less than 1")
		case n > 100:
			return "", badRequest("limit can not be greater than 100")
		}
	}
	if _, err := single(q, "cursor", false); err != nil {
		return "", err
	}
	return uri, nil
}

// feedGenerator reads the generator record of a feed from the AppView,
// anonymously, and returns the DID it names; a record without a did is
// UnknownFeed.
func (p *Proxy) feedGenerator(ctx context.Context, uri syntax.ATURI) (string, error) {
	q := url.Values{}
	q.Set("repo", uri.Authority().String())
	q.Set("collection", uri.Collection().String())
	q.Set("rkey", uri.RecordKey().String())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, origin(p.cfg.AppView.URL)+"/xrpc/"+getRecordNSID+"?"+q.Encode(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		p.log.Warn("AppView unreachable", "origin", p.cfg.AppView.URL, "err", err)
		return "", errUnreachable
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		// The official PDS answers every failure here with a 500; passing
		// the AppView's answer on (RecordNotFound...) says what is wrong.
		return "", p.upstreamError(resp)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("feed generator record %s: AppView answered %s", uri, resp.Status)
	}
	var out struct {
		Value map[string]any `json:"value"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, p.cfg.MaxResponseSize)).Decode(&out); err != nil || out.Value == nil {
		return "", fmt.Errorf("feed generator record %s: bad answer from the AppView", uri)
	}
	did, ok := out.Value["did"].(string)
	if !ok {
		return "", refusal.New("UnknownFeed", "could not resolve feed did")
	}
	return did, nil
}

// CreateReport serves com.atproto.moderation.createReport as the official
// route does: the session first (app passwords allowed), then the input,
// then the upstream (the proxy header's service or the report service);
// the report is posted with a token for createReport and the answer
// relayed as JSON. The official PDS turns every upstream error into a 500
// InternalServerError; we pass the report service's error on as the
// catch-all does, which tells the client what went wrong.
func (p *Proxy) CreateReport(w http.ResponseWriter, r *http.Request, c serviceauth.Caller) error {
	if err := authorize(w, createReport, c); err != nil {
		return err
	}
	body, err := reportInput(r)
	if err != nil {
		return err
	}
	t, err := p.resolveTarget(r.Context(), r.Header, createReport)
	if err != nil {
		return err
	}
	token, err := p.tokens.Token(r.Context(), c.DID, t.aud, createReport)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, t.origin+"/xrpc/"+createReport, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("User-Agent", "")
	resp, err := p.transport.RoundTrip(req)
	if err != nil {
		p.log.Warn("report service unreachable", "origin", t.origin, "err", err)
		return errUnreachable
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return p.upstreamError(resp)
	}
	out, err := io.ReadAll(io.LimitReader(resp.Body, p.cfg.MaxResponseSize+1))
	if err != nil || resp.StatusCode != http.StatusOK || int64(len(out)) > p.cfg.MaxResponseSize || !isJSONObject(out) {
		p.log.Warn("report service answered badly", "origin", t.origin, "status", resp.StatusCode, "err", err)
		return refusal.ErrInternal
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(out)))
	_, err = w.Write(out)
	return err
}

// maxReportBody is the official JSON body limit.
const maxReportBody = 150 * 1024

// reportInput reads and checks a createReport body with the official
// messages for the problems clients make: the encoding, a missing body,
// bad JSON, and the shape of reasonType, reason and subject.
func reportInput(r *http.Request) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength <= 0 {
		return nil, badRequest("A request body is expected but none was provided")
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, badRequest("Wrong request encoding (Content-Type): " + ct)
	}
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxReportBody+1))
	if err != nil {
		return nil, badRequest("unable to read input")
	}
	if len(raw) > maxReportBody {
		return nil, refusal.ErrPayloadTooLarge
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, badRequest("A request body is expected but none was provided")
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, refusal.New("SyntaxError", "Unexpected token in JSON body")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("Expected object value type (got " + abbreviate(v) + ") at $")
	}
	if err := checkString(obj, "reasonType", "$", true); err != nil {
		return nil, err
	}
	if err := checkString(obj, "reason", "$", false); err != nil {
		return nil, err
	}
	subject, present := obj["subject"]
	if !present {
		return nil, badRequest(`Missing required key "subject" at $`)
	}
	s, ok := subject.(map[string]any)
	typ, _ := s["$type"].(string)
	if !ok || typ == "" {
		return nil, badRequest(`Expected an object which includes the "$type" property value type (got ` + abbreviate(subject) + `) at $.subject`)
	}
	switch typ {
	case "com.atproto.admin.defs#repoRef":
		if err := checkFormat(s, "did", "$.subject", "DID", func(v string) bool { _, err := syntax.ParseDID(v); return err == nil }); err != nil {
			return nil, err
		}
	case "com.atproto.repo.strongRef":
		if err := checkFormat(s, "uri", "$.subject", "at-uri", func(v string) bool { _, err := syntax.ParseATURI(v); return err == nil }); err != nil {
			return nil, err
		}
		if err := checkFormat(s, "cid", "$.subject", "cid", func(v string) bool { _, err := syntax.ParseCID(v); return err == nil }); err != nil {
			return nil, err
		}
	}
	return raw, nil
}

func checkString(obj map[string]any, key, at string, required bool) error {
	v, present := obj[key]
	if !present {
		if required {
			return badRequest(`Missing required key "` + key + `" at ` + at)
		}
		return nil
	}
	if _, ok := v.(string); !ok {
		return badRequest("Expected string value type (got " + abbreviate(v) + ") at " + at + "." + key)
	}
	return nil
}

func checkFormat(obj map[string]any, key, at, name string, valid func(string) bool) error {
	if err := checkString(obj, key, at, true); err != nil {
		return err
	}
	v := obj[key].(string)
	if !valid(v) {
		return badRequest("Invalid " + name + ` (got "` + v + `") at ` + at + "." + key)
	}
	return nil
}

// abbreviate renders a value as the official validator quotes it in
// messages: scalars as JSON, objects as {"firstKey": ...}, arrays as [].
func abbreviate(v any) string {
	switch t := v.(type) {
	case map[string]any:
		for k := range t {
			b, _ := json.Marshal(k)
			return "{" + string(b) + ": ...}"
		}
		return "{}"
	case []any:
		if len(t) == 0 {
			return "[]"
		}
		return "[...]"
	}
	b, _ := json.Marshal(v)
	return strings.TrimSpace(string(b))
}

func isJSONObject(b []byte) bool {
	var m map[string]any
	return json.Unmarshal(b, &m) == nil
}
