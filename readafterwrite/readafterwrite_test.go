package readafterwrite

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/hearth-pds/hearth/proxy"
	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/store"
)

const (
	alice = "did:plc:alice"
	bob   = "did:plc:bob"
)

// fakeStore holds alice's records written after rev "3aaa".
type fakeStore struct {
	records []store.IndexedRecord
	blocks  map[cid.Cid][]byte
}

func (f *fakeStore) RecordsSince(_ context.Context, did syntax.DID, since syntax.TID, limit int) ([]store.IndexedRecord, error) {
	var out []store.IndexedRecord
	for _, r := range f.records {
		if did == alice && r.Rev > since && len(out) < limit {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeStore) Record(_ context.Context, did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) (*store.RecordRef, error) {
	for _, r := range f.records {
		if did == alice && r.Collection == collection && r.RKey == rkey {
			return &r.RecordRef, nil
		}
	}
	return nil, store.ErrNotFound
}

func (f *fakeStore) Block(_ context.Context, _ syntax.DID, c cid.Cid) ([]byte, error) {
	if b, ok := f.blocks[c]; ok {
		return b, nil
	}
	return nil, store.ErrNotFound
}

func (f *fakeStore) AccountByDID(_ context.Context, did syntax.DID) (*store.Account, error) {
	if did != alice {
		return nil, store.ErrNotFound
	}
	return &store.Account{DID: alice, Handle: "alice.test"}, nil
}

func (f *fakeStore) AccountByHandle(_ context.Context, h syntax.Handle) (*store.Account, error) {
	if h != "alice.test" {
		return nil, store.ErrNotFound
	}
	return &store.Account{DID: alice, Handle: h}, nil
}

func (f *fakeStore) put(t *testing.T, collection, rkey, rev string, at time.Time, jsonValue string) string {
	t.Helper()
	v, err := atdata.UnmarshalJSON([]byte(jsonValue))
	if err != nil {
		t.Fatal(err)
	}
	b, err := atdata.MarshalCBOR(v)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := multihash.Sum(b, multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	c := cid.NewCidV1(cid.DagCBOR, sum)
	f.blocks[c] = b
	f.records = append(f.records, store.IndexedRecord{
		RecordRef: store.RecordRef{Collection: syntax.NSID(collection), RKey: syntax.RecordKey(rkey), CID: c, Rev: syntax.TID(rev)},
		IndexedAt: at,
	})
	return c.String()
}

// fakePipe answers each method with a scripted upstream answer.
type fakePipe map[string]func() (*proxy.Piped, error)

func (p fakePipe) Pipethrough(r *http.Request, nsid string, _ proxy.PipeOptions) (*proxy.Piped, error) {
	return p[nsid]()
}

func answer(rev, body string) func() (*proxy.Piped, error) {
	return func() (*proxy.Piped, error) {
		h := http.Header{"Content-Type": {"application/json"}}
		if rev != "" {
			h.Set("Atproto-Repo-Rev", rev)
		}
		return &proxy.Piped{Header: h, ContentType: "application/json", Body: io.NopCloser(strings.NewReader(body))}, nil
	}
}

func newViewer(t *testing.T) (*Viewer, *fakeStore, time.Time) {
	st := &fakeStore{blocks: map[cid.Cid][]byte{}}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	v := New(Config{PublicURL: "https://pds.example", CDNURLPattern: "https://cdn.example/img/%s/plain/%s/%s@jpeg"}, nil, st)
	v.now = func() time.Time { return now }
	return v, st, now
}

func serve(t *testing.T, v *Viewer, pipe fakePipe, target string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	v.pipe = pipe
	r := httptest.NewRequest(http.MethodGet, target, nil)
	nsid := strings.TrimPrefix(strings.SplitN(target, "?", 2)[0], "/xrpc/")
	w := httptest.NewRecorder()
	if err := v.ServeView(w, r, nsid, alice); err != nil {
		t.Fatalf("ServeView: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body.String(), err)
	}
	return w, body
}

const oldPost = `{"post":{"uri":"at://did:plc:alice/app.bsky.feed.post/3old","cid":"bafyold","author":{"did":"did:plc:alice","handle":"alice.test","displayName":"Old name"},"record":{},"indexedAt":"2026-11-22T09:00:00.000Z"}}`

func TestAuthorFeedGetsNewerPostsAndProfile(t *testing.T) {
	v, st, now := newViewer(t)
	avatar := "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	st.put(t, "app.bsky.actor.profile", "self", "3new1", now.Add(-3*time.Second),
		`{"$type":"app.bsky.actor.profile","displayName":"New name","avatar":{"$type":"blob","ref":{"$link":"`+avatar+`"},"mimeType":"image/png","size":10}}`)
	st.put(t, "app.bsky.feed.post", "3new2", "3new2", now.Add(-2*time.Second), `{"$type":"app.bsky.feed.post","text":"second","createdAt":"2026-11-22T09:59:58.000Z"}`)
	st.put(t, "app.bsky.feed.post", "3new3", "3new3", now.Add(-time.Second), `{"$type":"app.bsky.feed.post","text":"third","createdAt":"2026-11-22T09:59:59.000Z"}`)
	st.put(t, "app.bsky.feed.like", "3new4", "3new4", now, `{"$type":"app.bsky.feed.like","subject":{"uri":"at://x/y/z","cid":"bafyx"},"createdAt":"2026-11-22T10:00:00.000Z"}`)

	w, body := serve(t, v, fakePipe{GetAuthorFeed: answer("3aaa", `{"feed":[`+oldPost+`],"cursor":"c1"}`)},
		"/xrpc/app.bsky.feed.getAuthorFeed?actor="+alice)
	if got := w.Header().Get("Atproto-Upstream-Lag"); got != "3000" {
		t.Errorf("lag header %q, want 3000", got)
	}
	if got := w.Header().Get("Atproto-Repo-Rev"); got != "" {
		t.Errorf("upstream rev relayed on a patched view: %q", got)
	}
	feed := body["feed"].([]any)
	var texts, names []string
	for _, it := range feed {
		post := it.(map[string]any)["post"].(map[string]any)
		rec := post["record"].(map[string]any)
		text, _ := rec["text"].(string)
		texts = append(texts, text)
		names = append(names, post["author"].(map[string]any)["displayName"].(string))
	}
	if strings.Join(texts, ",") != "third,second," {
		t.Errorf("feed texts %q, want the new posts first, newest first", texts)
	}
	if strings.Join(names, ",") != "New name,New name,New name" {
		t.Errorf("author names %q, want the new profile everywhere", names)
	}
	first := feed[0].(map[string]any)["post"].(map[string]any)
	if first["uri"] != "at://"+alice+"/app.bsky.feed.post/3new3" || first["indexedAt"] != "2026-11-22T09:59:59.000Z" || first["likeCount"] != float64(0) {
		t.Errorf("new post view %v", first)
	}
	if got := first["author"].(map[string]any)["avatar"]; got != "https://cdn.example/img/avatar/plain/"+alice+"/"+avatar+"@jpeg" {
		t.Errorf("avatar %v", got)
	}
	if body["cursor"] != "c1" {
		t.Errorf("cursor %v lost", body["cursor"])
	}
}

func TestSomeoneElsesAuthorFeedIsNotPatched(t *testing.T) {
	v, st, now := newViewer(t)
	st.put(t, "app.bsky.feed.post", "3new2", "3new2", now, `{"$type":"app.bsky.feed.post","text":"mine","createdAt":"2026-11-22T10:00:00.000Z"}`)
	bobs := strings.ReplaceAll(oldPost, alice, bob)
	_, body := serve(t, v, fakePipe{GetAuthorFeed: answer("3aaa", `{"feed":[`+bobs+`]}`)}, "/xrpc/app.bsky.feed.getAuthorFeed?actor="+bob)
	if n := len(body["feed"].([]any)); n != 1 {
		t.Errorf("bob's feed has %d items, want 1", n)
	}
}

func TestProfileGetsNewerRecord(t *testing.T) {
	v, st, now := newViewer(t)
	st.put(t, "app.bsky.actor.profile", "self", "3new1", now.Add(-time.Second), `{"$type":"app.bsky.actor.profile","displayName":"New name"}`)
	w, body := serve(t, v, fakePipe{GetProfile: answer("3aaa",
		`{"did":"`+alice+`","handle":"alice.test","displayName":"Old","description":"old bio","avatar":"https://x/a","followersCount":3}`)},
		"/xrpc/app.bsky.actor.getProfile?actor="+alice)
	if body["displayName"] != "New name" || body["followersCount"] != float64(3) {
		t.Errorf("profile %v", body)
	}
	for _, gone := range []string{"description", "avatar", "banner"} {
		if _, ok := body[gone]; ok {
			t.Errorf("%s kept although the new record has none: %v", gone, body)
		}
	}
	if w.Header().Get("Atproto-Upstream-Lag") != "1000" {
		t.Errorf("lag %q", w.Header().Get("Atproto-Upstream-Lag"))
	}
}

func TestUpToDateOrRevlessAnswersPassThrough(t *testing.T) {
	v, st, now := newViewer(t)
	st.put(t, "app.bsky.actor.profile", "self", "3new1", now, `{"$type":"app.bsky.actor.profile","displayName":"New name"}`)
	const upstream = `{"did":"did:plc:alice","handle":"alice.test","displayName":"Old"}`
	for _, rev := range []string{"", "3new1"} {
		w, body := serve(t, v, fakePipe{GetProfile: answer(rev, upstream)}, "/xrpc/app.bsky.actor.getProfile?actor="+alice)
		if body["displayName"] != "Old" || w.Header().Get("Atproto-Upstream-Lag") != "" || w.Header().Get("Atproto-Repo-Rev") != rev {
			t.Errorf("rev %q: headers %v, body %v, want the upstream answer as is", rev, w.Header(), body)
		}
	}
}

func TestThreadNotFoundAnsweredLocally(t *testing.T) {
	v, st, now := newViewer(t)
	st.put(t, "app.bsky.feed.post", "3new2", "3new2", now.Add(-time.Second), `{"$type":"app.bsky.feed.post","text":"fresh","createdAt":"2026-11-22T10:00:00.000Z"}`)
	st.put(t, "app.bsky.feed.post", "3new3", "3new3", now,
		`{"$type":"app.bsky.feed.post","text":"reply","createdAt":"2026-11-22T10:00:00.000Z","reply":{"root":{"uri":"at://did:plc:alice/app.bsky.feed.post/3new2","cid":"bafy3new2"},"parent":{"uri":"at://did:plc:alice/app.bsky.feed.post/3new2","cid":"bafy3new2"}}}`)
	pipe := fakePipe{GetPostThread: func() (*proxy.Piped, error) {
		return nil, &refusal.Error{Status: 400, Name: "NotFound", Message: "Post not found", Cause: &proxy.UpstreamAnswer{Status: 400, Rev: "3aaa"}}
	}}
	w, body := serve(t, v, pipe, "/xrpc/app.bsky.feed.getPostThread?uri=at://alice.test/app.bsky.feed.post/3new2")
	thread := body["thread"].(map[string]any)
	if thread["$type"] != threadViewPost || thread["post"].(map[string]any)["uri"] != "at://"+alice+"/app.bsky.feed.post/3new2" {
		t.Fatalf("thread %v", thread)
	}
	replies, _ := thread["replies"].([]any)
	if len(replies) != 1 || replies[0].(map[string]any)["post"].(map[string]any)["uri"] != "at://"+alice+"/app.bsky.feed.post/3new3" {
		t.Errorf("replies %v", replies)
	}
	if w.Header().Get("Atproto-Upstream-Lag") != "1000" {
		t.Errorf("lag %q", w.Header().Get("Atproto-Upstream-Lag"))
	}

	// Another account's post: the AppView's NotFound stands.
	v.pipe = pipe
	r := httptest.NewRequest(http.MethodGet, "/xrpc/app.bsky.feed.getPostThread?uri=at://"+bob+"/app.bsky.feed.post/3new2", nil)
	if err := v.ServeView(httptest.NewRecorder(), r, GetPostThread, alice); err == nil || !strings.Contains(err.Error(), "NotFound") {
		t.Errorf("someone else's thread: %v, want the NotFound", err)
	}
}

func TestImageURL(t *testing.T) {
	for _, tt := range []struct{ pattern, want string }{
		{"", "https://pds.example/xrpc/com.atproto.sync.getBlob?did=did:plc:a&cid=bafyc"},
		{"https://cdn.example/img/%s/plain/%s/%s@jpeg", "https://cdn.example/img/avatar/plain/did:plc:a/bafyc@jpeg"},
		{"https://cdn.example/%s/%%/%d/%s/%s/%s", "https://cdn.example/avatar/%/%d/did:plc:a/bafyc/%s"},
	} {
		v := New(Config{PublicURL: "https://pds.example/", CDNURLPattern: tt.pattern}, nil, nil)
		if got := v.imageURL("avatar", "did:plc:a", "bafyc"); got != tt.want {
			t.Errorf("pattern %q: %q, want %q", tt.pattern, got, tt.want)
		}
	}
}
