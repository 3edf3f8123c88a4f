package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	indigorepo "github.com/bluesky-social/indigo/atproto/repo"

	"github.com/hearth-pds/hearth/testenv"
)

// TestApplyWritesSamePath: one path named more than once in one
// applyWrites is accepted as the official PDS accepts it (each write
// checked against the path as the writes before it left it): 200, one
// commit, one result per write, and the repository ends as the last
// write left the path. The #commit carries the net change per path and
// passes indigo's VerifyCommitMessage.
func TestApplyWritesSamePath(t *testing.T) {
	h := testenv.StartHearth(t, testenv.StartEmbeddedPLC(t))
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}
	c.signUp("alice.test", "alice@example.com", "alice-password", c.invite(1))
	alice := c.login("alice.test", "alice-password")
	auth := merge(bearer(alice.AccessJwt), ctype("application/json"))
	c.mustPostJSON("com.atproto.repo.createRecord", auth, `{"repo":"`+alice.DID+`","collection":"com.example.thing","rkey":"old","record":{"a":0}}`, nil)

	const (
		create = `{"$type":"com.atproto.repo.applyWrites#create","collection":"com.example.thing","rkey":"`
		update = `{"$type":"com.atproto.repo.applyWrites#update","collection":"com.example.thing","rkey":"`
		del    = `{"$type":"com.atproto.repo.applyWrites#delete","collection":"com.example.thing","rkey":"`
	)
	tests := []struct {
		name    string
		writes  string
		results []string // result $type suffixes
		ops     []string // the #commit's ops, "action path"
		rkey    string   // the path checked afterwards
		want    string   // its value of "a", "" when absent
	}{
		{"create then delete", create + `cd","value":{"a":1}},` + del + `cd"}`,
			[]string{"createResult", "deleteResult"}, nil, "cd", ""},
		{"create then update", create + `cu","value":{"a":1}},` + update + `cu","value":{"a":2}}`,
			[]string{"createResult", "updateResult"}, []string{"create com.example.thing/cu"}, "cu", "2"},
		{"update then update", update + `old","value":{"a":1}},` + update + `old","value":{"a":2}}`,
			[]string{"updateResult", "updateResult"}, []string{"update com.example.thing/old"}, "old", "2"},
		{"delete then create", del + `old"},` + create + `old","value":{"a":3}}`,
			[]string{"deleteResult", "createResult"}, []string{"update com.example.thing/old"}, "old", "3"},
		{"update then delete", update + `old","value":{"a":4}},` + del + `old"}`,
			[]string{"updateResult", "deleteResult"}, []string{"delete com.example.thing/old"}, "old", ""},
		{"create, delete and another create", create + `x","value":{"a":1}},` + del + `x"},` + create + `y","value":{"a":5}}`,
			[]string{"createResult", "deleteResult", "createResult"}, []string{"create com.example.thing/y"}, "x", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := getLatestCommit(t, h.URL, alice.DID)
			var out struct {
				Commit  latestCommit
				Results []struct {
					Type string `json:"$type"`
					URI  string `json:"uri"`
					CID  string `json:"cid"`
				}
			}
			c.mustPostJSON("com.atproto.repo.applyWrites", auth, `{"repo":"`+alice.DID+`","writes":[`+tt.writes+`]}`, &out)
			if out.Commit.CID == "" || out.Commit.Rev <= before.Rev {
				t.Errorf("commit %+v after %+v, want a new one", out.Commit, before)
			}
			if got := getLatestCommit(t, h.URL, alice.DID); got != out.Commit {
				t.Errorf("head %+v, answered commit %+v", got, out.Commit)
			}
			var types []string
			for _, r := range out.Results {
				types = append(types, strings.TrimPrefix(r.Type, "com.atproto.repo.applyWrites#"))
				if (r.Type == "com.atproto.repo.applyWrites#deleteResult") != (r.URI == "" && r.CID == "") {
					t.Errorf("result %+v: a delete has no uri and cid, the others have both", r)
				}
			}
			if got, want := strings.Join(types, ","), strings.Join(tt.results, ","); got != want {
				t.Errorf("results %s, want %s", got, want)
			}

			status, body := c.raw(http.MethodGet, "com.atproto.repo.getRecord?repo="+alice.DID+"&collection=com.example.thing&rkey="+tt.rkey, nil, "")
			switch {
			case tt.want == "" && status != http.StatusBadRequest:
				t.Errorf("getRecord %s: %d %s, want RecordNotFound", tt.rkey, status, body)
			case tt.want != "" && (status != http.StatusOK || !strings.Contains(string(body), `"a":`+tt.want)):
				t.Errorf("getRecord %s: %d %s, want a=%s", tt.rkey, status, body, tt.want)
			}

			zero := int64(0)
			f := subscribeFirehose(t, h.URL, &zero)
			evs := f.until(t, 30*time.Second, isCommit(out.Commit.CID))
			f.conn.Close()
			ev := evs[len(evs)-1].Commit
			var ops []string
			for _, op := range ev.Ops {
				ops = append(ops, op.Action+" "+op.Path)
			}
			if got, want := strings.Join(ops, ","), strings.Join(tt.ops, ","); got != want {
				t.Errorf("#commit ops %q, want %q", got, want)
			}
			if _, err := indigorepo.VerifyCommitMessage(context.Background(), ev); err != nil {
				t.Errorf("indigo VerifyCommitMessage: %v", err)
			}
		})
	}
}
