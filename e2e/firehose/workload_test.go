package firehose

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/hearth-pds/hearth/datetime"
)

// xrpcClient makes XRPC calls for the workload's goroutines: errors are
// returned, never t.Fatal'd, since only the test goroutine may stop a test.
type xrpcClient struct {
	base  string
	admin string
	http  *http.Client
}

// xrpcError is a non-200 answer.
type xrpcError struct {
	nsid   string
	status int
	body   string
}

func (e *xrpcError) Error() string { return fmt.Sprintf("%s: %d %s", e.nsid, e.status, e.body) }

func (c *xrpcClient) call(ctx context.Context, method, nsid, token string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/xrpc/"+nsid, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case token == "admin":
		req.SetBasicAuth("admin", c.admin)
	case token != "":
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", nsid, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s: %w", nsid, err)
	}
	if resp.StatusCode != http.StatusOK {
		return &xrpcError{nsid, resp.StatusCode, string(b)}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%s: %w (%s)", nsid, err, b)
		}
	}
	return nil
}

// fhAccount is one account of the workload.
type fhAccount struct {
	idx    int
	did    string
	handle string
	token  string
}

// owned is a record the workload wrote and may change again.
type owned struct {
	path string // collection/rkey
	uri  string
	cid  string
}

// workload drives mixed record writes across accounts from several
// workers, and keeps the model the streams are checked against: the
// records each account should end with, the ops and commits made, and the
// #identity events (DID and handle, in order per DID) there should be.
//
// Workers share accounts, so writes to one repository race each other and
// exercise the per-repository serialization, but never the same record: a
// worker only updates and deletes records it created itself, and only
// worker idx%workers writes account idx's profile.
type workload struct {
	c       *xrpcClient
	invite  string
	workers int

	mu         sync.Mutex
	accounts   []*fhAccount
	records    map[string]map[string]string // did → path → cid
	identities map[string][]string          // did → handles announced, in order
	ops        map[string]int               // create, update, delete
	commits    int                          // commits made by writes (not sign-ups)
	calls      map[string]int               // successful calls by kind

	done atomic.Int64 // write calls completed
}

func newWorkload(c *xrpcClient, invite string, workers int) *workload {
	return &workload{
		c:          c,
		invite:     invite,
		workers:    workers,
		records:    map[string]map[string]string{},
		identities: map[string][]string{},
		ops:        map[string]int{},
		calls:      map[string]int{},
	}
}

func (w *workload) signUp(ctx context.Context, idx int) (*fhAccount, error) {
	handle := fmt.Sprintf("fh%02d.test", idx)
	var out struct{ AccessJwt, DID, Handle string }
	err := w.c.call(ctx, http.MethodPost, "com.atproto.server.createAccount", "", map[string]string{
		"handle":     handle,
		"email":      fmt.Sprintf("fh%02d@example.com", idx),
		"password":   fmt.Sprintf("password-%02d", idx),
		"inviteCode": w.invite,
	}, &out)
	if err != nil {
		return nil, err
	}
	a := &fhAccount{idx: idx, did: out.DID, handle: out.Handle, token: out.AccessJwt}
	w.mu.Lock()
	w.accounts = append(w.accounts, a)
	w.records[a.did] = map[string]string{}
	w.identities[a.did] = append(w.identities[a.did], handle)
	w.mu.Unlock()
	return a, nil
}

func (w *workload) updateHandle(ctx context.Context, a *fhAccount, handle string) error {
	if err := w.c.call(ctx, http.MethodPost, "com.atproto.identity.updateHandle", a.token, map[string]string{"handle": handle}, nil); err != nil {
		return err
	}
	w.mu.Lock()
	a.handle = handle
	w.identities[a.did] = append(w.identities[a.did], handle)
	w.mu.Unlock()
	return nil
}

func (w *workload) pick(rng *rand.Rand) *fhAccount {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.accounts[rng.IntN(len(w.accounts))]
}

func (w *workload) someDID(rng *rand.Rand, not string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	for {
		if d := w.accounts[rng.IntN(len(w.accounts))].did; d != not || len(w.accounts) == 1 {
			return d
		}
	}
}

// committed records one successful write call: its ops and the records it
// leaves.
func (w *workload) committed(kind, did string, puts map[string]string, deletes []string, ops map[string]int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.commits++
	w.calls[kind]++
	for p, c := range puts {
		w.records[did][p] = c
	}
	for _, p := range deletes {
		delete(w.records[did], p)
	}
	for k, n := range ops {
		w.ops[k] += n
	}
	w.done.Add(1)
}

// worker is one writer: its own records per account, and its own random
// sequence.
type worker struct {
	w    *workload
	id   int
	rng  *rand.Rand
	own  map[string][]owned // did → records this worker created
	post map[string][]owned // did → posts among them (likes point at posts)
	n    int                // text counter, so every update changes bytes
	// scratch makes the record keys of records created and deleted in
	// one call; its clock id keeps them apart from the server's.
	scratch *syntax.TIDClock
}

