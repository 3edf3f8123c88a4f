package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hearth-pds/hearth/identity/diddoc"
	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/serviceauth"
)

func TestParseProxyHeader(t *testing.T) {
	for _, tt := range []struct {
		in, did, id, err string
	}{
		{"did:plc:abc#bsky_chat", "did:plc:abc", "#bsky_chat", ""},
		{"did:web:api.bsky.app#bsky_appview", "did:web:api.bsky.app", "#bsky_appview", ""},
		{"#bsky_chat", "", "", "no did specified in proxy header"},
		{"did:plc:abc", "", "", "no service id specified in proxy header"},
		{"did:plc:abc#", "", "", "no service id specified in proxy header"},
		{"did:plc:abc#a#b", "", "", "invalid proxy header format"},
		{"did:plc:abc##", "", "", "invalid proxy header format"},
		{"did:plc:abc#a b", "", "", "proxy header cannot contain spaces"},
		{"did:plc:a b#x", "", "", "proxy header cannot contain spaces"},
		// The official order: the fragment checks come before the spaces.
		{" #x", " ", "", "proxy header cannot contain spaces"},
		{"a b", "", "", "no service id specified in proxy header"},
	} {
		did, id, err := parseProxyHeader(tt.in)
		if tt.err != "" {
			var xe *refusal.Error
			if !errors.As(err, &xe) || xe.Message != tt.err || xe.HTTPStatus() != 400 || xe.Name != "InvalidRequest" {
				t.Errorf("%q: %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || did != tt.did || id != tt.id {
			t.Errorf("%q: %q %q %v, want %q %q", tt.in, did, id, err, tt.did, tt.id)
		}
	}
}

func FuzzParseProxyHeader(f *testing.F) {
	for _, s := range []string{"did:plc:abc#bsky_chat", "#x", "a#b#c", "did:web:x y#z", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		did, id, err := parseProxyHeader(s)
		if err != nil {
			return
		}
		if did == "" || len(id) < 2 || id[0] != '#' || did+id != s || strings.Contains(s, " ") || strings.Count(s, "#") != 1 {
			t.Errorf("%q accepted as %q %q", s, did, id)
		}
	})
}

func TestProxiedContentEncoding(t *testing.T) {
	for _, tt := range []struct {
		in   []string
		want string
		err  string
	}{
		{nil, "identity;q=1", ""},
		{[]string{""}, "identity;q=1", ""},
		{[]string{"gzip"}, "identity;q=1,gzip;q=0.3", ""},
		{[]string{"gzip, deflate, br"}, "identity;q=1,gzip;q=0.3,deflate;q=0.2,br;q=0.1", ""},
		{[]string{"br;q=0.5", "gzip"}, "identity;q=1,gzip;q=0.3,br;q=0.1", ""},
		{[]string{"*"}, "identity;q=1,gzip;q=0.3,deflate;q=0.2,br;q=0.1", ""},
		{[]string{"gzip, identity;q=0"}, "gzip;q=0.3,*;q=0", ""},
		{[]string{"identity;q=0"}, "", "this service does not support any of the requested encodings"},
		{[]string{"gzip;q=2"}, "", `Invalid accept-encoding: "gzip;q=2"`},
		{[]string{"gzip;v=1"}, "", `Invalid accept-encoding: "gzip;v=1"`},
		{[]string{"gzip, "}, "", `Invalid accept-encoding: " "`},
	} {
		got, err := proxiedContentEncoding(tt.in)
		if tt.err != "" {
			var xe *refusal.Error
			if !errors.As(err, &xe) || xe.Message != tt.err {
				t.Errorf("%q: %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %q %v, want %q", tt.in, got, err, tt.want)
		}
	}
}

// fakeTokens mints recognisable tokens.
type fakeTokens struct{}

func (fakeTokens) Token(_ context.Context, iss, aud, lxm string) (string, error) {
	return iss + "|" + aud + "|" + lxm, nil
}

// fakeDocs serves one DID document naming an upstream.
type fakeDocs map[string]*diddoc.Document

func (d fakeDocs) Resolve(_ context.Context, did string) (*diddoc.Document, error) {
	if doc, ok := d[did]; ok {
		return doc, nil
	}
	return nil, diddoc.ErrNotFound
}

func serviceDoc(did, id, endpoint string) *diddoc.Document {
	doc, err := diddoc.Parse(did, []byte(`{"id":"`+did+`","service":[{"id":"#`+id+`","type":"X","serviceEndpoint":"`+endpoint+`"}]}`))
	if err != nil {
		panic(err)
	}
	return doc
}

const (
	user    = "did:plc:useruseruseruseruseruser"
	appview = "did:web:appview.test"
)

// call runs one request through p with a caller that is user (an app
// password when appPassword is set), as the router calls Route and Forward.
func call(p *Proxy, method, target string, h http.Header, appPassword bool) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, nil)
	for k, v := range h {
		r.Header[k] = v
	}
	w := httptest.NewRecorder()
	nsid := strings.TrimPrefix(r.URL.Path, "/xrpc/")
	// As the router does: the route, then the caller, then the forward.
	serve := func() error {
		t, err := p.Route(r, nsid)
		if err != nil {
			return err
		}
		if r.Header.Get("Authorization") == "" {
			return refusal.New("AuthMissing", "Authentication Required")
		}
		return p.Forward(w, r, nsid, t, serviceauth.Caller{DID: user, Privileged: !appPassword})
	}
	func() {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
		}()
		if err := serve(); err != nil {
			var xe *refusal.Error
			if !errors.As(err, &xe) {
				xe = refusal.WithStatus(500, "InternalServerError", err.Error())
			}
			if xe.Name == "" {
				// A status XRPC has no name for: rendered as the router does.
				refusal.Write(w, xe)
				return
			}
			w.Code = xe.HTTPStatus()
			w.Body.WriteString(xe.Name + ": " + xe.Message)
		}
	}()
	return w
}

