// Package repo builds and signs account repositories: the Merkle Search Tree
// of records and the signed commits over it (atproto repository v3), and
// reads them back as records, proofs and CAR files.
//
// indigo's atproto/repo and atproto/repo/mst provide the tree algorithms and
// the commit object; indigo says that package is not yet a PDS write path.
// This package is the write path around them: a tree loaded lazily from the
// store and cached between commits, the checks that make a batch of writes
// all-or-nothing, the exact block sets a host stores and publishes, revs, and
// signing with the account key. It holds no SQL and no HTTP: the store plugs
// in as a BlockSource, and the caller owns transactions and the firehose.
//
// # Terminology
//
//   - head: a repository's current commit CID, its rev and its data CID.
//   - commit: the signed object {did, version 3, data, rev, prev: null, sig}.
//   - data, root: the CID of the tree's top node. prevData is the root
//     before a commit.
//   - rev: a TID naming a commit; revs of one repository strictly increase.
//     since is the previous commit's rev.
//   - path, key: collection/rkey, the record's key in the tree.
//   - layer (indigo: height): the tree level a key lives at, from the
//     leading zero bits of its SHA-256; 0 is the bottom.
//   - op: one record change as #commit lists it: action, path, cid (new
//     record) and prev (old record).
//   - new blocks: what a commit adds to the store (Result.Blocks).
//   - proof blocks: unchanged tree nodes a commit does not store again but
//     must publish, so a consumer holding only the event can undo the ops.
//   - removed blocks: nodes (and the old commit) the new head no longer
//     references (Result.Removed).
//
// # Tricky bits
//
// Proof blocks. A relay checks a #commit (sync v1.1) by loading a partial
// tree from the event's blocks, applying the inverse of every op, and
// comparing the root it gets with prevData. Undoing a create is a removal,
// which may merge the two subtrees beside the key, so the consumer needs the
// facing spines of both neighbours; undoing a delete is an insert, which may
// split the subtree the key falls into, so it needs the key's whole search
// path. indigo marks some of these nodes dirty while mutating (proveMutation,
// compareKey with markDirty); we also walk, in the tree after the commit, the
// search path of every op key plus the neighbour spines where the key is
// present, and publish every node met (see loader.hydrate). The interop
// fixtures list exactly the blocks we emit; TestApplySequences checks
// thousands of random commits with indigo's VerifyCommitMessage (in a trial
// without the proof blocks, a third of the commits that had any failed it).
// A commit with no ops still publishes the root node: consumers load the
// tree from the event.
//
// No-op updates. An update to byte-identical record bytes leaves the tree
// alone and produces no op: an op whose cid equals its prev cannot be
// inverted, and indigo rejects it.
//
// Cache invalidation. The cache (Cache) holds a partly decoded tree per
// repository keyed by DID and data CID, and Apply uses it only for a head
// with that exact data CID. That one rule covers the hard cases: a commit
// Apply produced but the store failed to write leaves an entry for a root
// the store never reached, which no later head matches; two different heads
// with the same data CID (an empty commit, a create undone by a delete) have
// the same tree by construction, and every node of it is in the store. A
// tree is lent out for the length of an Apply, so a forgotten serialization
// costs a reload, not a corrupt tree. An Apply that fails after mutation
// began drops the tree. Reads never use the cache: they walk the store at
// the root they are given.
//
// Memory. A tree is loaded lazily: a write decodes only the nodes on its
// paths (hydrate), so a cached repository of 100k records written at the
// right edge holds a few nodes, and a cache miss costs one block read per
// level, not the whole tree. Random-access writes grow a cached tree; beyond
// an eighth of the cache bound it is trimmed back to its top levels.
//
// Rev ordering. Relays drop commits whose rev does not increase, so Apply
// refuses a rev that does not sort after the head's (TIDs sort as strings).
// A clock can fall behind the stored rev (clock moved back, an imported repo
// with revs from elsewhere): NextRev then returns the stored rev plus one.
//
// Removed blocks. Only tree nodes and the previous commit: a record block
// can be shared by several keys, so only the store's record index can tell
// when one is garbage. A node is reported only if it was found in the old
// tree and is not in the new one, checked by searching the new tree where
// it would have to be; when in doubt it is not reported (a leaked block is
// harmless, a deleted live one corrupts the repository). The empty tree's
// node is the same block in every new repository: a store sharing blocks
// between repositories must count references.
//
// Stored encodings. Nodes are re-encoded, not kept as bytes, to publish
// proofs; a stored node that is not canonical DAG-CBOR (possible after an
// import) re-encodes to another CID, and its stored bytes are read instead.
package repo
