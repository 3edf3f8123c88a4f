package xrpc

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/hearth-pds/hearth/proxy"
)

// authLevel is what a route demands of its caller.
type authLevel int

const (
	// authNone: no credentials looked at.
	authNone authLevel = iota
	// authOptional: anyone, but a valid access token or the admin
	// password makes the caller known (the owner and the admin may read a
	// deactivated repository); bad credentials are ignored.
	authOptional
	// authAccess: any access token, app passwords included.
	authAccess
	// authAccessFull: the access token of a full (non app-password)
	// session.
	authAccessFull
	// authRefresh: a refresh token.
	authRefresh
	// authAdmin: HTTP Basic admin:PDS_ADMIN_PASSWORD.
	authAdmin
)

// backing is what a route needs configured to be served here. A route
// whose backing is missing is answered as if it were not in the table:
// by the catch-all (the proxy, or the official answer without one).
type backing int

const (
	always          backing = iota
	withServiceAuth         // getServiceAuth: a token issuer
	withViews               // read-after-write views: an AppView
	withFeeds               // getFeed: an AppView
	withProxy               // createReport, push registrations: the proxy
	withFirehose            // subscribeRepos: the sequencer
)

// route is one XRPC method served here: its verb (GET for queries and
// subscriptions, POST for procedures; HEAD is served as GET), the auth it
// demands, the checks of its parameters made before auth (the official
// PDS checks parameters first; listed where tests pin that order), what
// it needs configured, and its handler. Methods not listed, and listed
// ones called with another verb, go to the catch-all: the proxy, which
// authenticates any access token (see serveProxied).
type route struct {
	nsid  string
	verb  string
	auth  authLevel
	check func(url.Values) error
	needs backing
	// anyCase matches the NSID in any case, as the official routes of the
	// push registrations do.
	anyCase bool
	h       handlerFunc
}

