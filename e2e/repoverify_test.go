package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/identity"
	indigorepo "github.com/bluesky-social/indigo/atproto/repo"
	"github.com/bluesky-social/indigo/atproto/repo/mst"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/bluesky-social/indigo/events"
	"github.com/gorilla/websocket"
	"github.com/ipfs/go-cid"
	"github.com/ipld/go-car"
)

// Checks of what a PDS serves, made with indigo (the field's Go, which
// Hearth's write path does not share): repository CARs, record proofs and
// the firehose.

// plcSigningKey looks the account's atproto signing key up in the PLC
// directory twice, through indigo's identity directory (the DID document)
// and through the directory's /data endpoint (the did:key), and fails the
// test unless both agree.
func plcSigningKey(t *testing.T, plcURL, did string) atcrypto.PublicKey {
	t.Helper()
	dir := identity.BaseDirectory{PLCURL: plcURL, SkipHandleVerification: true}
	ident, err := dir.LookupDID(context.Background(), syntax.DID(did))
	if err != nil {
		t.Fatalf("resolve %s in the PLC directory: %v", did, err)
	}
	key, err := ident.PublicKey()
	if err != nil {
		t.Fatalf("signing key of %s: %v", did, err)
	}
	var data struct {
		VerificationMethods map[string]string `json:"verificationMethods"`
	}
	getJSON(t, plcURL+"/"+did+"/data", &data)
	if got := data.VerificationMethods["atproto"]; got != key.DIDKey() {
		t.Fatalf("PLC /data signing key %s, DID document %s", got, key.DIDKey())
	}
	return key
}

// verifiedRepo is a repository CAR that passed verifyRepoCAR.
type verifiedRepo struct {
	CommitCID cid.Cid
	Commit    *indigorepo.Commit
	// Records maps collection/rkey to the record's CID.
	Records map[string]string
	// Blocks are every block of the CAR by CID.
	Blocks map[cid.Cid][]byte
}

// verifyRepoCAR checks a whole-repository CAR (com.atproto.sync.getRepo)
// with indigo: every block hashes to its CID; the root is a v3 commit of
// did signed by key; the tree is complete, well formed, and rebuilding it
// from its entries gives the commit's data CID (so it is the canonical
// tree); and every record it names is in the CAR.
func verifyRepoCAR(carBytes []byte, did string, key atcrypto.PublicKey) (*verifiedRepo, error) {
	roots, blocks, err := readCARBlocks(carBytes)
	if err != nil {
		return nil, err
	}
	if len(roots) != 1 {
		return nil, fmt.Errorf("CAR has %d roots, want 1", len(roots))
	}
	ctx := context.Background()
	commit, r, err := indigorepo.LoadRepoFromCAR(ctx, bytes.NewReader(carBytes))
	if err != nil {
		return nil, fmt.Errorf("load repo: %w", err)
	}
	if commit.DID != did {
		return nil, fmt.Errorf("commit names %s, want %s", commit.DID, did)
	}
	if err := commit.VerifySignature(key); err != nil {
		return nil, fmt.Errorf("commit signature: %w", err)
	}
	if _, err := syntax.ParseTID(commit.Rev); err != nil {
		return nil, fmt.Errorf("commit rev %q: %w", commit.Rev, err)
	}
	if r.MST.IsPartial() {
		return nil, errors.New("tree is missing nodes")
	}
	if err := r.MST.Verify(); err != nil {
		return nil, fmt.Errorf("tree structure: %w", err)
	}
	entries := map[string]cid.Cid{}
	if err := r.MST.WriteToMap(entries); err != nil {
		return nil, fmt.Errorf("walk tree: %w", err)
	}
	rebuilt, err := mst.LoadTreeFromMap(entries)
	if err != nil {
		return nil, fmt.Errorf("rebuild tree: %w", err)
	}
	root, err := rebuilt.RootCID()
	if err != nil {
		return nil, fmt.Errorf("rebuild tree: %w", err)
	}
	if *root != commit.Data {
		return nil, fmt.Errorf("tree rebuilt from its %d entries has root %s, commit says %s", len(entries), root, commit.Data)
	}
	out := &verifiedRepo{CommitCID: roots[0], Commit: commit, Records: map[string]string{}, Blocks: blocks}
	for path, c := range entries {
		if _, ok := blocks[c]; !ok {
			return nil, fmt.Errorf("record %s (%s) is not in the CAR", path, c)
		}
		out.Records[path] = c.String()
	}
	return out, nil
}

