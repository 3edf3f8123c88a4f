package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/hearth-pds/hearth/testenv"
)

// TestPlainInstallValidates builds hearth as `go install` does, from the
// module's files alone, and proves the binary validates records against
// the official lexicons: a post whose text is a number is refused. The
// refusal is the official PDS's: 400 InvalidRequest "Invalid <collection>
// record: ..." (it turns its internal InvalidRecord error into
// InvalidRequest); a binary without schemas would answer 200 with
// validationStatus "unknown".
func TestPlainInstallValidates(t *testing.T) {
	bin := testenv.PlainInstall(t)
	h := testenv.StartHearthBinary(t, bin, testenv.StartEmbeddedPLC(t))
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}
	c.signUp("plain.test", "plain@example.com", "plain-password", c.invite(1))
	sess := c.login("plain.test", "plain-password")

	for _, tc := range []struct {
		name, record string
		status       int
		errName, msg string
	}{
		{"valid", `{"$type":"app.bsky.feed.post","text":"hello","createdAt":"2026-12-04T07:00:00.000Z"}`, http.StatusOK, "", ""},
		{"text is a number", `{"$type":"app.bsky.feed.post","text":12345,"createdAt":"2026-12-04T07:00:00.000Z"}`, http.StatusBadRequest, "InvalidRequest", "Invalid app.bsky.feed.post record: "},
	} {
		body := `{"repo":"` + sess.DID + `","collection":"app.bsky.feed.post","record":` + tc.record + `}`
		status, answer := c.raw("POST", "com.atproto.repo.createRecord", merge(bearer(sess.AccessJwt), ctype("application/json")), body)
		if status != tc.status {
			t.Errorf("%s: createRecord %d %s, want %d", tc.name, status, answer, tc.status)
			continue
		}
		if name, msg := xrpcErrorOf(answer); name != tc.errName || !strings.HasPrefix(msg, tc.msg) {
			t.Errorf("%s: error %q %q, want %q %q...", tc.name, name, msg, tc.errName, tc.msg)
		}
		if tc.status == http.StatusOK && !strings.Contains(string(answer), `"validationStatus":"valid"`) {
			t.Errorf("%s: createRecord %s, want validationStatus valid", tc.name, answer)
		}
	}
}