// routes is the route table: every XRPC method served here, local,
// served on top of an upstream, or a subscription.
func (s *Server) routes() []route {
	const get, post = http.MethodGet, http.MethodPost
	return []route{
		// Server and sessions.
		{nsid: "com.atproto.server.describeServer", verb: get, auth: authNone, h: s.describeServer},
		{nsid: "com.atproto.server.createAccount", verb: post, auth: authNone, h: s.createAccount},
		{nsid: "com.atproto.server.createSession", verb: post, auth: authNone, h: s.createSession},
		{nsid: "com.atproto.server.getSession", verb: get, auth: authAccess, h: s.getSession},
		{nsid: "com.atproto.server.refreshSession", verb: post, auth: authRefresh, h: s.refreshSession},
		{nsid: "com.atproto.server.deleteSession", verb: post, auth: authRefresh, h: s.deleteSession},
		{nsid: "com.atproto.server.createAppPassword", verb: post, auth: authAccessFull, h: s.createAppPassword},
		{nsid: "com.atproto.server.listAppPasswords", verb: get, auth: authAccess, h: s.listAppPasswords},
		{nsid: "com.atproto.server.revokeAppPassword", verb: post, auth: authAccessFull, h: s.revokeAppPassword},
		{nsid: "com.atproto.server.createInviteCode", verb: post, auth: authAdmin, h: s.createInviteCode},
		{nsid: "com.atproto.server.createInviteCodes", verb: post, auth: authAdmin, h: s.createInviteCodes},
		{nsid: "com.atproto.server.getAccountInviteCodes", verb: get, auth: authAccessFull, h: s.getAccountInviteCodes},
		{nsid: "com.atproto.server.deactivateAccount", verb: post, auth: authAccessFull, h: s.deactivateAccount},
		{nsid: "com.atproto.server.activateAccount", verb: post, auth: authAccessFull, h: s.activateAccount},
		{nsid: "com.atproto.server.getServiceAuth", verb: get, auth: authAccess, check: checkServiceAuthParams, needs: withServiceAuth, h: s.getServiceAuth},
		{nsid: "com.atproto.admin.disableInviteCodes", verb: post, auth: authAdmin, h: s.disableInviteCodes},

		// Identity. Any app password may change the handle, as with the
		// official PDS.
		{nsid: "com.atproto.identity.resolveHandle", verb: get, auth: authNone, h: s.resolveHandle},
		{nsid: "com.atproto.identity.updateHandle", verb: post, auth: authAccess, h: s.updateHandle},
		{nsid: "com.atproto.identity.getRecommendedDidCredentials", verb: get, auth: authAccess, h: s.getRecommendedDidCredentials},

		// Records and blobs.
		{nsid: "com.atproto.repo.createRecord", verb: post, auth: authAccess, h: s.createRecord},
		{nsid: "com.atproto.repo.putRecord", verb: post, auth: authAccess, h: s.putRecord},
		{nsid: "com.atproto.repo.deleteRecord", verb: post, auth: authAccess, h: s.deleteRecord},
		{nsid: "com.atproto.repo.applyWrites", verb: post, auth: authAccess, h: s.applyWrites},
		{nsid: "com.atproto.repo.getRecord", verb: get, auth: authNone, h: s.getRecord},
		{nsid: "com.atproto.repo.listRecords", verb: get, auth: authNone, h: s.listRecords},
		{nsid: "com.atproto.repo.describeRepo", verb: get, auth: authNone, h: s.describeRepo},
		{nsid: "com.atproto.repo.uploadBlob", verb: post, auth: authAccess, h: s.uploadBlob},
		{nsid: "com.atproto.repo.listMissingBlobs", verb: get, auth: authAccess, h: s.listMissingBlobs},

		// Sync. The owner and the admin may read a deactivated repository.
		{nsid: "com.atproto.sync.getBlob", verb: get, auth: authNone, h: s.syncGetBlob},
		{nsid: "com.atproto.sync.listBlobs", verb: get, auth: authNone, h: s.syncListBlobs},
		{nsid: "com.atproto.sync.getRepo", verb: get, auth: authOptional, h: s.syncGetRepo},
		{nsid: "com.atproto.sync.getCheckout", verb: get, auth: authOptional, h: s.syncGetRepo},
		{nsid: "com.atproto.sync.getRecord", verb: get, auth: authOptional, h: s.syncGetRecord},
		{nsid: "com.atproto.sync.getBlocks", verb: get, auth: authOptional, h: s.syncGetBlocks},
		{nsid: "com.atproto.sync.getLatestCommit", verb: get, auth: authOptional, h: s.syncGetLatestCommit},
		{nsid: "com.atproto.sync.getHead", verb: get, auth: authOptional, h: s.syncGetHead},
		{nsid: "com.atproto.sync.getRepoStatus", verb: get, auth: authNone, h: s.syncGetRepoStatus},
		{nsid: "com.atproto.sync.listRepos", verb: get, auth: authNone, h: s.syncListRepos},
		{nsid: "com.atproto.sync.subscribeRepos", verb: get, auth: authNone, needs: withFirehose, h: s.subscribeRepos},

		// Preferences, and the AppView views patched with the caller's
		// newer records (read after write).
		{nsid: "app.bsky.actor.getPreferences", verb: get, auth: authAccess, h: s.getPreferences},
		{nsid: "app.bsky.actor.putPreferences", verb: post, auth: authAccess, h: s.putPreferences},
		{nsid: "app.bsky.actor.getProfile", verb: get, auth: authAccess, needs: withViews, h: s.readAfterWrite},
		{nsid: "app.bsky.actor.getProfiles", verb: get, auth: authAccess, needs: withViews, h: s.readAfterWrite},
		{nsid: "app.bsky.feed.getTimeline", verb: get, auth: authAccess, needs: withViews, h: s.readAfterWrite},
		{nsid: "app.bsky.feed.getAuthorFeed", verb: get, auth: authAccess, needs: withViews, h: s.readAfterWrite},
		{nsid: "app.bsky.feed.getActorLikes", verb: get, auth: authAccess, needs: withViews, h: s.readAfterWrite},
		{nsid: "app.bsky.feed.getPostThread", verb: get, auth: authAccess, needs: withViews, h: s.readAfterWrite},

		// Served by the proxy with local handling, as the official PDS
		// serves them with routes of their own.
		{nsid: "app.bsky.feed.getFeed", verb: get, auth: authAccess, check: proxy.CheckFeedParams, needs: withFeeds, h: s.getFeed},
		{nsid: "com.atproto.moderation.createReport", verb: post, auth: authAccess, needs: withProxy, h: s.createReport},
		{nsid: "app.bsky.notification.registerPush", verb: post, auth: authAccess, needs: withProxy, anyCase: true, h: s.push},
		{nsid: "app.bsky.notification.unregisterPush", verb: post, auth: authAccess, needs: withProxy, anyCase: true, h: s.push},
	}
}

// table indexes the routes by NSID (and lower-cased NSID for anyCase
// routes).
type table struct {
	exact  map[string]route
	folded map[string]route
}

func newTable(routes []route) table {
	t := table{exact: map[string]route{}, folded: map[string]route{}}
	for _, rt := range routes {
		t.exact[rt.nsid] = rt
		if rt.anyCase {
			t.folded[strings.ToLower(rt.nsid)] = rt
		}
	}
	return t
}

// lookup finds the route of nsid that is served here as configured.
func (s *Server) lookup(nsid string) (route, bool) {
	rt, ok := s.table.exact[nsid]
	if !ok {
		rt, ok = s.table.folded[strings.ToLower(nsid)]
	}
	if !ok || !s.backed(rt.needs) {
		return route{}, false
	}
	return rt, true
}

// backed reports whether what b names is configured.
func (s *Server) backed(b backing) bool {
	switch b {
	case withServiceAuth:
		return s.serviceAuth != nil
	case withViews:
		return s.views != nil
	case withFeeds:
		return s.proxy != nil && s.proxy.ServesFeeds()
	case withProxy:
		return s.proxy != nil
	case withFirehose:
		return s.firehose != nil
	}
	return true
}
