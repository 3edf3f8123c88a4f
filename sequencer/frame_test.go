package sequencer

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	comatproto "github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/atdata"
	"github.com/bluesky-social/indigo/events"
	lexutil "github.com/bluesky-social/indigo/lex/util"
)

var update = flag.Bool("update", false, "rewrite testdata/frames.golden")

// The headers are written by hand; indigo's cbor-gen EventHeader is the
// reference encoding.
func TestHeadersMatchIndigo(t *testing.T) {
	for _, tc := range []struct {
		got    []byte
		header events.EventHeader
	}{
		{headerCommit, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#commit"}},
		{headerSync, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#sync"}},
		{headerIdentity, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#identity"}},
		{headerAccount, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#account"}},
		{headerInfo, events.EventHeader{Op: events.EvtKindMessage, MsgType: "#info"}},
		{headerError, events.EventHeader{Op: events.EvtKindErrorFrame}},
	} {
		var want bytes.Buffer
		if err := tc.header.MarshalCBOR(&want); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(tc.got, want.Bytes()) {
			t.Errorf("header %+v: got %x, want %x", tc.header, tc.got, want.Bytes())
		}
	}
}

func TestErrorFrameMatchesIndigo(t *testing.T) {
	var want bytes.Buffer
	xev := events.XRPCStreamEvent{Error: &events.ErrorFrame{Error: "FutureCursor", Message: "Cursor in the future."}}
	if err := xev.Serialize(&want); err != nil {
		t.Fatal(err)
	}
	if got := EncodeError("FutureCursor", "Cursor in the future."); !bytes.Equal(got, want.Bytes()) {
		t.Errorf("got %x, want %x", got, want.Bytes())
	}

	// Without a message the field is left out; indigo still reads it.
	var back events.XRPCStreamEvent
	if err := back.Deserialize(bytes.NewReader(EncodeError("ConsumerTooSlow", ""))); err != nil {
		t.Fatal(err)
	}
	if back.Error == nil || back.Error.Error != "ConsumerTooSlow" || back.Error.Message != "" {
		t.Errorf("got %+v", back.Error)
	}
}

func TestAppendHeadShortestForm(t *testing.T) {
	for _, tc := range []struct {
		n    uint64
		want string
	}{
		{0, "60"}, {23, "77"}, {24, "7818"}, {255, "78ff"}, {256, "790100"},
		{65535, "79ffff"}, {65536, "7a00010000"}, {1 << 32, "7b0000000100000000"},
	} {
		if got := hex.EncodeToString(appendHead(nil, 3, tc.n)); got != tc.want {
			t.Errorf("appendHead(3, %d) = %s, want %s", tc.n, got, tc.want)
		}
	}
	long := strings.Repeat("x", 300)
	var back events.XRPCStreamEvent
	if err := back.Deserialize(bytes.NewReader(EncodeError("Big", long))); err != nil || back.Error.Message != long {
		t.Errorf("long message did not round-trip: %v", err)
	}
}

// goldenFrames are fixed frames of every kind.
func goldenFrames(t *testing.T) map[string][]byte {
	t.Helper()
	since := "3kabc2222222a"
	handle := "alice.test"
	status := "takendown"
	rec, prev := testCID("record"), testCID("prev-record")
	commit, err := EncodeCommit(7, &comatproto.SyncSubscribeRepos_Commit{
		Repo:     "did:plc:ewvi7nxzyoun6zhxrhs64oiz",
		Commit:   testCID("commit"),
		Rev:      "3kabc2222223a",
		Since:    &since,
		Time:     testTime,
		Blocks:   []byte{0x3a, 0xa2},
		PrevData: ptr(testCID("prev-data")),
		Ops: []*comatproto.SyncSubscribeRepos_RepoOp{
			{Action: "create", Path: "app.bsky.feed.post/3kabc2222223a", Cid: &rec},
			{Action: "update", Path: "app.bsky.actor.profile/self", Cid: &rec, Prev: &prev},
			{Action: "delete", Path: "app.bsky.feed.like/3kabc2222221a", Prev: &prev},
		},
		Blobs: []lexutil.LexLink{},
	})
	if err != nil {
		t.Fatal(err)
	}
	sync, err := EncodeSync(8, &comatproto.SyncSubscribeRepos_Sync{
		Did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Rev: "3kabc2222224a", Time: testTime, Blocks: []byte{0x3a},
	})
	if err != nil {
		t.Fatal(err)
	}
	identity, err := EncodeIdentity(9, &comatproto.SyncSubscribeRepos_Identity{
		Did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Handle: &handle, Time: testTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	account, err := EncodeAccount(10, &comatproto.SyncSubscribeRepos_Account{
		Did: "did:plc:ewvi7nxzyoun6zhxrhs64oiz", Active: false, Status: &status, Time: testTime,
	})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"commit":   commit,
		"sync":     sync,
		"identity": identity,
		"account":  account,
		"info":     EncodeInfo(InfoOutdatedCursor, "Requested cursor exceeded limit. Possibly missing events"),
		"error":    EncodeError(ErrorConsumerTooSlow, "Stream consumer too slow"),
	}
}

var goldenOrder = []string{"commit", "sync", "identity", "account", "info", "error"}

// TestFramesGolden pins the wire bytes; any change to them is a protocol
// change and shows up in review. Run with -update to rewrite.
func TestFramesGolden(t *testing.T) {
	frames := goldenFrames(t)
	path := filepath.Join("testdata", "frames.golden")
	var want strings.Builder
	for _, name := range goldenOrder {
		fmt.Fprintf(&want, "%s %s\n", name, hex.EncodeToString(frames[name]))
	}
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(want.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want.String() {
		t.Errorf("frames differ from %s:\n got: %s\nwant: %s", path, got, want.String())
	}
}

// Every frame decodes with indigo's reference decoder into what was
// encoded, with the seq in the body.
func TestFramesDecodeWithIndigo(t *testing.T) {
	frames := goldenFrames(t)
	decode := func(name string) *events.XRPCStreamEvent {
		var xev events.XRPCStreamEvent
		if err := xev.Deserialize(bytes.NewReader(frames[name])); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return &xev
	}
	c := decode("commit").RepoCommit
	if c == nil || c.Seq != 7 || c.Repo != "did:plc:ewvi7nxzyoun6zhxrhs64oiz" || c.Rev != "3kabc2222223a" ||
		*c.Since != "3kabc2222222a" || len(c.Ops) != 3 || c.Ops[1].Prev == nil || c.Ops[2].Cid != nil ||
		c.PrevData == nil || c.Time != testTime || !bytes.Equal(c.Blocks, []byte{0x3a, 0xa2}) {
		t.Errorf("commit: %+v", c)
	}
	if s := decode("sync").RepoSync; s == nil || s.Seq != 8 || s.Rev != "3kabc2222224a" {
		t.Errorf("sync: %+v", s)
	}
	if i := decode("identity").RepoIdentity; i == nil || i.Seq != 9 || *i.Handle != "alice.test" {
		t.Errorf("identity: %+v", i)
	}
	if a := decode("account").RepoAccount; a == nil || a.Seq != 10 || a.Active || *a.Status != "takendown" {
		t.Errorf("account: %+v", a)
	}
	if i := decode("info").RepoInfo; i == nil || i.Name != "OutdatedCursor" || i.Message == nil {
		t.Errorf("info: %+v", i)
	}
	if e := decode("error").Error; e == nil || e.Error != "ConsumerTooSlow" {
		t.Errorf("error: %+v", e)
	}
}

func TestEncodeLeavesInputAlone(t *testing.T) {
	in := &comatproto.SyncSubscribeRepos_Identity{Did: "did:plc:x", Time: testTime, Seq: 99}
	if _, err := EncodeIdentity(5, in); err != nil {
		t.Fatal(err)
	}
	if in.Seq != 99 {
		t.Errorf("input seq changed to %d", in.Seq)
	}
}

func TestEncodeRefusesBadInput(t *testing.T) {
	ok := &comatproto.SyncSubscribeRepos_Identity{Did: "did:plc:x", Time: testTime}
	for _, seq := range []int64{0, -1, MaxSeq + 1} {
		if _, err := EncodeIdentity(seq, ok); !errors.Is(err, ErrBadSeq) {
			t.Errorf("seq %d: got %v, want ErrBadSeq", seq, err)
		}
	}
	if _, err := EncodeIdentity(MaxSeq, ok); err != nil {
		t.Errorf("seq MaxSeq: %v", err)
	}
	if _, err := EncodeIdentity(1, &comatproto.SyncSubscribeRepos_Identity{Did: "did:plc:x"}); err == nil {
		t.Error("identity without time: no error")
	}
	if _, err := EncodeCommit(1, &comatproto.SyncSubscribeRepos_Commit{Repo: "did:plc:x", Time: testTime}); err == nil {
		t.Error("commit without rev: no error")
	}
	if _, err := EncodeCommit(1, nil); err == nil {
		t.Error("nil commit: no error")
	}
	// A commit without its CID cannot be encoded: cbor-gen refuses the
	// undefined link rather than writing a broken frame.
	if _, err := EncodeCommit(1, &comatproto.SyncSubscribeRepos_Commit{Repo: "did:plc:x", Rev: "3kabc2222223a", Time: testTime}); err == nil {
		t.Error("commit without commit CID: no error")
	}
	if _, err := EncodeSync(1, &comatproto.SyncSubscribeRepos_Sync{Did: "did:plc:x", Time: testTime}); err == nil {
		t.Error("sync without rev: no error")
	}
	if _, err := EncodeAccount(1, &comatproto.SyncSubscribeRepos_Account{Time: testTime}); err == nil {
		t.Error("account without did: no error")
	}
}

// The bodies are canonical DAG-CBOR: decoding them generically and
// re-encoding with indigo's data-model encoder gives the same bytes.
func TestFrameBodiesCanonical(t *testing.T) {
	frames := goldenFrames(t)
	headers := map[string][]byte{
		"commit": headerCommit, "sync": headerSync, "identity": headerIdentity,
		"account": headerAccount, "info": headerInfo, "error": headerError,
	}
	for _, name := range goldenOrder {
		frame := frames[name]
		if !bytes.HasPrefix(frame, headers[name]) {
			t.Fatalf("%s: frame does not start with its header", name)
		}
		body := frame[len(headers[name]):]
		obj, err := atdata.UnmarshalCBOR(body)
		if err != nil {
			t.Fatalf("%s: decode body: %v", name, err)
		}
		again, err := atdata.MarshalCBOR(obj)
		if err != nil {
			t.Fatalf("%s: re-encode body: %v", name, err)
		}
		if !bytes.Equal(again, body) {
			t.Errorf("%s: body is not canonical:\n got %x\nwant %x", name, body, again)
		}
	}
}

// The cursor is the one parameter a subscriber sends.
func FuzzParseCursor(f *testing.F) {
	for _, seed := range []string{"", "0", "5", "-1", "abc", "1.5", "9223372036854775807", "9223372036854775808", " 1", "+3"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		c, err := parseCursor(v)
		switch {
		case err != nil:
			if c != nil {
				t.Fatalf("%q: cursor %d with error %v", v, *c, err)
			}
		case v == "":
			if c != nil {
				t.Fatalf("empty: cursor %d", *c)
			}
		case c == nil || *c < 0:
			t.Fatalf("%q: got %v without error", v, c)
		}
	})
}
