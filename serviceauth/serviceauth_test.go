package serviceauth

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/auth"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/identity/diddoc"
)

const (
	alice = "did:plc:alicealicealicealicealic"
	svc   = "did:plc:servicservicservicservic"
)

// docs is an in-memory DID directory for tests; refreshes are counted.
type docs struct {
	keys      map[string]atcrypto.PublicKey
	fresh     map[string]atcrypto.PublicKey // served by Refresh when set
	refreshes int
}

func (d *docs) doc(did string, k atcrypto.PublicKey) (*diddoc.Document, error) {
	if k == nil {
		return nil, diddoc.ErrNotFound
	}
	return &diddoc.Document{ID: did, VerificationMethod: []diddoc.VerificationMethod{{
		ID: did + "#atproto", Type: "Multikey", Controller: did, PublicKeyMultibase: k.Multibase(),
	}}}, nil
}

func (d *docs) Resolve(_ context.Context, did string) (*diddoc.Document, error) {
	return d.doc(did, d.keys[did])
}

func (d *docs) Refresh(_ context.Context, did string) (*diddoc.Document, error) {
	d.refreshes++
	if k, ok := d.fresh[did]; ok {
		return d.doc(did, k)
	}
	return d.doc(did, d.keys[did])
}

type keyStore map[string]atcrypto.PrivateKeyExportable

func (k keyStore) SigningKey(_ context.Context, did syntax.DID) ([]byte, error) {
	key, ok := k[did.String()]
	if !ok {
		return nil, errors.New("no such account")
	}
	return key.Bytes(), nil
}

