package firehose

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/identity"
	"github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	events "github.com/bluesky-social/indigo/cmd/relay/stream"
	"github.com/gorilla/websocket"
	"github.com/ipfs/go-cid"
)

// streamChecker is a firehose consumer that trusts nothing it is sent. It
// decodes every frame with indigo's cbor-gen types and checks each event
// the way a relay does, and more strictly:
//
//   - seq: the first event is want.firstSeq, then every seq is the last
//     plus one (no gap, no duplicate, no reordering);
//   - #commit: the CAR's root is the commit, whose DID and rev are the
//     event's; the signature verifies against the key in the DID document
//     (indigo repo.VerifyCommitSignature through the loopback directory);
//     since and prevData equal the rev and data of the repository's
//     previous commit, and revs increase; the ops are well formed (create:
//     cid only, update: cid and prev, delete: prev only) and agree with the
//     records the stream has shown so far; indigo repo.VerifyCommitMessage
//     inverts the ops on the partial MST the event carries and lands on
//     prevData. A repository's first commit has neither since nor prevData
//     nor ops, and follows its #identity and #account;
//   - #sync: its commit verifies (repo.VerifySyncMessage) and is the
//     repository's current commit;
//   - #identity, #account: syntax, and what they say is recorded;
//   - anything else (an error frame, #info, an unknown type, bytes after
//     the body) is an error.
//
// It keeps, per repository, the records the ops add up to, so the test can
// compare them with what the workload wrote.
type streamChecker struct {
	name     string
	dir      *identity.CacheDirectory
	firstSeq int64

	mu         sync.Mutex
	lastSeq    int64
	frames     int
	counts     map[string]int // frame types and op actions
	opsBySeq   map[int64]int  // ops of each #commit
	repos      map[string]*repoState
	identities []identityEvent
	genesis    map[int64]bool // seqs of first commits
	errs       []string
	ended      error // why the stream ended, if it did before stop

	stop context.CancelFunc
	done chan struct{}
}

type identityEvent struct {
	DID    string
	Handle string
}

type repoState struct {
	rev         string
	data        cid.Cid
	commit      cid.Cid
	records     map[string]cid.Cid
	first       cid.Cid // the first commit
	firstRev    string
	identity    bool // an #identity came first
	account     bool // an #account came first
	commits     int
	syncMatched int // #sync events naming the current commit
}

// checkStream subscribes to url (ws://host/xrpc/com.atproto.sync.subscribeRepos,
// with ?cursor= for a replay) and checks every frame until stop.
func checkStream(name, url string, dir *identity.CacheDirectory, firstSeq int64) (*streamChecker, error) {
	conn, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"User-Agent": {"hearth-e2e-checker"}})
	if err != nil {
		return nil, fmt.Errorf("%s: dial %s: %w", name, url, err)
	}
	resp.Body.Close()
	conn.SetReadLimit(16 << 20)
	ctx, cancel := context.WithCancel(context.Background())
	c := &streamChecker{
		name:     name,
		dir:      dir,
		firstSeq: firstSeq,
		counts:   map[string]int{},
		opsBySeq: map[int64]int{},
		repos:    map[string]*repoState{},
		genesis:  map[int64]bool{},
		stop:     cancel,
		done:     make(chan struct{}),
	}
	go func() {
		<-ctx.Done()
		conn.Close()
	}()
	go func() {
		defer close(c.done)
		for {
			_, frame, err := conn.ReadMessage()
			if err != nil {
				if ctx.Err() == nil {
					c.mu.Lock()
					c.ended = err
					c.mu.Unlock()
				}
				return
			}
			c.handle(ctx, frame)
		}
	}()
	return c, nil
}

// Stop closes the subscription and waits for the reader.
func (c *streamChecker) Stop() {
	c.stop()
	<-c.done
}

func (c *streamChecker) failf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// progress returns the last seq and the number of frames so far.
func (c *streamChecker) progress() (lastSeq int64, frames int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastSeq, c.frames
}

// problems lists every check that failed, and how the stream ended early.
func (c *streamChecker) problems() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]string(nil), c.errs...)
	if c.ended != nil {
		out = append(out, fmt.Sprintf("stream ended early after seq %d: %v", c.lastSeq, c.ended))
	}
	return out
}

