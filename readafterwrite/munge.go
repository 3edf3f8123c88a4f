package readafterwrite

import (
	"context"
	"net/http"
	"net/url"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/refusal"
)

// The mungers of each view, after the official handlers. Each reports
// false when the body does not have the shape it patches.

func mungeProfile(_ context.Context, lv *localViewer, body map[string]any, local *localRecords) (bool, error) {
	if local.profile == nil || body["did"] != lv.did {
		return true, nil
	}
	patched := lv.updateProfileDetailed(body, local.profile.value)
	clear(body)
	for k, x := range patched {
		body[k] = x
	}
	return true, nil
}

func mungeProfiles(_ context.Context, lv *localViewer, body map[string]any, local *localRecords) (bool, error) {
	profiles, ok := body["profiles"].([]any)
	if !ok {
		return false, nil
	}
	if local.profile == nil {
		return true, nil
	}
	for i, p := range profiles {
		if m, ok := p.(map[string]any); ok && m["did"] == lv.did {
			profiles[i] = lv.updateProfileDetailed(m, local.profile.value)
		}
	}
	return true, nil
}

func mungeTimeline(ctx context.Context, lv *localViewer, body map[string]any, local *localRecords) (bool, error) {
	feed, ok := feedOf(body)
	if !ok {
		return false, nil
	}
	feed, err := lv.insertPosts(ctx, feed, local.posts)
	if err != nil {
		return false, err
	}
	body["feed"] = feed
	return true, nil
}

// mungeAuthorFeed patches only the caller's own feed: its authors'
// profile, then the newer posts.
func mungeAuthorFeed(ctx context.Context, lv *localViewer, body map[string]any, local *localRecords) (bool, error) {
	feed, ok := feedOf(body)
	if !ok {
		return false, nil
	}
	if !isUsersFeed(feed, lv.did) {
		return true, nil
	}
	updateAuthors(lv, feed, local)
	feed, err := lv.insertPosts(ctx, feed, local.posts)
	if err != nil {
		return false, err
	}
	body["feed"] = feed
	return true, nil
}

func mungeActorLikes(_ context.Context, lv *localViewer, body map[string]any, local *localRecords) (bool, error) {
	feed, ok := feedOf(body)
	if !ok {
		return false, nil
	}
	updateAuthors(lv, feed, local)
	return true, nil
}

// feedOf is a feed page's items, each an object with a post object.
func feedOf(body map[string]any) ([]any, bool) {
	feed, ok := body["feed"].([]any)
	if !ok {
		return nil, false
	}
	for _, item := range feed {
		m, _ := item.(map[string]any)
		if _, ok := m["post"].(map[string]any); !ok {
			return nil, false
		}
	}
	return feed, true
}

func isUsersFeed(feed []any, did string) bool {
	if len(feed) == 0 {
		return false
	}
	first := feed[0].(map[string]any)
	reason, hasReason := first["reason"].(map[string]any)
	if !hasReason {
		return authorDID(first["post"]) == did
	}
	by, _ := reason["by"].(map[string]any)
	return isType(reason, "app.bsky.feed.defs#reasonRepost") && by["did"] == did
}

func authorDID(post any) any {
	p, _ := post.(map[string]any)
	a, _ := p["author"].(map[string]any)
	return a["did"]
}

// updateAuthors gives the caller's posts in a feed the newer profile.
func updateAuthors(lv *localViewer, feed []any, local *localRecords) {
	if local.profile == nil {
		return
	}
	for i, item := range feed {
		m := item.(map[string]any)
		post := m["post"].(map[string]any)
		author, ok := post["author"].(map[string]any)
		if !ok || author["did"] != lv.did {
			continue
		}
		p := copyMap(post)
		p["author"] = lv.updateProfileBasic(author, local.profile.value)
		it := copyMap(m)
		it["post"] = p
		feed[i] = it
	}
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, x := range m {
		out[k] = x
	}
	return out
}

const threadViewPost = "app.bsky.feed.defs#threadViewPost"

