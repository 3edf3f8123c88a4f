package testenv

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// PlainInstall copies the files a commit of the module would hold (tracked
// and untracked ones, never git-ignored ones such as generated output) to a
// temporary folder and runs a plain `go install ./cmd/hearth` there, with
// no Makefile and no generate step: what `go install module@version`
// builds from a module download, which holds no git-ignored file either.
// It returns the binary.
func PlainInstall(t testing.TB) string {
	t.Helper()
	root := RepoRoot(t)
	ls := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	ls.Dir = root
	out, err := ls.Output()
	if err != nil {
		t.Fatalf("testenv: list the module's files with git: %v", err)
	}
	src := filepath.Join(t.TempDir(), "hearth")
	for name := range strings.SplitSeq(strings.TrimSuffix(string(out), "\x00"), "\x00") {
		if err := copyFile(filepath.Join(root, name), filepath.Join(src, name)); err != nil {
			t.Fatalf("testenv: copy %s: %v", name, err)
		}
	}
	bin := t.TempDir()
	cmd := exec.Command("go", "install", "-trimpath", "./cmd/hearth")
	cmd.Dir = src
	cmd.Env = append(WithoutEnv(os.Environ(), "GOFLAGS", "GOBIN"), "GOBIN="+bin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testenv: go install ./cmd/hearth: %v\n%s", err, out)
	}
	return filepath.Join(bin, "hearth")
}

// copyFile copies a regular file; a file deleted from the work tree but not
// yet from the index, or a symlink (the peers' folders), is skipped.
func copyFile(from, to string) error {
	info, err := os.Lstat(from)
	if os.IsNotExist(err) || (err == nil && !info.Mode().IsRegular()) {
		return nil
	}
	if err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	outf, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(outf, in); err != nil {
		outf.Close()
		return err
	}
	return outf.Close()
}
