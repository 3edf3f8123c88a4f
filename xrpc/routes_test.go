package xrpc

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/proxy"
	"github.com/hearth-pds/hearth/serviceauth"
)

const (
	testAdminPassword = "admin-password"
	testServiceDID    = "did:web:pds.test"
	alice             = "did:plc:aliceealiceealiceealice"
)

// credential is one kind of credentials a request may carry.
type credential struct {
	name   string
	header string // the Authorization header
}

func credentials(t *testing.T, tokens *account.Tokens) []credential {
	t.Helper()
	access := func(scope account.Scope) string {
		tok, err := tokens.Access(alice, scope)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	refresh, _, err := tokens.Refresh(alice, account.NewRefreshID())
	if err != nil {
		t.Fatal(err)
	}
	return []credential{
		{"none", ""},
		{"access", access(account.ScopeAccess)},
		{"refresh", "Bearer " + refresh},
		{"app password", access(account.ScopeAppPass)},
		{"privileged app password", access(account.ScopeAppPassPrivileged)},
		{"admin", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+testAdminPassword))},
		{"service auth", "Bearer " + serviceAuthJWT(t)},
	}
}

// serviceAuthJWT is a service-auth token another PDS would mint for
// alice: ES256K-signed, addressed to this server.
func serviceAuthJWT(t *testing.T) string {
	t.Helper()
	key, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]string{"alg": "ES256K", "typ": "JWT"}) + "." +
		enc(map[string]any{"iss": alice, "aud": testServiceDID, "lxm": "com.atproto.repo.getRecord", "exp": time.Now().Add(time.Minute).Unix()})
	sig, err := key.HashAndSign([]byte(signed))
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

// outcome is what a request gets: a caller ("anonymous", "admin" or the
// scope of alice's session) or a refusal.
type outcome struct {
	status  int
	caller  string
	name    string
	message string
}

func as(caller string) outcome { return outcome{status: 200, caller: caller} }

func refused(status int, name, message string) outcome {
	return outcome{status: status, name: name, message: message}
}

var (
	noCredentials  = refused(401, "AuthMissing", "Authentication Required")
	adminNeeded    = refused(401, "AuthenticationRequired", "Authentication Required")
	otherTokenType = refused(400, "InvalidToken", "Invalid token type")
	wrongScope     = refused(400, "InvalidToken", "Bad token scope")
	basicScheme    = refused(400, "InvalidToken", "Unexpected authorization type")
	notOurs        = refused(400, "InvalidToken", "Token could not be verified")
	anonymous      = as("anonymous")
	full           = as(string(account.ScopeAccess))
	appPass        = as(string(account.ScopeAppPass))
	privileged     = as(string(account.ScopeAppPassPrivileged))
	theRefresher   = as(string(account.ScopeRefresh))
)

// want is the outcome of each credential kind at each auth level, in the
// order of credentials.
var want = map[authLevel][]outcome{
	// none, access, refresh, app password, privileged app password, admin, service auth
	authNone:       {anonymous, anonymous, anonymous, anonymous, anonymous, anonymous, anonymous},
	authOptional:   {anonymous, full, anonymous, appPass, privileged, as("admin"), anonymous},
	authAccess:     {noCredentials, full, otherTokenType, appPass, privileged, basicScheme, notOurs},
	authAccessFull: {noCredentials, full, otherTokenType, wrongScope, wrongScope, basicScheme, notOurs},
	authRefresh:    {noCredentials, otherTokenType, theRefresher, otherTokenType, otherTokenType, basicScheme, notOurs},
	authAdmin:      {adminNeeded, adminNeeded, adminNeeded, adminNeeded, adminNeeded, as("admin"), adminNeeded},
}

// send calls nsid with cred and reads what came back.
func send(t *testing.T, s *Server, verb, nsid string, cred credential) (outcome, *httptest.ResponseRecorder) {
	t.Helper()
	r := httptest.NewRequest(verb, "/xrpc/"+nsid, nil)
	if cred.header != "" {
		r.Header.Set("Authorization", cred.header)
	}
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	var body struct{ Caller, Error, Message string }
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Errorf("%s with %s: body %q: %v", nsid, cred.name, w.Body, err)
	}
	return outcome{status: w.Code, caller: body.Caller, name: body.Error, message: body.Message}, w
}

