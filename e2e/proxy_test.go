package e2e

import (
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/did-method-plc/go-didplc/didplc"

	"github.com/hearth-pds/hearth/testenv"
)

// startProxied starts the test services (AppView, feed generator, chat,
// report service) registered in the PLC directory at plcURL, and the
// built binary with the AppView and the report service configured.
func startProxied(t *testing.T, plcURL string) (*testenv.Hearth, *testenv.Services) {
	t.Helper()
	svcs := testenv.StartServices(t, plcURL)
	h := testenv.StartHearth(t, plcURL,
		"PDS_BSKY_APP_VIEW_URL="+svcs.AppView.URL, "PDS_BSKY_APP_VIEW_DID="+svcs.AppView.DID,
		"PDS_REPORT_SERVICE_URL="+svcs.Reports.URL, "PDS_REPORT_SERVICE_DID="+svcs.Reports.DID)
	return h, svcs
}

// TestProxyWithOfficialClient drives the built binary with @atproto/api
// (getTimeline, getProfile, getFeed, a chat method through the proxy
// header, createReport) and checks that each call reached the right
// service with a service-auth token that the service verified against the
// account's DID document: signature, audience, method, expiry, and the
// official token shape. It runs against the reference PLC directory
// (whose documents use the older key encoding) and our embedded one.
func TestProxyWithOfficialClient(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) string
	}{
		{"ReferencePLC", testenv.StartReferencePLC},
		{"EmbeddedPLC", testenv.StartEmbeddedPLC},
	} {
		t.Run(tc.name, func(t *testing.T) { testProxyClient(t, tc.start(t)) })
	}
}

func testProxyClient(t *testing.T, plcURL string) {
	h, svcs := startProxied(t, plcURL)
	out := testenv.RunNode(t, "proxy.mjs", 2*time.Minute,
		"PDS_URL="+h.URL, "ADMIN_PASSWORD="+h.AdminPassword, "CHAT_DID="+svcs.Chat.DID,
		"FEED_URI="+svcs.FeedURI, "HANDLE=proxied"+strconv.FormatInt(time.Now().UnixNano()%1e6, 36)+".test")
	var got struct{ DID string }
	if err := json.Unmarshal(out, &got); err != nil || got.DID == "" {
		t.Fatalf("proxy.mjs output %q: %v", out, err)
	}

	for _, c := range []struct {
		svc       *testenv.Service
		nsid      string
		aud, lxm  string
		wantCalls int
	}{
		{svcs.AppView, "app.bsky.feed.getTimeline", svcs.AppView.DID, "app.bsky.feed.getTimeline", 1},
		{svcs.AppView, "app.bsky.actor.getProfile", svcs.AppView.DID, "app.bsky.actor.getProfile", 1},
		// getFeed goes to the AppView with a token for the feed generator,
		// which the AppView hands to it.
		{svcs.AppView, "app.bsky.feed.getFeed", svcs.FeedGen.DID, "app.bsky.feed.getFeedSkeleton", 1},
		{svcs.FeedGen, "app.bsky.feed.getFeedSkeleton", svcs.FeedGen.DID, "app.bsky.feed.getFeedSkeleton", 1},
		// A full session and a privileged app password; the plain app
		// password was refused before anything left the server.
		{svcs.Chat, "chat.bsky.convo.listConvos", svcs.Chat.DID, "chat.bsky.convo.listConvos", 2},
		{svcs.Reports, "com.atproto.moderation.createReport", svcs.Reports.DID, "com.atproto.moderation.createReport", 1},
	} {
		t.Run(c.nsid, func(t *testing.T) {
			var calls []testenv.Received
			for _, r := range c.svc.Requests() {
				if r.NSID == c.nsid {
					calls = append(calls, r)
				}
			}
			if len(calls) != c.wantCalls {
				t.Fatalf("%s got %d calls of %s, want %d", c.svc.Name, len(calls), c.nsid, c.wantCalls)
			}
			for _, r := range calls {
				checkToken(t, r, got.DID, c.aud, c.lxm)
			}
		})
	}
	// The generator record was looked up anonymously on the AppView.
	if r := svcs.AppView.Last("com.atproto.repo.getRecord"); r == nil || r.Header.Get("Authorization") != "" {
		t.Errorf("generator record lookup: %+v, want one without a token", r)
	}
}

