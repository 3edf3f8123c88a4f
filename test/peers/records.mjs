// Writes and reads records on a Hearth server with the official client
// library (@atproto/api): posts, likes, follows and a profile through the
// agent's helpers, com.atproto.repo.* calls and applyWrites. Then fetches
// the repository (com.atproto.sync.getRepo) and verifies it with the
// official repository library (@atproto/repo): the commit's signature
// against the signing key the PLC directory publishes, the tree, and that
// it holds exactly the records read back, with the same CIDs.
// Environment: PDS_URL, PLC_URL, ADMIN_PASSWORD. Prints a JSON summary on
// stdout for the Go test to check again with indigo; exits non-zero on the
// first failed expectation.
import assert from 'node:assert/strict'
import { AtpAgent } from '@atproto/api'
import { cidForRecord, readCarWithRoot, verifyProofs, verifyRecords, verifyRepoCar } from '@atproto/repo'

const service = process.env.PDS_URL
const plcURL = process.env.PLC_URL
const adminAuth = 'Basic ' + Buffer.from('admin:' + process.env.ADMIN_PASSWORD).toString('base64')
const suffix = Date.now().toString(36).slice(-5)

const POST = 'app.bsky.feed.post'
const LIKE = 'app.bsky.feed.like'
const FOLLOW = 'app.bsky.graph.follow'
const PROFILE = 'app.bsky.actor.profile'
const UNKNOWN = 'com.example.hearth.note' // no lexicon anywhere

async function expectXrpcError(promise, name, what) {
  try {
    await promise
  } catch (err) {
    assert.equal(err.error, name, `${what}: error name (${err.message})`)
    return err
  }
  assert.fail(`${what}: expected ${name}, got success`)
}

const anon = new AtpAgent({ service })
const invite = await anon.com.atproto.server.createInviteCode(
  { useCount: 2 },
  { headers: { authorization: adminAuth }, encoding: 'application/json' },
)

async function signUp(name) {
  const agent = new AtpAgent({ service })
  await agent.createAccount({
    handle: `${name}${suffix}.test`,
    email: `${name}${suffix}@example.com`,
    password: `${name}-password`,
    inviteCode: invite.data.code,
  })
  return agent
}

const alice = await signUp('alice')
const bob = await signUp('bob')
const did = alice.assertDid
const rkeyOf = (uri) => uri.split('/').pop()
const pathOf = (uri) => uri.split('/').slice(-2).join('/')

// live: every record alice should hold now, at://… → cid. gone: what she
// deleted.
const live = new Map()
const gone = new Set()
const put = (uri, cid) => {
  assert.ok(uri.startsWith(`at://${did}/`), `uri ${uri} names alice's repo`)
  gone.delete(uri)
  live.set(uri, cid)
}
const drop = (uri) => {
  live.delete(uri)
  gone.add(uri)
}

// The agent's helpers.
const bobPost = await bob.post({ text: 'hello from bob' })
const posts = []
for (let i = 0; i < 12; i++) {
  const p = await alice.post({ text: `post ${i}`, langs: ['en'] })
  posts.push(p)
  put(p.uri, p.cid)
}
const like = await alice.like(bobPost.uri, bobPost.cid)
put(like.uri, like.cid)
const follow = await alice.follow(bob.assertDid)
put(follow.uri, follow.cid)
await alice.upsertProfile((existing) => {
  assert.equal(existing, undefined, 'no profile yet')
  return { displayName: 'Alice', description: 'first' }
})
await alice.upsertProfile((existing) => {
  assert.equal(existing?.displayName, 'Alice', 'profile read back by upsertProfile')
  return { ...existing, description: 'second' }
})
const profile = await alice.com.atproto.repo.getRecord({ repo: did, collection: PROFILE, rkey: 'self' })
assert.equal(profile.data.value.description, 'second')
put(profile.data.uri, profile.data.cid)

// com.atproto.repo.* directly.
const repo = alice.com.atproto.repo
const edited = await repo.putRecord({
  repo: did,
  collection: POST,
  rkey: rkeyOf(posts[0].uri),
  record: { $type: POST, text: 'post 0, edited', createdAt: new Date().toISOString() },
  swapRecord: posts[0].cid,
})
assert.notEqual(edited.data.cid, posts[0].cid, 'an edit changes the CID')
assert.equal(edited.data.validationStatus, 'valid')
assert.ok(edited.data.commit?.rev, 'putRecord returns its commit')
put(edited.data.uri, edited.data.cid)

