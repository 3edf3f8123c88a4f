// Drives Hearth's forwarding with the official client library
// (@atproto/api): signs up, then calls the AppView (getTimeline,
// getProfile), a feed (getFeed), the chat service through the
// atproto-proxy header (agent.withProxy('bsky_chat', did)) with a full
// session, a plain and a privileged app password, and createReport.
// Environment: PDS_URL, ADMIN_PASSWORD, CHAT_DID, FEED_URI, HANDLE.
// Prints a JSON summary on stdout for the Go test, which checks what each
// service received; exits non-zero on the first failed expectation.
import assert from 'node:assert/strict'
import { AtpAgent } from '@atproto/api'

const service = process.env.PDS_URL
const adminAuth = 'Basic ' + Buffer.from('admin:' + process.env.ADMIN_PASSWORD).toString('base64')
const handle = process.env.HANDLE
const password = 'proxy test password'

const anon = new AtpAgent({ service })
const invite = await anon.com.atproto.server.createInviteCode(
  { useCount: 1 },
  { headers: { authorization: adminAuth }, encoding: 'application/json' },
)
const agent = new AtpAgent({ service })
const created = await agent.createAccount({
  handle,
  email: `${handle.split('.')[0]}@example.com`,
  password,
  inviteCode: invite.data.code,
})
const did = created.data.did

const out = { did }

// The AppView, by default.
const timeline = await agent.getTimeline({ limit: 5 })
assert.deepEqual(timeline.data.feed, [])
assert.equal(timeline.data.cursor, `timeline-of-${did}`, 'the AppView saw our DID in the token')
out.timeline = timeline.data

const profile = await agent.getProfile({ actor: did })
assert.equal(profile.data.did, did)
assert.equal(profile.data.description, `seen by ${did}`)
out.profile = profile.data

// A feed: the PDS finds the generator's DID in its record on the AppView
// and addresses the token to it; the AppView passes it on.
const feed = await agent.app.bsky.feed.getFeed({ feed: process.env.FEED_URI, limit: 3 })
assert.equal(feed.data.feed.length, 1)
assert.equal(feed.data.feed[0].post.author.did, did, 'the feed generator saw our DID in the token')
out.feed = feed.data

// Chat, through the proxy header, with a full session.
const chat = agent.withProxy('bsky_chat', process.env.CHAT_DID)
const convos = await chat.chat.bsky.convo.listConvos({ limit: 10 })
assert.equal(convos.data.cursor, `chat-of-${did}`)
out.chat = convos.data

// Chat is privileged: a plain app password is refused, a privileged one
// is not.
const plain = await agent.com.atproto.server.createAppPassword({ name: 'plain' })
const priv = await agent.com.atproto.server.createAppPassword({ name: 'priv', privileged: true })
const plainAgent = new AtpAgent({ service })
await plainAgent.login({ identifier: handle, password: plain.data.password })
try {
  await plainAgent.withProxy('bsky_chat', process.env.CHAT_DID).chat.bsky.convo.listConvos({})
  assert.fail('chat with a plain app password: expected InvalidToken')
} catch (err) {
  assert.equal(err.error, 'InvalidToken', `chat with a plain app password (${err.message})`)
  assert.equal(err.message, 'Bad token method')
  out.plainAppPasswordChat = { status: err.status, error: err.error, message: err.message }
}
const privAgent = new AtpAgent({ service })
await privAgent.login({ identifier: handle, password: priv.data.password })
const privConvos = await privAgent.withProxy('bsky_chat', process.env.CHAT_DID).chat.bsky.convo.listConvos({})
assert.equal(privConvos.data.cursor, `chat-of-${did}`)

// A report, to the report service.
const report = await agent.com.atproto.moderation.createReport({
  reasonType: 'com.atproto.moderation.defs#reasonSpam',
  reason: 'proxy test',
  subject: { $type: 'com.atproto.admin.defs#repoRef', did: 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa' },
})
assert.equal(report.data.reportedBy, did)
assert.equal(report.data.reason, 'proxy test')
out.report = report.data

console.log(JSON.stringify(out))
