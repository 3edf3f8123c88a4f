package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/testenv"
)

// TestRecordsWithOfficialClient: @atproto/api writes posts, likes, follows
// and a profile, edits and deletes some, and reads them back; @atproto/repo
// verifies the repository Hearth serves against the signing key in the
// reference PLC directory (test/peers/records.mjs). Then indigo checks the
// same repository, the record proofs and the other sync answers on its
// own.
func TestRecordsWithOfficialClient(t *testing.T) {
	plcURL := testenv.StartReferencePLC(t)
	h := testenv.StartHearth(t, plcURL)

	out := testenv.RunNode(t, "records.mjs", 2*time.Minute,
		"PDS_URL="+h.URL, "PLC_URL="+plcURL, "ADMIN_PASSWORD="+h.AdminPassword)
	var got struct {
		DID         string            `json:"did"`
		Handle      string            `json:"handle"`
		Bob         string            `json:"bob"`
		SigningKey  string            `json:"signingKey"`
		Commit      latestCommit      `json:"commit"`
		Records     map[string]string `json:"records"` // at:// URI → CID
		Deleted     []string          `json:"deleted"`
		Collections []string          `json:"collections"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("records.mjs output %q: %v", out, err)
	}
	if len(got.Records) < 15 || len(got.Deleted) < 4 {
		t.Fatalf("records.mjs left %d records and %d deletions; the script did less than it should", len(got.Records), len(got.Deleted))
	}
	key := plcSigningKey(t, plcURL, got.DID)
	if key.DIDKey() != got.SigningKey {
		t.Fatalf("@atproto/repo verified with %s, indigo resolved %s", got.SigningKey, key.DIDKey())
	}
	t.Logf("alice %s: %d records in %v, %d deleted, head %s", got.DID, len(got.Records), got.Collections, len(got.Deleted), got.Commit.CID)
	want := map[string]string{} // collection/rkey → CID
	for uri, c := range got.Records {
		want[strings.TrimPrefix(uri, "at://"+got.DID+"/")] = c
	}

	head := getLatestCommit(t, h.URL, got.DID)
	if head != got.Commit {
		t.Fatalf("getLatestCommit %+v, the script saw %+v; nothing should have written since", head, got.Commit)
	}

	// getRepo and its deprecated twin getCheckout: the same verified tree.
	var repoBlocks map[cid.Cid][]byte
	for _, nsid := range []string{"com.atproto.sync.getRepo", "com.atproto.sync.getCheckout"} {
		status, car, ctype := xrpcGet(t, h.URL, nsid, url.Values{"did": {got.DID}})
		if status != http.StatusOK || ctype != "application/vnd.ipld.car" {
			t.Fatalf("%s: %d %s %.200s", nsid, status, ctype, car)
		}
		v, err := verifyRepoCAR(car, got.DID, key)
		if err != nil {
			t.Fatalf("%s does not verify: %v", nsid, err)
		}
		if v.CommitCID.String() != head.CID || v.Commit.Rev != head.Rev {
			t.Errorf("%s at %s rev %s, latest commit %+v", nsid, v.CommitCID, v.Commit.Rev, head)
		}
		if !sameMap(v.Records, want) {
			t.Errorf("%s records differ from those read back:\n%s", nsid, mapDiff(v.Records, want))
		}
		repoBlocks = v.Blocks
	}

	// getHead, the older name for the head.
	var gh struct{ Root string }
	json.Unmarshal(mustXRPCGet(t, h.URL, "com.atproto.sync.getHead", url.Values{"did": {got.DID}}), &gh)
	if gh.Root != head.CID {
		t.Errorf("getHead root %s, want %s", gh.Root, head.CID)
	}

	// sync.getRecord: a signed proof of every live record.
	for path, c := range want {
		collection, rkey, _ := strings.Cut(path, "/")
		status, car, ctype := xrpcGet(t, h.URL, "com.atproto.sync.getRecord", url.Values{"did": {got.DID}, "collection": {collection}, "rkey": {rkey}})
		if status != http.StatusOK || ctype != "application/vnd.ipld.car" {
			t.Errorf("sync.getRecord %s: %d %s %.200s", path, status, ctype, car)
			continue
		}
		if err := verifyRecordProof(car, got.DID, key, head.CID, path, c); err != nil {
			t.Errorf("sync.getRecord %s: %v", path, err)
		}
	}
	// A deleted record gets a signed proof of its absence, as the official
	// PDS answers.
	for _, uri := range got.Deleted {
		parts := strings.Split(uri, "/")
		status, car, _ := xrpcGet(t, h.URL, "com.atproto.sync.getRecord", url.Values{"did": {got.DID}, "collection": {parts[3]}, "rkey": {parts[4]}})
		if status != http.StatusOK {
			t.Errorf("sync.getRecord of deleted %s: %d %.200s, want 200 and a proof of absence", uri, status, car)
			continue
		}
		if err := verifyRecordProof(car, got.DID, key, head.CID, parts[3]+"/"+parts[4], ""); err != nil {
			t.Errorf("sync.getRecord of deleted %s: %v", uri, err)
		}
	}

	// getBlocks: the commit and some records, each exactly as in the repo.
	asked := []string{head.CID}
	for _, c := range want {
		if len(asked) == 5 {
			break
		}
		asked = append(asked, c)
	}
	status, car, ctype := xrpcGet(t, h.URL, "com.atproto.sync.getBlocks", url.Values{"did": {got.DID}, "cids": asked})
	if status != http.StatusOK || ctype != "application/vnd.ipld.car" {
		t.Fatalf("getBlocks: %d %s %.200s", status, ctype, car)
	}
	_, blocks, err := readCARBlocks(car)
	if err != nil {
		t.Fatalf("getBlocks CAR: %v", err)
	}
	if len(blocks) != len(asked) {
		t.Errorf("getBlocks returned %d blocks for %d CIDs", len(blocks), len(asked))
	}
	for _, s := range asked {
		c, _ := cid.Decode(s)
		if string(blocks[c]) != string(repoBlocks[c]) || blocks[c] == nil {
			t.Errorf("getBlocks %s: not the repository's block", s)
		}
	}

	// getRepoStatus and listRepos agree with the head.
	var st struct {
		DID    string `json:"did"`
		Active bool   `json:"active"`
		Rev    string `json:"rev"`
		Status string `json:"status"`
	}
	json.Unmarshal(mustXRPCGet(t, h.URL, "com.atproto.sync.getRepoStatus", url.Values{"did": {got.DID}}), &st)
	if st.DID != got.DID || !st.Active || st.Rev != head.Rev || st.Status != "" {
		t.Errorf("getRepoStatus %+v, want active at rev %s", st, head.Rev)
	}
	type listed struct {
		DID    string `json:"did"`
		Head   string `json:"head"`
		Rev    string `json:"rev"`
		Active bool   `json:"active"`
	}
	var all []listed
	cursor := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatalf("listRepos: more pages than accounts")
		}
		q := url.Values{"limit": {"1"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var lr struct {
			Repos  []listed `json:"repos"`
			Cursor string   `json:"cursor"`
		}
		json.Unmarshal(mustXRPCGet(t, h.URL, "com.atproto.sync.listRepos", q), &lr)
		if len(lr.Repos) > 1 {
			t.Fatalf("listRepos limit=1 returned %d repos", len(lr.Repos))
		}
		all = append(all, lr.Repos...)
		if lr.Cursor == "" {
			break
		}
		cursor = lr.Cursor
	}
	if len(all) != 2 {
		t.Fatalf("listRepos paged through %d repos, want alice and bob: %+v", len(all), all)
	}
	if !sort.SliceIsSorted(all, func(i, j int) bool { return all[i].DID < all[j].DID }) {
		t.Errorf("listRepos not in DID order: %+v", all)
	}
	for _, r := range all {
		lc := getLatestCommit(t, h.URL, r.DID)
		if r.Head != lc.CID || r.Rev != lc.Rev || !r.Active {
			t.Errorf("listRepos %+v, latest commit %+v", r, lc)
		}
		if r.DID != got.DID && r.DID != got.Bob {
			t.Errorf("listRepos names %s, not an account of this test", r.DID)
		}
	}

	// Bob's repository verifies with bob's key, and not with alice's.
	bobKey := plcSigningKey(t, plcURL, got.Bob)
	bobCAR := mustXRPCGet(t, h.URL, "com.atproto.sync.getRepo", url.Values{"did": {got.Bob}})
	if _, err := verifyRepoCAR(bobCAR, got.Bob, bobKey); err != nil {
		t.Errorf("bob's repo: %v", err)
	}
	if _, err := verifyRepoCAR(bobCAR, got.Bob, key); err == nil {
		t.Errorf("bob's repo verified with alice's key: the check proves nothing")
	}
}

func sameMap(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// mapDiff lists the keys whose values differ, for failure messages.
func mapDiff(got, want map[string]string) string {
	var b strings.Builder
	for k, v := range got {
		if want[k] != v {
			b.WriteString("  " + k + ": got " + v + ", want " + want[k] + "\n")
		}
	}
	for k, v := range want {
		if _, ok := got[k]; !ok {
			b.WriteString("  " + k + ": missing, want " + v + "\n")
		}
	}
	return b.String()
}
