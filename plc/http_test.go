package plc_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/did-method-plc/go-didplc/didplc"
)

type httpWorld struct {
	*world
	url string
}

func newHTTPWorld(t *testing.T) *httpWorld {
	w := newWorld(t)
	srv := httptest.NewServer(w.dir)
	t.Cleanup(srv.Close)
	return &httpWorld{world: w, url: srv.URL}
}

func (h *httpWorld) do(method, path, contentType string, body []byte) (int, http.Header, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

func (h *httpWorld) post(did string, body []byte) (int, []byte) {
	h.t.Helper()
	status, _, b := h.do(http.MethodPost, "/"+did, "application/json", body)
	return status, b
}

func (h *httpWorld) get(path string) (int, []byte) {
	h.t.Helper()
	status, _, b := h.do(http.MethodGet, path, "", nil)
	return status, b
}

func wantMessage(t *testing.T, body []byte, want string) {
	t.Helper()
	var got struct{ Message string }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if !strings.Contains(got.Message, want) {
		t.Errorf("message = %q, want it to contain %q", got.Message, want)
	}
}

func TestHTTPLifecycle(t *testing.T) {
	h := newHTTPWorld(t)
	g := genesisOp(keyDIDs(h.high, h.mid), h.signing, "alice.test")
	g.VerificationMethods["other"] = h.mid.did
	sign(t, g, h.mid)
	did := string(didOf(t, g))

	if status, body := h.get("/" + did); status != http.StatusNotFound {
		t.Errorf("GET unregistered = %d, want 404", status)
	} else {
		wantMessage(t, body, "DID not registered: "+did)
	}

	status, hdr, body := h.do(http.MethodPost, "/"+did, "application/json; charset=utf-8", opJSON(t, g))
	if status != http.StatusOK || string(body) != "OK" {
		t.Fatalf("POST genesis = %d %s, want 200 OK", status, body)
	}
	if got := hdr.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("Access-Control-Allow-Origin = %q, want *", got)
	}

	status, hdr, body = h.do(http.MethodGet, "/"+did, "", nil)
	if status != http.StatusOK {
		t.Fatalf("GET document = %d %s", status, body)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/did+ld+json") {
		t.Errorf("document Content-Type = %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"@context": []any{
			"https://www.w3.org/ns/did/v1",
			"https://w3id.org/security/multikey/v1",
			"https://w3id.org/security/suites/secp256k1-2019/v1",
			"https://w3id.org/security/suites/ecdsa-2019/v1",
		},
		"id":          did,
		"alsoKnownAs": []any{"at://alice.test"},
		"verificationMethod": []any{
			map[string]any{"id": did + "#atproto", "type": "Multikey", "controller": did, "publicKeyMultibase": strings.TrimPrefix(h.signing.did, "did:key:")},
			map[string]any{"id": did + "#other", "type": "Multikey", "controller": did, "publicKeyMultibase": strings.TrimPrefix(h.mid.did, "did:key:")},
		},
		"service": []any{
			map[string]any{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer", "serviceEndpoint": "https://pds.example.test"},
		},
	}
	if !reflect.DeepEqual(doc, want) {
		got, _ := json.MarshalIndent(doc, "", "  ")
		exp, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("document:\n%s\nwant:\n%s", got, exp)
	}

	status, body = h.get("/" + did + "/data")
	var data map[string]any
	json.Unmarshal(body, &data)
	wantData := map[string]any{
		"did":                 did,
		"verificationMethods": map[string]any{"atproto": h.signing.did, "other": h.mid.did},
		"rotationKeys":        []any{h.high.did, h.mid.did},
		"alsoKnownAs":         []any{"at://alice.test"},
		"services":            map[string]any{"atproto_pds": map[string]any{"type": "AtprotoPersonalDataServer", "endpoint": "https://pds.example.test"}},
	}
	if status != http.StatusOK || !reflect.DeepEqual(data, wantData) {
		t.Errorf("GET data = %d %s", status, body)
	}

	u := nextOp(g)
	u.AlsoKnownAs = []string{"at://bob.test"}
	sign(t, u, h.mid)
	if status, body := h.post(did, opJSON(t, u)); status != http.StatusOK {
		t.Fatalf("POST update = %d %s", status, body)
	}
	r := nextOp(g)
	sign(t, r, h.high)
	if status, body := h.post(did, opJSON(t, r)); status != http.StatusOK {
		t.Fatalf("POST recovery = %d %s", status, body)
	}

	// /log is the chain without the nullified update.
	status, body = h.get("/" + did + "/log")
	var log []didplc.OpEnum
	if err := json.Unmarshal(body, &log); status != http.StatusOK || err != nil {
		t.Fatalf("GET log = %d %s (%v)", status, body, err)
	}
	if len(log) != 2 || log[0].AsOperation().CID() != g.CID() || log[1].AsOperation().CID() != r.CID() {
		t.Errorf("log = %s, want genesis and recovery", body)
	}

	// /log/audit has all three, and verifies.
	status, body = h.get("/" + did + "/log/audit")
	var audit []didplc.LogEntry
	if err := json.Unmarshal(body, &audit); status != http.StatusOK || err != nil {
		t.Fatalf("GET audit = %d %s (%v)", status, body, err)
	}
	if len(audit) != 3 || !audit[1].Nullified || audit[2].Nullified {
		t.Errorf("audit log = %s, want the update nullified", body)
	}
	if err := didplc.VerifyOpLog(audit); err != nil {
		t.Errorf("served audit log does not verify: %v", err)
	}

	status, body = h.get("/" + did + "/log/last")
	var last didplc.OpEnum
	if err := json.Unmarshal(body, &last); status != http.StatusOK || err != nil || last.AsOperation().CID() != r.CID() {
		t.Errorf("GET log/last = %d %s, want the recovery", status, body)
	}

	// Tombstone: 410 for the document and data, logs still served.
	ts := tombstoneOp(r)
	sign(t, ts, h.mid)
	if status, body := h.post(did, opJSON(t, ts)); status != http.StatusOK {
		t.Fatalf("POST tombstone = %d %s", status, body)
	}
	for _, suffix := range []string{"", "/data"} {
		status, body := h.get("/" + did + suffix)
		if status != http.StatusGone {
			t.Errorf("GET %s of a tombstoned DID = %d, want 410", suffix, status)
		}
		wantMessage(t, body, "DID not available: "+did)
	}
	for _, suffix := range []string{"/log", "/log/audit", "/log/last"} {
		if status, _ := h.get("/" + did + suffix); status != http.StatusOK {
			t.Errorf("GET %s of a tombstoned DID = %d, want 200", suffix, status)
		}
	}

	// /export: everything, oldest first, in pages.
	status, hdr, body = h.do(http.MethodGet, "/export", "", nil)
	lines := strings.Split(string(body), "\n")
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/jsonlines" || len(lines) != 4 {
		t.Fatalf("GET export = %d %q %s", status, hdr.Get("Content-Type"), body)
	}
	var second didplc.LogEntry
	json.Unmarshal([]byte(lines[1]), &second)
	status, body = h.get("/export?count=1&after=" + second.CreatedAt)
	var third didplc.LogEntry
	if err := json.Unmarshal(body, &third); status != http.StatusOK || err != nil || third.CID != r.CID().String() {
		t.Errorf("GET export?count=1&after=<second> = %d %s, want the third operation", status, body)
	}
	if status, _ := h.get("/export?count=0"); status != http.StatusBadRequest {
		t.Errorf("GET export?count=0 = %d, want 400", status)
	}
}