func (c *streamChecker) handle(ctx context.Context, frame []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.frames++
	r := bytes.NewReader(frame)
	var hdr events.EventHeader
	if err := hdr.UnmarshalCBOR(r); err != nil {
		c.failf("frame %d: header: %v", c.frames, err)
		return
	}
	if hdr.Op == events.EvtKindErrorFrame {
		var ef events.ErrorFrame
		if err := ef.UnmarshalCBOR(r); err != nil {
			c.failf("frame %d: error frame: %v", c.frames, err)
			return
		}
		c.failf("error frame after seq %d: %s: %s", c.lastSeq, ef.Error, ef.Message)
		return
	}
	if hdr.Op != events.EvtKindMessage {
		c.failf("frame %d: header op %d", c.frames, hdr.Op)
		return
	}
	c.counts[hdr.MsgType]++
	var (
		seq int64
		err error
	)
	switch hdr.MsgType {
	case "#commit":
		var evt comatproto.SyncSubscribeRepos_Commit
		if err = evt.UnmarshalCBOR(r); err == nil {
			seq = evt.Seq
			c.checkSeq(seq)
			c.commit(ctx, &evt)
		}
	case "#sync":
		var evt comatproto.SyncSubscribeRepos_Sync
		if err = evt.UnmarshalCBOR(r); err == nil {
			seq = evt.Seq
			c.checkSeq(seq)
			c.sync(ctx, &evt)
		}
	case "#identity":
		var evt comatproto.SyncSubscribeRepos_Identity
		if err = evt.UnmarshalCBOR(r); err == nil {
			seq = evt.Seq
			c.checkSeq(seq)
			c.identity(ctx, &evt)
		}
	case "#account":
		var evt comatproto.SyncSubscribeRepos_Account
		if err = evt.UnmarshalCBOR(r); err == nil {
			seq = evt.Seq
			c.checkSeq(seq)
			c.account(&evt)
		}
	case "#info":
		var evt comatproto.SyncSubscribeRepos_Info
		if err = evt.UnmarshalCBOR(r); err == nil {
			msg := ""
			if evt.Message != nil {
				msg = *evt.Message
			}
			c.failf("unexpected #info after seq %d: %s %s", c.lastSeq, evt.Name, msg)
		}
		return
	default:
		c.failf("frame %d: unknown type %q", c.frames, hdr.MsgType)
		return
	}
	if err != nil {
		c.failf("frame %d (%s): body: %v", c.frames, hdr.MsgType, err)
		return
	}
	if r.Len() != 0 {
		c.failf("seq %d (%s): %d bytes after the body", seq, hdr.MsgType, r.Len())
	}
}

func (c *streamChecker) checkSeq(seq int64) {
	want := c.lastSeq + 1
	if c.lastSeq == 0 {
		want = c.firstSeq
	}
	if seq != want {
		c.failf("seq %d follows %d, want %d", seq, c.lastSeq, want)
	}
	c.lastSeq = max(c.lastSeq, seq)
}

func (c *streamChecker) repo(did string) *repoState {
	st := c.repos[did]
	if st == nil {
		st = &repoState{records: map[string]cid.Cid{}}
		c.repos[did] = st
	}
	return st
}

func (c *streamChecker) commit(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Commit) {
	where := fmt.Sprintf("seq %d #commit %s rev %s", evt.Seq, evt.Repo, evt.Rev)
	fail := func(format string, args ...any) { c.failf(where+": "+format, args...) }
	c.opsBySeq[evt.Seq] = len(evt.Ops)
	for _, op := range evt.Ops {
		c.counts[op.Action]++
	}

	if _, err := syntax.ParseDID(evt.Repo); err != nil {
		fail("repo: %v", err)
		return
	}
	if _, err := syntax.ParseDatetime(evt.Time); err != nil {
		fail("time: %v", err)
	}
	if evt.TooBig || evt.Rebase {
		fail("deprecated flags set (tooBig %v, rebase %v)", evt.TooBig, evt.Rebase)
	}
	if len(evt.Blobs) != 0 {
		fail("%d blobs, the workload uploaded none", len(evt.Blobs))
	}
	if len(evt.Ops) > 200 || len(evt.Blocks) > 2_000_000 {
		fail("%d ops, %d bytes of blocks: over the protocol limits", len(evt.Ops), len(evt.Blocks))
	}
	commit, root, err := repo.LoadCommitFromCAR(ctx, bytes.NewReader(evt.Blocks))
	if err != nil {
		fail("blocks: %v", err)
		return
	}
	if root.String() != evt.Commit.String() {
		fail("CAR root %s, event commit %s", root, evt.Commit)
	}
	if commit.DID != evt.Repo || commit.Rev != evt.Rev {
		fail("commit object names %s rev %s", commit.DID, commit.Rev)
	}
	if err := repo.VerifyCommitSignature(ctx, c.dir, evt); err != nil {
		fail("signature: %v", err)
	}

	st := c.repo(evt.Repo)
	first := st.commits == 0
	st.commits++
	if first {
		c.genesis[evt.Seq] = true
		st.first, st.firstRev = *root, commit.Rev
		if evt.Since != nil || evt.PrevData != nil || len(evt.Ops) != 0 {
			fail("a repository's first commit has since %v, prevData %v, %d ops", evt.Since, evt.PrevData, len(evt.Ops))
		}
		if !st.identity || !st.account {
			fail("first commit before the account's #identity (%v) and #account (%v)", st.identity, st.account)
		}
	} else {
		if evt.Since == nil || *evt.Since != st.rev {
			fail("since %v, previous rev %s", strOrNil(evt.Since), st.rev)
		}
		if evt.PrevData == nil || evt.PrevData.String() != st.data.String() {
			fail("prevData %v, previous data %s", evt.PrevData, st.data)
		}
		if evt.Rev <= st.rev {
			fail("rev does not follow %s", st.rev)
		}
	}

	// The ops, against the records the stream has shown so far.
	for _, op := range evt.Ops {
		prev, exists := st.records[op.Path]
		if _, _, err := syntax.ParseRepoPath(op.Path); err != nil {
			fail("op path %q: %v", op.Path, err)
			continue
		}
		switch op.Action {
		case "create":
			if op.Cid == nil || op.Prev != nil || exists {
				fail("create %s: cid %v, prev %v, already there: %v", op.Path, op.Cid, op.Prev, exists)
			}
		case "update":
			if op.Cid == nil || op.Prev == nil || !exists || op.Prev.String() != prev.String() || op.Cid.String() == op.Prev.String() {
				fail("update %s: cid %v, prev %v, stream had %v", op.Path, op.Cid, op.Prev, prev)
			}
		case "delete":
			if op.Cid != nil || op.Prev == nil || !exists || op.Prev.String() != prev.String() {
				fail("delete %s: cid %v, prev %v, stream had %v", op.Path, op.Cid, op.Prev, prev)
			}
		default:
			fail("op action %q", op.Action)
			continue
		}
		if op.Action == "delete" {
			delete(st.records, op.Path)
		} else if op.Cid != nil {
			st.records[op.Path] = cid.Cid(*op.Cid)
		}
	}

	// The MST: indigo inverts the ops on the partial tree in the event and
	// compares the root it gets with prevData (it also reads every created
	// or updated record out of the blocks).
	if _, err := repo.VerifyCommitMessage(ctx, evt); err != nil {
		fail("MST inversion: %v", err)
	}

	st.rev, st.data, st.commit = commit.Rev, commit.Data, *root
}