const fixedKey = '3lhearthtest2'
const created = await repo.createRecord({
  repo: alice.session.handle, // a handle names the repo too
  collection: POST,
  rkey: fixedKey,
  record: { text: 'post with a chosen key', createdAt: new Date().toISOString() },
})
assert.equal(created.data.uri, `at://${did}/${POST}/${fixedKey}`)
assert.equal(created.data.validationStatus, 'valid')
put(created.data.uri, created.data.cid)

const note = await repo.createRecord({
  repo: did,
  collection: UNKNOWN,
  record: { $type: UNKNOWN, body: 'no lexicon for this', n: 7, nested: { list: [1, 'two', null] } },
})
assert.equal(note.data.validationStatus, 'unknown')
put(note.data.uri, note.data.cid)

// applyWrites: two creates, an update, a delete, bound to the current commit.
const head = await alice.com.atproto.sync.getLatestCommit({ did })
const batch = await repo.applyWrites({
  repo: did,
  swapCommit: head.data.cid,
  writes: [
    { $type: 'com.atproto.repo.applyWrites#create', collection: POST, value: { $type: POST, text: 'batch a', createdAt: new Date().toISOString() } },
    { $type: 'com.atproto.repo.applyWrites#create', collection: UNKNOWN, rkey: 'batch-b', value: { $type: UNKNOWN, body: 'batch b' } },
    { $type: 'com.atproto.repo.applyWrites#update', collection: POST, rkey: rkeyOf(posts[1].uri), value: { $type: POST, text: 'post 1, batched edit', createdAt: new Date().toISOString() } },
    { $type: 'com.atproto.repo.applyWrites#delete', collection: POST, rkey: rkeyOf(posts[2].uri) },
  ],
})
const types = batch.data.results.map((r) => r.$type)
assert.deepEqual(types, [
  'com.atproto.repo.applyWrites#createResult',
  'com.atproto.repo.applyWrites#createResult',
  'com.atproto.repo.applyWrites#updateResult',
  'com.atproto.repo.applyWrites#deleteResult',
])
assert.ok(batch.data.commit?.cid && batch.data.commit.cid !== head.data.cid, 'applyWrites made a new commit')
assert.equal(batch.data.results[1].uri, `at://${did}/${UNKNOWN}/batch-b`)
for (const r of batch.data.results.slice(0, 3)) put(r.uri, r.cid)
drop(posts[2].uri)
await expectXrpcError(
  repo.applyWrites({ repo: did, swapCommit: head.data.cid, writes: [{ $type: 'com.atproto.repo.applyWrites#delete', collection: POST, rkey: rkeyOf(posts[3].uri) }] }),
  'InvalidSwap',
  'applyWrites on a stale commit',
)

// Deletes through the helpers, then a like and a follow again.
await alice.deletePost(posts[11].uri)
drop(posts[11].uri)
await alice.deleteLike(like.uri)
drop(like.uri)
await alice.deleteFollow(follow.uri)
drop(follow.uri)
const like2 = await alice.like(bobPost.uri, bobPost.cid)
put(like2.uri, like2.cid)
const follow2 = await alice.follow(bob.assertDid)
put(follow2.uri, follow2.cid)
const delMissing = await repo.deleteRecord({ repo: did, collection: POST, rkey: rkeyOf(posts[11].uri) })
assert.equal(delMissing.data.commit, undefined, 'deleting a missing record makes no commit')

// Read everything back.
for (const [uri, cid] of live) {
  const [, , , collection, rkey] = uri.split('/')
  const got = await anon.com.atproto.repo.getRecord({ repo: did, collection, rkey })
  assert.equal(got.data.uri, uri)
  assert.equal(got.data.cid, cid, `getRecord ${uri}`)
  assert.equal(got.data.value.$type, collection, `$type of ${uri}`)
  const exact = await anon.com.atproto.repo.getRecord({ repo: did, collection, rkey, cid })
  assert.equal(exact.data.cid, cid, `getRecord ${uri} at its cid`)
}
for (const uri of gone) {
  const [, , , collection, rkey] = uri.split('/')
  await expectXrpcError(anon.com.atproto.repo.getRecord({ repo: did, collection, rkey }), 'RecordNotFound', `getRecord of deleted ${uri}`)
}
const gotEdited = await anon.com.atproto.repo.getRecord({ repo: did, collection: POST, rkey: rkeyOf(posts[0].uri) })
assert.equal(gotEdited.data.value.text, 'post 0, edited')
assert.deepEqual(
  (await anon.com.atproto.repo.getRecord({ repo: did, collection: UNKNOWN, rkey: rkeyOf(note.data.uri) })).data.value,
  { $type: UNKNOWN, body: 'no lexicon for this', n: 7, nested: { list: [1, 'two', null] } },
)

