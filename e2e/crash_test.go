package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/testenv"
)

// TestCrashSafety runs a write load from several goroutines across a few
// accounts, kills the server with SIGKILL in the middle of it, restarts it
// on the same data directory and port, and checks what a crash must not
// break: every acknowledged write is there with its CID; a write that was
// in flight happened entirely or not at all; every repository verifies
// (signature, complete canonical tree, exactly the expected records); and
// the firehose replayed from the start is gapless, carries every
// acknowledged commit, chains each repository's commits (since, prevData,
// sync v1.1 inversion) and ends at each repository's latest commit. Then
// the load resumes and the server is killed again, a few times.
func TestCrashSafety(t *testing.T) {
	const (
		accounts       = 4
		workersPerRepo = 2
		rounds         = 3
	)
	plcURL := testenv.StartEmbeddedPLC(t)
	h := testenv.StartHearth(t, plcURL, "LOG_LEVEL=warn")
	c := &client{t: t, base: h.URL, admin: h.AdminPassword}

	invite := c.invite(accounts)
	var repos []*crashRepo
	for i := range accounts {
		handle := fmt.Sprintf("crash%d.test", i)
		c.signUp(handle, fmt.Sprintf("crash%d@example.com", i), "crash-password", invite)
		s := c.login(handle, "crash-password")
		repos = append(repos, &crashRepo{did: s.DID, token: s.AccessJwt, key: plcSigningKey(t, plcURL, s.DID), model: map[string]string{}})
	}

	var workers []*crashWorker
	for i, r := range repos {
		for j := range workersPerRepo {
			id := i*workersPerRepo + j
			clock := syntax.NewTIDClock(uint(id + 1))
			workers = append(workers, &crashWorker{id: id, repo: r, base: h.URL, clock: clock, rng: rand.New(rand.NewPCG(uint64(id), 42)), own: map[string]string{}})
		}
	}

	for round := 1; round <= rounds; round++ {
		var killed atomic.Bool
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for _, w := range workers {
			w.acked, w.inDoubt, w.failure = nil, nil, nil
			wg.Go(func() { w.run(ctx, &killed) })
		}
		// Kill at a point that differs each round, once writes are flowing.
		time.Sleep(time.Duration(600+rand.IntN(900)) * time.Millisecond)
		killed.Store(true)
		h.Kill(t)
		cancel()
		wg.Wait()

		n, doubts := 0, 0
		for _, w := range workers {
			if w.failure != nil {
				t.Fatalf("round %d: worker %d: a write failed before the kill: %v", round, w.id, w.failure)
			}
			n += len(w.acked)
			if w.inDoubt != nil {
				doubts++
			}
		}
		if n < 20 {
			t.Fatalf("round %d: only %d writes acknowledged before the kill; the load did not run", round, n)
		}
		t.Logf("round %d: killed after %d acknowledged writes, %d in flight", round, n, doubts)

		h.Restart(t)
		checkAfterCrash(t, h.URL, repos, workers)
		if t.Failed() {
			return
		}
	}
}

// crashRepo is one account under load and what it must hold.
type crashRepo struct {
	did   string
	token string
	key   atcrypto.PublicKey
	// model is collection/rkey → CID of every record the repository must
	// hold, merged from its workers after each restart.
	model map[string]string
	// commits are the acknowledged commit CIDs since the test began.
	commits []string
}

// crashWrite is one acknowledged (or in-flight) request.
type crashWrite struct {
	creates   []string          // paths
	updates   map[string]string // path → CID before the update
	deletes   []string          // paths
	result    map[string]string // path → CID the server acknowledged
	commitCID string
	rev       string
}

type crashWorker struct {
	id    int
	repo  *crashRepo
	base  string
	clock *syntax.TIDClock
	rng   *rand.Rand
	// own is the records this worker wrote and did not delete, path → CID
	// as acknowledged. Workers never touch each other's records, so each
	// one's model is exact.
	own map[string]string

	acked   []crashWrite
	inDoubt *crashWrite // the request the kill interrupted, if any
	failure error       // an error before the kill
}

const crashCollection = "app.bsky.feed.post"