func (c *streamChecker) sync(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Sync) {
	where := fmt.Sprintf("seq %d #sync %s rev %s", evt.Seq, evt.Did, evt.Rev)
	commit, err := repo.VerifySyncMessage(ctx, c.dir, evt)
	if err != nil {
		c.failf("%s: %v", where, err)
		return
	}
	_, root, err := repo.LoadCommitFromCAR(ctx, bytes.NewReader(evt.Blocks))
	if err != nil {
		c.failf("%s: blocks: %v", where, err)
		return
	}
	if commit.DID != evt.Did || commit.Rev != evt.Rev {
		c.failf("%s: commit object names %s rev %s", where, commit.DID, commit.Rev)
	}
	if _, err := syntax.ParseDatetime(evt.Time); err != nil {
		c.failf("%s: time: %v", where, err)
	}
	st := c.repo(evt.Did)
	if st.commits == 0 || root.String() != st.commit.String() || commit.Rev != st.rev {
		c.failf("%s: commit %s is not the repository's current commit %s (rev %s)", where, root, st.commit, st.rev)
		return
	}
	st.syncMatched++
}

func (c *streamChecker) identity(ctx context.Context, evt *comatproto.SyncSubscribeRepos_Identity) {
	did, err := syntax.ParseDID(evt.Did)
	if err != nil {
		c.failf("seq %d #identity: did: %v", evt.Seq, err)
		return
	}
	if _, err := syntax.ParseDatetime(evt.Time); err != nil {
		c.failf("seq %d #identity: time: %v", evt.Seq, err)
	}
	handle := ""
	if evt.Handle != nil {
		handle = *evt.Handle
		if _, err := syntax.ParseHandle(handle); err != nil {
			c.failf("seq %d #identity: handle: %v", evt.Seq, err)
		}
	}
	// The identity may have changed: what was cached is stale.
	_ = c.dir.Purge(ctx, did.AtIdentifier())
	c.repo(evt.Did).identity = true
	c.identities = append(c.identities, identityEvent{DID: evt.Did, Handle: handle})
}

func (c *streamChecker) account(evt *comatproto.SyncSubscribeRepos_Account) {
	if _, err := syntax.ParseDID(evt.Did); err != nil {
		c.failf("seq %d #account: did: %v", evt.Seq, err)
		return
	}
	if _, err := syntax.ParseDatetime(evt.Time); err != nil {
		c.failf("seq %d #account: time: %v", evt.Seq, err)
	}
	if !evt.Active || evt.Status != nil {
		c.failf("seq %d #account %s: active %v status %v; the workload deactivates nobody", evt.Seq, evt.Did, evt.Active, strOrNil(evt.Status))
	}
	c.repo(evt.Did).account = true
}

// waitFor polls until cond holds or the timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func strOrNil(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// summarize lists the problems of several consumers, each line prefixed
// with the consumer's name, at most n per consumer.
func summarize(name string, probs []string, n int) string {
	if len(probs) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:\n", name, len(probs))
	for i, p := range probs {
		if i == n {
			fmt.Fprintf(&b, "  … and %d more\n", len(probs)-n)
			break
		}
		fmt.Fprintf(&b, "  %s\n", p)
	}
	return b.String()
}
