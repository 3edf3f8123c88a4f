package readafterwrite

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/proxy"
	"github.com/hearth-pds/hearth/store"
)

// localViewer builds views of the caller's own records, as the official
// LocalViewer does; it lives for one request.
type localViewer struct {
	v   *Viewer
	did string
	// author is the caller's basic profile view, read once.
	author   map[string]any
	authorOK bool
}

func (v *Viewer) localViewer(did string) *localViewer { return &localViewer{v: v, did: did} }

// profileBasic is the caller's ProfileViewBasic from the account and its
// current profile record; nil when the account is gone.
func (lv *localViewer) profileBasic(ctx context.Context) (map[string]any, error) {
	if lv.authorOK {
		return lv.author, nil
	}
	acct, err := lv.v.store.AccountByDID(ctx, syntax.DID(lv.did))
	if errors.Is(err, store.ErrNotFound) {
		lv.authorOK = true
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	handle := acct.Handle
	if handle == "" {
		handle = "handle.invalid"
	}
	view := map[string]any{"did": lv.did, "handle": handle}
	ref, err := lv.v.store.Record(ctx, syntax.DID(lv.did), profileNSID, "self")
	switch {
	case err == nil:
		profile, err := lv.v.recordJSON(ctx, lv.did, ref.CID)
		if err != nil {
			return nil, err
		}
		setOrDelete(view, "displayName", profile["displayName"])
		if c := blobCID(profile["avatar"]); c != "" {
			view["avatar"] = lv.v.imageURL("avatar", lv.did, c)
		}
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	lv.author, lv.authorOK = view, true
	return view, nil
}

// post is the PostView of a newer local post: counts 0, as they are
// right after creation.
func (lv *localViewer) post(ctx context.Context, rec localRecord) (map[string]any, error) {
	author, err := lv.profileBasic(ctx)
	if err != nil || author == nil {
		return nil, err
	}
	view := map[string]any{
		"uri": rec.uri, "cid": rec.cid,
		"likeCount": 0, "replyCount": 0, "repostCount": 0, "quoteCount": 0,
		"author": author, "record": rec.value, "indexedAt": rec.indexedAtString(),
	}
	if embed, ok := rec.value["embed"].(map[string]any); ok {
		e, err := lv.embed(ctx, embed)
		if err != nil {
			return nil, err
		}
		if e != nil {
			view["embed"] = e
		}
	}
	return view, nil
}

func isType(v map[string]any, nsid string) bool {
	t, _ := v["$type"].(string)
	return t == nsid || t == nsid+"#main"
}

// embed renders a post's embed as the AppView would: images and external
// links locally, quoted records looked up on the AppView.
func (lv *localViewer) embed(ctx context.Context, e map[string]any) (map[string]any, error) {
	switch {
	case isType(e, "app.bsky.embed.images"):
		return lv.images(e), nil
	case isType(e, "app.bsky.embed.external"):
		return lv.external(e), nil
	case isType(e, "app.bsky.embed.record"):
		return lv.recordEmbed(ctx, e)
	case isType(e, "app.bsky.embed.recordWithMedia"):
		media, _ := e["media"].(map[string]any)
		var m map[string]any
		switch {
		case media != nil && isType(media, "app.bsky.embed.images"):
			m = lv.images(media)
		case media != nil && isType(media, "app.bsky.embed.external"):
			m = lv.external(media)
		default:
			return nil, nil
		}
		rec, _ := e["record"].(map[string]any)
		r, err := lv.recordEmbed(ctx, rec)
		if err != nil {
			return nil, err
		}
		return map[string]any{"$type": "app.bsky.embed.recordWithMedia#view", "record": r, "media": m}, nil
	}
	return nil, nil
}

func (lv *localViewer) images(e map[string]any) map[string]any {
	list, _ := e["images"].([]any)
	out := make([]any, 0, len(list))
	for _, it := range list {
		img, _ := it.(map[string]any)
		if img == nil {
			continue
		}
		c := blobCID(img["image"])
		view := map[string]any{
			"thumb":    lv.v.imageURL("feed_thumbnail", lv.did, c),
			"fullsize": lv.v.imageURL("feed_fullsize", lv.did, c),
		}
		setOrDelete(view, "aspectRatio", img["aspectRatio"])
		setOrDelete(view, "alt", img["alt"])
		out = append(out, view)
	}
	return map[string]any{"$type": "app.bsky.embed.images#view", "images": out}
}

func (lv *localViewer) external(e map[string]any) map[string]any {
	ext, _ := e["external"].(map[string]any)
	view := map[string]any{}
	for _, k := range []string{"uri", "title", "description"} {
		setOrDelete(view, k, ext[k])
	}
	if c := blobCID(ext["thumb"]); c != "" {
		view["thumb"] = lv.v.imageURL("feed_thumbnail", lv.did, c)
	}
	return map[string]any{"$type": "app.bsky.embed.external#view", "external": view}
}

// recordEmbed looks a quoted post, feed or list up on the AppView; an
// unknown one is viewNotFound. A failed lookup fails the patch.
func (lv *localViewer) recordEmbed(ctx context.Context, e map[string]any) (map[string]any, error) {
	ref, _ := e["record"].(map[string]any)
	uri, _ := ref["uri"].(string)
	view, err := lv.recordEmbedView(ctx, uri)
	if err != nil {
		return nil, err
	}
	if view == nil {
		view = map[string]any{"$type": "app.bsky.embed.record#viewNotFound", "uri": uri, "notFound": true}
	}
	return map[string]any{"$type": "app.bsky.embed.record#view", "record": view}, nil
}

func (lv *localViewer) recordEmbedView(ctx context.Context, uri string) (map[string]any, error) {
	at, err := syntax.ParseATURI(uri)
	if err != nil {
		return nil, nil
	}
	switch at.Collection().String() {
	case postNSID:
		out, err := lv.appView(ctx, "app.bsky.feed.getPosts", url.Values{"uris": {uri}})
		if err != nil {
			return nil, err
		}
		posts, _ := out["posts"].([]any)
		if len(posts) == 0 {
			return nil, nil
		}
		post, _ := posts[0].(map[string]any)
		if post == nil {
			return nil, nil
		}
		view := map[string]any{"$type": "app.bsky.embed.record#viewRecord"}
		for _, k := range []string{"uri", "cid", "author", "labels", "indexedAt"} {
			setOrDelete(view, k, post[k])
		}
		setOrDelete(view, "value", post["record"])
		if embed, ok := post["embed"]; ok && embed != nil {
			view["embeds"] = []any{embed}
		}
		return view, nil
	case "app.bsky.feed.generator":
		out, err := lv.appView(ctx, "app.bsky.feed.getFeedGenerator", url.Values{"feed": {uri}})
		if err != nil {
			return nil, err
		}
		return typed(out["view"], "app.bsky.feed.defs#generatorView"), nil
	case "app.bsky.graph.list":
		out, err := lv.appView(ctx, "app.bsky.graph.getList", url.Values{"list": {uri}})
		if err != nil {
			return nil, err
		}
		return typed(out["list"], "app.bsky.graph.defs#listView"), nil
	}
	return nil, nil
}

func typed(v any, typ string) map[string]any {
	m, _ := v.(map[string]any)
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m)+1)
	for k, x := range m {
		out[k] = x
	}
	out["$type"] = typ
	return out
}

