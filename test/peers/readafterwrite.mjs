// Read after write through Hearth with the official client library
// (@atproto/api): the test AppView is scripted to lag (it answers with the
// repository rev from before the writes and without them), and a post, a
// profile change and a reply made right before the reads still show.
// Environment: PDS_URL, ADMIN_PASSWORD, APPVIEW_URL, HANDLE.
// Prints a JSON summary on stdout for the Go test; exits non-zero on the
// first failed expectation.
import assert from 'node:assert/strict'
import { AtpAgent } from '@atproto/api'

const service = process.env.PDS_URL
const adminAuth = 'Basic ' + Buffer.from('admin:' + process.env.ADMIN_PASSWORD).toString('base64')
const handle = process.env.HANDLE

const anon = new AtpAgent({ service })
const invite = await anon.com.atproto.server.createInviteCode(
  { useCount: 1 },
  { headers: { authorization: adminAuth }, encoding: 'application/json' },
)
const agent = new AtpAgent({ service })
const created = await agent.createAccount({
  handle,
  email: `${handle.split('.')[0]}@example.com`,
  password: 'read after write password',
  inviteCode: invite.data.code,
})
const did = created.data.did

// What the AppView has indexed: one post and the account's first profile.
const before = await agent.post({ text: 'indexed already' })
const { data: head } = await agent.com.atproto.sync.getLatestCommit({ did })
const indexedAt = new Date(Date.now() - 60_000).toISOString()
const author = { did, handle, displayName: 'Old name' }
const beforeView = {
  uri: before.uri, cid: before.cid, author, indexedAt,
  record: { $type: 'app.bsky.feed.post', text: 'indexed already', createdAt: indexedAt },
  likeCount: 0, replyCount: 0, repostCount: 0, quoteCount: 0,
}
const script = async (nsid, body) => {
  const res = await fetch(process.env.APPVIEW_URL + '/_script', {
    method: 'POST',
    body: JSON.stringify({ nsid, header: { 'atproto-repo-rev': head.rev }, body }),
  })
  assert.equal(res.status, 204, `script ${nsid}`)
}
await script('app.bsky.feed.getAuthorFeed', { feed: [{ post: beforeView }], cursor: 'page2' })
await script('app.bsky.feed.getTimeline', { feed: [{ post: beforeView }] })
await script('app.bsky.actor.getProfile', { ...author, description: 'old bio', followersCount: 7 })
await script('app.bsky.feed.getPostThread', { thread: { $type: 'app.bsky.feed.defs#threadViewPost', post: beforeView, replies: [] } })

// The writes the AppView has not seen.
const after = await agent.post({ text: 'written just now' })
await agent.upsertProfile((p) => ({ ...p, displayName: 'New name', description: 'new bio' }))
const reply = await agent.post({
  text: 'a reply just now',
  reply: { root: { uri: before.uri, cid: before.cid }, parent: { uri: before.uri, cid: before.cid } },
})

const out = { did, rev: head.rev }

const feed = await agent.getAuthorFeed({ actor: did })
assert.deepEqual(
  feed.data.feed.map((i) => i.post.uri),
  [reply.uri, after.uri, before.uri],
  'getAuthorFeed: the new posts on top, newest first',
)
assert.equal(feed.data.cursor, 'page2', 'the AppView cursor kept')
assert.equal(feed.data.feed[1].post.record.text, 'written just now')
assert.equal(feed.data.feed[1].post.author.displayName, 'New name', 'new posts carry the new profile')
assert.equal(feed.data.feed[2].post.author.displayName, 'New name', 'indexed posts carry the new profile')
assert.match(feed.headers['atproto-upstream-lag'] ?? '', /^\d+$/, 'Atproto-Upstream-Lag set')
assert.equal(feed.headers['atproto-repo-rev'], undefined, 'no upstream rev on a patched view')
out.authorFeed = { uris: feed.data.feed.map((i) => i.post.uri), lag: feed.headers['atproto-upstream-lag'] }

const timeline = await agent.getTimeline({})
assert.deepEqual(timeline.data.feed.map((i) => i.post.uri), [reply.uri, after.uri, before.uri], 'getTimeline')

const profile = await agent.getProfile({ actor: did })
assert.equal(profile.data.displayName, 'New name', 'getProfile: the new display name')
assert.equal(profile.data.description, 'new bio', 'getProfile: the new description')
assert.equal(profile.data.followersCount, 7, 'getProfile: the AppView counts kept')
out.profile = profile.data

const thread = await agent.getPostThread({ uri: before.uri })
assert.deepEqual(thread.data.thread.replies.map((r) => r.post.uri), [reply.uri], 'getPostThread: the new reply')

console.log(JSON.stringify(out))