// checkToken checks a received request carried a verified token of the
// official shape: header {"typ":"JWT","alg":"ES256K"}, iss the account,
// aud and lxm as wanted, exp 60 s after iat, jti 16 random bytes in hex.
func checkToken(t *testing.T, r testenv.Received, did, aud, lxm string) {
	t.Helper()
	if r.AuthErr != "" || r.Verified != did {
		t.Errorf("token not verified: verified %q, error %q", r.Verified, r.AuthErr)
	}
	if r.TokenHeader["typ"] != "JWT" || r.TokenHeader["alg"] != "ES256K" || len(r.TokenHeader) != 2 {
		t.Errorf("token header %v, want typ JWT, alg ES256K", r.TokenHeader)
	}
	c := r.Claims
	if c["iss"] != did || c["aud"] != aud || c["lxm"] != lxm {
		t.Errorf("claims iss %v aud %v lxm %v, want %s %s %s", c["iss"], c["aud"], c["lxm"], did, aud, lxm)
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if exp-iat != 60 || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
		t.Errorf("iat %v exp %v, want a fresh token valid 60 s", c["iat"], c["exp"])
	}
	jti, _ := c["jti"].(string)
	if b, err := hex.DecodeString(jti); err != nil || len(b) != 16 {
		t.Errorf("jti %q, want 32 hex digits", jti)
	}
	if len(c) != 6 {
		t.Errorf("claims %v, want exactly iat iss aud exp lxm jti", c)
	}
}