func (w *workload) newWorker(id int, seed uint64) *worker {
	return &worker{w: w, id: id, rng: rand.New(rand.NewPCG(seed, uint64(id))), own: map[string][]owned{}, post: map[string][]owned{}, scratch: syntax.NewTIDClock(uint(512 + id))}
}

func now() string { return time.Now().UTC().Format(datetime.Layout) }

func (k *worker) text() string {
	k.n++
	return fmt.Sprintf("worker %d says %d: %s", k.id, k.n, strings.Repeat("·", k.rng.IntN(40)))
}

// newRecord returns a collection and a record to create: a post, a like
// of a post some worker wrote, or a follow.
func (k *worker) newRecord(did string) (string, map[string]any) {
	switch r := k.rng.IntN(10); {
	case r < 6:
		return "app.bsky.feed.post", map[string]any{"$type": "app.bsky.feed.post", "text": k.text(), "createdAt": now()}
	case r < 8:
		if posts := k.post[did]; len(posts) > 0 {
			p := posts[k.rng.IntN(len(posts))]
			return "app.bsky.feed.like", map[string]any{"$type": "app.bsky.feed.like", "subject": map[string]any{"uri": p.uri, "cid": p.cid}, "createdAt": now()}
		}
		fallthrough
	default:
		return "app.bsky.graph.follow", map[string]any{"$type": "app.bsky.graph.follow", "subject": k.w.someDID(k.rng, did), "createdAt": now()}
	}
}

func (k *worker) remember(did string, o owned) {
	k.own[did] = append(k.own[did], o)
	if strings.HasPrefix(o.path, "app.bsky.feed.post/") {
		k.post[did] = append(k.post[did], o)
	}
}

// take removes and returns a random record of this worker in did,
// restricted to posts when posts is set.
func (k *worker) take(did string, posts bool) (owned, bool) {
	list := k.own[did]
	var idx []int
	for i, o := range list {
		if !posts || strings.HasPrefix(o.path, "app.bsky.feed.post/") {
			idx = append(idx, i)
		}
	}
	if len(idx) == 0 {
		return owned{}, false
	}
	i := idx[k.rng.IntN(len(idx))]
	o := list[i]
	k.own[did] = append(list[:i:i], list[i+1:]...)
	k.forgetPost(did, o.path)
	return o, true
}

func (k *worker) forgetPost(did, path string) {
	ps := k.post[did]
	for i, p := range ps {
		if p.path == path {
			k.post[did] = append(ps[:i:i], ps[i+1:]...)
			return
		}
	}
}

func pathOf(uri string) string {
	// at://did/collection/rkey
	parts := strings.SplitN(strings.TrimPrefix(uri, "at://"), "/", 2)
	if len(parts) != 2 {
		return ""
	}
	return parts[1]
}

type writeOut struct {
	URI, CID string
}

// step makes one write call on a random account.
func (k *worker) step(ctx context.Context) error {
	a := k.w.pick(k.rng)
	did := a.did
	switch r := k.rng.IntN(100); {
	case r < 40:
		return k.create(ctx, a)
	case r < 47 && a.idx%k.w.workers == k.id:
		return k.profile(ctx, a)
	case r < 62:
		o, ok := k.take(did, true)
		if !ok {
			return k.create(ctx, a)
		}
		return k.update(ctx, a, o)
	case r < 77:
		o, ok := k.take(did, false)
		if !ok {
			return k.create(ctx, a)
		}
		return k.delete(ctx, a, o)
	default:
		return k.batch(ctx, a)
	}
}

func (k *worker) create(ctx context.Context, a *fhAccount) error {
	col, rec := k.newRecord(a.did)
	var out writeOut
	if err := k.w.c.call(ctx, http.MethodPost, "com.atproto.repo.createRecord", a.token,
		map[string]any{"repo": a.did, "collection": col, "record": rec}, &out); err != nil {
		return err
	}
	o := owned{path: pathOf(out.URI), uri: out.URI, cid: out.CID}
	k.remember(a.did, o)
	k.w.committed("createRecord", a.did, map[string]string{o.path: o.cid}, nil, map[string]int{"create": 1})
	return nil
}

func (k *worker) update(ctx context.Context, a *fhAccount, o owned) error {
	rkey := strings.TrimPrefix(o.path, "app.bsky.feed.post/")
	var out writeOut
	if err := k.w.c.call(ctx, http.MethodPost, "com.atproto.repo.putRecord", a.token, map[string]any{
		"repo": a.did, "collection": "app.bsky.feed.post", "rkey": rkey, "swapRecord": o.cid,
		"record": map[string]any{"$type": "app.bsky.feed.post", "text": k.text(), "createdAt": now()},
	}, &out); err != nil {
		return err
	}
	o.uri, o.cid = out.URI, out.CID
	k.remember(a.did, o)
	k.w.committed("putRecord", a.did, map[string]string{o.path: o.cid}, nil, map[string]int{"update": 1})
	return nil
}

