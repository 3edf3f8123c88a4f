package repo

import (
	"bytes"
	"fmt"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	atrepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"
)

// Block is an encoded DAG-CBOR block and its CID.
type Block struct {
	CID  cid.Cid
	Data []byte
}

// Genesis builds the signed first commit of an empty repository: an empty
// MST root node and a commit with no prev. It returns the commit's CID and
// both blocks, to be stored with the account in one transaction.
func Genesis(did string, key atcrypto.PrivateKey, rev string) (cid.Cid, []Block, error) {
	empty := mst.NodeData{Entries: []mst.EntryData{}}
	nodeBytes, nodeCID, err := empty.Bytes()
	if err != nil {
		return cid.Undef, nil, fmt.Errorf("encode empty tree: %w", err)
	}
	commit, err := signCommit(did, key, rev, *nodeCID)
	if err != nil {
		return cid.Undef, nil, err
	}
	return commit.CID, []Block{commit, {CID: *nodeCID, Data: nodeBytes}}, nil
}

// signCommit signs a v3 commit over the tree root data and encodes it.
func signCommit(did string, key atcrypto.PrivateKey, rev string, data cid.Cid) (Block, error) {
	c := atrepo.Commit{DID: did, Version: atrepo.ATPROTO_REPO_VERSION, Data: data, Rev: rev}
	if err := c.Sign(key); err != nil {
		return Block{}, fmt.Errorf("sign commit: %w", err)
	}
	var buf bytes.Buffer
	if err := c.MarshalCBOR(&buf); err != nil {
		return Block{}, fmt.Errorf("encode commit: %w", err)
	}
	id, err := cidFor(buf.Bytes())
	if err != nil {
		return Block{}, err
	}
	return Block{CID: id, Data: buf.Bytes()}, nil
}

// cidFor is the CID atproto uses for repository blocks: CIDv1, DAG-CBOR,
// sha2-256.
func cidFor(data []byte) (cid.Cid, error) {
	sum, err := multihash.Sum(data, multihash.SHA2_256, -1)
	if err != nil {
		return cid.Undef, fmt.Errorf("hash block: %w", err)
	}
	return cid.NewCidV1(cid.DagCBOR, sum), nil
}