// TestProxyHeaders checks what passes through, both ways: the request
// headers the official PDS forwards (and none other: no cookie, no
// user-agent, not the caller's own token), bodies as sent, and the
// response headers it relays.
func TestProxyHeaders(t *testing.T) {
	h, svcs := startProxied(t, testenv.StartEmbeddedPLC(t))
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}
	c.signUp("headers.test", "headers@example.com", "headers-password", c.invite(1))
	s := c.login("headers.test", "headers-password")

	req := merge(bearer(s.AccessJwt), http.Header{
		"Accept-Language":         {"fr, en;q=0.5"},
		"Atproto-Accept-Labelers": {"did:plc:ar7c4by46qjdydhdevvrndac;redact"},
		"X-Bsky-Topics":           {"dev"},
		"User-Agent":              {"hearth-e2e/1"},
		"Cookie":                  {"session=secret"},
		"X-Forwarded-For":         {"203.0.113.9"},
		"Accept-Encoding":         {"gzip, br"},
	})
	query := "com.example.echo?a=1&b=%20x&set=atproto-repo-rev:3kabc&set=atproto-content-labelers:did:plc:lab&set=retry-after:5" +
		"&set=content-language:fr&set=x-other:1&set=cache-control:public&set=set-cookie:a=b"
	resp := do2(t, "GET", h.URL+"/xrpc/"+query, req, "")
	got := svcs.AppView.Last("com.example.echo")
	if got == nil {
		t.Fatal("the AppView got nothing")
	}
	if got.Query.Get("b") != " x" || got.Query.Get("a") != "1" {
		t.Errorf("query %v, want a=1 and b=' x'", got.Query)
	}
	want := map[string]string{
		"Accept-Language":         "fr, en;q=0.5",
		"Atproto-Accept-Labelers": "did:plc:ar7c4by46qjdydhdevvrndac;redact",
		"X-Bsky-Topics":           "dev",
		"Accept-Encoding":         "gzip, br",
	}
	for name, v := range want {
		if g := got.Header.Get(name); g != v {
			t.Errorf("upstream %s = %q, want %q", name, g, v)
		}
	}
	for _, name := range []string{"Cookie", "User-Agent", "X-Forwarded-For"} {
		if v, ok := got.Header[name]; ok {
			t.Errorf("upstream got %s: %q", name, v)
		}
	}
	if strings.Contains(got.Header.Get("Authorization"), s.AccessJwt) {
		t.Error("the caller's access token was forwarded")
	}
	checkToken(t, *got, s.DID, svcs.AppView.DID, "com.example.echo")

	relayed := map[string]string{
		"Atproto-Repo-Rev":         "3kabc",
		"Atproto-Content-Labelers": "did:plc:lab",
		"Retry-After":              "5",
		"Content-Language":         "fr",
		"Content-Type":             "application/json; charset=utf-8",
		"Cache-Control":            "private",
	}
	for name, v := range relayed {
		if g := resp.Header.Get(name); g != v {
			t.Errorf("response %s = %q, want %q", name, g, v)
		}
	}
	for _, name := range []string{"X-Other", "Set-Cookie"} {
		if v := resp.Header.Get(name); v != "" {
			t.Errorf("response relayed %s: %q", name, v)
		}
	}

	// A procedure: body, content type and encoding as sent.
	resp = do2(t, "POST", h.URL+"/xrpc/com.example.echo", merge(bearer(s.AccessJwt), http.Header{
		"Content-Type": {"application/json"}, "Content-Encoding": {"identity"}}), `{"x":1}`)
	got = svcs.AppView.Last("com.example.echo")
	if resp.StatusCode != 200 || got.Method != "POST" || string(got.Body) != `{"x":1}` ||
		got.Header.Get("Content-Type") != "application/json" || got.Header.Get("Content-Encoding") != "identity" {
		t.Errorf("POST: %d, upstream got %s %q %v", resp.StatusCode, got.Method, got.Body, got.Header)
	}
	if got.Header.Get("Accept-Encoding") != "identity" {
		t.Errorf("without Accept-Encoding the upstream got %q, want identity", got.Header.Get("Accept-Encoding"))
	}

	// A view the official PDS serves through its own route (getFeed)
	// negotiates an encoding it can read itself.
	feed := url.QueryEscape(svcs.FeedURI)
	resp = do2(t, "GET", h.URL+"/xrpc/app.bsky.feed.getFeed?feed="+feed, merge(bearer(s.AccessJwt), http.Header{"Accept-Encoding": {"gzip"}}), "")
	if resp.StatusCode != 200 {
		t.Fatalf("getFeed: %d", resp.StatusCode)
	}
	if g := svcs.AppView.Last("app.bsky.feed.getFeed").Header.Get("Accept-Encoding"); g != "identity;q=1,gzip;q=0.3" {
		t.Errorf("getFeed upstream Accept-Encoding %q, want the official negotiation identity;q=1,gzip;q=0.3", g)
	}
}

// plainClient sends no Accept-Encoding of its own.
var plainClient = &http.Client{Transport: &http.Transport{DisableCompression: true}}

