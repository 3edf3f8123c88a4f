// Package readafterwrite patches the AppView's views of the requesting
// account with its own records the AppView has not indexed yet, as the
// official PDS's read-after-write module does, so a post or a profile
// change shows at once in the app although the AppView lags.
//
// # How
//
// The view (getProfile, getProfiles, getTimeline, getAuthorFeed,
// getActorLikes, getPostThread) is piped to the AppView with a
// service-auth token of the caller's. Its atproto-repo-rev header says
// how far the AppView has indexed the caller's repository; the caller's
// records written after that rev (at most 10, oldest first) are read from
// the store. When there are none, the answer is relayed untouched;
// otherwise it is read whole, patched and sent as JSON with
// Atproto-Upstream-Lag (milliseconds since the oldest unindexed profile
// or post was written) and no upstream header:
//
//   - getProfile(s): the caller's profile takes the newer displayName,
//     description, avatar and banner.
//   - getAuthorFeed (the caller's own feed only), getActorLikes: the
//     caller's author views take the newer displayName and avatar.
//   - getAuthorFeed, getTimeline: the newer posts are inserted by
//     indexedAt, newest first, those older than the page's last item left
//     out.
//   - getPostThread: newer replies go under their parent in the thread;
//     a NotFound for one of the caller's newer posts is answered with that
//     post (and its parents, fetched from the AppView).
//
// Only profiles and posts are patched in, as the official module does:
// likes, follows and reposts count as newer records (the answer is
// rebuilt) but do not change it.
//
// # Tricky bits
//
//   - A rev older than every record here (the account migrated in) makes
//     every record look new: store.RecordsSince then lists none.
//   - Blob URLs point at PDS_BSKY_APP_VIEW_CDN_URL_PATTERN when set (its
//     %s are the image preset, the DID and the CID), else at this server's
//     com.atproto.sync.getBlob.
//   - An answer that is not a JSON object of the expected shape is relayed
//     as read (decoded), never patched; a failed patch (an embed's lookup
//     on the AppView failing) also falls back to the answer as read.
//
// # Where we differ
//
// The official module validates the AppView's answer against the method's
// output lexicon before patching; this checks the shape of what it
// touches. Parameters are left to the AppView to check.
package readafterwrite
