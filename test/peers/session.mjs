// Drives a Hearth server with the official client library (@atproto/api):
// invite, sign-up, login, session refresh, app passwords, handle changes.
// Environment: PDS_URL, ADMIN_PASSWORD. Prints a JSON summary on stdout for
// the Go test to check against the PLC directory; exits non-zero on the
// first failed expectation.
import assert from 'node:assert/strict'
import { AtpAgent } from '@atproto/api'

const service = process.env.PDS_URL
const adminAuth = 'Basic ' + Buffer.from('admin:' + process.env.ADMIN_PASSWORD).toString('base64')
const suffix = Date.now().toString(36).slice(-5)

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

// describeServer
const desc = await anon.com.atproto.server.describeServer()
assert.deepEqual(desc.data.availableUserDomains, ['.test'])
assert.equal(desc.data.inviteCodeRequired, true)
assert.match(desc.data.did, /^did:web:localhost/)
assert.equal(desc.data.blobUploadLimit, 5 * 1024 * 1024)

// admin: an invite code with two uses
const invite = await anon.com.atproto.server.createInviteCode(
  { useCount: 2 },
  { headers: { authorization: adminAuth }, encoding: 'application/json' },
)
assert.match(invite.data.code, /^localhost-[a-z2-7]{5}-[a-z2-7]{5}$/)

// sign-up without and with the invite
const handle = `alice${suffix}.test`
const email = `alice${suffix}@example.com`
const password = 'correct horse battery staple'
await expectXrpcError(
  anon.com.atproto.server.createAccount({ handle, email, password }),
  'InvalidInviteCode',
  'createAccount without invite',
)
const alice = new AtpAgent({ service })
const created = await alice.createAccount({ handle, email, password, inviteCode: invite.data.code })
const did = created.data.did
assert.match(did, /^did:plc:[a-z2-7]{24}$/)
assert.equal(created.data.handle, handle)
assert.ok(alice.session?.accessJwt, 'session after createAccount')

// login by handle, email and DID
for (const identifier of [handle, email, did]) {
  const a = new AtpAgent({ service })
  const res = await a.login({ identifier, password })
  assert.equal(res.data.did, did, `login as ${identifier}`)
  assert.equal(res.data.handle, handle)
}
await expectXrpcError(
  new AtpAgent({ service }).login({ identifier: handle, password: 'wrong' }),
  'AuthenticationRequired',
  'login with a wrong password',
)

// getSession
const agent = new AtpAgent({ service })
await agent.login({ identifier: handle, password })
const sess = await agent.com.atproto.server.getSession()
assert.equal(sess.data.did, did)
assert.equal(sess.data.handle, handle)
assert.equal(sess.data.email, email)
assert.equal(sess.data.active, true)
assert.equal(sess.data.didDoc?.id, did, 'didDoc in getSession')

// refreshSession rotates the refresh token. Like the official PDS, the old
// token answers with the same successor for a grace period (two tabs
// refreshing at once stay logged in); deleteSession ends the session.
const jti = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url')).jti
const oldRefresh = agent.session.refreshJwt
await agent.sessionManager.refreshSession()
assert.notEqual(jti(agent.session.refreshJwt), jti(oldRefresh), 'refresh token rotated')
assert.equal((await agent.com.atproto.server.getSession()).data.did, did, 'new access token works')
const refreshWith = (jwt) =>
  fetch(`${service}/xrpc/com.atproto.server.refreshSession`, {
    method: 'POST',
    headers: { authorization: `Bearer ${jwt}` },
  })
const replay = await refreshWith(oldRefresh)
assert.equal(replay.status, 200, 'reusing a rotated refresh token within the grace period')
assert.equal(jti((await replay.json()).refreshJwt), jti(agent.session.refreshJwt), 'same successor')
const ended = agent.session.refreshJwt
const del = await fetch(`${service}/xrpc/com.atproto.server.deleteSession`, {
  method: 'POST',
  headers: { authorization: `Bearer ${ended}` },
})
assert.equal(del.status, 200, 'deleteSession')
const afterDelete = await refreshWith(ended)
assert.equal(afterDelete.status, 400, 'refreshing a deleted session')
assert.deepEqual(await afterDelete.json(), { error: 'ExpiredToken', message: 'Token has been revoked' })
await agent.login({ identifier: handle, password })

// resolveHandle
const resolved = await anon.com.atproto.identity.resolveHandle({ handle })
assert.equal(resolved.data.did, did)

// app passwords
const appPw = await agent.com.atproto.server.createAppPassword({ name: 'phone' })
assert.match(appPw.data.password, /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/)
const listed = await agent.com.atproto.server.listAppPasswords()
assert.deepEqual(listed.data.passwords.map((p) => p.name), ['phone'])
const phone = new AtpAgent({ service })
const phoneLogin = await phone.login({ identifier: handle, password: appPw.data.password })
assert.equal(phoneLogin.data.did, did)
assert.equal(JSON.parse(Buffer.from(phone.session.accessJwt.split('.')[1], 'base64url')).scope, 'com.atproto.appPass')
assert.equal((await phone.com.atproto.server.getSession()).data.did, did)
await expectXrpcError(
  phone.com.atproto.server.createAppPassword({ name: 'nested' }),
  'InvalidToken',
  'createAppPassword from an app-password session',
)
await agent.com.atproto.server.revokeAppPassword({ name: 'phone' })
await expectXrpcError(
  new AtpAgent({ service }).login({ identifier: handle, password: appPw.data.password }),
  'AuthenticationRequired',
  'login with a revoked app password',
)

// updateHandle
const newHandle = `alice${suffix}x.test`
await agent.com.atproto.identity.updateHandle({ handle: newHandle })
assert.equal((await anon.com.atproto.identity.resolveHandle({ handle: newHandle })).data.did, did)
await expectXrpcError(
  anon.com.atproto.identity.resolveHandle({ handle }),
  'HandleNotFound',
  'resolving the old handle',
)
assert.equal((await agent.com.atproto.server.getSession()).data.handle, newHandle)

// preferences are stored per account; app passwords do not see personal details
await agent.app.bsky.actor.putPreferences({
  preferences: [
    { $type: 'app.bsky.actor.defs#adultContentPref', enabled: true },
    { $type: 'app.bsky.actor.defs#personalDetailsPref', birthDate: '2000-01-01T00:00:00.000Z' },
  ],
})
const prefs = await agent.app.bsky.actor.getPreferences()
assert.deepEqual(prefs.data.preferences.map((p) => p.$type), [
  'app.bsky.actor.defs#adultContentPref',
  'app.bsky.actor.defs#personalDetailsPref',
])
await expectXrpcError(
  agent.app.bsky.actor.putPreferences({ preferences: [{ $type: 'com.example.pref' }] }),
  'InvalidRequest',
  'a preference outside app.bsky',
)

const creds = await agent.com.atproto.identity.getRecommendedDidCredentials()
console.log(JSON.stringify({ did, handle: newHandle, credentials: creds.data }))