// do2 sends a request and returns the response with its body read.
func do2(t *testing.T, method, u string, header http.Header, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := plainClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestProxyBadInput checks each refusal and each upstream failure gets the
// official PDS's status, error name and message (0.4.217, observed on
// loopback with the same services). Where the official PDS answers bad
// input with a 500 we answer 400 and say so below.
func TestProxyBadInput(t *testing.T) {
	plcURL := testenv.StartEmbeddedPLC(t)
	h, svcs := startProxied(t, plcURL)
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}
	c.signUp("bad.test", "bad@example.com", "bad-password", c.invite(1))
	full := c.login("bad.test", "bad-password")
	var plain, priv struct{ Password string }
	c.mustPostJSON("com.atproto.server.createAppPassword", bearer(full.AccessJwt), `{"name":"plain"}`, &plain)
	c.mustPostJSON("com.atproto.server.createAppPassword", bearer(full.AccessJwt), `{"name":"priv","privileged":true}`, &priv)
	appPw := c.login("bad.test", plain.Password)

	// A service whose endpoint nothing listens on.
	closed := closedPort(t)
	key, _ := atcrypto.GeneratePrivateKeyK256()
	deadDID, err := testenv.RegisterServiceDID(plcURL, key, map[string]didplc.OpService{
		"bsky_chat": {Type: "BskyChatService", Endpoint: "http://127.0.0.1:" + closed}})
	if err != nil {
		t.Fatal(err)
	}

	auth := bearer(full.AccessJwt)
	proxyTo := func(v string) http.Header { return merge(auth, http.Header{"Atproto-Proxy": {v}}) }
	noAuthProxy := func(v string) http.Header { return http.Header{"Atproto-Proxy": {v}} }
	chat := svcs.Chat.DID + "#bsky_chat"
	now := time.Now().Unix()
	report := func(fields string) string {
		return `{"reasonType":"com.atproto.moderation.defs#reasonSpam","subject":{"$type":"com.atproto.admin.defs#repoRef","did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}` + fields + `}`
	}
	jsonAuth := merge(auth, ctype("application/json"))
	const cr = "com.atproto.moderation.createReport"

	tests := []struct {
		name         string
		method, nsid string
		header       http.Header
		body         string
		wantStatus   int
		wantError    string
		wantMessage  string
	}{
		// The proxy header.
		{"unknown service id", "GET", "com.example.echo", proxyTo(svcs.AppView.DID + "#nope"), "", 400, "InvalidRequest", "could not resolve proxy did service url"},
		{"DID without that service", "GET", "com.example.echo", proxyTo(svcs.Chat.DID + "#bsky_fg"), "", 400, "InvalidRequest", "could not resolve proxy did service url"},
		{"unknown DID", "GET", "com.example.echo", proxyTo("did:plc:aaaaaaaaaaaaaaaaaaaaaaaa#bsky_chat"), "", 400, "InvalidRequest", "could not resolve proxy did"},
		{"no DID", "GET", "com.example.echo", proxyTo("#bsky_chat"), "", 400, "InvalidRequest", "no did specified in proxy header"},
		{"no service id", "GET", "com.example.echo", proxyTo(svcs.Chat.DID), "", 400, "InvalidRequest", "no service id specified in proxy header"},
		{"empty service id", "GET", "com.example.echo", proxyTo(svcs.Chat.DID + "#"), "", 400, "InvalidRequest", "no service id specified in proxy header"},
		{"two fragments", "GET", "com.example.echo", proxyTo(chat + "#x"), "", 400, "InvalidRequest", "invalid proxy header format"},
		{"spaces", "GET", "com.example.echo", proxyTo(svcs.Chat.DID + "#bsky chat"), "", 400, "InvalidRequest", "proxy header cannot contain spaces"},
		// The official PDS: 500 InternalServerError.
		{"not a DID", "GET", "com.example.echo", proxyTo("foo#bar"), "", 400, "InvalidRequest", "could not resolve proxy did"},
		{"unsupported DID method", "GET", "com.example.echo", proxyTo("did:example:123#bar"), "", 400, "InvalidRequest", "could not resolve proxy did"},
		// The header is read before the session.
		{"malformed header without auth", "GET", "com.example.echo", noAuthProxy("#x"), "", 400, "InvalidRequest", "no did specified in proxy header"},
		{"unknown service without auth", "GET", "com.example.echo", noAuthProxy(svcs.Chat.DID + "#nope"), "", 400, "InvalidRequest", "could not resolve proxy did service url"},
		{"good header without auth", "GET", "com.example.echo", noAuthProxy(chat), "", 401, "AuthMissing", "Authentication Required"},
		{"default service without auth", "GET", "app.bsky.feed.getTimeline", nil, "", 401, "AuthMissing", "Authentication Required"},
		{"admin auth", "GET", "com.example.echo", basic(h.AdminPassword), "", 400, "InvalidToken", "Unexpected authorization type"},
		{"garbage token", "GET", "com.example.echo", bearer("abc.def.ghi"), "", 400, "InvalidToken", "Token could not be verified"},

		// Protected and privileged methods.
		{"protected method with a proxy header", "GET", "com.atproto.identity.signPlcOperation", proxyTo(chat), "", 400, "InvalidToken", "Bad token method"},
		{"protected method without auth", "POST", "com.atproto.server.requestEmailUpdate", noAuthProxy(chat), "", 400, "InvalidToken", "Bad token method"},
		{"protected method in other case", "GET", "com.atproto.admin.SENDEMAIL", proxyTo(chat), "", 400, "InvalidToken", "Bad token method"},
		{"privileged method with an app password", "GET", "chat.bsky.convo.listConvos", merge(bearer(appPw.AccessJwt), noAuthProxy(chat)), "", 400, "InvalidToken", "Bad token method"},
		{"no default for a moderation method", "GET", "tools.ozone.moderation.getRepo?did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa", auth, "", 400, "InvalidRequest", "No service configured for tools.ozone.moderation.getRepo"},

		// Upstream failures.
		{"upstream unreachable", "GET", "chat.bsky.convo.listConvos", proxyTo(deadDID + "#bsky_chat"), "", 502, "UpstreamFailure", "Upstream service unreachable"},
		{"upstream 500 with an XRPC error", "GET", "com.example.status?code=500&error=Boom&message=it+broke", auth, "", 502, "Boom", "it broke"},
		{"upstream 500 in plain text", "GET", "com.example.status?code=500&body=oops&type=text/plain", auth, "", 502, "UpstreamFailure", "Upstream Failure"},
		{"upstream 502", "GET", "com.example.status?code=502", auth, "", 502, "UpstreamFailure", "Upstream Failure"},
		{"upstream 503", "GET", "com.example.status?code=503&error=Busy&message=later", auth, "", 503, "Busy", "later"},
		{"upstream 504", "GET", "com.example.status?code=504", auth, "", 504, "UpstreamTimeout", "Upstream Timeout"},
		{"upstream 400 without message", "GET", "com.example.status?code=400&error=Bad", auth, "", 400, "Bad", "Invalid Request"},
		{"upstream 404 without body", "GET", "com.example.status?code=404&body=", auth, "", 404, "XRPCNotSupported", "XRPC Not Supported"},
		{"upstream 429", "GET", "com.example.status?code=429", auth, "", 429, "RateLimitExceeded", "Rate Limit Exceeded"},
		{"upstream 418 without body", "GET", "com.example.status?code=418", auth, "", 418, "", ""},

		// getServiceAuth.
		{"service auth for a protected method", "GET", "com.atproto.server.getServiceAuth?aud=" + svcs.Chat.DID + "&lxm=com.atproto.server.getSession", auth, "", 400, "InvalidRequest", "cannot request a service auth token for the following protected method: com.atproto.server.getSession"},
		{"service auth for chat with an app password", "GET", "com.atproto.server.getServiceAuth?aud=" + svcs.Chat.DID + "&lxm=chat.bsky.convo.listConvos", bearer(appPw.AccessJwt), "", 400, "InvalidRequest", "insufficient access to request a service auth token for the following method: chat.bsky.convo.listConvos"},
		{"service auth expired", "GET", "com.atproto.server.getServiceAuth?aud=" + svcs.Chat.DID + "&exp=" + strconv.FormatInt(now-10, 10), auth, "", 400, "BadExpiration", "expiration is in past"},
		{"service auth for two hours", "GET", "com.atproto.server.getServiceAuth?aud=" + svcs.Chat.DID + "&lxm=app.bsky.feed.getTimeline&exp=" + strconv.FormatInt(now+7200, 10), auth, "", 400, "BadExpiration", "cannot request a token with an expiration more than an hour in the future"},
		{"method-less service auth for half an hour", "GET", "com.atproto.server.getServiceAuth?aud=" + svcs.Chat.DID + "&exp=" + strconv.FormatInt(now+1800, 10), auth, "", 400, "BadExpiration", "cannot request a method-less token with an expiration more than a minute in the future"},
		{"service auth without auth", "GET", "com.atproto.server.getServiceAuth?aud=" + svcs.Chat.DID, nil, "", 401, "AuthMissing", "Authentication Required"},
		// The official PDS: 500 InternalServerError, before auth.
		{"service auth without aud", "GET", "com.atproto.server.getServiceAuth", nil, "", 400, "InvalidRequest", `Params must have the property "aud"`},
		{"service auth for a non-DID", "GET", "com.atproto.server.getServiceAuth?aud=foo", auth, "", 400, "InvalidRequest", `Invalid DID (got "foo") at $.aud`},
		{"service auth for a bad method", "GET", "com.atproto.server.getServiceAuth?aud=" + svcs.Chat.DID + "&lxm=nope", auth, "", 400, "InvalidRequest", `Invalid NSID (got "nope") at $.lxm`},

		// getFeed.
		{"feed without auth", "GET", "app.bsky.feed.getFeed?feed=" + url.QueryEscape(svcs.FeedURI), nil, "", 401, "AuthMissing", "Authentication Required"},
		// The official PDS: 500 InternalServerError.
		{"feed without feed", "GET", "app.bsky.feed.getFeed", auth, "", 400, "InvalidRequest", `Params must have the property "feed"`},
		{"feed unknown to the AppView", "GET", "app.bsky.feed.getFeed?feed=" + url.QueryEscape("at://"+svcs.FeedGen.DID+"/app.bsky.feed.generator/nope"), auth, "", 400, "RecordNotFound", "Could not locate record"},

		// createReport: the session first, then the input.
		{"report without auth", "POST", cr, ctype("application/json"), report(""), 401, "AuthMissing", "Authentication Required"},
		{"report without auth, bad header", "POST", cr, merge(ctype("application/json"), noAuthProxy(svcs.Chat.DID+"#nope")), report(""), 401, "AuthMissing", "Authentication Required"},
		{"report without body", "POST", cr, auth, "", 400, "InvalidRequest", "A request body is expected but none was provided"},
		{"report in plain text", "POST", cr, merge(auth, ctype("text/plain")), "hi", 400, "InvalidRequest", "Wrong request encoding (Content-Type): text/plain"},
		{"report without reasonType", "POST", cr, jsonAuth, `{}`, 400, "InvalidRequest", `Missing required key "reasonType" at $`},
		{"report without subject", "POST", cr, jsonAuth, `{"reasonType":"x"}`, 400, "InvalidRequest", `Missing required key "subject" at $`},
		{"report with a number reason", "POST", cr, jsonAuth, report(`,"reason":5`), 400, "InvalidRequest", "Expected string value type (got 5) at $.reason"},
		{"report about a non-DID", "POST", cr, jsonAuth, `{"reasonType":"x","subject":{"$type":"com.atproto.admin.defs#repoRef","did":"nope"}}`, 400, "InvalidRequest", `Invalid DID (got "nope") at $.subject.did`},
		{"report to an unknown service", "POST", cr, merge(jsonAuth, noAuthProxy(svcs.Chat.DID+"#nope")), report(""), 400, "InvalidRequest", "could not resolve proxy did service url"},
		// The official PDS: 500 InternalServerError for any upstream error.
		{"report refused upstream", "POST", cr, jsonAuth, report(`,"reason":"fail:400:Bad:nope"`), 400, "Bad", "nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &client{t: t, base: h.URL, admin: h.AdminPassword}
			status, body := c.raw(tt.method, tt.nsid, tt.header, tt.body)
			var got map[string]any
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%d, body %q is not JSON: %v", status, body, err)
			}
			name, _ := got["error"].(string)
			msg, _ := got["message"].(string)
			if status != tt.wantStatus || name != tt.wantError || msg != tt.wantMessage {
				t.Errorf("got %d %q %q, want %d %q %q", status, name, msg, tt.wantStatus, tt.wantError, tt.wantMessage)
			}
		})
	}

	t.Run("upstream timeout", func(t *testing.T) {
		// The official PDS gives up waiting for headers after 10 s.
		start := time.Now()
		c := &client{t: t, base: h.URL}
		status, body := c.raw("GET", "com.example.slow?ms=15000", auth, "")
		took := time.Since(start)
		if status != 502 || !strings.Contains(string(body), `"error":"UpstreamFailure","message":"Upstream service unreachable"`) {
			t.Errorf("got %d %s, want 502 UpstreamFailure", status, body)
		}
		if took < 9*time.Second || took > 14*time.Second {
			t.Errorf("answered after %s, want about 10 s", took)
		}
	})

	t.Run("oversized upstream response", func(t *testing.T) {
		// Up to 10 MiB passes; beyond, the official PDS has already sent
		// the status and headers and cuts the transfer.
		for _, tc := range []struct {
			query   string
			wantErr bool
		}{
			{"bytes=10485760", false},
			{"bytes=10485761", true},
			{"bytes=10485761&chunked=1", true},
			{"bytes=20971520", true},
		} {
			req, _ := http.NewRequest("GET", h.URL+"/xrpc/com.example.size?"+tc.query, nil)
			req.Header = auth.Clone()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("%s: %v", tc.query, err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("%s: status %d, want 200 (headers go out before the cut)", tc.query, resp.StatusCode)
			}
			if tc.wantErr && (err == nil || n > 10<<20) {
				t.Errorf("%s: read %d bytes, err %v; want a broken transfer within 10 MiB", tc.query, n, err)
			}
			if !tc.wantErr && (err != nil || n != 10<<20) {
				t.Errorf("%s: read %d bytes, err %v; want all 10 MiB", tc.query, n, err)
			}
		}
	})
}