// TestRouteAuth walks the route table and sends every route each kind of
// credentials: each is accepted as the right caller or refused with the
// official status, name and message of its auth level. The handlers are
// replaced by one that reports the caller, and the parameter checks are
// left out (they run before auth and are the handlers' business).
func TestRouteAuth(t *testing.T) {
	tokens := &account.Tokens{Secret: []byte("jwt-secret"), ServiceDID: testServiceDID}
	s := New(Config{AdminPassword: testAdminPassword, Tokens: tokens, Store: pinger{}})
	report := func(w http.ResponseWriter, r *http.Request, c caller) error {
		who := "anonymous"
		switch {
		case c.Admin:
			who = "admin"
		case c.DID == alice:
			who = string(c.Scope)
		case c.DID != "":
			who = "someone else: " + c.DID
		}
		return writeJSON(w, map[string]string{"caller": who})
	}
	var routes []route
	for _, rt := range s.routes() {
		rt.h, rt.check, rt.needs = report, nil, always
		routes = append(routes, rt)
	}
	s.table = newTable(routes)
	creds := credentials(t, tokens)

	for _, rt := range routes {
		outcomes, ok := want[rt.auth]
		if !ok {
			t.Errorf("%s: auth level %d has no expected outcomes", rt.nsid, rt.auth)
			continue
		}
		for i, cred := range creds {
			got, _ := send(t, s, rt.verb, rt.nsid, cred)
			if got != outcomes[i] {
				t.Errorf("%s (level %d) with %s: %+v, want %+v", rt.nsid, rt.auth, cred.name, got, outcomes[i])
			}
		}
	}
}

// TestRouteTable: each NSID once, well formed, with a verb XRPC has.
func TestRouteTable(t *testing.T) {
	s := New(Config{})
	seen := map[string]bool{}
	for _, rt := range s.routes() {
		if seen[rt.nsid] {
			t.Errorf("%s listed twice", rt.nsid)
		}
		seen[rt.nsid] = true
		if _, err := syntax.ParseNSID(rt.nsid); err != nil {
			t.Errorf("%s: %v", rt.nsid, err)
		}
		if rt.verb != http.MethodGet && rt.verb != http.MethodPost {
			t.Errorf("%s: verb %q", rt.nsid, rt.verb)
		}
		if rt.h == nil {
			t.Errorf("%s: no handler", rt.nsid)
		}
	}
}

// TestUnbackedRoutes: a route whose service is not configured is answered
// by the catch-all, as if it were not served here.
func TestUnbackedRoutes(t *testing.T) {
	s := New(Config{})
	for _, nsid := range []string{"com.atproto.server.getServiceAuth", "app.bsky.feed.getTimeline", "app.bsky.feed.getFeed", "com.atproto.sync.subscribeRepos"} {
		rt := s.table.exact[nsid]
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(rt.verb, "/xrpc/"+nsid, nil))
		if w.Code != 400 || w.Body.String() != `{"error":"InvalidRequest","message":"No service configured for `+nsid+`"}`+"\n" {
			t.Errorf("%s without its service: %d %s", nsid, w.Code, w.Body)
		}
	}
}

// fakeProxy accepts every method and reports the caller it is given.
type fakeProxy struct{ Proxy }

func (fakeProxy) Route(*http.Request, string) (proxy.Target, error) { return proxy.Target{}, nil }

func (fakeProxy) Forward(w http.ResponseWriter, _ *http.Request, _ string, _ proxy.Target, c serviceauth.Caller) error {
	who := "unprivileged"
	if c.Privileged {
		who = "privileged"
	}
	if c.DID != alice {
		who = "someone else: " + c.DID
	}
	return writeJSON(w, map[string]string{"caller": who})
}

// TestCatchAllAuth: a method not in the table is forwarded for any access
// token, with whether the session may call privileged methods.
func TestCatchAllAuth(t *testing.T) {
	tokens := &account.Tokens{Secret: []byte("jwt-secret"), ServiceDID: testServiceDID}
	s := New(Config{AdminPassword: testAdminPassword, Tokens: tokens, Proxy: fakeProxy{}, Store: pinger{}})
	wants := []outcome{noCredentials, as("privileged"), otherTokenType, as("unprivileged"), as("privileged"), basicScheme, notOurs}
	for i, cred := range credentials(t, tokens) {
		got, w := send(t, s, http.MethodGet, "chat.bsky.convo.listConvos", cred)
		if got != wants[i] {
			t.Errorf("proxied with %s: %+v, want %+v", cred.name, got, wants[i])
		}
		if w.Header().Get("Cache-Control") != "private" {
			t.Errorf("proxied with %s: Cache-Control %q", cred.name, w.Header().Get("Cache-Control"))
		}
	}
}