// verifyRecordProof checks a com.atproto.sync.getRecord CAR: blocks hash
// to their CIDs, the root is the commit wantCommit signed by key, and the
// (partial) tree it carries leads to path with the record wantCID, whose
// block is included; or, with wantCID empty, shows that path is absent.
func verifyRecordProof(carBytes []byte, did string, key atcrypto.PublicKey, wantCommit, path, wantCID string) error {
	roots, blocks, err := readCARBlocks(carBytes)
	if err != nil {
		return err
	}
	if len(roots) != 1 || roots[0].String() != wantCommit {
		return fmt.Errorf("proof roots %v, want [%s]", roots, wantCommit)
	}
	commit, r, err := indigorepo.LoadRepoFromCAR(context.Background(), bytes.NewReader(carBytes))
	if err != nil {
		return fmt.Errorf("load proof: %w", err)
	}
	if commit.DID != did {
		return fmt.Errorf("proof commit names %s, want %s", commit.DID, did)
	}
	if err := commit.VerifySignature(key); err != nil {
		return fmt.Errorf("proof commit signature: %w", err)
	}
	// Get fails on a partial tree that lacks a node on the key's path, so
	// a nil result is a proof of absence.
	got, err := r.MST.Get([]byte(path))
	if err != nil {
		return fmt.Errorf("look %s up in the proof: %w", path, err)
	}
	if wantCID == "" {
		if got != nil {
			return fmt.Errorf("proof gives %s = %s, want absent", path, got)
		}
		return nil
	}
	if got == nil || got.String() != wantCID {
		return fmt.Errorf("proof gives %s = %v, want %s", path, got, wantCID)
	}
	if _, ok := blocks[*got]; !ok {
		return fmt.Errorf("record block %s not in the proof", got)
	}
	return nil
}

// readCARBlocks reads a CAR v1 and checks that every block hashes to its
// CID.
func readCARBlocks(carBytes []byte) ([]cid.Cid, map[cid.Cid][]byte, error) {
	cr, err := car.NewCarReader(bytes.NewReader(carBytes))
	if err != nil {
		return nil, nil, fmt.Errorf("read CAR header: %w", err)
	}
	blocks := map[cid.Cid][]byte{}
	for {
		blk, err := cr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read CAR block: %w", err)
		}
		sum, err := blk.Cid().Prefix().Sum(blk.RawData())
		if err != nil {
			return nil, nil, fmt.Errorf("hash block %s: %w", blk.Cid(), err)
		}
		if !sum.Equals(blk.Cid()) {
			return nil, nil, fmt.Errorf("block %s hashes to %s", blk.Cid(), sum)
		}
		blocks[blk.Cid()] = blk.RawData()
	}
	return cr.Header.Roots, blocks, nil
}

// xrpcGet sends GET /xrpc/nsid?params and returns the status, body and
// content type.
func xrpcGet(t *testing.T, base, nsid string, params url.Values) (int, []byte, string) {
	t.Helper()
	u := base + "/xrpc/" + nsid
	if len(params) > 0 {
		u += "?" + params.Encode()
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", nsid, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", nsid, err)
	}
	return resp.StatusCode, b, resp.Header.Get("Content-Type")
}

// mustXRPCGet is xrpcGet that fails the test on anything but a 200.
func mustXRPCGet(t *testing.T, base, nsid string, params url.Values) []byte {
	t.Helper()
	status, body, _ := xrpcGet(t, base, nsid, params)
	if status != http.StatusOK {
		t.Fatalf("GET %s?%s: %d %s", nsid, params.Encode(), status, body)
	}
	return body
}