func TestHTTPRefusals(t *testing.T) {
	h := newHTTPWorld(t)
	did, g := h.create()
	u := nextOp(g)
	sign(t, u, h.stranger)
	tests := []struct {
		name        string
		contentType string
		body        []byte
		status      int
		message     string
	}{
		{"bad signature", "application/json", opJSON(t, u), 400, "signature"},
		{"not JSON", "application/json", []byte(`{"type":`), 400, "invalid operation"},
		{"text/plain", "text/plain", opJSON(t, g), 400, "application/json"},
		{"no content type", "", opJSON(t, g), 400, "application/json"},
		{"unknown field", "application/json", []byte(`{"type":"plc_tombstone","prev":"x","sig":"y","z":1}`), 400, `unknown field "z"`},
		{"legacy create", "application/json", []byte(`{"type":"create","signingKey":"a","recoveryKey":"b","handle":"c","service":"d","prev":null,"sig":"e"}`), 400, "legacy"},
		{"too large", "application/json", []byte(`{"pad":"` + strings.Repeat("x", 101*1024) + `"}`), 413, "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, body := h.do(http.MethodPost, "/"+string(did), tt.contentType, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d %s, want %d", status, body, tt.status)
			}
			wantMessage(t, body, tt.message)
		})
	}
	if status, body := h.post("not-a-did", opJSON(t, g)); status != http.StatusBadRequest {
		t.Errorf("POST to a non-DID = %d %s, want 400", status, body)
	}
}

func TestHTTPMisc(t *testing.T) {
	h := newHTTPWorld(t)
	if status, body := h.get("/_health"); status != http.StatusOK || string(body) != `{"version":"hearth"}` {
		t.Errorf("GET /_health = %d %s", status, body)
	}
	if status, body := h.get("/a/b/c/d"); status != http.StatusNotFound {
		t.Errorf("GET unknown route = %d %s, want 404", status, body)
	} else {
		wantMessage(t, body, "Cannot GET")
	}
	if status, body := h.get("/not-a-did/log/audit"); status != http.StatusNotFound {
		t.Errorf("GET audit log of a non-DID = %d %s, want 404", status, body)
	}
	req, _ := http.NewRequest(http.MethodOptions, h.url+"/did:plc:abc", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Access-Control-Allow-Headers") != "content-type" {
		t.Errorf("preflight = %d %v", resp.StatusCode, resp.Header)
	}

	h.dir.Close()
	if status, _ := h.get("/_health"); status != http.StatusServiceUnavailable {
		t.Errorf("GET /_health after Close = %d, want 503", status)
	}
	if status, _ := h.get("/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"); status != http.StatusServiceUnavailable {
		t.Errorf("GET after Close = %d, want 503", status)
	}
}

// TestGoClient drives the directory with go-didplc's own HTTP client, as
// Hearth's identity code and tools such as goat do.
func TestGoClient(t *testing.T) {
	h := newHTTPWorld(t)
	c := &didplc.Client{DirectoryURL: h.url}
	ctx := t.Context()
	op := genesisOp(keyDIDs(h.high, h.low), h.signing, "carol.test")
	op.Services["atproto_pds"] = didplc.OpService{Type: "AtprotoPersonalDataServer", Endpoint: "http://localhost:2583"}
	sign(t, op, h.low)
	did, _ := op.DID()
	if err := c.Submit(ctx, did, op); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	doc, err := c.Resolve(ctx, did)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if doc.ID != did || len(doc.Service) != 1 || doc.Service[0].ServiceEndpoint != "http://localhost:2583" {
		t.Errorf("resolved %+v", doc)
	}
	log, err := c.AuditLog(ctx, did)
	if err != nil {
		t.Fatal(err)
	}
	if err := didplc.VerifyOpLog(log); err != nil {
		t.Errorf("audit log does not verify: %v", err)
	}
	if _, err := c.Resolve(ctx, "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"); err == nil {
		t.Error("Resolve of an unregistered DID succeeded")
	}
}
