// Uploads an image with @atproto/api, embeds it in a post, and fetches it
// back through com.atproto.sync.getBlob. Environment: PDS_URL,
// ADMIN_PASSWORD, HANDLE. Prints {did, cid, uri, size} for the Go test,
// which then deletes the post and waits for the collector.
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { AtpAgent } from '@atproto/api'

const service = process.env.PDS_URL
const adminAuth = 'Basic ' + Buffer.from('admin:' + process.env.ADMIN_PASSWORD).toString('base64')
const anon = new AtpAgent({ service })
const invite = await anon.com.atproto.server.createInviteCode(
  { useCount: 1 },
  { headers: { authorization: adminAuth }, encoding: 'application/json' },
)
const agent = new AtpAgent({ service })
const handle = process.env.HANDLE
await agent.createAccount({ handle, email: `${handle}@example.com`, password: 'blob-pass', inviteCode: invite.data.code })

// A PNG signature and header chunk, then random bytes: sniffed as PNG
// whatever the client declares, and unique per run.
const png = Buffer.concat([
  Buffer.from('89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489', 'hex'),
  randomBytes(200_000),
])
const up = await agent.uploadBlob(png, { encoding: 'image/jpeg' })
assert.equal(up.data.blob.mimeType, 'image/png', 'type sniffed from the bytes')
assert.equal(up.data.blob.size, png.length)

const cid = up.data.blob.ref.toString()
// Not served before a record references it.
const early = await fetch(`${service}/xrpc/com.atproto.sync.getBlob?did=${agent.session.did}&cid=${cid}`)
assert.equal(early.status, 400, 'unreferenced upload is not served')

const post = await agent.post({
  text: 'a picture',
  embed: { $type: 'app.bsky.embed.images', images: [{ image: up.data.blob, alt: 'noise' }] },
})

const res = await fetch(`${service}/xrpc/com.atproto.sync.getBlob?did=${agent.session.did}&cid=${cid}`)
assert.equal(res.status, 200)
assert.equal(res.headers.get('content-type'), 'image/png')
assert.equal(res.headers.get('content-length'), String(png.length))
assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
assert.match(res.headers.get('content-disposition'), /^attachment/)
assert.equal(res.headers.get('content-security-policy'), "default-src 'none'; sandbox")
assert.ok(Buffer.from(await res.arrayBuffer()).equals(png), 'getBlob is byte-identical')

const part = await fetch(`${service}/xrpc/com.atproto.sync.getBlob?did=${agent.session.did}&cid=${cid}`, {
  headers: { range: 'bytes=8-15' },
})
assert.equal(part.status, 206)
assert.ok(Buffer.from(await part.arrayBuffer()).equals(png.subarray(8, 16)), 'range read')

const listed = await agent.com.atproto.sync.listBlobs({ did: agent.session.did })
assert.deepEqual(listed.data.cids, [cid])

console.log(JSON.stringify({ did: agent.session.did, cid, uri: post.uri, size: png.length, accessJwt: agent.session.accessJwt }))