type latestCommit struct {
	CID string `json:"cid"`
	Rev string `json:"rev"`
}

func getLatestCommit(t *testing.T, base, did string) latestCommit {
	t.Helper()
	var lc latestCommit
	if err := json.Unmarshal(mustXRPCGet(t, base, "com.atproto.sync.getLatestCommit", url.Values{"did": {did}}), &lc); err != nil {
		t.Fatalf("getLatestCommit: %v", err)
	}
	return lc
}

// streamEvent is one sequenced firehose event, decoded by indigo.
type streamEvent struct {
	Seq    int64
	Kind   string // "#commit", "#sync", "#identity", "#account"
	DID    string
	Commit *comatproto.SyncSubscribeRepos_Commit
}

// firehose is a subscription to com.atproto.sync.subscribeRepos whose
// events a goroutine collects.
type firehose struct {
	conn   *websocket.Conn
	events chan streamEvent
	errc   chan error
}

// subscribeFirehose subscribes from cursor (nil: live only).
func subscribeFirehose(t *testing.T, base string, cursor *int64) *firehose {
	t.Helper()
	u := "ws" + strings.TrimPrefix(base, "http") + "/xrpc/com.atproto.sync.subscribeRepos"
	if cursor != nil {
		u += fmt.Sprintf("?cursor=%d", *cursor)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("subscribe %s: %v (status %d)", u, err, status)
	}
	conn.SetReadLimit(16 << 20)
	f := &firehose{conn: conn, events: make(chan streamEvent, 1<<16), errc: make(chan error, 1)}
	go f.read()
	t.Cleanup(func() { conn.Close() })
	return f
}

func (f *firehose) read() {
	for {
		typ, msg, err := f.conn.ReadMessage()
		if err != nil {
			f.errc <- err
			return
		}
		if typ != websocket.BinaryMessage {
			f.errc <- fmt.Errorf("message type %d, want binary", typ)
			return
		}
		var xev events.XRPCStreamEvent
		if err := xev.Deserialize(bytes.NewReader(msg)); err != nil {
			f.errc <- fmt.Errorf("decode frame: %w", err)
			return
		}
		ev := streamEvent{}
		switch {
		case xev.RepoCommit != nil:
			ev = streamEvent{Seq: xev.RepoCommit.Seq, Kind: "#commit", DID: xev.RepoCommit.Repo, Commit: xev.RepoCommit}
		case xev.RepoSync != nil:
			ev = streamEvent{Seq: xev.RepoSync.Seq, Kind: "#sync", DID: xev.RepoSync.Did}
		case xev.RepoIdentity != nil:
			ev = streamEvent{Seq: xev.RepoIdentity.Seq, Kind: "#identity", DID: xev.RepoIdentity.Did}
		case xev.RepoAccount != nil:
			ev = streamEvent{Seq: xev.RepoAccount.Seq, Kind: "#account", DID: xev.RepoAccount.Did}
		case xev.RepoInfo != nil:
			continue // OutdatedCursor and the like carry no seq
		case xev.Error != nil:
			f.errc <- fmt.Errorf("stream error %s: %s", xev.Error.Error, xev.Error.Message)
			return
		default:
			f.errc <- errors.New("frame of an unknown type")
			return
		}
		f.events <- ev
	}
}

// until collects events until one satisfies stop (which is included), or
// fails the test after timeout.
func (f *firehose) until(t *testing.T, timeout time.Duration, stop func(streamEvent) bool) []streamEvent {
	t.Helper()
	var out []streamEvent
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-f.events:
			out = append(out, ev)
			if stop(ev) {
				return out
			}
		case err := <-f.errc:
			t.Fatalf("firehose ended after %d events: %v", len(out), err)
		case <-deadline:
			t.Fatalf("firehose: no awaited event within %s (%d events read)", timeout, len(out))
		}
	}
}

// isCommit matches the #commit event of a commit CID.
func isCommit(commitCID string) func(streamEvent) bool {
	return func(ev streamEvent) bool {
		return ev.Commit != nil && ev.Commit.Commit.String() == commitCID
	}
}
