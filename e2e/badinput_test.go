package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hearth-pds/hearth/testenv"
)

// TestBadInput sends malformed, forbidden and conflicting requests to the
// built binary and checks each gets the status and XRPC error name the
// official PDS (0.4.217, observed on loopback) returns, never a 500, and
// that no refused sign-up leaves anything behind.
func TestBadInput(t *testing.T) {
	h := testenv.StartHearth(t, testenv.StartEmbeddedPLC(t))
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}

	invite := c.invite(20)
	usedUp := c.invite(1)
	disabled := c.invite(5)
	c.mustPost("com.atproto.admin.disableInviteCodes", basic(h.AdminPassword), `{"codes":["`+disabled+`"]}`)

	taken := c.signUp("taken.test", "taken@example.com", "taken-password", usedUp)
	full := c.login("taken.test", "taken-password")
	var appPw struct{ Password string }
	c.mustPostJSON("com.atproto.server.createAppPassword", bearer(full.AccessJwt), `{"name":"phone"}`, &appPw)
	appSession := c.login("taken.test", appPw.Password)

	expired := sign(t, h.JWTSecret, "at+jwt", jwt.MapClaims{"scope": "com.atproto.access", "sub": taken,
		"aud": "did:web:localhost", "iat": time.Now().Add(-3 * time.Hour).Unix(), "exp": time.Now().Add(-time.Hour).Unix()})
	forged := sign(t, "not-the-secret", "at+jwt", jwt.MapClaims{"scope": "com.atproto.access", "sub": taken,
		"aud": "did:web:localhost", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})
	noTyp := sign(t, h.JWTSecret, "", jwt.MapClaims{"scope": "com.atproto.access", "sub": taken,
		"aud": "did:web:localhost", "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()})

	account := func(fields string) string {
		return `{"email":"new@example.com","handle":"newcomer.test","password":"pw-123456","inviteCode":"` + invite + `"` + fields + `}`
	}
	const jsonType = "application/json"
	tests := []struct {
		name         string
		method, nsid string
		header       http.Header
		body         string
		wantStatus   int
		wantError    string
		wantMessage  string // checked when set
	}{
		// Bodies.
		{"malformed JSON", "POST", "com.atproto.server.createAccount", ctype(jsonType), `{"handle":"x.test",`, 400, "SyntaxError", ""},
		{"array body", "POST", "com.atproto.server.createAccount", ctype(jsonType), `[]`, 400, "InvalidRequest", "Expected object value type (got []) at $"},
		{"no body", "POST", "com.atproto.server.createAccount", nil, ``, 400, "InvalidRequest", "A request body is expected but none was provided"},
		{"text/plain body", "POST", "com.atproto.server.createAccount", ctype("text/plain"), account(""), 400, "InvalidRequest", "Wrong request encoding (Content-Type): text/plain"},
		{"body without content type", "POST", "com.atproto.server.createSession", nil, `{"identifier":"a","password":"b"}`, 400, "InvalidRequest", "Request encoding (Content-Type) required but not provided"},
		{"oversize body", "POST", "com.atproto.server.createSession", ctype(jsonType), `{"identifier":"taken.test","password":"` + strings.Repeat("x", 150*1024) + `"}`, 413, "PayloadTooLargeError", "request entity too large"},
		{"wrong field type", "POST", "com.atproto.server.createSession", ctype(jsonType), `{"identifier":5,"password":"x"}`, 400, "InvalidRequest", "Expected string value type (got 5) at $.identifier"},

		// createAccount.
		{"missing handle", "POST", "com.atproto.server.createAccount", ctype(jsonType), `{"email":"a@example.com","password":"x"}`, 400, "InvalidRequest", `Missing required key "handle" at $`},
		{"handle syntax", "POST", "com.atproto.server.createAccount", ctype(jsonType), `{"email":"a@example.com","password":"x","handle":"bad_handle.test","inviteCode":"` + invite + `"}`, 400, "InvalidRequest", `Invalid handle (got "bad_handle.test") at $.handle`},
		{"handle too short", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "newcomer.test", "ab.test"), 400, "InvalidHandle", "Handle too short"},
		{"handle too long", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "newcomer.test", "abcdefghijklmnopqrs.test"), 400, "InvalidHandle", "Handle too long"},
		{"dot in handle label", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "newcomer.test", "sub.part.test"), 400, "InvalidHandle", "Invalid characters in handle"},
		{"handle outside the service domains", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "newcomer.test", "carol.example.com"), 400, "UnsupportedDomain", "Not a supported handle domain"},
		{"reserved handle", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "newcomer.test", "admin.test"), 400, "HandleNotAvailable", "Reserved handle"},
		{"handle taken", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "newcomer.test", "TAKEN.test"), 400, "InvalidRequest", "Handle already taken: taken.test"},
		{"email taken", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "new@example.com", "TAKEN@example.com"), 400, "InvalidRequest", "Email already taken: TAKEN@example.com"},
		{"invalid email", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "new@example.com", "a@b"), 400, "InvalidRequest", "This email address is not supported, please use a different email."},
		{"missing email", "POST", "com.atproto.server.createAccount", ctype(jsonType), `{"handle":"newcomer.test","password":"x","inviteCode":"` + invite + `"}`, 400, "InvalidRequest", "Email is required"},
		{"password too long", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), "pw-123456", strings.Repeat("p", 257)), 400, "InvalidRequest", "Password too long. Maximum length is 256 characters."},
		{"missing invite", "POST", "com.atproto.server.createAccount", ctype(jsonType), `{"email":"new@example.com","handle":"newcomer.test","password":"pw"}`, 400, "InvalidInviteCode", "No invite code provided"},
		{"unknown invite", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), invite, "localhost-nope0-nope0"), 400, "InvalidInviteCode", "Provided invite code not available"},
		{"used-up invite", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), invite, usedUp), 400, "InvalidInviteCode", "Provided invite code not available"},
		{"disabled invite", "POST", "com.atproto.server.createAccount", ctype(jsonType), swap(account(""), invite, disabled), 400, "InvalidInviteCode", "Provided invite code not available"},
		{"bad recovery key", "POST", "com.atproto.server.createAccount", ctype(jsonType), account(`,"recoveryKey":"garbage"`), 400, "InvalidRequest", ""},
		{"existing DID without auth", "POST", "com.atproto.server.createAccount", ctype(jsonType), account(`,"did":"did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"`), 401, "AuthenticationRequired", "Missing auth to create account with did: did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"},
		{"plcOp given", "POST", "com.atproto.server.createAccount", ctype(jsonType), account(`,"plcOp":{}`), 400, "InvalidRequest", `Unsupported input: "plcOp"`},

		// Sessions.
		{"wrong password", "POST", "com.atproto.server.createSession", ctype(jsonType), `{"identifier":"taken.test","password":"wrong"}`, 401, "AuthenticationRequired", "Invalid identifier or password"},
		{"unknown identifier", "POST", "com.atproto.server.createSession", ctype(jsonType), `{"identifier":"nobody.test","password":"x"}`, 401, "AuthenticationRequired", "Invalid identifier or password"},
		{"missing password", "POST", "com.atproto.server.createSession", ctype(jsonType), `{"identifier":"taken.test"}`, 400, "InvalidRequest", `Missing required key "password" at $`},
		{"login password too long", "POST", "com.atproto.server.createSession", ctype(jsonType), `{"identifier":"taken.test","password":"` + strings.Repeat("p", 513) + `"}`, 401, "AuthenticationRequired", "Password too long. Consider resetting your password."},
		{"no auth", "GET", "com.atproto.server.getSession", nil, "", 401, "AuthMissing", "Authentication Required"},
		{"expired token", "GET", "com.atproto.server.getSession", bearer(expired), "", 400, "ExpiredToken", "Token has expired"},
		{"forged token", "GET", "com.atproto.server.getSession", bearer(forged), "", 400, "InvalidToken", "Token could not be verified"},
		{"garbage token", "GET", "com.atproto.server.getSession", bearer("garbage"), "", 400, "InvalidToken", "Token could not be verified"},
		{"token without typ", "GET", "com.atproto.server.getSession", bearer(noTyp), "", 400, "InvalidToken", "Token could not be verified"},
		{"refresh token as access", "GET", "com.atproto.server.getSession", bearer(full.RefreshJwt), "", 400, "InvalidToken", "Invalid token type"},
		{"access token as refresh", "POST", "com.atproto.server.refreshSession", bearer(full.AccessJwt), "", 400, "InvalidToken", "Invalid token type"},
		{"access token to deleteSession", "POST", "com.atproto.server.deleteSession", bearer(full.AccessJwt), "", 400, "InvalidToken", "Invalid token type"},
		{"unsupported auth scheme", "GET", "com.atproto.server.getSession", http.Header{"Authorization": {"Token x"}}, "", 400, "InvalidToken", "Unsupported authorization type: Token"},
		{"bearer without token", "GET", "com.atproto.server.getSession", http.Header{"Authorization": {"Bearer"}}, "", 400, "InvalidToken", "Malformed authorization header"},
		{"admin auth on a user route", "GET", "com.atproto.server.getSession", basic(h.AdminPassword), "", 400, "InvalidToken", "Unexpected authorization type"},

		// App passwords.
		{"app password creates app password", "POST", "com.atproto.server.createAppPassword", merge(bearer(appSession.AccessJwt), ctype(jsonType)), `{"name":"nested"}`, 400, "InvalidToken", "Bad token scope"},
		{"app password lists invite codes", "GET", "com.atproto.server.getAccountInviteCodes", bearer(appSession.AccessJwt), "", 400, "InvalidToken", "Bad token scope"},
		{"app password without name", "POST", "com.atproto.server.createAppPassword", merge(bearer(full.AccessJwt), ctype(jsonType)), `{}`, 400, "InvalidRequest", `Missing required key "name" at $`},
		// The official PDS answers a duplicate name with a 500 (a bug); we refuse it cleanly.
		{"duplicate app password name", "POST", "com.atproto.server.createAppPassword", merge(bearer(full.AccessJwt), ctype(jsonType)), `{"name":"phone"}`, 400, "InvalidRequest", ""},

		// Admin.
		{"wrong admin password", "POST", "com.atproto.server.createInviteCode", merge(basic("wrong"), ctype(jsonType)), `{"useCount":1}`, 401, "AuthenticationRequired", "Authentication Required"},
		{"admin route without auth", "POST", "com.atproto.server.createInviteCode", ctype(jsonType), `{"useCount":1}`, 401, "AuthenticationRequired", "Authentication Required"},
		{"admin route with a user token", "POST", "com.atproto.server.createInviteCode", merge(bearer(full.AccessJwt), ctype(jsonType)), `{"useCount":1}`, 401, "AuthenticationRequired", "Authentication Required"},
		{"invite without useCount", "POST", "com.atproto.server.createInviteCode", merge(basic(h.AdminPassword), ctype(jsonType)), `{}`, 400, "InvalidRequest", `Missing required key "useCount" at $`},

		// Methods and verbs.
		{"unknown query", "GET", "com.example.nope", nil, "", 400, "InvalidRequest", "No service configured for com.example.nope"},
		{"unknown procedure", "POST", "com.example.nope", ctype(jsonType), `{}`, 400, "InvalidRequest", "No service configured for com.example.nope"},
		{"PUT", "PUT", "com.atproto.server.describeServer", nil, "", 400, "InvalidRequest", "XRPC requests only supports GET and POST"},
		{"GET on a procedure", "GET", "com.atproto.server.createSession", nil, "", 400, "InvalidRequest", ""},
		{"POST on a query", "POST", "com.atproto.server.describeServer", ctype(jsonType), `{}`, 400, "InvalidRequest", ""},

		// Identity.
		{"update to a taken handle", "POST", "com.atproto.identity.updateHandle", merge(bearer(appSession.AccessJwt), ctype(jsonType)), `{"handle":"first.test"}`, 400, "InvalidRequest", "Handle already taken: first.test"},
		{"update to an invalid handle", "POST", "com.atproto.identity.updateHandle", merge(bearer(full.AccessJwt), ctype(jsonType)), `{"handle":"bad_handle.test"}`, 400, "InvalidRequest", `Invalid handle (got "bad_handle.test") at $.handle`},
		{"update to a reserved handle", "POST", "com.atproto.identity.updateHandle", merge(bearer(full.AccessJwt), ctype(jsonType)), `{"handle":"admin.test"}`, 400, "HandleNotAvailable", "Reserved handle"},
		{"update to a disallowed TLD", "POST", "com.atproto.identity.updateHandle", merge(bearer(full.AccessJwt), ctype(jsonType)), `{"handle":"bob.localhost"}`, 400, "InvalidHandle", "Handle TLD is invalid or disallowed"},
		{"resolve an unknown handle", "GET", "com.atproto.identity.resolveHandle?handle=nobody.test", nil, "", 400, "HandleNotFound", "Unable to resolve handle"},
		// The official PDS answers these with a 500 (a bug); we say what is wrong.
		{"resolve an invalid handle", "GET", "com.atproto.identity.resolveHandle?handle=not_a_handle", nil, "", 400, "InvalidRequest", ""},
		{"resolve without a handle", "GET", "com.atproto.identity.resolveHandle", nil, "", 400, "InvalidRequest", ""},
	}

	c.signUp("first.test", "first@example.com", "first-password", invite)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := c.raw(tt.method, tt.nsid, tt.header, tt.body)
			var got struct{ Error, Message string }
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatalf("%d, body %q is not an XRPC error: %v", status, body, err)
			}
			if status != tt.wantStatus || got.Error != tt.wantError {
				t.Errorf("got %d %s (%q), want %d %s", status, got.Error, got.Message, tt.wantStatus, tt.wantError)
			}
			if tt.wantMessage != "" && got.Message != tt.wantMessage {
				t.Errorf("message %q, want %q", got.Message, tt.wantMessage)
			}
			if status >= 500 {
				t.Errorf("server error for bad input")
			}
		})
	}

	// No refused sign-up left anything behind: the handle and email they
	// tried are free, and the invite codes kept their uses.
	if status, _ := c.raw("GET", "com.atproto.identity.resolveHandle?handle=newcomer.test", nil, ""); status != 400 {
		t.Errorf("newcomer.test resolves after refused sign-ups: %d", status)
	}
	c.signUp("newcomer.test", "new@example.com", "pw-123456", invite)
	var codes struct {
		Codes []struct {
			Code string
			Uses []struct{ UsedBy string }
		}
	}
	c.mustGetJSON("com.atproto.server.getAccountInviteCodes", bearer(full.AccessJwt), &codes)
	if n := len(codes.Codes); n != 0 {
		t.Errorf("account has %d invite codes, want 0", n)
	}
}

