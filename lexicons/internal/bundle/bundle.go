// Package bundle turns the lexicon schemas the pinned indigo module ships
// into the one file the lexicons package embeds (schemas.jsonl): every
// schema file compacted onto one line, in path order. The generator writes
// it and a test compares the committed copy with what the module ships, so
// the two cannot drift apart unnoticed.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Module is the Go module whose lexicons folder is the source.
const Module = "github.com/bluesky-social/indigo"

// ModuleDir returns the folder of the Module version go.mod pins,
// downloading it into the module cache when it is not there yet. It runs
// the go command in the current directory, which must be inside this module.
func ModuleDir() (string, error) {
	dir, err := listDir()
	if err == nil && dir != "" {
		return dir, nil
	}
	if out, err := exec.Command("go", "mod", "download", Module).CombinedOutput(); err != nil {
		return "", fmt.Errorf("download %s: %w\n%s", Module, err, out)
	}
	if dir, err = listDir(); err != nil {
		return "", err
	}
	if dir == "" {
		return "", fmt.Errorf("%s is not in the module cache", Module)
	}
	return dir, nil
}

func listDir() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-json", Module).Output()
	if err != nil {
		return "", fmt.Errorf("locate %s: %w", Module, err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil {
		return "", fmt.Errorf("locate %s: %w", Module, err)
	}
	return mod.Dir, nil
}

// Build reads every *.json file under dir and returns them compacted, one
// per line, in the lexical order of their paths (fs.WalkDir's), so the same
// schemas always give the same bytes.
func Build(dir string) ([]byte, error) {
	var out bytes.Buffer
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := json.Compact(&out, b); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		out.WriteByte('\n')
		n++
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read schemas: %w", err)
	}
	if n == 0 {
		return nil, errors.New("no schemas under " + dir)
	}
	return out.Bytes(), nil
}

// FromModule is Build on the pinned module's lexicons folder.
func FromModule() ([]byte, error) {
	dir, err := ModuleDir()
	if err != nil {
		return nil, err
	}
	return Build(filepath.Join(dir, "lexicons"))
}