func (w *crashWorker) run(ctx context.Context, killed *atomic.Bool) {
	for n := 0; ctx.Err() == nil; n++ {
		wr := w.next(n)
		err := w.send(ctx, &wr)
		if err != nil {
			if killed.Load() {
				w.inDoubt = &wr
				return
			}
			w.failure = err
			return
		}
		for _, p := range wr.deletes {
			delete(w.own, p)
		}
		for p, c := range wr.result {
			w.own[p] = c
		}
		w.acked = append(w.acked, wr)
	}
}

// next picks a createRecord, or an applyWrites of two creates, an update
// and a delete of this worker's own records.
func (w *crashWorker) next(n int) crashWrite {
	wr := crashWrite{updates: map[string]string{}}
	path := func() string { return crashCollection + "/" + w.clock.Next().String() }
	if len(w.own) < 4 || w.rng.IntN(2) == 0 {
		wr.creates = []string{path()}
		return wr
	}
	wr.creates = []string{path(), path()}
	keys := make([]string, 0, len(w.own))
	for k := range w.own {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	i := w.rng.IntN(len(keys))
	j := (i + 1 + w.rng.IntN(len(keys)-1)) % len(keys)
	wr.updates[keys[i]] = w.own[keys[i]]
	wr.deletes = []string{keys[j]}
	return wr
}

func (w *crashWorker) send(ctx context.Context, wr *crashWrite) error {
	post := func(text string) map[string]any {
		return map[string]any{"$type": crashCollection, "text": text, "createdAt": time.Now().UTC().Format(time.RFC3339Nano)}
	}
	rkey := func(p string) string { return strings.TrimPrefix(p, crashCollection+"/") }
	var (
		nsid string
		body map[string]any
	)
	if len(wr.creates) == 1 && len(wr.updates) == 0 && len(wr.deletes) == 0 {
		nsid = "com.atproto.repo.createRecord"
		body = map[string]any{"repo": w.repo.did, "collection": crashCollection, "rkey": rkey(wr.creates[0]),
			"record": post(fmt.Sprintf("worker %d creates %s", w.id, wr.creates[0]))}
	} else {
		var writes []map[string]any
		for _, p := range wr.creates {
			writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": crashCollection, "rkey": rkey(p),
				"value": post(fmt.Sprintf("worker %d creates %s in a batch", w.id, p))})
		}
		for p := range wr.updates {
			writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#update", "collection": crashCollection, "rkey": rkey(p),
				"value": post(fmt.Sprintf("worker %d updates %s", w.id, p))})
		}
		for _, p := range wr.deletes {
			writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": crashCollection, "rkey": rkey(p)})
		}
		nsid = "com.atproto.repo.applyWrites"
		body = map[string]any{"repo": w.repo.did, "writes": writes}
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, w.base+"/xrpc/"+nsid, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+w.repo.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %d %s", nsid, resp.StatusCode, raw)
	}
	var out struct {
		URI     string `json:"uri"`
		CID     string `json:"cid"`
		Results []struct {
			Type string `json:"$type"`
			URI  string `json:"uri"`
			CID  string `json:"cid"`
		} `json:"results"`
		Commit latestCommit `json:"commit"`
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("%s: %v: %s", nsid, err, raw)
	}
	if out.Commit.CID == "" || out.Commit.Rev == "" {
		return fmt.Errorf("%s: no commit in %s", nsid, raw)
	}
	wr.commitCID, wr.rev = out.Commit.CID, out.Commit.Rev
	wr.result = map[string]string{}
	prefix := "at://" + w.repo.did + "/"
	if out.URI != "" {
		wr.result[strings.TrimPrefix(out.URI, prefix)] = out.CID
	}
	for _, r := range out.Results {
		if r.URI != "" {
			wr.result[strings.TrimPrefix(r.URI, prefix)] = r.CID
		}
	}
	if len(wr.result) != len(wr.creates)+len(wr.updates) {
		return fmt.Errorf("%s: %d results for %d creates and updates: %s", nsid, len(wr.result), len(wr.creates)+len(wr.updates), raw)
	}
	return nil
}