func (k *worker) delete(ctx context.Context, a *fhAccount, o owned) error {
	col, rkey, _ := strings.Cut(o.path, "/")
	if err := k.w.c.call(ctx, http.MethodPost, "com.atproto.repo.deleteRecord", a.token,
		map[string]any{"repo": a.did, "collection": col, "rkey": rkey, "swapRecord": o.cid}, nil); err != nil {
		return err
	}
	k.w.committed("deleteRecord", a.did, nil, []string{o.path}, map[string]int{"delete": 1})
	return nil
}

// profile puts the account's profile: a create the first time, an update
// after. Only one worker writes a given account's profile.
func (k *worker) profile(ctx context.Context, a *fhAccount) error {
	const path = "app.bsky.actor.profile/self"
	k.w.mu.Lock()
	_, exists := k.w.records[a.did][path]
	k.w.mu.Unlock()
	var out writeOut
	if err := k.w.c.call(ctx, http.MethodPost, "com.atproto.repo.putRecord", a.token, map[string]any{
		"repo": a.did, "collection": "app.bsky.actor.profile", "rkey": "self",
		"record": map[string]any{"$type": "app.bsky.actor.profile", "displayName": fmt.Sprintf("Account %d", a.idx), "description": k.text()},
	}, &out); err != nil {
		return err
	}
	op := "create"
	if exists {
		op = "update"
	}
	k.w.committed("putRecord profile", a.did, map[string]string{path: out.CID}, nil, map[string]int{op: 1})
	return nil
}

// batch makes one applyWrites call of 2 to 10 writes mixing creates,
// updates and deletes, on distinct records.
func (k *worker) batch(ctx context.Context, a *fhAccount) error {
	n := 2 + k.rng.IntN(9)
	type pending struct {
		action  string
		o       owned // update, delete: the record before
		scratch bool  // half of a create and delete of one path, which nets out
	}
	var (
		writes []map[string]any
		plan   []pending
	)
	for range n {
		switch r := k.rng.IntN(10); {
		case r < 3:
			if o, ok := k.take(a.did, true); ok {
				writes = append(writes, map[string]any{
					"$type": "com.atproto.repo.applyWrites#update", "collection": "app.bsky.feed.post",
					"rkey":  strings.TrimPrefix(o.path, "app.bsky.feed.post/"),
					"value": map[string]any{"$type": "app.bsky.feed.post", "text": k.text(), "createdAt": now()},
				})
				plan = append(plan, pending{action: "update", o: o})
				continue
			}
		case r < 6:
			if o, ok := k.take(a.did, false); ok {
				col, rkey, _ := strings.Cut(o.path, "/")
				writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": col, "rkey": rkey})
				plan = append(plan, pending{action: "delete", o: o})
				continue
			}
		case r == 9:
			// A record created and deleted in the same call: the commit's
			// ops carry neither, as consumers can only check net changes.
			col, rec := k.newRecord(a.did)
			rkey := k.scratch.Next().String()
			writes = append(writes,
				map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": col, "rkey": rkey, "value": rec},
				map[string]any{"$type": "com.atproto.repo.applyWrites#delete", "collection": col, "rkey": rkey})
			plan = append(plan, pending{action: "create", scratch: true}, pending{action: "delete", scratch: true})
			continue
		}
		col, rec := k.newRecord(a.did)
		writes = append(writes, map[string]any{"$type": "com.atproto.repo.applyWrites#create", "collection": col, "value": rec})
		plan = append(plan, pending{action: "create"})
	}
	var out struct {
		Results []struct {
			Type string `json:"$type"`
			URI  string `json:"uri"`
			CID  string `json:"cid"`
		}
	}
	if err := k.w.c.call(ctx, http.MethodPost, "com.atproto.repo.applyWrites", a.token,
		map[string]any{"repo": a.did, "writes": writes}, &out); err != nil {
		return err
	}
	if len(out.Results) != len(plan) {
		return fmt.Errorf("applyWrites: %d results for %d writes", len(out.Results), len(plan))
	}
	puts, ops := map[string]string{}, map[string]int{}
	var deletes []string
	for i, p := range plan {
		res := out.Results[i]
		want := "com.atproto.repo.applyWrites#" + p.action + "Result"
		if res.Type != want {
			return fmt.Errorf("applyWrites result %d is %s, want %s", i, res.Type, want)
		}
		if p.scratch {
			continue
		}
		ops[p.action]++
		switch p.action {
		case "delete":
			deletes = append(deletes, p.o.path)
		default:
			o := owned{path: pathOf(res.URI), uri: res.URI, cid: res.CID}
			k.remember(a.did, o)
			puts[o.path] = o.cid
		}
	}
	k.w.committed("applyWrites", a.did, puts, deletes, ops)
	return nil
}
