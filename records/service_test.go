package records

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/syntax"
	indigoevents "github.com/bluesky-social/indigo/events"

	"github.com/hearth-pds/hearth/keyring"
	"github.com/hearth-pds/hearth/lexicons"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
	"github.com/hearth-pds/hearth/store/sqlite"
)

type events struct {
	mu  sync.Mutex
	got []store.Event
}

func (e *events) Publish(evs ...store.Event) {
	e.mu.Lock()
	e.got = append(e.got, evs...)
	e.mu.Unlock()
}

const did = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"

func newService(t testing.TB) (*Service, *events, store.Store) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "hearth.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	key, _ := atcrypto.GeneratePrivateKeyK256()
	root, blocks, err := repo.Genesis(did, key, "2222222222222")
	if err != nil {
		t.Fatal(err)
	}
	na := store.NewAccount{
		Account:    store.Account{DID: did, Handle: "alice.test", Email: "a@example.com", PasswordHash: "x", CreatedAt: time.Now()},
		SigningKey: key.Bytes(), RootCID: root, Rev: "2222222222222",
	}
	for _, b := range blocks {
		na.Blocks = append(na.Blocks, store.Block{CID: b.CID, Content: b.Data})
	}
	if _, err := st.CreateAccount(ctx, na); err != nil {
		t.Fatal(err)
	}
	cat, _, err := lexicons.Catalog()
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	return New(st, keyring.New(st, nil), nil, repo.NewEngine(0), ev, cat, nil), ev, st
}

func post(text string) map[string]any {
	return map[string]any{"text": text, "createdAt": "2026-11-22T07:00:00.000Z"}
}

func ptr[T any](v T) *T { return &v }