// checkAfterCrash checks the restarted server against what the workers
// saw acknowledged, settles each in-flight write from what the server
// holds, and checks the firehose.
func checkAfterCrash(t *testing.T, base string, repos []*crashRepo, workers []*crashWorker) {
	t.Helper()
	// Every repository verifies; its records are read from the verified
	// CAR.
	held := map[*crashRepo]*verifiedRepo{}
	heads := map[string]latestCommit{}
	for _, r := range repos {
		head := getLatestCommit(t, base, r.did)
		heads[r.did] = head
		car := mustXRPCGet(t, base, "com.atproto.sync.getRepo", url.Values{"did": {r.did}})
		v, err := verifyRepoCAR(car, r.did, r.key)
		if err != nil {
			t.Fatalf("%s after the crash: %v", r.did, err)
		}
		if v.CommitCID.String() != head.CID || v.Commit.Rev != head.Rev {
			t.Errorf("%s: getRepo at %s/%s, getLatestCommit %+v", r.did, v.CommitCID, v.Commit.Rev, head)
		}
		held[r] = v
	}

	// Acknowledged writes, and in-flight ones settled all or nothing.
	var sample []crashCheck
	inFlight := map[bool]int{}
	for _, w := range workers {
		v := held[w.repo]
		for _, wr := range w.acked {
			w.repo.commits = append(w.repo.commits, wr.commitCID)
			if wr.rev > heads[w.repo.did].Rev {
				t.Errorf("%s: acknowledged rev %s is after the head's %s", w.repo.did, wr.rev, heads[w.repo.did].Rev)
			}
			for p, c := range wr.result {
				sample = append(sample, crashCheck{w.repo.did, p, c})
			}
		}
		if wr := w.inDoubt; wr != nil {
			applied := settle(t, w, wr, v)
			inFlight[applied]++
			if applied {
				for _, p := range wr.deletes {
					delete(w.own, p)
				}
				for p := range wr.updates {
					w.own[p] = v.Records[p]
				}
				for _, p := range wr.creates {
					w.own[p] = v.Records[p]
				}
			}
			w.inDoubt = nil
		}
	}
	t.Logf("writes in flight at the kill: %d applied, %d not", inFlight[true], inFlight[false])
	for _, r := range repos {
		r.model = map[string]string{}
	}
	for _, w := range workers {
		for p, c := range w.own {
			w.repo.model[p] = c
		}
	}
	for _, r := range repos {
		if !sameMap(held[r].Records, r.model) {
			t.Errorf("%s holds other records than were acknowledged:\n%s", r.did, mapDiff(held[r].Records, r.model))
		}
	}

	// getRecord answers for every write acknowledged this round that was
	// not deleted since.
	var live []crashCheck
	for _, ck := range sample {
		if owner := repoOf(repos, ck.did); owner.model[ck.path] == ck.cid {
			live = append(live, ck)
		}
	}
	checkRecords(t, base, live)

	checkReplay(t, base, repos, heads)
}

type crashCheck struct{ did, path, cid string }

func repoOf(repos []*crashRepo, did string) *crashRepo {
	for _, r := range repos {
		if r.did == did {
			return r
		}
	}
	return nil
}

// settle decides whether an interrupted write happened, from the
// repository the server holds now, and fails the test unless all of its
// parts agree.
func settle(t *testing.T, w *crashWorker, wr *crashWrite, v *verifiedRepo) bool {
	t.Helper()
	var parts []string
	applied := map[bool]int{}
	for _, p := range wr.creates {
		_, ok := v.Records[p]
		applied[ok]++
		parts = append(parts, fmt.Sprintf("create %s: %v", p, ok))
	}
	for p, old := range wr.updates {
		ok := v.Records[p] != old
		applied[ok]++
		parts = append(parts, fmt.Sprintf("update %s: %v", p, ok))
	}
	for _, p := range wr.deletes {
		_, present := v.Records[p]
		applied[!present]++
		parts = append(parts, fmt.Sprintf("delete %s: %v", p, !present))
	}
	if applied[true] > 0 && applied[false] > 0 {
		t.Errorf("worker %d: the write in flight at the kill was applied in part: %s", w.id, strings.Join(parts, "; "))
	}
	return applied[true] > 0
}