func mungePostThread(ctx context.Context, lv *localViewer, body map[string]any, local *localRecords) (bool, error) {
	thread, ok := body["thread"].(map[string]any)
	if !ok {
		return false, nil
	}
	if !isType(thread, threadViewPost) {
		return true, nil
	}
	thread, err := lv.addToThread(ctx, thread, local.posts)
	if err != nil {
		return false, err
	}
	body["thread"] = thread
	return true, nil
}

// addToThread puts the newer replies of a thread under their parents.
func (lv *localViewer) addToThread(ctx context.Context, thread map[string]any, posts []localRecord) (map[string]any, error) {
	post, _ := thread["post"].(map[string]any)
	threadURI, _ := post["uri"].(string)
	threadRoot := replyURI(post["record"], "root")
	for _, p := range posts {
		root := replyURI(p.value, "root")
		if root == "" || (root != threadURI && root != threadRoot) {
			continue
		}
		var err error
		if thread, err = lv.insertReply(ctx, thread, p); err != nil {
			return nil, err
		}
	}
	return thread, nil
}

func (lv *localViewer) insertReply(ctx context.Context, view map[string]any, p localRecord) (map[string]any, error) {
	post, _ := view["post"].(map[string]any)
	replies, _ := view["replies"].([]any)
	if replyURI(p.value, "parent") == post["uri"] {
		pv, err := lv.threadPost(ctx, p)
		if err != nil || pv == nil {
			return view, err
		}
		out := copyMap(view)
		out["replies"] = append([]any{pv}, replies...)
		return out, nil
	}
	if replies == nil {
		return view, nil
	}
	next := make([]any, len(replies))
	for i, r := range replies {
		next[i] = r
		if m, ok := r.(map[string]any); ok && isType(m, threadViewPost) {
			patched, err := lv.insertReply(ctx, m, p)
			if err != nil {
				return nil, err
			}
			next[i] = patched
		}
	}
	out := copyMap(view)
	out["replies"] = next
	return out, nil
}

func (lv *localViewer) threadPost(ctx context.Context, p localRecord) (map[string]any, error) {
	view, err := lv.post(ctx, p)
	if err != nil || view == nil {
		return nil, err
	}
	return map[string]any{"$type": threadViewPost, "post": view}, nil
}

// replyURI is a post record's reply.root or reply.parent URI.
func replyURI(record any, which string) string {
	r, _ := record.(map[string]any)
	reply, _ := r["reply"].(map[string]any)
	ref, _ := reply[which].(map[string]any)
	uri, _ := ref["uri"].(string)
	return uri
}

// threadNotFound answers getPostThread for one of the caller's posts the
// AppView does not know yet: the post from the store, its newer replies,
// and its parents from the AppView when it finds them. Otherwise the
// AppView's NotFound stands.
func (v *Viewer) threadNotFound(w http.ResponseWriter, r *http.Request, did string, notFound *refusal.Error, rev string) error {
	q := r.URL.Query()
	uri, err := syntax.ParseATURI(q.Get("uri"))
	if err != nil || v.didOf(r.Context(), uri) != did {
		return notFound
	}
	want := "at://" + did + "/" + uri.Collection().String() + "/" + uri.RecordKey().String()
	local, err := v.localRecords(r.Context(), did, rev)
	if err != nil {
		return err
	}
	var (
		found *localRecord
		rest  []localRecord
	)
	for i, p := range local.posts {
		if p.uri == want && found == nil {
			found = &local.posts[i]
		} else {
			rest = append(rest, p)
		}
	}
	if found == nil {
		return notFound
	}
	lv := v.localViewer(did)
	thread, err := lv.threadPost(r.Context(), *found)
	if err != nil {
		return err
	}
	if thread == nil {
		return notFound
	}
	if thread, err = lv.addToThread(r.Context(), thread, rest); err != nil {
		return err
	}
	if parent := replyURI(found.value, "parent"); parent != "" {
		params := url.Values{"uri": {parent}, "depth": {"0"}}
		if h := q.Get("parentHeight"); h != "" {
			params.Set("parentHeight", h)
		}
		// As the official: parents are a bonus, their failure ignored.
		if out, err := lv.appView(r.Context(), GetPostThread, params); err == nil && out["thread"] != nil {
			thread["parent"] = out["thread"]
		}
	}
	return writeMunged(w, map[string]any{"thread": thread}, local.lag(v.now()))
}