// TestProxyWithoutAppView checks the answers of a server with no AppView
// and no report service configured: proxy headers still work, everything
// else is "No service configured".
func TestProxyWithoutAppView(t *testing.T) {
	plcURL := testenv.StartEmbeddedPLC(t)
	svcs := testenv.StartServices(t, plcURL)
	h := testenv.StartHearth(t, plcURL)
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}
	c.signUp("alone.test", "alone@example.com", "alone-password", c.invite(1))
	s := c.login("alone.test", "alone-password")
	auth := bearer(s.AccessJwt)
	const report = `{"reasonType":"com.atproto.moderation.defs#reasonSpam","subject":{"$type":"com.atproto.admin.defs#repoRef","did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"}}`

	for _, tt := range []struct {
		name, method, nsid string
		header             http.Header
		body               string
		wantStatus         int
		wantError          string
		wantMessage        string
	}{
		{"timeline", "GET", "app.bsky.feed.getTimeline", auth, "", 400, "InvalidRequest", "No service configured for app.bsky.feed.getTimeline"},
		{"timeline without auth", "GET", "app.bsky.feed.getTimeline", nil, "", 400, "InvalidRequest", "No service configured for app.bsky.feed.getTimeline"},
		{"feed", "GET", "app.bsky.feed.getFeed?feed=" + url.QueryEscape(svcs.FeedURI), auth, "", 400, "InvalidRequest", "No service configured for app.bsky.feed.getFeed"},
		{"report", "POST", "com.atproto.moderation.createReport", merge(auth, ctype("application/json")), report, 400, "InvalidRequest", "No service configured for com.atproto.moderation.createReport"},
		{"report without auth", "POST", "com.atproto.moderation.createReport", ctype("application/json"), report, 401, "AuthMissing", "Authentication Required"},
		{"protected", "GET", "com.atproto.identity.signPlcOperation", auth, "", 400, "InvalidToken", "Bad token method"},
		{"chat through the header", "GET", "chat.bsky.convo.listConvos", merge(auth, http.Header{"Atproto-Proxy": {svcs.Chat.DID + "#bsky_chat"}}), "", 200, "", ""},
		{"service auth", "GET", "com.atproto.server.getServiceAuth?aud=" + svcs.Chat.DID, auth, "", 200, "", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body := c.raw(tt.method, tt.nsid, tt.header, tt.body)
			var got struct{ Error, Message string }
			json.Unmarshal(body, &got)
			if status != tt.wantStatus || got.Error != tt.wantError || got.Message != tt.wantMessage {
				t.Errorf("got %d %q %q, want %d %q %q", status, got.Error, got.Message, tt.wantStatus, tt.wantError, tt.wantMessage)
			}
		})
	}
	if r := svcs.Chat.Last("chat.bsky.convo.listConvos"); r == nil {
		t.Error("the chat service got nothing")
	} else {
		checkToken(t, *r, s.DID, svcs.Chat.DID, "chat.bsky.convo.listConvos")
	}
}

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	return port
}

