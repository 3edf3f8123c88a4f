package plc_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/did-method-plc/go-didplc/didplc"

	"github.com/hearth-pds/hearth/plc"
)

const journalFile = "plc-operations.jsonl"

func openDir(t *testing.T, dir string) *plc.Directory {
	t.Helper()
	d, err := plc.Open(dir, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return d
}

// persisted registers a few identities in d and takes them through
// updates, a recovery fork and a tombstone, returning their DIDs.
func persisted(t *testing.T, d *plc.Directory) (dids []syntax.DID, high, mid, low key) {
	t.Helper()
	ctx := context.Background()
	high, mid, low = newKey(t, "k256"), newKey(t, "p256"), newKey(t, "k256")
	signing := newKey(t, "k256")
	must := func(did syntax.DID, op didplc.Operation) {
		t.Helper()
		if err := d.Submit(ctx, did, op); err != nil {
			t.Fatalf("Submit: %v", err)
		}
	}
	for i := range 3 {
		g := genesisOp(keyDIDs(high, mid, low), signing, fmt.Sprintf("user%d.test", i))
		sign(t, g, low)
		did := didOf(t, g)
		must(did, g)
		u := nextOp(g)
		u.AlsoKnownAs = []string{"at://updated.test"}
		sign(t, u, low)
		must(did, u)
		switch i {
		case 1: // recovery: mid displaces u
			r := nextOp(g)
			r.AlsoKnownAs = []string{"at://recovered.test"}
			sign(t, r, mid)
			must(did, r)
		case 2:
			ts := tombstoneOp(u)
			sign(t, ts, low)
			must(did, ts)
		}
		dids = append(dids, did)
	}
	return dids, high, mid, low
}

func auditLogs(t *testing.T, d *plc.Directory, dids []syntax.DID) map[syntax.DID][]didplc.LogEntry {
	t.Helper()
	out := map[syntax.DID][]didplc.LogEntry{}
	for _, did := range dids {
		log, err := d.AuditLog(did)
		if err != nil {
			t.Fatalf("AuditLog(%s): %v", did, err)
		}
		out[did] = log
	}
	return out
}

func sameLogs(t *testing.T, got, want map[syntax.DID][]didplc.LogEntry) {
	t.Helper()
	gotJSON, _ := json.Marshal(got)
	wantJSON, _ := json.Marshal(want)
	if !bytes.Equal(gotJSON, wantJSON) {
		t.Errorf("audit logs after reopening differ:\ngot  %s\nwant %s", gotJSON, wantJSON)
	}
}

func TestRestart(t *testing.T) {
	dir := t.TempDir()
	d := openDir(t, dir)
	dids, _, mid, _ := persisted(t, d)
	before := auditLogs(t, d, dids)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = openDir(t, dir)
	defer d.Close()
	sameLogs(t, auditLogs(t, d, dids), before)

	// The derived state came back too: the recovered identity's genesis
	// now only allows high to fork, so mid may not fork again.
	g := before[dids[1]][0].Operation.AsOperation()
	again := nextOp(g)
	again.AlsoKnownAs = []string{"at://again.test"}
	sign(t, again, mid)
	if err := d.Submit(context.Background(), dids[1], again); !errors.Is(err, plc.ErrInvalidOperation) {
		t.Errorf("second fork by the same key after restart: %v, want ErrInvalidOperation", err)
	}
	if _, err := d.Data(dids[2]); !errors.Is(err, plc.ErrDeactivated) {
		t.Errorf("tombstoned DID after restart: %v, want ErrDeactivated", err)
	}
	// And it keeps accepting.
	head, err := d.LastOp(dids[0])
	if err != nil {
		t.Fatal(err)
	}
	next := nextOp(head)
	sign(t, next, mid)
	if err := d.Submit(context.Background(), dids[0], next); err != nil {
		t.Errorf("Submit after restart: %v", err)
	}
}

func TestTornLastLine(t *testing.T) {
	for _, tail := range []struct {
		name  string
		bytes func(lastLine []byte) []byte
	}{
		{"prefix of a line", func(last []byte) []byte { return last[:len(last)/2] }},
		{"line without its newline", func(last []byte) []byte { return bytes.TrimSuffix(last, []byte("\n")) }},
		{"zeros", func([]byte) []byte { return make([]byte, 300) }},
		{"zeros then a newline", func([]byte) []byte { return append(make([]byte, 300), '\n') }},
	} {
		t.Run(tail.name, func(t *testing.T) {
			dir := t.TempDir()
			d := openDir(t, dir)
			dids, _, _, low := persisted(t, d)
			before := auditLogs(t, d, dids)
			d.Close()

			path := filepath.Join(dir, journalFile)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.SplitAfter(data, []byte("\n"))
			last := lines[len(lines)-2] // the final element is empty
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(tail.bytes(last)); err != nil {
				t.Fatal(err)
			}
			f.Close()

			d = openDir(t, dir)
			sameLogs(t, auditLogs(t, d, dids), before)
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
				t.Errorf("journal not cut back to its last whole line (err %v)", err)
			}
			// Appends after the cut land on a clean line.
			head, err := d.LastOp(dids[0])
			if err != nil {
				t.Fatal(err)
			}
			next := nextOp(head)
			sign(t, next, low)
			if err := d.Submit(context.Background(), dids[0], next); err != nil {
				t.Fatal(err)
			}
			d.Close()
			d = openDir(t, dir)
			defer d.Close()
			if last, err := d.LastOp(dids[0]); err != nil || last.CID() != next.CID() {
				t.Errorf("after reopening, head is not the operation appended after the cut (err %v)", err)
			}
		})
	}
}