type client struct {
	t     *testing.T
	base  string
	admin string
}

type session struct{ AccessJwt, RefreshJwt, DID string }

func (c *client) raw(method, nsid string, header http.Header, body string) (int, []byte) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+"/xrpc/"+nsid, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	if body == "" {
		req.Body = http.NoBody
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, nsid, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	return resp.StatusCode, buf.Bytes()
}

func (c *client) mustPostJSON(nsid string, header http.Header, body string, out any) {
	c.t.Helper()
	status, resp := c.raw("POST", nsid, merge(header, ctype("application/json")), body)
	if status != http.StatusOK {
		c.t.Fatalf("POST %s: %d %s", nsid, status, resp)
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			c.t.Fatalf("POST %s: %v", nsid, err)
		}
	}
}

func (c *client) mustPost(nsid string, header http.Header, body string) {
	c.t.Helper()
	c.mustPostJSON(nsid, header, body, nil)
}

func (c *client) mustGetJSON(nsid string, header http.Header, out any) {
	c.t.Helper()
	status, resp := c.raw("GET", nsid, header, "")
	if status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", nsid, status, resp)
	}
	if err := json.Unmarshal(resp, out); err != nil {
		c.t.Fatalf("GET %s: %v", nsid, err)
	}
}

func (c *client) invite(uses int) string {
	var out struct{ Code string }
	c.mustPostJSON("com.atproto.server.createInviteCode", basic(c.admin), `{"useCount":`+itoa(uses)+`}`, &out)
	return out.Code
}