var authed = http.Header{"Authorization": {"Bearer x"}}

func TestUpstreamErrors(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if ct := q.Get("ct"); ct != "" {
			w.Header().Set("Content-Type", ct)
		} else {
			w.Header()["Content-Type"] = nil // no sniffing: none at all
		}
		w.Header().Set("Retry-After", "9")
		code := 500
		switch q.Get("code") {
		case "400":
			code = 400
		case "503":
			code = 503
		case "418":
			code = 418
		case "504":
			code = 504
		}
		w.WriteHeader(code)
		io.WriteString(w, q.Get("body"))
	}))
	defer upstream.Close()
	p := New(Config{AppView: Upstream{URL: upstream.URL, DID: appview}, AllowPrivate: true}, fakeTokens{}, fakeDocs{})
	for _, tt := range []struct {
		query      string
		wantStatus int
		wantBody   string
	}{
		{"code=400&ct=application/json&body={\"error\":\"Bad\",\"message\":\"no\"}", 400, "Bad: no"},
		{"code=400&ct=application/json&body={\"error\":\"Bad\"}", 400, "Bad: Invalid Request"},
		{"code=400&ct=application/json&body={\"error\":5,\"message\":true}", 400, "InvalidRequest: Invalid Request"},
		{"code=400&ct=application/json&body=nope", 400, "InvalidRequest: Invalid Request"},
		// No content type: parsed anyway; text: not parsed.
		{"code=400&body={\"error\":\"Bad\",\"message\":\"no\"}", 400, "Bad: no"},
		{"code=400&ct=text/plain&body={\"error\":\"Bad\",\"message\":\"no\"}", 400, "InvalidRequest: Invalid Request"},
		{"code=400&ct=application/problem%2Bjson&body={\"error\":\"Bad\",\"message\":\"no\"}", 400, "Bad: no"},
		{"code=500&ct=application/json&body={\"error\":\"Boom\",\"message\":\"x\"}", 502, "Boom: x"},
		{"code=500", 502, "UpstreamFailure: Upstream Failure"},
		{"code=503", 503, "NotEnoughResources: Not Enough Resources"},
		{"code=504", 504, "UpstreamTimeout: Upstream Timeout"},
		{"code=418", 418, "{}\n"},
		// xrpc leaves the empty message out, as the official PDS does.
		{"code=418&ct=application/json&body={\"error\":\"Teapot\"}", 418, "Teapot: "},
	} {
		w := call(p, "GET", "/xrpc/com.example.fail?"+tt.query, authed, false)
		if w.Code != tt.wantStatus || w.Body.String() != tt.wantBody {
			t.Errorf("%s: %d %q, want %d %q", tt.query, w.Code, w.Body.String(), tt.wantStatus, tt.wantBody)
		}
		if w.Header().Get("Retry-After") != "" {
			t.Errorf("%s: an error relayed the upstream's Retry-After", tt.query)
		}
	}
}