// TestReadAfterWrite drives the built binary with @atproto/api against a
// test AppView scripted to lag (an atproto-repo-rev from before the
// writes, views without them): a post, a reply and a profile change made
// just before show in getAuthorFeed, getTimeline, getProfile and
// getPostThread, each view fetched from the AppView with a verified token.
func TestReadAfterWrite(t *testing.T) {
	h, svcs := startProxied(t, testenv.StartEmbeddedPLC(t))
	out := testenv.RunNode(t, "readafterwrite.mjs", 2*time.Minute,
		"PDS_URL="+h.URL, "ADMIN_PASSWORD="+h.AdminPassword, "APPVIEW_URL="+svcs.AppView.URL,
		"HANDLE=raw"+strconv.FormatInt(time.Now().UnixNano()%1e6, 36)+".test")
	var got struct{ DID string }
	if err := json.Unmarshal(out, &got); err != nil || got.DID == "" {
		t.Fatalf("readafterwrite.mjs output %q: %v", out, err)
	}
	for _, nsid := range []string{"app.bsky.feed.getAuthorFeed", "app.bsky.feed.getTimeline", "app.bsky.actor.getProfile", "app.bsky.feed.getPostThread"} {
		r := svcs.AppView.Last(nsid)
		if r == nil {
			t.Errorf("%s never reached the AppView", nsid)
			continue
		}
		checkToken(t, *r, got.DID, svcs.AppView.DID, nsid)
	}
}

