package firehose

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hearth-pds/hearth/testenv"
)

// Size of the workload: accounts (some created while writes are under
// way), write calls (createRecord, putRecord, deleteRecord, applyWrites of
// up to 10 writes) and concurrent writers.
const (
	fhAccounts        = 20
	fhAccountsAtStart = 15
	fhCalls           = 2000
	fhWorkers         = 6
	fhSeed            = 20261122
)

// TestFirehose proves Hearth's event stream (com.atproto.sync.subscribeRepos)
// with verifiers nobody here wrote. Four consumers are attached before
// anything happens:
//
//	(a) @atproto/sync's Firehose in node, commits authenticated (signature
//	    and MST proofs of every op), handles verified;
//	(b) an in-process Go consumer on indigo's cbor-gen types that checks
//	    every frame (see streamChecker): seq continuity, signatures against
//	    the DID documents, since/prevData continuity per repository, and
//	    indigo's MST inversion of every commit;
//	(c) goat firehose --verify-basic --verify-sig --verify-mst, whose every
//	    log line is read;
//	(d) indigo's relay embedded as a library, subscribed to the PDS as a
//	    relay subscribes to any PDS, whose own output stream is checked
//	    with (b)'s checker and whose per-account state must match.
//
// Then 20 accounts are signed up (5 of them while the writes run), 6
// workers make 2,000 write calls across them, and two handles change. Each
// consumer must see every event, all must agree on the counts, which must
// be what the workload did, with no verification error anywhere. Finally
// (a), (b) and (c) replay the stream from cursor 0 and must see the same.
func TestFirehose(t *testing.T) {
	began := time.Now()
	phase := began
	lap := func(what string) {
		t.Logf("%-28s %6.1fs", what, time.Since(phase).Seconds())
		phase = time.Now()
	}

	plcURL := testenv.StartReferencePLC(t)
	h := testenv.StartHearth(t, plcURL)
	goat := testenv.Goat(t)
	pds := "http://" + h.Addr                   // for our own calls
	host := "localhost:" + strconv.Itoa(h.Port) // what DID documents name
	wsBase := "ws://" + host
	subscribe := wsBase + "/xrpc/com.atproto.sync.subscribeRepos"
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	lap("start PLC and Hearth")

	// --- consumers, before anything happens --------------------------------
	relayLogs := &logCapture{}
	rel := startRelay(t, host, newLoopbackDirectory(plcURL, pds), relayLogs)
	relayOut, err := checkStream("relay output", rel.url, newLoopbackDirectory(plcURL, pds), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer relayOut.Stop()
	if err := rel.subscribe(ctx); err != nil {
		t.Fatalf("relay: subscribe to %s: %v", host, err)
	}
	live, err := checkStream("go checker", subscribe, newLoopbackDirectory(plcURL, pds), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer live.Stop()
	nodeEnv := []string{"FIREHOSE_URL=" + wsBase, "PLC_URL=" + plcURL, "PDS_URL=" + pds}
	nodeLive := startNodeConsumer(t, "@atproto/sync", nodeEnv...)
	plc := startPLCInterceptor(t, plcURL)
	goatLive := startGoatConsumer(t, "goat firehose", goat, wsBase, nil, plc)

	// Hearth logs each subscriber it accepts: wait for all four.
	if !waitFor(30*time.Second, func() bool {
		return strings.Count(h.Output(), `"firehose subscriber connected"`) >= 4
	}) {
		t.Fatalf("only %d of 4 consumers connected within 30s (node: %v, goat: %v)",
			strings.Count(h.Output(), `"firehose subscriber connected"`), nodeLive.running(), goatLive.running())
	}
	lap("attach 4 consumers")

	// --- the workload ---------------------------------------------------------
	c := &xrpcClient{base: pds, admin: h.AdminPassword, http: &http.Client{Timeout: 30 * time.Second}}
	var invite struct{ Code string }
	if err := c.call(ctx, http.MethodPost, "com.atproto.server.createInviteCode", "admin", map[string]int{"useCount": fhAccounts}, &invite); err != nil {
		t.Fatal(err)
	}
	wl := newWorkload(c, invite.Code, fhWorkers)
	for i := range fhAccountsAtStart {
		if _, err := wl.signUp(ctx, i); err != nil {
			t.Fatalf("sign up %d: %v", i, err)
		}
	}
	lap("sign up 15 accounts")

	renames := runWorkload(ctx, t, wl)
	lap(fmt.Sprintf("workload (%d calls)", fhCalls))

	// A last write, after every other has returned, has the highest seq.
	sentinel := wl.newWorker(fhWorkers, fhSeed)
	if err := sentinel.create(ctx, wl.accounts[0]); err != nil {
		t.Fatalf("sentinel write: %v", err)
	}

	// What the streams must show.
	want := map[string]int{
		"#commit":   fhAccounts + wl.commits,
		"#identity": fhAccounts + renames,
		"#account":  fhAccounts,
		"#sync":     fhAccounts,
		"create":    wl.ops["create"],
		"update":    wl.ops["update"],
		"delete":    wl.ops["delete"],
	}
	total := int64(want["#commit"] + want["#identity"] + want["#account"] + want["#sync"])
	t.Logf("workload: %d accounts, %d write calls %v, %d ops (%d creates, %d updates, %d deletes), %d handle changes; %d events expected",
		len(wl.accounts), wl.commits, wl.calls, want["create"]+want["update"]+want["delete"],
		want["create"], want["update"], want["delete"], renames, total)

	// --- every live consumer reaches the last event -----------------------
	reached := func() map[string]int64 {
		lastLive, _ := live.progress()
		_, relayFrames := relayOut.progress()
		return map[string]int64{
			"go checker":    lastLive,
			"@atproto/sync": nodeLive.cursor.Load(),
			"goat":          goatLive.seq(),
			"relay":         int64(relayFrames),
		}
	}
	if err := waitProgress(total, reached, nodeLive.running, goatLive.running); err != nil {
		t.Error(err)
	}
	lap("live consumers catch up")

	// Let anything that would come after the last event arrive, then stop.
	// The relay's log is read first: our consumers leaving its stream is
	// not its problem.
	time.Sleep(300 * time.Millisecond)
	relayWarnings := rel.logs.warnings()
	if err := nodeLive.running(); err != nil {
		t.Error(err)
	}
	if err := goatLive.running(); err != nil {
		t.Error(err)
	}
	live.Stop()
	nodeSum, err := nodeLive.finish(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	goatLive.stop()
	relayOut.Stop()

	// --- live results ----------------------------------------------------------
	heads := latestCommits(ctx, t, c, wl)
	t.Logf("live counts: go checker %v", live.counts)
	t.Logf("live counts: @atproto/sync %v", nodeSum.Counts)
	t.Logf("live counts: goat %v", goatLive.eventCounts())
	t.Logf("live counts: relay output %v", relayOut.counts)

	report := func(name string, probs []string) {
		t.Helper()
		if s := summarize(name, probs, 25); s != "" {
			t.Error(s)
		}
	}
	report("go checker", live.problems())
	checkCounts(t, "go checker", live.counts, want)
	checkModel(t, "go checker", live, wl, heads)
	checkIdentities(t, "go checker", live, wl, false)

	report("@atproto/sync", nodeSum.Errors)
	checkNode(t, "@atproto/sync", nodeSum, live, wl, total, false)

	report("goat", goatLive.problems(live.genesis))
	checkCounts(t, "goat", goatLive.eventCounts(), want)
	if refused := plc.refusedRequests(); len(refused) > 0 {
		t.Errorf("goat tried to reach hosts other than the PLC directory: %v", refused)
	}
	if plc.requests.Load() == 0 {
		t.Errorf("goat verified no signature: it never asked the PLC directory for a DID document")
	}

	report("relay log", relayWarnings)
	report("relay output", relayOut.problems())
	checkCounts(t, "relay output", relayOut.counts, want)
	checkModel(t, "relay output", relayOut, wl, heads)
	checkIdentities(t, "relay output", relayOut, wl, true)
	for _, a := range wl.accounts {
		rev, commit, status, err := rel.repoState(ctx, a.did)
		if err != nil {
			t.Errorf("relay: account %s: %v", a.did, err)
			continue
		}
		if hd := heads[a.did]; rev != hd.Rev || commit != hd.CID || status != "active" {
			t.Errorf("relay: account %s at rev %s commit %s (%s); Hearth's getLatestCommit: rev %s commit %s", a.did, rev, commit, status, hd.Rev, hd.CID)
		}
	}
	rel.shutdown()
	lap("check live results")

	// --- replay from cursor 0 ---------------------------------------------
	replay, err := checkStream("go checker replay", subscribe+"?cursor=0", newLoopbackDirectory(plcURL, pds), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer replay.Stop()
	nodeReplay := startNodeConsumer(t, "@atproto/sync replay", append(nodeEnv, "CURSOR=0")...)
	zero := int64(0)
	goatReplay := startGoatConsumer(t, "goat firehose replay", goat, wsBase, &zero, plc)
	replayed := func() map[string]int64 {
		last, _ := replay.progress()
		return map[string]int64{"go checker": last, "@atproto/sync": nodeReplay.cursor.Load(), "goat": goatReplay.seq()}
	}
	if err := waitProgress(total, replayed, nodeReplay.running, goatReplay.running); err != nil {
		t.Error(err)
	}
	time.Sleep(300 * time.Millisecond)
	if err := goatReplay.running(); err != nil {
		t.Error(err)
	}
	replay.Stop()
	nodeReplaySum, err := nodeReplay.finish(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	goatReplay.stop()
	lap("replay from cursor 0")

	t.Logf("replay counts: go checker %v", replay.counts)
	t.Logf("replay counts: @atproto/sync %v", nodeReplaySum.Counts)
	t.Logf("replay counts: goat %v", goatReplay.eventCounts())

	report("go checker replay", replay.problems())
	checkCounts(t, "go checker replay", replay.counts, want)
	checkModel(t, "go checker replay", replay, wl, heads)
	if !maps.Equal(replay.opsBySeq, live.opsBySeq) {
		t.Errorf("go checker: the replay's commits (seq → ops) differ from the live stream's")
	}
	checkIdentities(t, "go checker replay", replay, wl, false)

	report("@atproto/sync replay", nodeReplaySum.Errors)
	checkNode(t, "@atproto/sync replay", nodeReplaySum, live, wl, total, true)
	if !maps.Equal(nodeReplaySum.Counts, nodeSum.Counts) || !maps.Equal(nodeReplaySum.OpsBySeq, nodeSum.OpsBySeq) {
		t.Errorf("@atproto/sync: replay counts %v differ from live %v", nodeReplaySum.Counts, nodeSum.Counts)
	}

	report("goat replay", goatReplay.problems(live.genesis))
	checkCounts(t, "goat replay", goatReplay.eventCounts(), want)
	if refused := plc.refusedRequests(); len(refused) > 0 {
		t.Errorf("goat tried to reach hosts other than the PLC directory: %v", refused)
	}
	t.Logf("total %.1fs", time.Since(began).Seconds())
}

// runWorkload signs up the remaining accounts and changes two handles while
// the workers make fhCalls write calls; it returns the number of handle
// changes. The first error stops everything and fails the test.
func runWorkload(ctx context.Context, t *testing.T, wl *workload) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		issued   = make(chan struct{}, fhCalls)
	)
	fail := func(err error) {
		errOnce.Do(func() { firstErr = err; cancel() })
	}
	for range fhCalls {
		issued <- struct{}{}
	}
	close(issued)
	for id := range fhWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := wl.newWorker(id, fhSeed)
			for range issued {
				if ctx.Err() != nil {
					return
				}
				if err := k.step(ctx); err != nil {
					fail(fmt.Errorf("worker %d: %w", id, err))
					return
				}
			}
		}()
	}

	// Accounts and handles change while the writes run.
	renames := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		at := func(n int64) bool {
			for wl.done.Load() < n {
				if ctx.Err() != nil {
					return false
				}
				time.Sleep(5 * time.Millisecond)
			}
			return true
		}
		next := fhAccountsAtStart
		step := int64(fhCalls / (fhAccounts - fhAccountsAtStart + 2))
		for i := range fhAccounts - fhAccountsAtStart {
			if !at(step * int64(i+1)) {
				return
			}
			if _, err := wl.signUp(ctx, next); err != nil {
				fail(fmt.Errorf("sign up %d mid-stream: %w", next, err))
				return
			}
			next++
			switch i {
			case 1: // an account from the start
				if err := wl.updateHandle(ctx, wl.accounts[3], "renamed03.test"); err != nil {
					fail(fmt.Errorf("update handle: %w", err))
					return
				}
				renames++
			case 3: // an account signed up mid-stream
				if err := wl.updateHandle(ctx, wl.accounts[fhAccountsAtStart], fmt.Sprintf("renamed%02d.test", fhAccountsAtStart)); err != nil {
					fail(fmt.Errorf("update handle: %w", err))
					return
				}
				renames++
			}
		}
	}()
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("workload: %v", firstErr)
	}
	if ctx.Err() != nil {
		t.Fatalf("workload did not finish within 2 minutes (%d calls done)", wl.done.Load())
	}
	if len(wl.accounts) != fhAccounts || renames != 2 {
		t.Fatalf("workload: %d accounts, %d handle changes", len(wl.accounts), renames)
	}
	return renames
}