func TestRelayLimits(t *testing.T) {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/xrpc/com.example.big":
			w.Write([]byte(strings.Repeat(" ", 2000)))
		case "/xrpc/com.example.fits":
			w.Write([]byte(strings.Repeat(" ", 1000)))
		case "/xrpc/com.example.stall":
			w.Write([]byte(`{"a":`))
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		case "/xrpc/com.example.silent":
			select {
			case <-r.Context().Done():
			case <-time.After(5 * time.Second):
			}
		}
	}))
	defer upstream.Close()
	p := New(Config{
		AppView: Upstream{URL: upstream.URL, DID: appview}, AllowPrivate: true,
		MaxResponseSize: 1000, BodyTimeout: 200 * time.Millisecond, HeadersTimeout: 300 * time.Millisecond,
	}, fakeTokens{}, fakeDocs{})

	w := call(p, "GET", "/xrpc/com.example.fits", authed, false)
	if w.Code != 200 || w.Body.Len() != 1000 {
		t.Errorf("at the limit: %d, %d bytes", w.Code, w.Body.Len())
	}
	w = call(p, "GET", "/xrpc/com.example.big", authed, false)
	if w.Code != 200 || w.Body.Len() > 1000 {
		t.Errorf("over the limit: %d, %d bytes relayed", w.Code, w.Body.Len())
	}
	start := time.Now()
	w = call(p, "GET", "/xrpc/com.example.stall", authed, false)
	if took := time.Since(start); took > 2*time.Second || w.Body.String() != `{"a":` {
		t.Errorf("stalled body: %q after %s, want the cut after the body timeout", w.Body.String(), took)
	}
	start = time.Now()
	w = call(p, "GET", "/xrpc/com.example.silent", authed, false)
	if took := time.Since(start); w.Code != 502 || took > 2*time.Second || w.Body.String() != "UpstreamFailure: Upstream service unreachable" {
		t.Errorf("no headers: %d %q after %s", w.Code, w.Body.String(), took)
	}
}

// TestGuard: without dev mode, upstreams must be https on public
// addresses; a loopback service is unreachable.
func TestGuard(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	defer plain.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("{}")) }))
	defer tls.Close()
	for _, u := range []string{plain.URL, tls.URL} {
		p := New(Config{AppView: Upstream{URL: u, DID: appview}}, fakeTokens{}, fakeDocs{})
		if w := call(p, "GET", "/xrpc/app.bsky.feed.getTimeline", authed, false); w.Code != 502 {
			t.Errorf("%s with the guard on: %d %s, want 502", u, w.Code, w.Body.String())
		}
		p = New(Config{AppView: Upstream{URL: u, DID: appview}, AllowPrivate: true}, fakeTokens{}, fakeDocs{})
		p.transport.(*http.Transport).TLSClientConfig = tls.Client().Transport.(*http.Transport).TLSClientConfig
		if w := call(p, "GET", "/xrpc/app.bsky.feed.getTimeline", authed, false); w.Code != 200 {
			t.Errorf("%s in dev mode: %d %s, want 200", u, w.Code, w.Body.String())
		}
	}
}