// checkRecords reads records back with getRecord, a few at a time.
func checkRecords(t *testing.T, base string, checks []crashCheck) {
	t.Helper()
	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
	)
	jobs := make(chan crashCheck)
	for range 4 {
		wg.Go(func() {
			for ck := range jobs {
				collection, rkey, _ := strings.Cut(ck.path, "/")
				resp, err := http.Get(base + "/xrpc/com.atproto.repo.getRecord?" + url.Values{"repo": {ck.did}, "collection": {collection}, "rkey": {rkey}}.Encode())
				msg := ""
				if err != nil {
					msg = err.Error()
				} else {
					var got struct{ CID string }
					json.NewDecoder(resp.Body).Decode(&got)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK || got.CID != ck.cid {
						msg = fmt.Sprintf("%d cid %s, want %s", resp.StatusCode, got.CID, ck.cid)
					}
				}
				if msg != "" {
					mu.Lock()
					errs = append(errs, ck.did+"/"+ck.path+": "+msg)
					mu.Unlock()
				}
			}
		})
	}
	for _, ck := range checks {
		jobs <- ck
	}
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		sort.Strings(errs)
		t.Errorf("%d of %d acknowledged records not read back as acknowledged, e.g.:\n%s", len(errs), len(checks), strings.Join(errs[:min(len(errs), 10)], "\n"))
	}
}

// checkReplay reads the firehose from the start up to every repository's
// head and checks it.
func checkReplay(t *testing.T, base string, repos []*crashRepo, heads map[string]latestCommit) {
	t.Helper()
	zero := int64(0)
	f := subscribeFirehose(t, base, &zero)
	waiting := map[string]bool{}
	for did, head := range heads {
		waiting[did+" "+head.CID] = true
	}
	evs := f.until(t, time.Minute, func(ev streamEvent) bool {
		if ev.Commit != nil {
			delete(waiting, ev.DID+" "+ev.Commit.Commit.String())
		}
		return len(waiting) == 0
	})
	// Nothing should follow the heads; give a stray event a moment to show.
	for done := false; !done; {
		select {
		case ev := <-f.events:
			evs = append(evs, ev)
		case err := <-f.errc:
			t.Fatalf("firehose: %v", err)
		case <-time.After(300 * time.Millisecond):
			done = true
		}
	}
	f.conn.Close()

	for i, ev := range evs {
		if ev.Seq != int64(i+1) {
			t.Fatalf("firehose replay: event %d has seq %d, want %d (gap or duplicate)", i, ev.Seq, i+1)
		}
	}

	byCID := map[string]bool{}
	type state struct{ rev, data, cid string }
	last := map[string]state{}
	verified := 0
	for _, ev := range evs {
		if ev.Commit == nil {
			continue
		}
		m := ev.Commit
		byCID[m.Repo+" "+m.Commit.String()] = true
		commit, _, err := indigorepo.LoadCommitFromCAR(context.Background(), bytes.NewReader(m.Blocks))
		if err != nil {
			t.Fatalf("seq %d: commit of the event: %v", m.Seq, err)
		}
		if err := commit.VerifySignature(repoOf(repos, m.Repo).key); err != nil {
			t.Errorf("seq %d: commit signature: %v", m.Seq, err)
		}
		if prev, ok := last[m.Repo]; ok {
			if m.Since == nil || *m.Since != prev.rev {
				t.Errorf("seq %d (%s): since %v, the previous commit's rev is %s", m.Seq, m.Repo, m.Since, prev.rev)
			}
			if m.PrevData == nil || m.PrevData.String() != prev.data {
				t.Errorf("seq %d (%s): prevData %v, the previous commit's data is %s", m.Seq, m.Repo, m.PrevData, prev.data)
			}
			if m.Rev <= prev.rev {
				t.Errorf("seq %d (%s): rev %s does not follow %s", m.Seq, m.Repo, m.Rev, prev.rev)
			}
			if _, err := indigorepo.VerifyCommitMessage(context.Background(), m); err != nil {
				t.Errorf("seq %d (%s): sync v1.1 check: %v", m.Seq, m.Repo, err)
			}
			verified++
		}
		last[m.Repo] = state{rev: m.Rev, data: commit.Data.String(), cid: m.Commit.String()}
	}
	for did, head := range heads {
		if got := last[did]; got.rev != head.Rev || got.cid != head.CID {
			t.Errorf("%s: last #commit on the firehose is %s rev %s, getLatestCommit %+v", did, got.cid, got.rev, head)
		}
	}
	missing := 0
	for _, r := range repos {
		for _, c := range r.commits {
			if !byCID[r.did+" "+c] {
				missing++
				if missing <= 5 {
					t.Errorf("%s: acknowledged commit %s has no #commit event", r.did, c)
				}
			}
		}
	}
	if missing > 5 {
		t.Errorf("... %d acknowledged commits without an event in all", missing)
	}
	t.Logf("firehose replay: %d events, seq 1..%d, %d commits checked", len(evs), len(evs), verified)
}
