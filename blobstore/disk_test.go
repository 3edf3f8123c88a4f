package blobstore_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/hearth-pds/hearth/blobstore"
	"github.com/hearth-pds/hearth/blobstore/blobstoretest"
)

// The official layout on disk (packages/pds/src/disk-blobstore.ts):
// <location>/<did>/<cid>, <tmpLocation>/<did>/<key> with tmpLocation
// defaulting to <location>/tempt, and <location>/quarantine/<did>/<cid>.
// The DID is a folder name as it is.
func TestDiskConformance(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstoretest.Harness {
		root := t.TempDir()
		s, err := blobstore.NewDisk(filepath.Join(root, "blocks"), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		return diskHarness(root, s, "blocks/tempt/{did}/{key}")
	})
}

// TestDiskSeparateTmpConformance puts the temporary folder elsewhere, as
// PDS_BLOBSTORE_DISK_TMP_LOCATION does.
func TestDiskSeparateTmpConformance(t *testing.T) {
	blobstoretest.Run(t, func(t *testing.T) blobstoretest.Harness {
		root := t.TempDir()
		s, err := blobstore.NewDisk(filepath.Join(root, "blocks"), filepath.Join(root, "uploads"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return diskHarness(root, s, "uploads/{did}/{key}")
	})
}

func diskHarness(root string, s *blobstore.Disk, temp string) blobstoretest.Harness {
	return blobstoretest.Harness{
		Store:       s,
		Stored:      "blocks/{did}/{cid}",
		Temp:        temp,
		Quarantined: "blocks/quarantine/{did}/{cid}",
		Objects:     func(t testing.TB) []string { return files(t, root) },
		PutObject: func(t testing.TB, name string, data []byte) {
			path := filepath.Join(root, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			// 0644, as the official PDS leaves its files.
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}
}

// files lists the regular files under root, relative, with '/'.
func files(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// TestDiskPermissions: blobs are the account's, not every local user's.
func TestDiskPermissions(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	root := t.TempDir()
	s, err := blobstore.NewDisk(filepath.Join(root, "blocks"), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	did := "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	key, _, err := s.PutTemp(t.Context(), did, strings.NewReader("private"))
	if err != nil {
		t.Fatal(err)
	}
	c := cidOf(t, []byte("private"))
	if err := s.MakePermanent(t.Context(), did, key, c); err != nil {
		t.Fatal(err)
	}
	if err := s.Quarantine(t.Context(), did, c); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == root {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := info.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDiskAcrossFileSystems puts the temporary folder on tmpfs, so that
// MakePermanent cannot rename and must copy, sync and rename.
func TestDiskAcrossFileSystems(t *testing.T) {
	shm, err := os.MkdirTemp("/dev/shm", "hearth-blobs-")
	if err != nil {
		t.Fatalf("need /dev/shm (a tmpfs on Linux) for a second file system: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	root := t.TempDir()
	if dev(t, shm) == dev(t, root) {
		t.Fatalf("/dev/shm and %s are on the same file system: the test would not cross one", root)
	}
	s, err := blobstore.NewDisk(filepath.Join(root, "blocks"), shm, nil)
	if err != nil {
		t.Fatal(err)
	}
	did := "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
	data := bytes.Repeat([]byte("across "), 100_000)
	key, _, err := s.PutTemp(t.Context(), did, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	c := cidOf(t, data)
	if err := s.MakePermanent(t.Context(), did, key, c); err != nil {
		t.Fatal(err)
	}
	if got, want := files(t, root), []string{"blocks/" + did + "/" + c.String()}; !slices.Equal(got, want) {
		t.Errorf("blob folder holds %q, want %q (no partial copy left)", got, want)
	}
	if got := files(t, shm); len(got) != 0 {
		t.Errorf("temporary folder still holds %q", got)
	}
	r, _, err := s.Get(t.Context(), did, c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := new(bytes.Buffer)
	got.ReadFrom(r)
	if !bytes.Equal(got.Bytes(), data) {
		t.Error("blob read back differs")
	}
	if err := s.MakePermanent(t.Context(), did, key, c); err != nil {
		t.Errorf("MakePermanent again: %v", err)
	}
}

func dev(t *testing.T, path string) uint64 {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return uint64(st.Dev)
}

func TestNewDiskRefusesTmpOverBlobs(t *testing.T) {
	root := t.TempDir()
	for _, tmp := range []string{root, filepath.Join(root, "quarantine"), root + "/./"} {
		if _, err := blobstore.NewDisk(root, tmp, nil); err == nil {
			t.Errorf("NewDisk(%s, %s) accepted a temporary folder that WalkTemps would empty", root, tmp)
		}
	}
}