// TestRouting: where requests go, with which token, in which order the
// checks run.
func TestRouting(t *testing.T) {
	var got []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Host+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		w.Write([]byte("{}"))
	}))
	defer upstream.Close()
	host := strings.TrimPrefix(upstream.URL, "http://")
	const chat = "did:plc:chatchatchatchatchatchat"
	docs := fakeDocs{chat: serviceDoc(chat, "bsky_chat", upstream.URL+"/ignored/path")}
	p := New(Config{
		AppView:       Upstream{URL: upstream.URL, DID: appview},
		ReportService: Upstream{URL: upstream.URL, DID: "did:plc:reports"},
		AllowPrivate:  true,
	}, fakeTokens{}, docs)
	for _, tt := range []struct {
		name, method, target string
		header               http.Header
		appPassword          bool
		wantStatus           int
		wantUpstream         string // "" when nothing may reach it
	}{
		{"default AppView", "GET", "/xrpc/app.bsky.feed.getTimeline", authed, false, 200, "/xrpc/app.bsky.feed.getTimeline Bearer " + user + "|" + appview + "|app.bsky.feed.getTimeline"},
		{"unknown methods go to the AppView", "POST", "/xrpc/com.example.do", authed, false, 200, "/xrpc/com.example.do Bearer " + user + "|" + appview + "|com.example.do"},
		{"proxy header, endpoint path ignored", "GET", "/xrpc/chat.bsky.convo.listConvos", hdr(authed, chat+"#bsky_chat"), false, 200, "/xrpc/chat.bsky.convo.listConvos Bearer " + user + "|" + chat + "|chat.bsky.convo.listConvos"},
		{"configured AppView by header, unresolved", "GET", "/xrpc/app.bsky.feed.getTimeline", hdr(authed, appview+"#bsky_appview"), false, 200, "/xrpc/app.bsky.feed.getTimeline Bearer " + user + "|" + appview + "|app.bsky.feed.getTimeline"},
		{"report GET goes to the report service", "GET", "/xrpc/com.atproto.moderation.createReport", authed, false, 200, "/xrpc/com.atproto.moderation.createReport Bearer " + user + "|did:plc:reports|com.atproto.moderation.createReport"},
		{"privileged with an app password", "GET", "/xrpc/chat.bsky.convo.listConvos", hdr(authed, chat+"#bsky_chat"), true, 400, ""},
		{"privileged in other case", "GET", "/xrpc/CHAT.bsky.convo.listConvos", hdr(authed, chat+"#bsky_chat"), true, 400, ""},
		{"protected", "POST", "/xrpc/com.atproto.server.getSession", authed, false, 400, ""},
		{"no mod service", "GET", "/xrpc/tools.ozone.moderation.queryEvents", authed, false, 400, ""},
		{"unknown DID", "GET", "/xrpc/x.y.z", hdr(authed, "did:plc:nobody#x"), false, 400, ""},
		{"not a DID", "GET", "/xrpc/x.y.z", hdr(authed, "nobody#x"), false, 400, ""},
		{"no auth", "GET", "/xrpc/x.y.z", nil, false, 401, ""},
	} {
		got = nil
		w := call(p, tt.method, tt.target, tt.header, tt.appPassword)
		if w.Code != tt.wantStatus {
			t.Errorf("%s: %d %s, want %d", tt.name, w.Code, w.Body.String(), tt.wantStatus)
		}
		switch {
		case tt.wantUpstream == "" && len(got) > 0:
			t.Errorf("%s: reached the upstream: %v", tt.name, got)
		case tt.wantUpstream != "" && (len(got) != 1 || got[0] != host+" "+tt.wantUpstream):
			t.Errorf("%s: upstream got %v, want %q", tt.name, got, tt.wantUpstream)
		}
		if tt.wantStatus == 200 && w.Header().Get("Cache-Control") != "private" {
			t.Errorf("%s: Cache-Control %q", tt.name, w.Header().Get("Cache-Control"))
		}
	}
}

func hdr(base http.Header, proxy string) http.Header {
	h := base.Clone()
	h.Set("Atproto-Proxy", proxy)
	return h
}