// waitProgress waits until every consumer has reached target, giving up
// early when one exits or when none has moved for 15 seconds (a consumer
// that refused an event never gets there), and after 2 minutes in any case.
func waitProgress(target int64, progress func() map[string]int64, running ...func() error) error {
	deadline := time.Now().Add(2 * time.Minute)
	last, moved := progress(), time.Now()
	for {
		cur := progress()
		done := true
		for _, n := range cur {
			done = done && n >= target
		}
		if done {
			return nil
		}
		for _, r := range running {
			if err := r(); err != nil {
				return err
			}
		}
		if !maps.Equal(cur, last) {
			last, moved = cur, time.Now()
		}
		switch {
		case time.Since(moved) > 15*time.Second:
			return fmt.Errorf("consumers stalled short of seq %d: %v", target, cur)
		case time.Now().After(deadline):
			return fmt.Errorf("consumers did not reach seq %d within 2 minutes: %v", target, cur)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type head struct{ CID, Rev string }

// latestCommits asks Hearth for every account's head.
func latestCommits(ctx context.Context, t *testing.T, c *xrpcClient, wl *workload) map[string]head {
	t.Helper()
	out := map[string]head{}
	for _, a := range wl.accounts {
		var hd head
		if err := c.call(ctx, http.MethodGet, "com.atproto.sync.getLatestCommit?did="+a.did, "", nil, &hd); err != nil {
			t.Fatalf("getLatestCommit %s: %v", a.did, err)
		}
		out[a.did] = hd
	}
	return out
}

func checkCounts(t *testing.T, name string, got, want map[string]int) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if got[k] != want[k] {
			t.Errorf("%s: %d %s, want %d", name, got[k], k, want[k])
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok && n != 0 {
			t.Errorf("%s: %d unexpected %s", name, n, k)
		}
	}
}

// checkModel compares what the stream's ops add up to with what the
// workload wrote, and each repository's last commit with Hearth's head.
func checkModel(t *testing.T, name string, c *streamChecker, wl *workload, heads map[string]head) {
	t.Helper()
	if len(c.repos) != len(wl.accounts) {
		t.Errorf("%s: %d repositories in the stream, %d accounts", name, len(c.repos), len(wl.accounts))
	}
	for _, a := range wl.accounts {
		st := c.repos[a.did]
		if st == nil {
			t.Errorf("%s: no events for %s", name, a.did)
			continue
		}
		wantRecs := wl.records[a.did]
		if len(st.records) != len(wantRecs) {
			t.Errorf("%s: %s has %d records by the stream, %d by the workload", name, a.did, len(st.records), len(wantRecs))
		}
		for p, want := range wantRecs {
			if got, ok := st.records[p]; !ok || got.String() != want {
				t.Errorf("%s: %s %s is %v by the stream, %s by the workload", name, a.did, p, got, want)
			}
		}
		if hd := heads[a.did]; st.rev != hd.Rev || st.commit.String() != hd.CID {
			t.Errorf("%s: %s ends at rev %s commit %s; getLatestCommit says rev %s commit %s", name, a.did, st.rev, st.commit, hd.Rev, hd.CID)
		}
		if st.syncMatched != 1 {
			t.Errorf("%s: %s had %d #sync events matching its commit, want 1", name, a.did, st.syncMatched)
		}
	}
	if len(c.genesis) != len(wl.accounts) {
		t.Errorf("%s: %d first commits for %d accounts", name, len(c.genesis), len(wl.accounts))
	}
}

// checkIdentities compares a stream's #identity events, per DID in order,
// with the handles the workload gave each account. Hearth sends the handle
// of the moment; a relay passes one on only if it still verifies when the
// relay gets to the event, so from a relay an earlier handle may come
// through empty, but never wrong, and the last one must be there.
func checkIdentities(t *testing.T, name string, c *streamChecker, wl *workload, relayed bool) {
	t.Helper()
	got := map[string][]string{}
	for _, id := range c.identities {
		got[id.DID] = append(got[id.DID], id.Handle)
	}
	for _, a := range wl.accounts {
		g, want := got[a.did], wl.identities[a.did]
		ok := len(g) == len(want)
		for k := 0; ok && k < len(g); k++ {
			ok = g[k] == want[k] || (relayed && g[k] == "" && k < len(g)-1)
		}
		if !ok {
			t.Errorf("%s: %s #identity handles %v, want %v", name, a.did, g, want)
		}
	}
}

// checkNode compares @atproto/sync's view with the Go checker's: the same
// ops for every commit (the library drops ops it cannot authenticate, so
// a missing op is a failed verification) and the same #account and #sync
// events. For #identity the library reports the handle it verified itself
// (DID document, then the handle back to the DID) when it handled the
// event, so a handle may already be a later one of that DID, or none if
// it changed in between, but never an earlier one; the last is the
// account's handle. In a replay every document already names the latest
// handle.
func checkNode(t *testing.T, name string, s *nodeSummary, live *streamChecker, wl *workload, total int64, replay bool) {
	t.Helper()
	if s.MaxSeq != total || s.Cursor != total {
		t.Errorf("%s: last seq %d, cursor %d, want %d", name, s.MaxSeq, s.Cursor, total)
	}
	nodeWant := map[string]int{
		"create":   live.counts["create"],
		"update":   live.counts["update"],
		"delete":   live.counts["delete"],
		"identity": live.counts["#identity"],
		"account":  live.counts["#account"],
		"sync":     live.counts["#sync"],
	}
	checkCounts(t, name, s.Counts, nodeWant)
	for seq, n := range live.opsBySeq {
		if n == 0 {
			continue
		}
		if got := s.OpsBySeq[strconv.FormatInt(seq, 10)]; got != n {
			t.Errorf("%s: commit seq %d: %d ops authenticated, the commit has %d", name, seq, got, n)
		}
	}
	byDID := map[string][]string{}
	for _, id := range s.Identities {
		h := ""
		if id.Handle != nil {
			h = *id.Handle
		}
		byDID[id.DID] = append(byDID[id.DID], h)
	}
	for _, a := range wl.accounts {
		got, announced := byDID[a.did], wl.identities[a.did]
		ok := len(got) == len(announced)
		for k := 0; ok && k < len(got); k++ {
			if replay {
				ok = got[k] == a.handle
			} else {
				last := k == len(got)-1
				ok = (last && got[k] == a.handle) ||
					(!last && (got[k] == "" || slices.Contains(announced[k:], got[k])))
			}
		}
		if !ok {
			t.Errorf("%s: %s verified handles %v; announced %v, now %s", name, a.did, got, announced, a.handle)
		}
	}
	if len(s.Accounts) != len(wl.accounts) || len(s.Syncs) != len(wl.accounts) {
		t.Errorf("%s: %d #account and %d #sync events for %d accounts", name, len(s.Accounts), len(s.Syncs), len(wl.accounts))
	}
	for _, acc := range s.Accounts {
		if acc["active"] != true || acc["status"] != nil {
			t.Errorf("%s: #account %v", name, acc)
		}
	}
	for _, sy := range s.Syncs {
		if st := live.repos[sy.DID]; st == nil || sy.CID != st.first.String() || sy.Rev != st.firstRev {
			t.Errorf("%s: #sync of %s names commit %s rev %s, not the account's first commit", name, sy.DID, sy.CID, sy.Rev)
		}
	}
}