// appView calls a query of the configured AppView as the caller.
func (lv *localViewer) appView(ctx context.Context, nsid string, q url.Values) (map[string]any, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/xrpc/"+nsid+"?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	piped, err := lv.v.pipe.Pipethrough(req, nsid, proxy.PipeOptions{Issuer: lv.did})
	if err != nil {
		return nil, fmt.Errorf("%s on the AppView: %w", nsid, err)
	}
	raw, err := piped.Decoded()
	if err != nil {
		return nil, fmt.Errorf("%s on the AppView: %w", nsid, err)
	}
	out, ok := decodeObject(raw)
	if !ok {
		return nil, fmt.Errorf("%s on the AppView: not a JSON object", nsid)
	}
	return out, nil
}

// updateProfileBasic, updateProfile and updateProfileDetailed give a
// profile view the newer record's fields, as the official LocalViewer
// does (a field the record lacks is removed).
func (lv *localViewer) updateProfileBasic(view, record map[string]any) map[string]any {
	out := make(map[string]any, len(view))
	for k, x := range view {
		out[k] = x
	}
	setOrDelete(out, "displayName", record["displayName"])
	delete(out, "avatar")
	if c := blobCID(record["avatar"]); c != "" {
		out["avatar"] = lv.v.imageURL("avatar", lv.did, c)
	}
	return out
}

func (lv *localViewer) updateProfile(view, record map[string]any) map[string]any {
	out := lv.updateProfileBasic(view, record)
	setOrDelete(out, "description", record["description"])
	return out
}

func (lv *localViewer) updateProfileDetailed(view, record map[string]any) map[string]any {
	out := lv.updateProfile(view, record)
	delete(out, "banner")
	if c := blobCID(record["banner"]); c != "" {
		out["banner"] = lv.v.imageURL("banner", lv.did, c)
	}
	return out
}

// insertPosts puts the newer posts into a feed page by indexedAt, newest
// first, leaving out those older than the page's last item (they belong
// to a later page). Posts are oldest first.
func (lv *localViewer) insertPosts(ctx context.Context, feed []any, posts []localRecord) ([]any, error) {
	if len(posts) == 0 {
		return feed, nil
	}
	last := "1970-01-01T00:00:00.000Z"
	if len(feed) > 0 {
		if t := postIndexedAt(feed[len(feed)-1]); t != "" {
			last = t
		}
	}
	for i := len(posts) - 1; i >= 0; i-- {
		if posts[i].indexedAtString() <= last {
			continue
		}
		view, err := lv.post(ctx, posts[i])
		if err != nil {
			return nil, err
		}
		if view == nil {
			continue
		}
		at := view["indexedAt"].(string)
		idx := len(feed)
		for j, item := range feed {
			if postIndexedAt(item) < at {
				idx = j
				break
			}
		}
		feed = append(feed[:idx], append([]any{map[string]any{"post": view}}, feed[idx:]...)...)
	}
	return feed, nil
}

func postIndexedAt(item any) string {
	m, _ := item.(map[string]any)
	post, _ := m["post"].(map[string]any)
	t, _ := post["indexedAt"].(string)
	return t
}

// blobCID is a blob's CID, from the current or the legacy form.
func blobCID(v any) string {
	m, _ := v.(map[string]any)
	if m == nil {
		return ""
	}
	if ref, ok := m["ref"].(map[string]any); ok {
		if l, ok := ref["$link"].(string); ok {
			return l
		}
	}
	c, _ := m["cid"].(string)
	return c
}

// setOrDelete mirrors a JavaScript spread with an optional field: set
// when present, removed when undefined.
func setOrDelete(m map[string]any, key string, v any) {
	if v == nil {
		delete(m, key)
		return
	}
	m[key] = v
}

// didOf is the DID a thread's at-uri names, a hosted handle resolved.
func (v *Viewer) didOf(ctx context.Context, uri syntax.ATURI) string {
	auth := uri.Authority().String()
	if strings.HasPrefix(auth, "did:") {
		return auth
	}
	if acct, err := v.store.AccountByHandle(ctx, syntax.Handle(auth)); err == nil {
		return acct.DID.String()
	}
	return auth
}