// listRecords: every collection, paged both ways, matches what is live.
const collections = [...new Set([...live.keys()].map((u) => u.split('/')[3]))].sort()
for (const collection of collections) {
  const want = [...live.keys()].filter((u) => u.split('/')[3] === collection)
  const byKey = (a, b) => (rkeyOf(a) < rkeyOf(b) ? -1 : rkeyOf(a) > rkeyOf(b) ? 1 : 0)
  for (const reverse of [false, true]) {
    const seen = []
    let cursor
    for (let pages = 0; ; pages++) {
      assert.ok(pages < 20, 'listRecords pages end')
      const page = await anon.com.atproto.repo.listRecords({ repo: did, collection, limit: 5, cursor, reverse })
      for (const r of page.data.records) {
        assert.equal(r.cid, live.get(r.uri), `listRecords cid of ${r.uri}`)
        seen.push(r.uri)
      }
      assert.ok(page.data.records.length <= 5)
      cursor = page.data.cursor
      if (!cursor) break
    }
    const order = [...want].sort(byKey)
    if (!reverse) order.reverse() // newest (highest key) first by default
    assert.deepEqual(seen, order, `listRecords ${collection} reverse=${reverse}`)
  }
}
const none = await anon.com.atproto.repo.listRecords({ repo: did, collection: 'com.example.empty' })
assert.deepEqual(none.data.records, [])

const described = await anon.com.atproto.repo.describeRepo({ repo: alice.session.handle })
assert.equal(described.data.did, did)
assert.equal(described.data.handle, alice.session.handle)
assert.equal(described.data.handleIsCorrect, true)
assert.equal(described.data.didDoc.id, did)
assert.deepEqual([...described.data.collections].sort(), collections)

// The repository, verified by the official library against the key the
// PLC directory publishes.
const plcData = await (await fetch(`${plcURL}/${did}/data`)).json()
const signingKey = plcData.verificationMethods.atproto
assert.match(signingKey, /^did:key:z/)
const latest = await anon.com.atproto.sync.getLatestCommit({ did })
const carRes = await fetch(`${service}/xrpc/com.atproto.sync.getRepo?did=${did}`)
assert.equal(carRes.status, 200)
assert.equal(carRes.headers.get('content-type'), 'application/vnd.ipld.car')
const car = new Uint8Array(await carRes.arrayBuffer())
const verified = await verifyRepoCar(car, did, signingKey)
assert.equal(verified.commit.cid.toString(), latest.data.cid, 'getRepo is at the latest commit')
assert.equal(verified.commit.rev, latest.data.rev)
const inRepo = new Map(verified.creates.map((c) => [`${c.collection}/${c.rkey}`, c.cid.toString()]))
const wantPaths = new Map([...live].map(([uri, cid]) => [pathOf(uri), cid]))
assert.deepEqual(inRepo, wantPaths, 'the verified repo holds exactly the records read back')
// Every record block is in the CAR and hashes to its CID (readCar checks
// block CIDs as it reads).
const { blocks } = await readCarWithRoot(car)
for (const c of verified.creates) {
  assert.ok(blocks.has(c.cid), `record block ${c.cid} in the CAR`)
}
// The verifier really checks: bob's key does not verify alice's commit.
const bobKey = (await (await fetch(`${plcURL}/${bob.assertDid}/data`)).json()).verificationMethods.atproto
await assert.rejects(verifyRepoCar(car, did, bobKey), /Invalid signature/)

// sync.getRecord proofs, verified against the same key.
const claimed = verified.creates.filter((c) => [POST, PROFILE, UNKNOWN].includes(c.collection)).slice(0, 6)
for (const c of claimed) {
  const res = await fetch(`${service}/xrpc/com.atproto.sync.getRecord?did=${did}&collection=${c.collection}&rkey=${c.rkey}`)
  assert.equal(res.status, 200, `sync.getRecord ${c.collection}/${c.rkey}`)
  const proof = new Uint8Array(await res.arrayBuffer())
  const { verified: ok, unverified } = await verifyProofs(proof, [{ collection: c.collection, rkey: c.rkey, cid: c.cid }], did, signingKey)
  assert.equal(ok.length, 1, `proof of ${c.collection}/${c.rkey}`)
  assert.equal(unverified.length, 0)
  const recs = await verifyRecords(proof, did, signingKey)
  const rec = recs.find((r) => r.collection === c.collection && r.rkey === c.rkey)
  assert.ok(rec, `record ${c.collection}/${c.rkey} in its proof`)
  assert.equal((await cidForRecord(rec.record)).toString(), c.cid.toString())
}

console.log(
  JSON.stringify({
    did,
    handle: alice.session.handle,
    bob: bob.assertDid,
    signingKey,
    commit: latest.data,
    records: Object.fromEntries(live),
    deleted: [...gone],
    collections,
  }),
)
