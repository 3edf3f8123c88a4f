package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/hearth-pds/hearth/testenv"
)

// TestSessionsWithOfficialClient drives the built binary with @atproto/api,
// first against the reference PLC directory (@did-plc/server), then against
// our embedded one, and checks that the directory published what the
// account should be: our hostname as its PDS, its handle, and its signing
// key.
func TestSessionsWithOfficialClient(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) string
	}{
		{"ReferencePLC", testenv.StartReferencePLC},
		{"EmbeddedPLC", testenv.StartEmbeddedPLC},
	} {
		t.Run(tc.name, func(t *testing.T) { testSessions(t, tc.start(t)) })
	}
}

func testSessions(t *testing.T, plcURL string) {
	h := testenv.StartHearth(t, plcURL)

	out := testenv.RunNode(t, "session.mjs", 2*time.Minute,
		"PDS_URL="+h.URL, "ADMIN_PASSWORD="+h.AdminPassword)
	var got struct {
		DID         string `json:"did"`
		Handle      string `json:"handle"`
		Credentials struct {
			VerificationMethods map[string]string `json:"verificationMethods"`
			RotationKeys        []string          `json:"rotationKeys"`
		} `json:"credentials"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("session.mjs output %q: %v", out, err)
	}

	var data struct {
		RotationKeys        []string          `json:"rotationKeys"`
		VerificationMethods map[string]string `json:"verificationMethods"`
		AlsoKnownAs         []string          `json:"alsoKnownAs"`
		Services            map[string]struct {
			Type     string `json:"type"`
			Endpoint string `json:"endpoint"`
		} `json:"services"`
	}
	getJSON(t, plcURL+"/"+got.DID+"/data", &data)
	if want := []string{"at://" + got.Handle}; !equal(data.AlsoKnownAs, want) {
		t.Errorf("PLC alsoKnownAs = %v, want %v", data.AlsoKnownAs, want)
	}
	pds := data.Services["atproto_pds"]
	if pds.Type != "AtprotoPersonalDataServer" || pds.Endpoint != h.URL {
		t.Errorf("PLC atproto_pds = %+v, want endpoint %s", pds, h.URL)
	}
	if k := data.VerificationMethods["atproto"]; k == "" || k != got.Credentials.VerificationMethods["atproto"] {
		t.Errorf("PLC signing key %q, the PDS's %q", k, got.Credentials.VerificationMethods["atproto"])
	}
	if !equal(data.RotationKeys, got.Credentials.RotationKeys) {
		t.Errorf("PLC rotation keys %v, recommended %v", data.RotationKeys, got.Credentials.RotationKeys)
	}

	// The handle verifies over HTTPS well-known by Host header.
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.Addr+"/.well-known/atproto-did", nil)
	req.Host = got.Handle
	if body, status := do(t, req); status != http.StatusOK || body != got.DID {
		t.Errorf("well-known for %s: %d %q, want 200 %q", got.Handle, status, body, got.DID)
	}
	req, _ = http.NewRequest(http.MethodGet, "http://"+h.Addr+"/.well-known/atproto-did", nil)
	req.Host = "nobody.test"
	if _, status := do(t, req); status != http.StatusNotFound {
		t.Errorf("well-known for an unknown handle: %d, want 404", status)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	body, status := do(t, req)
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

func do(t *testing.T, req *http.Request) (string, int) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return string(b), resp.StatusCode
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