// TestRegisterPush: push registration goes to the notification service
// the body names (here the AppView), with a token addressed to it.
func TestRegisterPush(t *testing.T) {
	h, svcs := startProxied(t, testenv.StartEmbeddedPLC(t))
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}
	c.signUp("push.test", "push@example.com", "push-password", c.invite(1))
	s := c.login("push.test", "push-password")
	body := `{"serviceDid":"` + svcs.AppView.DID + `","token":"device-token","platform":"ios","appId":"xyz.example.app"}`
	for _, nsid := range []string{"app.bsky.notification.registerPush", "app.bsky.notification.unregisterPush"} {
		c.mustPost(nsid, bearer(s.AccessJwt), body)
		got := svcs.AppView.Last(nsid)
		if got == nil {
			t.Fatalf("%s did not reach the notification service", nsid)
		}
		checkToken(t, *got, s.DID, svcs.AppView.DID, nsid)
		if !strings.Contains(string(got.Body), "device-token") {
			t.Errorf("%s body %q", nsid, got.Body)
		}
	}
	status, resp := c.raw("POST", "app.bsky.notification.registerPush", merge(bearer(s.AccessJwt), ctype("application/json")),
		`{"serviceDid":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa","token":"t","platform":"ios","appId":"a"}`)
	if status != http.StatusBadRequest || !strings.Contains(string(resp), "invalid notification service details") {
		t.Errorf("unknown notification service: %d %s", status, resp)
	}
}