func TestApplyValidation(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := context.Background()
	tests := []struct {
		name       string
		write      Write
		validate   *bool
		wantStatus string
		wantErr    string // XRPC error name
	}{
		{"known valid", Write{Action: repo.Create, Collection: "app.bsky.feed.post", Record: post("hi")}, nil, "valid", ""},
		{"known valid, validate false", Write{Action: repo.Create, Collection: "app.bsky.feed.post", Record: post("hi")}, ptr(false), "", ""},
		{"unknown type", Write{Action: repo.Create, Collection: "com.example.thing", Record: map[string]any{"a": int64(1)}}, nil, "unknown", ""},
		{"unknown type, validate true", Write{Action: repo.Create, Collection: "com.example.thing", Record: map[string]any{"a": int64(1)}}, ptr(true), "", "InvalidRequest"},
		{"invalid post", Write{Action: repo.Create, Collection: "app.bsky.feed.post", Record: map[string]any{"text": "no date"}}, nil, "", "InvalidRequest"},
		{"invalid post, validate false", Write{Action: repo.Create, Collection: "app.bsky.feed.post", Record: map[string]any{"text": "no date"}}, ptr(false), "", ""},
		{"other $type", Write{Action: repo.Create, Collection: "app.bsky.feed.post", Record: map[string]any{"$type": "app.bsky.feed.like"}}, nil, "", "InvalidRequest"},
		{"other $type, validate false", Write{Action: repo.Create, Collection: "app.bsky.feed.post", Record: map[string]any{"$type": "app.bsky.feed.like"}}, ptr(false), "", "InvalidRequest"},
		{"key rule skipped, validate false", Write{Action: repo.Create, Collection: "app.bsky.actor.profile", RKey: "other", Record: map[string]any{}}, ptr(false), "", ""},
		{"profile key must be self", Write{Action: repo.Create, Collection: "app.bsky.actor.profile", RKey: "other", Record: map[string]any{}}, nil, "", "InvalidRequest"},
		{"post key must be a TID", Write{Action: repo.Create, Collection: "app.bsky.feed.post", RKey: "hello", Record: post("x")}, nil, "", "InvalidRequest"},
		{"bad collection", Write{Action: repo.Create, Collection: "not a nsid", Record: post("x")}, nil, "", "InvalidRequest"},
		{"bad rkey", Write{Action: repo.Create, Collection: "com.example.thing", RKey: "..", Record: post("x")}, nil, "", "InvalidRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Validate: tt.validate, Writes: []Write{tt.write}})
			if tt.wantErr != "" {
				var e *Error
				if !errors.As(err, &e) || e.Name != tt.wantErr {
					t.Fatalf("got %v, want %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Results[0].ValidationStatus; got != tt.wantStatus {
				t.Errorf("validationStatus %q, want %q", got, tt.wantStatus)
			}
			if _, ok := tt.write.Record["$type"]; !ok {
				t.Error("$type not filled in")
			}
		})
	}
}

func TestApplySwapsAndEvents(t *testing.T) {
	svc, ev, st := newService(t)
	ctx := context.Background()
	created, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Writes: []Write{{Action: repo.Create, Collection: "app.bsky.feed.post", RKey: "3l3qo2vutsw2b", Record: post("one")}}})
	if err != nil {
		t.Fatal(err)
	}
	root, _ := st.RepoRoot(ctx, did)
	if root.CID.String() != created.Commit.CID || len(ev.got) != 1 || ev.got[0].Kind != "commit" {
		t.Fatalf("head %s, commit %s, events %+v", root.CID, created.Commit.CID, ev.got)
	}
	wrongCID := "bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm"
	refusals := []Request{
		{Repo: did, Caller: did, SwapCommit: wrongCID, Writes: []Write{{Action: repo.Create, Collection: "app.bsky.feed.post", Record: post("x")}}},
		{Repo: did, Caller: did, Writes: []Write{{Action: Upsert, Collection: "app.bsky.feed.post", RKey: "3l3qo2vutsw2b", Record: post("x"), SwapRecord: ptr(wrongCID)}}},
		{Repo: did, Caller: did, Writes: []Write{{Action: Upsert, Collection: "app.bsky.feed.post", RKey: "3l3qo2vutsw2b", Record: post("x"), SwapRecord: ptr("")}}},
		{Repo: did, Caller: did, Writes: []Write{{Action: repo.Create, Collection: "app.bsky.feed.post", RKey: "3l3qo2vutsw2b", Record: post("dup")}}},
	}
	for i, req := range refusals {
		if _, err := svc.Apply(ctx, req); err == nil {
			t.Errorf("refusal %d accepted", i)
		}
	}
	if after, _ := st.RepoRoot(ctx, did); after.CID != root.CID || len(ev.got) != 1 {
		t.Errorf("refused writes changed the repo (%s) or the stream (%d events)", after.CID, len(ev.got))
	}
	// deleteRecord of a missing record changes nothing; applyWrites'
	// delete refuses it.
	resp, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Writes: []Write{{Action: DeleteIfPresent, Collection: "app.bsky.feed.post", RKey: "3l3qo2vutsw2c", SwapRecord: ptr(wrongCID)}}})
	if err != nil || resp.Commit != nil || len(ev.got) != 1 {
		t.Errorf("deleteRecord of a missing record: %+v, %v, %d events", resp, err, len(ev.got))
	}
	if _, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Writes: []Write{{Action: repo.Delete, Collection: "app.bsky.feed.post", RKey: "3l3qo2vutsw2c"}}}); err == nil {
		t.Error("applyWrites delete of a missing record accepted")
	}
	// A second create of one path in a request is refused.
	twice := []Write{
		{Action: repo.Create, Collection: "com.example.thing", RKey: "x", Record: map[string]any{}},
		{Action: repo.Create, Collection: "com.example.thing", RKey: "x", Record: map[string]any{"a": int64(1)}},
	}
	if _, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Writes: twice}); err == nil || len(ev.got) != 1 {
		t.Errorf("two creates of one path: %v, %d events", err, len(ev.got))
	}
	// Rewriting a record as it is makes no commit.
	same, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Writes: []Write{{Action: Upsert, Collection: "app.bsky.feed.post", RKey: "3l3qo2vutsw2b", Record: post("one")}}})
	if err != nil || same.Commit != nil || len(ev.got) != 1 {
		t.Errorf("identical put: %+v, %v, %d events", same, err, len(ev.got))
	}
	// A matching swap goes through.
	if _, err := svc.Apply(ctx, Request{Repo: did, Caller: did, SwapCommit: root.CID.String(), Writes: []Write{{Action: Upsert, Collection: "app.bsky.feed.post", RKey: "3l3qo2vutsw2b", Record: post("two"), SwapRecord: ptr(created.Results[0].CID)}}}); err != nil {
		t.Fatal(err)
	}
	rec, err := svc.GetRecord(ctx, did, "app.bsky.feed.post", "3l3qo2vutsw2b", "")
	if err != nil || rec.Value["text"] != "two" {
		t.Errorf("GetRecord = %+v, %v", rec, err)
	}
}