func newKey(t *testing.T) *atcrypto.PrivateKeyK256 {
	t.Helper()
	k, err := atcrypto.GeneratePrivateKeyK256()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pub(t *testing.T, k atcrypto.PrivateKey) atcrypto.PublicKey {
	t.Helper()
	p, err := k.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func parts(t *testing.T, token string) (header, payload string) {
	t.Helper()
	p := strings.Split(token, ".")
	if len(p) != 3 {
		t.Fatalf("token %q has %d parts", token, len(p))
	}
	h, _ := base64.RawURLEncoding.DecodeString(p[0])
	b, _ := base64.RawURLEncoding.DecodeString(p[1])
	return string(h), string(b)
}

// TestTokenShape: the bytes of header and payload are the official PDS's
// (key order included), and indigo's independent validator accepts them.
func TestTokenShape(t *testing.T) {
	key := newKey(t)
	iss := NewIssuer(keyStore{alice: key})
	iss.now = func() time.Time { return time.Unix(1795332184, 0) }
	token, err := iss.Token(context.Background(), alice, svc, "app.bsky.feed.getTimeline")
	if err != nil {
		t.Fatal(err)
	}
	h, p := parts(t, token)
	if want := `{"typ":"JWT","alg":"ES256K"}`; h != want {
		t.Errorf("header %s, want %s", h, want)
	}
	var c Claims
	json.Unmarshal([]byte(p), &c)
	want := `{"iat":1795332184,"iss":"` + alice + `","aud":"` + svc + `","exp":1795332244,"lxm":"app.bsky.feed.getTimeline","jti":"` + c.ID + `"}`
	if p != want {
		t.Errorf("payload\n%s, want\n%s", p, want)
	}
	if b, err := hex.DecodeString(c.ID); err != nil || len(b) != 16 {
		t.Errorf("jti %q is not 16 bytes in hex", c.ID)
	}

	// A method-less token has no lxm at all.
	token, _ = iss.Token(context.Background(), alice, svc, "")
	if _, p := parts(t, token); strings.Contains(p, "lxm") {
		t.Errorf("method-less payload %s has lxm", p)
	}

	// indigo's validator, with a fresh token (its clock is the real one).
	iss.now = time.Now
	token, _ = iss.Token(context.Background(), alice, svc, "app.bsky.feed.getTimeline")
	dir := identity.NewMockDirectory()
	dir.Insert(identity.Identity{DID: alice, Handle: "alice.test", Keys: map[string]identity.VerificationMethod{
		"atproto": {Type: "Multikey", PublicKeyMultibase: pub(t, key).Multibase()},
	}})
	v := auth.ServiceAuthValidator{Audience: svc, Dir: dir}
	lxm := syntax.NSID("app.bsky.feed.getTimeline")
	did, err := v.Validate(context.Background(), token, &lxm)
	if err != nil || did != alice {
		t.Fatalf("indigo validator: %v, %v", did, err)
	}
}

func TestVerify(t *testing.T) {
	key, other := newKey(t), newKey(t)
	d := &docs{keys: map[string]atcrypto.PublicKey{alice: pub(t, key)}}
	now := time.Unix(1795332184, 0)
	v := NewVerifier(svc, d)
	v.now = func() time.Time { return now }
	mint := func(k atcrypto.PrivateKey, c Claims) string {
		if c.Issuer == "" {
			c.Issuer = alice
		}
		if c.Audience == "" {
			c.Audience = svc
		}
		if c.ExpiresAt == 0 {
			c.ExpiresAt = now.Unix() + 60
		}
		c.IssuedAt = now.Unix()
		tok, err := Sign(k, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	custom := func(header, payload string) string {
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(header)) + "." + enc([]byte(payload)) + ".c2ln"
	}
	good := mint(key, Claims{Method: "com.example.get"})
	tests := []struct {
		name  string
		token string
		lxm   string
		want  string // error name, "" for success
	}{
		{"valid", good, "com.example.get", ""},
		{"method not checked", good, "", ""},
		{"two parts", "a.b", "", "BadJwt"},
		{"header not JSON", "bm9wZQ.e30.c2ln", "", "BadJwt"},
		{"header without alg", custom(`{"typ":"JWT"}`, `{}`), "", "BadJwt"},
		{"access token type", custom(`{"typ":"at+jwt","alg":"ES256K"}`, `{}`), "", "BadJwtType"},
		{"dpop type", custom(`{"typ":"dpop+jwt","alg":"ES256K"}`, `{}`), "", "BadJwtType"},
		{"aud as array", custom(`{"alg":"ES256K"}`, `{"iss":"`+alice+`","aud":["`+svc+`"],"exp":1795332244}`), "", "BadJwt"},
		{"lxm not a string", custom(`{"alg":"ES256K"}`, `{"iss":"`+alice+`","aud":"`+svc+`","exp":1795332244,"lxm":5}`), "", "BadJwt"},
		{"expired", mint(key, Claims{ExpiresAt: now.Unix() - 1}), "", "JwtExpired"},
		{"other audience", mint(key, Claims{Audience: "did:plc:someoneelseentirelyxyz"}), "", "BadJwtAudience"},
		{"other method", good, "com.example.other", "BadJwtLexiconMethod"},
		{"no method", mint(key, Claims{}), "com.example.get", "BadJwtLexiconMethod"},
		{"issuer not a DID", mint(key, Claims{Issuer: "alice"}), "", "BadJwtIss"},
		{"issuer with two fragments", mint(key, Claims{Issuer: alice + "#a#b"}), "", "BadJwtIss"},
		{"signed by another key", mint(other, Claims{}), "", "BadJwtSignature"},
		{"bad signature encoding", good[:strings.LastIndexByte(good, '.')+1] + "!!", "", "BadJwtSignature"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.token, tt.lxm)
			if tt.want == "" {
				if err != nil || c.Issuer != alice {
					t.Fatalf("Verify: %v, %v", c, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || e.Name != tt.want || e.Status != 401 {
				t.Fatalf("Verify: %v, want %s", err, tt.want)
			}
		})
	}

	// A service issuing as did#fragment is looked up by its DID.
	if _, err := v.Verify(context.Background(), mint(key, Claims{Issuer: alice + "#atproto_labeler"}), ""); err != nil {
		t.Errorf("issuer with a fragment: %v", err)
	}

	// A key rotated since the document was cached: one fresh lookup.
	d.fresh = map[string]atcrypto.PublicKey{alice: pub(t, other)}
	before := d.refreshes
	if _, err := v.Verify(context.Background(), mint(other, Claims{}), ""); err != nil {
		t.Errorf("after rotation: %v", err)
	}
	if d.refreshes != before+1 {
		t.Errorf("%d refreshes, want 1", d.refreshes-before)
	}

	// An issuer nobody knows is not a token error.
	_, err := v.Verify(context.Background(), mint(key, Claims{Issuer: "did:plc:nobodynobodynobodynobody"}), "")
	if !errors.Is(err, diddoc.ErrNotFound) {
		t.Errorf("unknown issuer: %v, want ErrNotFound", err)
	}
}

// TestVerifyP256 checks ES256 tokens of P-256 keys.
func TestVerifyP256(t *testing.T) {
	key, err := atcrypto.GeneratePrivateKeyP256()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Sign(key, Claims{Issuer: alice, Audience: svc, ExpiresAt: time.Now().Unix() + 60})
	if err != nil {
		t.Fatal(err)
	}
	if h, _ := parts(t, tok); h != `{"typ":"JWT","alg":"ES256"}` {
		t.Errorf("header %s", h)
	}
	v := NewVerifier(svc, &docs{keys: map[string]atcrypto.PublicKey{alice: pub(t, key)}})
	if _, err := v.Verify(context.Background(), tok, ""); err != nil {
		t.Error(err)
	}
}

func TestGetServiceAuth(t *testing.T) {
	now := time.Unix(1795332184, 0)
	iss := NewIssuer(keyStore{alice: newKey(t)})
	iss.now = func() time.Time { return now }
	at := func(d time.Duration) int64 { return now.Add(d).Unix() }
	full := Caller{DID: alice, Privileged: true}
	appPassword := Caller{DID: alice}
	tests := []struct {
		name    string
		caller  Caller
		req     Request
		want    string // error message, "" for success
		wantExp int64
	}{
		{"default expiry", full, Request{Audience: svc}, "", at(time.Minute)},
		{"with a method", appPassword, Request{Audience: svc, Method: "app.bsky.feed.getTimeline"}, "", at(time.Minute)},
		{"an hour with a method", full, Request{Audience: svc, Method: "app.bsky.feed.getTimeline", Expiry: at(time.Hour), HasExpiry: true}, "", at(time.Hour)},
		{"a minute without a method", full, Request{Audience: svc, Expiry: at(time.Minute), HasExpiry: true}, "", at(time.Minute)},
		// The official PDS signs exp 0 as asked.
		{"exp 0", full, Request{Audience: svc, Expiry: 0, HasExpiry: true}, "", 0},
		{"in the past", full, Request{Audience: svc, Expiry: at(-time.Second), HasExpiry: true}, "expiration is in past", 0},
		{"over an hour", full, Request{Audience: svc, Method: "app.bsky.feed.getTimeline", Expiry: at(time.Hour + time.Second), HasExpiry: true}, "cannot request a token with an expiration more than an hour in the future", 0},
		{"method-less over a minute", full, Request{Audience: svc, Expiry: at(2 * time.Minute), HasExpiry: true}, "cannot request a method-less token with an expiration more than a minute in the future", 0},
		{"protected", full, Request{Audience: svc, Method: "com.atproto.server.getSession"}, "cannot request a service auth token for the following protected method: com.atproto.server.getSession", 0},
		{"protected in other case", full, Request{Audience: svc, Method: "com.atproto.server.GetSession"}, "cannot request a service auth token for the following protected method: com.atproto.server.GetSession", 0},
		{"privileged with an app password", appPassword, Request{Audience: svc, Method: "chat.bsky.convo.sendMessage", Expiry: at(-time.Second), HasExpiry: true}, "insufficient access to request a service auth token for the following method: chat.bsky.convo.sendMessage", 0},
		{"privileged with a full session", full, Request{Audience: svc, Method: "chat.bsky.convo.sendMessage"}, "", at(time.Minute)},
		{"taken down", Caller{DID: alice, Takendown: true}, Request{Audience: svc, Method: "app.bsky.feed.getTimeline"}, "Bad token scope", 0},
		{"taken down, for migration", Caller{DID: alice, Takendown: true, Privileged: true}, Request{Audience: svc, Method: "com.atproto.server.createAccount"}, "", at(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := iss.GetServiceAuth(context.Background(), tt.caller, tt.req)
			if tt.want != "" {
				var e *Error
				if !errors.As(err, &e) || e.Message != tt.want || e.Status != 400 {
					t.Fatalf("got %v, want %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			_, p := parts(t, tok)
			var c Claims
			json.Unmarshal([]byte(p), &c)
			if c.ExpiresAt != tt.wantExp || c.Audience != tt.req.Audience || c.Method != tt.req.Method || c.Issuer != alice {
				t.Errorf("claims %+v", c)
			}
		})
	}
}

func TestMethodLists(t *testing.T) {
	for _, m := range []string{"com.atproto.server.getSession", "COM.ATPROTO.SERVER.GETSESSION", "com.atproto.admin.sendEmail"} {
		if !Protected(m) {
			t.Errorf("%s not protected", m)
		}
	}
	for _, m := range []string{"chat.bsky.convo.listConvos", "com.atproto.server.createAccount", "Chat.Bsky.Convo.SendMessage"} {
		if !Privileged(m) {
			t.Errorf("%s not privileged", m)
		}
	}
	for _, m := range []string{"app.bsky.feed.getTimeline", "chat.bsky.convo.addReaction", ""} {
		if Protected(m) || Privileged(m) {
			t.Errorf("%s listed", m)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tt := range []struct {
		query string
		want  Request
		err   string
	}{
		{"aud=" + svc, Request{Audience: svc}, ""},
		{"aud=" + svc + "&lxm=app.bsky.feed.getTimeline&exp=1795332244", Request{Audience: svc, Method: "app.bsky.feed.getTimeline", Expiry: 1795332244, HasExpiry: true}, ""},
		{"aud=" + svc + "&exp=0", Request{Audience: svc, HasExpiry: true}, ""},
		{"aud=did:web:api.bsky.app", Request{Audience: "did:web:api.bsky.app"}, ""},
		{"", Request{}, `Params must have the property "aud"`},
		{"aud=", Request{}, `Params must have the property "aud"`},
		{"aud=foo", Request{}, `Invalid DID (got "foo") at $.aud`},
		{"aud=" + svc + "%23bsky_chat", Request{}, `Invalid DID (got "` + svc + `#bsky_chat") at $.aud`},
		{"aud=" + svc + "&aud=" + svc, Request{}, "Expected a single value at $.aud"},
		{"aud=" + svc + "&exp=1.5", Request{}, `Expected integer value type (got "1.5") at $.exp`},
		{"aud=" + svc + "&lxm=nope", Request{}, `Invalid NSID (got "nope") at $.lxm`},
	} {
		q, _ := url.ParseQuery(tt.query)
		got, err := ParseRequest(q)
		if tt.err != "" {
			var e *Error
			if !errors.As(err, &e) || e.Message != tt.err || e.Status != 400 {
				t.Errorf("%q: %v, want %q", tt.query, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q: %+v %v, want %+v", tt.query, got, err, tt.want)
		}
	}
}
