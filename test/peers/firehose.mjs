// A firehose consumer built on the official library (@atproto/sync's
// Firehose), with commit authentication on: every op of every #commit is
// checked against the repository's signing key and the commit's MST proofs
// (verifyProofs) before it is handed over, and ops that fail are dropped
// and reported. Everything stays on loopback: DID documents come from the
// test's PLC directory and handles are resolved by asking the PDS
// (com.atproto.identity.resolveHandle), never by DNS or HTTPS well-known.
//
// Environment: FIREHOSE_URL (ws://localhost:PORT), PLC_URL, PDS_URL
// (http://127.0.0.1:PORT, for handle resolution), CURSOR (optional; replay
// from there).
//
// Events go through the library's MemoryRunner, as an indexer would run
// it: in order per repository, concurrently across repositories, with the
// runner's cursor (the seq up to which every event is handled) as the
// replay position. (The Firehose's own getCursor option cannot set one in
// this version: it sends the function itself as the cursor.)
//
// Output, one JSON object per line on stdout: {"progress": cursor} while
// it runs, and {"summary": {...}} once standard input closes, after which
// it exits. Every error the library reports is in the summary, never
// thrown.
import { Firehose, MemoryRunner } from '@atproto/sync'
import { IdResolver } from '@atproto/identity'

const service = process.env.FIREHOSE_URL
const plcUrl = process.env.PLC_URL
const pdsUrl = process.env.PDS_URL
const cursor = process.env.CURSOR
if (!service || !plcUrl || !pdsUrl) {
  console.error('firehose.mjs: FIREHOSE_URL, PLC_URL and PDS_URL are required')
  process.exit(2)
}

const idResolver = new IdResolver({ plcUrl, timeout: 10000 })

// Handles: the PDS that hosts them answers for them; nothing leaves the
// machine.
idResolver.handle.resolve = async (handle) => {
  const res = await fetch(
    `${pdsUrl}/xrpc/com.atproto.identity.resolveHandle?handle=${encodeURIComponent(handle)}`,
  )
  if (!res.ok) return undefined
  const body = await res.json()
  return typeof body.did === 'string' ? body.did : undefined
}

// Signing keys are kept per DID (as any consumer would cache them) and
// dropped on #identity; with forceRefresh (the library's retry after a
// failed verification) the key is read again. DID documents themselves are
// not cached, so #identity events are checked against the current one.
//
// Every commit's verification asks for the key first, which is where the
// event loop gets a turn: a replay queues thousands of commits at once,
// and verifying them back to back on promises alone would starve I/O until
// the library's own DID fetches time out.
const keys = new Map()
const resolveKey = idResolver.did.resolveAtprotoKey.bind(idResolver.did)
idResolver.did.resolveAtprotoKey = async (did, forceRefresh = false) => {
  await new Promise((resolve) => setImmediate(resolve))
  if (!forceRefresh && keys.has(did)) return keys.get(did)
  const key = await resolveKey(did, true)
  keys.set(did, key)
  return key
}

const counts = { create: 0, update: 0, delete: 0, identity: 0, account: 0, sync: 0 }
const opsBySeq = {}
const identities = []
const accounts = []
const syncs = []
const errors = []
let maxSeq = 0

const describe = (err) => {
  let msg = String(err?.message ?? err)
  for (let c = err?.cause; c; c = c.cause) msg += `: ${c?.message ?? c}`
  const evt = err?.event ?? err?.value
  if (evt?.seq !== undefined) msg += ` (seq ${evt.seq})`
  return msg
}

const runner = new MemoryRunner({
  startCursor: cursor !== undefined && cursor !== '' ? Number(cursor) : undefined,
})

const firehose = new Firehose({
  service,
  idResolver,
  runner,
  unauthenticatedCommits: false,
  unauthenticatedHandles: false,
  handleEvent: async (evt) => {
    maxSeq = Math.max(maxSeq, evt.seq)
    counts[evt.event] = (counts[evt.event] ?? 0) + 1
    switch (evt.event) {
      case 'create':
      case 'update':
      case 'delete':
        opsBySeq[evt.seq] = (opsBySeq[evt.seq] ?? 0) + 1
        break
      case 'identity':
        keys.delete(evt.did)
        identities.push({ seq: evt.seq, did: evt.did, handle: evt.handle ?? null })
        break
      case 'account':
        accounts.push({ seq: evt.seq, did: evt.did, active: evt.active, status: evt.status ?? null })
        break
      case 'sync':
        syncs.push({ seq: evt.seq, did: evt.did, rev: evt.rev, cid: evt.cid.toString() })
        break
    }
  },
  onError: (err) => {
    errors.push(describe(err))
  },
})

let last = -1
const progress = setInterval(() => {
  const done = runner.getCursor() ?? 0
  if (done !== last) {
    last = done
    process.stdout.write(JSON.stringify({ progress: done }) + '\n')
  }
}, 50)

firehose.start()

process.stdin.resume()
process.stdin.on('end', async () => {
  clearInterval(progress)
  await runner.processAll()
  await firehose.destroy()
  const summary = { cursor: runner.getCursor() ?? 0, maxSeq, counts, opsBySeq, identities, accounts, syncs, errors }
  process.stdout.write(JSON.stringify({ summary }) + '\n', () => process.exit(0))
})