func TestDamagedJournal(t *testing.T) {
	for _, damage := range []struct {
		name   string
		damage func(lines [][]byte)
	}{
		{"middle line not JSON", func(lines [][]byte) { lines[1] = []byte("{\"did\": garbage\n") }},
		{"middle line signature changed", func(lines [][]byte) {
			lines[1] = resign(lines[1])
		}},
		{"last line signature changed", func(lines [][]byte) {
			lines[len(lines)-2] = resign(lines[len(lines)-2])
		}},
		{"line moved to another DID", func(lines [][]byte) {
			var rec map[string]any
			json.Unmarshal(lines[1], &rec)
			rec["did"] = "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"
			b, _ := json.Marshal(rec)
			lines[1] = append(b, '\n')
		}},
		{"lines swapped", func(lines [][]byte) { lines[0], lines[1] = lines[1], lines[0] }},
	} {
		t.Run(damage.name, func(t *testing.T) {
			dir := t.TempDir()
			d := openDir(t, dir)
			persisted(t, d)
			d.Close()
			path := filepath.Join(dir, journalFile)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			lines := bytes.SplitAfter(data, []byte("\n"))
			damage.damage(lines)
			if err := os.WriteFile(path, bytes.Join(lines, nil), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err = plc.Open(dir, nil)
			if err == nil {
				d.Close()
				t.Fatal("Open accepted a damaged journal")
			}
			if !strings.Contains(err.Error(), "line") {
				t.Errorf("error does not name the line: %v", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// resign replaces the signature in a journal line with another valid-looking
// one: the line still parses, but the operation no longer hashes to its CID.
func resign(line []byte) []byte {
	var rec map[string]any
	json.Unmarshal(line, &rec)
	op := rec["operation"].(map[string]any)
	op["sig"] = strings.Repeat("A", 86)
	b, _ := json.Marshal(rec)
	return append(b, '\n')
}

func TestOpenTwice(t *testing.T) {
	dir := t.TempDir()
	d := openDir(t, dir)
	if d2, err := plc.Open(dir, nil); err == nil {
		d2.Close()
		t.Fatal("a second Open of the same directory succeeded")
	} else {
		t.Logf("refused: %v", err)
	}
	d.Close()
	d = openDir(t, dir)
	d.Close()
}

func TestOpenNeedsDir(t *testing.T) {
	if _, err := plc.Open("", nil); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

// TestCrash kills a process that is submitting operations and checks that
// every operation it had been told was accepted is there after reopening.
// The child is this test binary, re-run with PLC_CRASH_CHILD set.
func TestCrash(t *testing.T) {
	if dir := os.Getenv("PLC_CRASH_CHILD"); dir != "" {
		crashChild(t, dir)
		return
	}
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrash$", "-test.v")
	cmd.Env = append(os.Environ(), "PLC_CRASH_CHILD="+dir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[string]string{} // cid -> did
	scanner := bufio.NewScanner(stdout)
	deadline := time.After(60 * time.Second)
	for len(acked) < 150 && scanner.Scan() {
		if did, cid, ok := strings.Cut(strings.TrimPrefix(scanner.Text(), "accepted "), " "); ok && strings.HasPrefix(scanner.Text(), "accepted ") {
			acked[cid] = did
		}
		select {
		case <-deadline:
			t.Fatal("child too slow")
		default:
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if len(acked) < 150 {
		t.Fatalf("child acknowledged only %d operations before dying:\n%s", len(acked), stderr.String())
	}

	d := openDir(t, dir)
	defer d.Close()
	present := map[string]bool{}
	for _, did := range acked {
		log, err := d.AuditLog(syntax.DID(did))
		if err != nil {
			t.Fatalf("AuditLog(%s): %v", did, err)
		}
		if err := didplc.VerifyOpLog(log); err != nil {
			t.Errorf("log of %s does not verify: %v", did, err)
		}
		for _, e := range log {
			present[e.CID] = true
		}
	}
	for cid, did := range acked {
		if !present[cid] {
			t.Errorf("acknowledged operation %s of %s lost", cid, did)
		}
	}
}

// crashChild submits operations until killed, printing each one only
// after Submit has returned.
func crashChild(t *testing.T, dir string) {
	d, err := plc.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	k := newKey(t, "k256")
	for i := 0; ; i++ {
		g := genesisOp(keyDIDs(k), k, fmt.Sprintf("crash%d.test", i))
		sign(t, g, k)
		did := didOf(t, g)
		prev := didplc.Operation(g)
		if err := d.Submit(context.Background(), did, g); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("accepted %s %s\n", did, g.CID())
		for j := range 4 {
			u := nextOp(prev)
			u.AlsoKnownAs = []string{fmt.Sprintf("at://c%d-%d.test", i, j)}
			sign(t, u, k)
			if err := d.Submit(context.Background(), did, u); err != nil {
				t.Fatal(err)
			}
			fmt.Printf("accepted %s %s\n", did, u.CID())
			prev = u
		}
	}
}

// TestInteropLogs replays go-didplc's test vectors (real directory logs,
// legacy operations, nullifications at exactly 72 hours, and invalid
// ones) as journals: the valid ones must load and serve the same audit
// log, the invalid ones must be refused. The vectors are read from the
// module cache, not copied.
func TestInteropLogs(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/did-method-plc/go-didplc").Output()
	if err != nil {
		t.Fatalf("locate go-didplc: %v", err)
	}
	vectors := filepath.Join(strings.TrimSpace(string(out)), "testdata")
	files, err := filepath.Glob(filepath.Join(vectors, "log_*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test vectors in %s (%v)", vectors, err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var entries []didplc.LogEntry
			if err := json.Unmarshal(raw, &entries); err != nil {
				t.Fatal(err)
			}
			var journal bytes.Buffer
			for i := range entries {
				line, err := json.Marshal(&entries[i])
				if err != nil {
					t.Fatal(err)
				}
				journal.Write(line)
				journal.WriteByte('\n')
			}
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, journalFile), journal.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			d, err := plc.Open(dir, nil)
			invalid := strings.HasPrefix(name, "log_invalid_")
			if invalid {
				if err == nil {
					d.Close()
					t.Fatal("Open accepted an invalid log")
				}
				return
			}
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer d.Close()
			got, err := d.AuditLog(syntax.DID(entries[0].DID))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(entries) {
				t.Fatalf("%d entries, want %d", len(got), len(entries))
			}
			for i := range entries {
				g, w := got[i], entries[i]
				gt, _ := time.Parse(time.RFC3339Nano, g.CreatedAt)
				wt, _ := time.Parse(time.RFC3339Nano, w.CreatedAt)
				if g.CID != w.CID || g.Nullified != w.Nullified || !gt.Equal(wt) || !reflect.DeepEqual(g.Operation.AsOperation().CID(), w.Operation.AsOperation().CID()) {
					t.Errorf("entry %d = %s nullified=%v at %s, want %s nullified=%v at %s", i, g.CID, g.Nullified, g.CreatedAt, w.CID, w.Nullified, w.CreatedAt)
				}
			}
		})
	}
}