// TestApplySamePath: a path named more than once in a request is run
// write by write, as the official PDS does; the commit carries the net
// change per path, and its #commit event passes indigo's verifier.
func TestApplySamePath(t *testing.T) {
	const thing = "com.example.thing"
	rec := func(a int64) map[string]any { return map[string]any{"a": a} }
	create := func(rkey string, a int64) Write {
		return Write{Action: repo.Create, Collection: thing, RKey: rkey, Record: rec(a)}
	}
	update := func(rkey string, a int64) Write {
		return Write{Action: repo.Update, Collection: thing, RKey: rkey, Record: rec(a)}
	}
	del := func(rkey string) Write { return Write{Action: repo.Delete, Collection: thing, RKey: rkey} }
	tests := []struct {
		name    string
		writes  []Write
		wantErr bool
		ops     []string       // net #commit ops, "action path"
		after   map[string]any // rkey → "a" afterwards (nil: absent)
	}{
		{name: "create then delete", writes: []Write{create("new", 1), del("new")}, after: map[string]any{"new": nil}},
		{name: "create then update", writes: []Write{create("new", 1), update("new", 2)}, ops: []string{"create " + thing + "/new"}, after: map[string]any{"new": int64(2)}},
		{name: "update then update", writes: []Write{update("old", 1), update("old", 2)}, ops: []string{"update " + thing + "/old"}, after: map[string]any{"old": int64(2)}},
		{name: "update then delete", writes: []Write{update("old", 1), del("old")}, ops: []string{"delete " + thing + "/old"}, after: map[string]any{"old": nil}},
		{name: "delete then create", writes: []Write{del("old"), create("old", 3)}, ops: []string{"update " + thing + "/old"}, after: map[string]any{"old": int64(3)}},
		{name: "delete then create as it was", writes: []Write{del("old"), create("old", 0)}, after: map[string]any{"old": int64(0)}},
		{name: "pair among others", writes: []Write{create("b", 1), create("new", 1), del("new"), del("old")}, ops: []string{"create " + thing + "/b", "delete " + thing + "/old"}, after: map[string]any{"new": nil, "old": nil, "b": int64(1)}},
		{name: "create twice", writes: []Write{create("new", 1), create("new", 2)}, wantErr: true},
		{name: "create of an existing path after an update", writes: []Write{update("old", 1), create("old", 2)}, wantErr: true},
		{name: "delete twice", writes: []Write{del("old"), del("old")}, wantErr: true},
		{name: "update after a delete", writes: []Write{del("old"), update("old", 2)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, ev, _ := newService(t)
			ctx := context.Background()
			if _, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Writes: []Write{create("old", 0)}}); err != nil {
				t.Fatal(err)
			}
			resp, err := svc.Apply(ctx, Request{Repo: did, Caller: did, Writes: tt.writes})
			if tt.wantErr {
				var e *Error
				if !errors.As(err, &e) || e.Name != "InvalidRequest" || len(ev.got) != 1 {
					t.Fatalf("got %v (%d events), want InvalidRequest and no commit", err, len(ev.got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if resp.Commit == nil || len(resp.Results) != len(tt.writes) || len(ev.got) != 2 {
				t.Fatalf("commit %+v, %d results, %d events; want a commit, one result per write", resp.Commit, len(resp.Results), len(ev.got))
			}
			for i, w := range tt.writes {
				if got := resp.Results[i].Action; got != w.Action {
					t.Errorf("result %d is a %s, want %s", i, got, w.Action)
				}
			}
			msg := commitMessage(t, ev.got[1].Frame)
			var ops []string
			for _, op := range msg.Ops {
				ops = append(ops, string(op.Action)+" "+op.Path)
			}
			if got, want := strings.Join(ops, ","), strings.Join(tt.ops, ","); got != want {
				t.Errorf("ops %q, want %q", got, want)
			}
			if _, err := atrepo.VerifyCommitMessage(ctx, msg); err != nil {
				t.Errorf("indigo VerifyCommitMessage: %v", err)
			}
			for rkey, want := range tt.after {
				r, err := svc.GetRecord(ctx, did, thing, rkey, "")
				switch {
				case want == nil && err == nil:
					t.Errorf("%s still there: %v", rkey, r.Value)
				case want != nil && (err != nil || r.Value["a"] != want):
					t.Errorf("%s = %+v, %v; want a=%v", rkey, r, err, want)
				}
			}
		})
	}
}

// commitMessage decodes a stored #commit frame.
func commitMessage(t *testing.T, frame []byte) *comatproto.SyncSubscribeRepos_Commit {
	t.Helper()
	r := bytes.NewReader(frame)
	var head indigoevents.EventHeader
	if err := head.UnmarshalCBOR(r); err != nil || head.MsgType != "#commit" {
		t.Fatalf("frame header %+v: %v", head, err)
	}
	var msg comatproto.SyncSubscribeRepos_Commit
	if err := msg.UnmarshalCBOR(r); err != nil {
		t.Fatal(err)
	}
	return &msg
}

// TestApplyRepo: the repository is named by DID or handle, must be the
// caller's and must exist, with the official PDS's refusals.
func TestApplyRepo(t *testing.T) {
	svc, _, _ := newService(t)
	ctx := context.Background()
	write := []Write{{Action: repo.Create, Collection: "com.example.thing", Record: map[string]any{}}}
	tests := []struct {
		name    string
		repo    syntax.AtIdentifier
		caller  syntax.DID
		wantErr string // XRPC error name, "" for success
	}{
		{"by DID", did, did, ""},
		{"by handle", "alice.test", did, ""},
		{"another's", did, "did:plc:bbbbbbbbbbbbbbbbbbbbbbbb", "AuthenticationRequired"},
		{"unknown DID", "did:plc:cccccccccccccccccccccccc", "did:plc:cccccccccccccccccccccccc", "AccountNotFound"},
		{"unknown handle", "nobody.test", did, "AccountNotFound"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := svc.Apply(ctx, Request{Repo: tt.repo, Caller: tt.caller, Writes: write})
			var e *Error
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatal(err)
			case tt.wantErr != "" && (!errors.As(err, &e) || e.Name != tt.wantErr):
				t.Fatalf("got %v, want %s", err, tt.wantErr)
			}
		})
	}
}