func (c *client) signUp(handle, email, password, invite string) string {
	var out session
	body, _ := json.Marshal(map[string]string{"handle": handle, "email": email, "password": password, "inviteCode": invite})
	c.mustPostJSON("com.atproto.server.createAccount", nil, string(body), &out)
	return out.DID
}

func (c *client) login(identifier, password string) session {
	var out session
	body, _ := json.Marshal(map[string]string{"identifier": identifier, "password": password})
	c.mustPostJSON("com.atproto.server.createSession", nil, string(body), &out)
	return out
}

// sign makes an HS256 JWT with typ in its header, or no typ when typ is
// empty.
func sign(t *testing.T, secret, typ string, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims)
	delete(tok.Header, "typ")
	if typ != "" {
		tok.Header["typ"] = typ
	}
	s, err := tok.SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func ctype(v string) http.Header    { return http.Header{"Content-Type": {v}} }
func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
func basic(password string) http.Header {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth("admin", password)
	return http.Header{"Authorization": r.Header["Authorization"]}
}

func merge(hs ...http.Header) http.Header {
	out := http.Header{}
	for _, h := range hs {
		for k, v := range h {
			out[k] = v
		}
	}
	return out
}

func swap(s, old, new string) string { return strings.Replace(s, old, new, 1) }

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }
