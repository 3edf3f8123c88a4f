// Command gen copies the lexicon schemas shipped by the indigo module that
// go.mod pins into lexicons/schemas, where the lexicons package embeds
// them. It runs as `go generate ./lexicons`; the copy is not committed.
package main

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const module = "github.com/bluesky-social/indigo"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "lexicons gen:", err)
		os.Exit(1)
	}
}

func run() error {
	out, err := exec.Command("go", "list", "-m", "-json", module).Output()
	if err != nil {
		return fmt.Errorf("locate %s: %w", module, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		if err := exec.Command("go", "mod", "download", module).Run(); err != nil {
			return fmt.Errorf("download %s: %w", module, err)
		}
		out, _ = exec.Command("go", "list", "-m", "-json", module).Output()
		json.Unmarshal(out, &mod)
	}
	if mod.Dir == "" {
		return fmt.Errorf("%s is not in the module cache", module)
	}
	src := filepath.Join(mod.Dir, "lexicons")
	dst := "schemas"
	entries, _ := os.ReadDir(dst)
	for _, e := range entries {
		if e.IsDir() {
			if err := os.RemoveAll(filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	}
	n := 0
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		n++
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("copy schemas: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("no schemas under %s", src)
	}
	return nil
}
