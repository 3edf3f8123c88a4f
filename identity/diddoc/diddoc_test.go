package diddoc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

const did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"

func docJSON(id, endpoint string) string {
	return `{"@context":["https://www.w3.org/ns/did/v1"],"id":"` + id + `","alsoKnownAs":["at://a.test"],` +
		`"verificationMethod":[{"id":"` + id + `#atproto","type":"Multikey","controller":"` + id + `","publicKeyMultibase":"zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"}],` +
		`"service":[{"id":"#atproto_pds","type":"AtprotoPersonalDataServer","serviceEndpoint":"` + endpoint + `"}]}`
}

func TestServiceEndpoint(t *testing.T) {
	raw := `{"id":"` + did + `","service":[
		{"id":"#bsky_appview","type":"BskyAppView","serviceEndpoint":"https://api.example.com/some/path"},
		{"id":"` + did + `#bsky_chat","type":"BskyChatService","serviceEndpoint":"http://chat.example.com"},
		{"id":"#obj","type":"X","serviceEndpoint":{"uri":"https://x.example.com"}},
		{"id":"#ftp","type":"X","serviceEndpoint":"ftp://x.example.com"},
		{"id":"did:plc:someoneelse#other","type":"X","serviceEndpoint":"https://other.example.com"}]}`
	doc, err := Parse(did, []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]string{
		"#bsky_appview": "https://api.example.com/some/path",
		"#bsky_chat":    "http://chat.example.com",
		"#obj":          "", // not a string
		"#ftp":          "", // not http(s)
		"#other":        "", // another DID's service
		"#missing":      "",
		"bsky_appview":  "", // the fragment is asked with its '#'
	} {
		if got := doc.ServiceEndpoint(id); got != want {
			t.Errorf("ServiceEndpoint(%q) = %q, want %q", id, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for name, raw := range map[string]string{
		"other id":        docJSON("did:plc:someoneelse", "https://pds.example.com"),
		"not json":        `{`,
		"array":           `[]`,
		"service without": `{"id":"` + did + `","service":[{"id":"#x"}]}`,
		"method without":  `{"id":"` + did + `","verificationMethod":[{"id":"#x"}]}`,
		"id not a string": `{"id":5}`,
	} {
		if _, err := Parse(did, []byte(raw)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v, want ErrMalformed", name, err)
		}
	}
}

func TestSigningKey(t *testing.T) {
	k, _ := atcrypto.GeneratePrivateKeyK256()
	pub, _ := k.PublicKey()
	// The reference PLC directory still serves the older encoding: the
	// uncompressed key under EcdsaSecp256k1VerificationKey2019.
	legacy := "z" + b58(pub.UncompressedBytes())
	for name, vm := range map[string]string{
		"multikey":     `{"id":"#atproto","type":"Multikey","controller":"` + did + `","publicKeyMultibase":"` + pub.Multibase() + `"}`,
		"legacy k256":  `{"id":"` + did + `#atproto","type":"EcdsaSecp256k1VerificationKey2019","controller":"` + did + `","publicKeyMultibase":"` + legacy + `"}`,
		"key with did": `{"id":"` + did + `#atproto","type":"Multikey","controller":"` + did + `","publicKeyMultibase":"` + pub.Multibase() + `"}`,
	} {
		doc, err := Parse(did, []byte(`{"id":"`+did+`","verificationMethod":[`+vm+`]}`))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := doc.SigningKey()
		if err != nil || !got.Equal(pub) {
			t.Errorf("%s: %v, %v", name, got, err)
		}
	}
	doc, _ := Parse(did, []byte(`{"id":"`+did+`"}`))
	if _, err := doc.SigningKey(); !errors.Is(err, ErrNoSigningKey) {
		t.Errorf("no key: %v", err)
	}
}

// plcServer is a PLC directory serving one document, counting fetches.
type plcServer struct {
	*httptest.Server
	mu       sync.Mutex
	body     string
	status   int
	fetches  atomic.Int32
	released chan struct{} // when set, requests wait for it
}

func newPLC(t *testing.T) *plcServer {
	p := &plcServer{body: docJSON(did, "https://pds.example.com"), status: 200}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		body, status, wait := p.body, p.status, p.released
		p.mu.Unlock()
		if wait != nil {
			<-wait
		}
		if r.URL.Path != "/"+did {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *plcServer) set(status int, body string) {
	p.mu.Lock()
	p.status, p.body = status, body
	p.mu.Unlock()
}

func TestResolverCache(t *testing.T) {
	plc := newPLC(t)
	r := New(Config{PLCURL: plc.URL, StaleTTL: time.Hour, MaxTTL: 24 * time.Hour, Timeout: time.Second})
	clock := time.Unix(1795332184, 0)
	var mu sync.Mutex
	r.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	ctx := context.Background()

	doc, err := r.Resolve(ctx, did)
	if err != nil || doc.ServiceEndpoint("#atproto_pds") != "https://pds.example.com" {
		t.Fatalf("Resolve: %v, %v", doc, err)
	}
	r.Resolve(ctx, did)
	if n := plc.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for two resolutions, want 1", n)
	}

	// Stale: the cached document answers, a refresh runs behind it.
	plc.set(200, docJSON(did, "https://moved.example.com"))
	advance(2 * time.Hour)
	doc, _ = r.Resolve(ctx, did)
	if got := doc.ServiceEndpoint("#atproto_pds"); got != "https://pds.example.com" {
		t.Errorf("stale entry answered %q, want the cached document", got)
	}
	waitFor(t, func() bool {
		d, _ := r.Resolve(ctx, did)
		return d.ServiceEndpoint("#atproto_pds") == "https://moved.example.com"
	})

	// Expired: fetched again before answering.
	plc.set(200, docJSON(did, "https://third.example.com"))
	advance(25 * time.Hour)
	doc, _ = r.Resolve(ctx, did)
	if got := doc.ServiceEndpoint("#atproto_pds"); got != "https://third.example.com" {
		t.Errorf("expired entry answered %q, want a fresh document", got)
	}

	// Gone from the directory: not found, and no longer cached.
	plc.set(404, `{"message":"DID not registered"}`)
	if _, err := r.Refresh(ctx, did); !errors.Is(err, ErrNotFound) {
		t.Errorf("404: %v, want ErrNotFound", err)
	}
	plc.set(200, docJSON(did, "https://back.example.com"))
	before := plc.fetches.Load()
	r.Resolve(ctx, did)
	if plc.fetches.Load() != before+1 {
		t.Error("a DID found missing was answered from the cache")
	}

	// A failing directory is an error, not "not found".
	plc.set(502, `bad gateway`)
	if _, err := r.Refresh(ctx, did); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("502: %v, want a plain error", err)
	}
	plc.set(200, docJSON("did:plc:someoneelse", "https://x.example.com"))
	if _, err := r.Refresh(ctx, did); !errors.Is(err, ErrMalformed) {
		t.Errorf("document of another DID: %v, want ErrMalformed", err)
	}
}

// TestResolverSharesFetches: concurrent misses make one request.
func TestResolverSharesFetches(t *testing.T) {
	plc := newPLC(t)
	plc.released = make(chan struct{})
	r := New(Config{PLCURL: plc.URL, Timeout: 5 * time.Second})
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := r.Resolve(context.Background(), did); err != nil {
				t.Error(err)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)
	close(plc.released)
	wg.Wait()
	if n := plc.fetches.Load(); n != 1 {
		t.Errorf("%d fetches for 20 concurrent resolutions, want 1", n)
	}
}

func TestResolverBounds(t *testing.T) {
	r := New(Config{PLCURL: "http://127.0.0.1:1", MaxEntries: 2})
	for i, d := range []string{"did:plc:a", "did:plc:b", "did:plc:c"} {
		r.mu.Lock()
		r.store(d, &Document{ID: d})
		r.mu.Unlock()
		if want := min(i+1, 2); len(r.docs) != want {
			t.Errorf("after %d documents the cache holds %d, want %d", i+1, len(r.docs), want)
		}
	}
}

func TestDIDWeb(t *testing.T) {
	var host string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/did.json" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(docJSON("did:web:"+host, "https://pds.example.com")))
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	host = "localhost%3A" + port
	web := "did:web:" + host

	// did:web:localhost is fetched over http, as the official resolver does.
	r := New(Config{AllowPrivate: true, Timeout: 2 * time.Second})
	if _, err := r.Resolve(context.Background(), web); err != nil {
		t.Fatalf("did:web on localhost: %v", err)
	}
	// Loopback is refused unless private addresses are allowed.
	r = New(Config{Timeout: 2 * time.Second})
	if _, err := r.Resolve(context.Background(), web); err == nil {
		t.Error("did:web on loopback resolved with the guard on")
	}
	for _, bad := range []string{"did:web:", "did:web:a:b", "did:key:zQ3sh", "did:web:a%2Fb"} {
		if _, err := r.Resolve(context.Background(), bad); err == nil {
			t.Errorf("%s resolved", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(docJSON(did, "https://pds.example.com")))
	f.Add([]byte(`{"id":"` + did + `","service":[{"id":"#x","type":"t","serviceEndpoint":{}}]}`))
	f.Add([]byte(`{"id":"` + did + `","verificationMethod":[{"id":"#atproto","type":"Multikey","controller":"c","publicKeyMultibase":"zz"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		doc, err := Parse(did, raw)
		if err != nil {
			return
		}
		doc.ServiceEndpoint("#x")
		doc.ServiceEndpoint("#atproto_pds")
		doc.SigningKey()
	})
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// b58 is base58btc, for the legacy key encoding in a test document.
func b58(b []byte) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	digits := []byte{0}
	for _, c := range b {
		carry := int(c)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	var out []byte
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i := len(digits) - 1; i >= 0; i-- {
		if i == len(digits)-1 && digits[i] == 0 && len(digits) > 1 {
			continue
		}
		out = append(out, alphabet[digits[i]])
	}
	return string(out)
}
