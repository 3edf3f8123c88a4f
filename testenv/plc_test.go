package testenv

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestStartReferencePLC(t *testing.T) {
	url := StartReferencePLC(t)
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Errorf("URL %q is not on loopback", url)
	}
	resp, err := http.Get(url + "/did:plc:aaaaaaaaaaaaaaaaaaaaaaaa")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET unregistered DID = %d, want 404", resp.StatusCode)
	}
}

// TestLoopbackPreload checks every form of listen the preload rewrites,
// and that it leaves an explicit host alone.
func TestLoopbackPreload(t *testing.T) {
	node := Node(t)
	preload := filepath.Join(RepoRoot(t), "test", "peers", "loopback.cjs")
	script := `
const http = require('node:http')
const forms = {
  'listen(0)': (s, cb) => s.listen(0, cb),
  'listen()': (s, cb) => { s.once('listening', cb); s.listen() },
  'listen(cb)': (s, cb) => s.listen(cb),
  'listen(0, backlog, cb)': (s, cb) => s.listen(0, 10, cb),
  'listen("0")': (s, cb) => { s.once('listening', cb); s.listen('0') },
  'listen({port: 0})': (s, cb) => s.listen({ port: 0 }, cb),
  'listen(0, "localhost")': (s, cb) => s.listen(0, 'localhost', cb),
}
const out = {}
let left = Object.keys(forms).length
for (const [name, listen] of Object.entries(forms)) {
  const s = http.createServer()
  listen(s, () => {
    out[name] = s.address().address
    s.close()
    if (--left === 0) console.log(JSON.stringify(out))
  })
}
`
	b, err := exec.Command(node, "--require", preload, "-e", script).CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, b)
	}
	var got map[string]string
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("output %s: %v", b, err)
	}
	if len(got) != 7 {
		t.Fatalf("got %d results, want 7: %v", len(got), got)
	}
	for form, addr := range got {
		want := "127.0.0.1"
		if strings.Contains(form, "localhost") {
			// An explicit host is kept: whatever localhost resolves to.
			if addr != "127.0.0.1" && addr != "::1" {
				t.Errorf("%s bound %s, want localhost", form, addr)
			}
			continue
		}
		if addr != want {
			t.Errorf("%s bound %s, want %s", form, addr, want)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "module github.com/hearth-pds/hearth\n") {
		t.Errorf("RepoRoot found another module's go.mod")
	}
}

// fatalRecorder stands in for a test to catch what StartReferencePLC
// reports, stopping its goroutine as t.Fatal would.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartReferencePLCWithoutNode(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: checks how the full tier fails without node")
	}
	t.Setenv("PATH", t.TempDir())
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		StartReferencePLC(rec)
	}()
	<-done
	if !strings.Contains(rec.msg, "needs node") {
		t.Errorf("without node, StartReferencePLC reported %q; want a failure naming node", rec.msg)
	}
}
