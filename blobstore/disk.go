package blobstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
)

// Disk keeps blobs in folders, in the official PDS's layout:
//
//	<location>/<did>/<cid>              permanent
//	<tmpLocation>/<did>/<key>           temporary (default <location>/tempt)
//	<location>/quarantine/<did>/<cid>   quarantined
//
// Files are written 0600 and folders made 0700: blobs of taken-down or
// private accounts are nobody else's to read on a shared host.
type Disk struct {
	location   string
	tmp        string
	quarantine string
	log        *slog.Logger
}

var _ Store = (*Disk)(nil)

// NewDisk opens the blob folder location, creating it and the temporary
// folder when missing. tmpLocation may be on another file system (a
// faster disk, or tmpfs); empty means <location>/tempt, the official
// default.
func NewDisk(location, tmpLocation string, log *slog.Logger) (*Disk, error) {
	if location == "" {
		return nil, errors.New("blobstore: disk location is empty")
	}
	if tmpLocation == "" {
		tmpLocation = filepath.Join(location, "tempt")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	location, err := filepath.Abs(location)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	if tmpLocation, err = filepath.Abs(tmpLocation); err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	d := &Disk{
		location:   location,
		tmp:        tmpLocation,
		quarantine: filepath.Join(location, "quarantine"),
		log:        log,
	}
	// WalkTemps treats whatever is in the temp folder as disposable: it
	// must not be where permanent or quarantined blobs live.
	if d.tmp == d.location || d.tmp == d.quarantine {
		return nil, fmt.Errorf("blobstore: temporary folder %s must differ from the blob folder and its quarantine", d.tmp)
	}
	for _, dir := range []string{d.location, d.tmp} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("blobstore: %w", err)
		}
	}
	return d, nil
}

func (d *Disk) storedPath(did string, c cid.Cid) string {
	return filepath.Join(d.location, did, c.String())
}

func (d *Disk) tmpPath(did string, key string) string {
	return filepath.Join(d.tmp, did, key)
}

func (d *Disk) quarantinePath(did string, c cid.Cid) string {
	return filepath.Join(d.quarantine, did, c.String())
}

func checkBlob(did string, c cid.Cid) error {
	if err := checkDID(did); err != nil {
		return err
	}
	return checkCID(c)
}

func checkTemp(did string, key string) error {
	if err := checkDID(did); err != nil {
		return err
	}
	return checkTempKey(key)
}

func (d *Disk) PutTemp(ctx context.Context, did string, r io.Reader) (string, int64, error) {
	if err := checkDID(did); err != nil {
		return "", 0, err
	}
	dir := filepath.Join(d.tmp, did)
	if err := ensureDir(dir); err != nil {
		return "", 0, fmt.Errorf("blobstore: put temp: %w", err)
	}
	key := newTempKey()
	path := filepath.Join(dir, key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("blobstore: put temp: %w", err)
	}
	n, err := io.Copy(f, ctxReader{ctx, r})
	if err == nil {
		// Synced now, so that once MakePermanent renames it and syncs the
		// folder, the blob survives a crash without copying it again.
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", 0, fmt.Errorf("blobstore: put temp: %w", err)
	}
	return key, n, nil
}

func (d *Disk) MakePermanent(ctx context.Context, did string, key string, c cid.Cid) error {
	if err := checkTemp(did, key); err != nil {
		return err
	}
	if err := checkCID(c); err != nil {
		return err
	}
	src, dst := d.tmpPath(did, key), d.storedPath(did, c)
	if err := d.move(src, dst); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(dst); serr == nil {
				return nil
			}
			return fmt.Errorf("blobstore: make permanent %s/%s: %w", did, key, ErrNotFound)
		}
		return fmt.Errorf("blobstore: make permanent %s/%s: %w", did, key, err)
	}
	return nil
}

// move renames src to dst, creating dst's folder. Across file systems
// (EXDEV: the temp folder elsewhere) it copies to a hidden file beside
// dst, syncs it, renames it into place and only then removes src, so dst
// is never seen half written. A missing src gives an error that
// errors.Is(err, fs.ErrNotExist).
func (d *Disk) move(src, dst string) error {
	dir := filepath.Dir(dst)
	if err := ensureDir(dir); err != nil {
		return err
	}
	err := os.Rename(src, dst)
	if errors.Is(err, syscall.EXDEV) {
		err = copyAcross(src, dst)
		if err == nil {
			if rerr := os.Remove(src); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				// The blob is safely in place; the stray source is only
				// space, and a later WalkTemps sweep removes it.
				d.log.Warn("blobstore: remove moved file", "path", src, "err", rerr)
			}
		}
	}
	if err != nil {
		return err
	}
	return syncDir(dir)
}

func copyAcross(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.CreateTemp(filepath.Dir(dst), ".partial-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	if err = out.Chmod(0o600); err != nil {
		return err
	}
	if _, err = io.Copy(out, in); err != nil {
		return err
	}
	if err = out.Sync(); err != nil {
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	return os.Rename(out.Name(), dst)
}

func (d *Disk) DeleteTemp(ctx context.Context, did string, key string) error {
	if err := checkTemp(did, key); err != nil {
		return err
	}
	return removeIfExists(d.tmpPath(did, key))
}

func (d *Disk) WalkTemps(ctx context.Context, olderThan time.Time, fn func(Temp) error) error {
	dids, err := os.ReadDir(d.tmp)
	if err != nil {
		return fmt.Errorf("blobstore: walk temps: %w", err)
	}
	for _, de := range dids {
		did := de.Name()
		if !de.IsDir() || checkDID(did) != nil {
			continue
		}
		files, err := os.ReadDir(filepath.Join(d.tmp, de.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // removed by DeleteAll meanwhile
			}
			return fmt.Errorf("blobstore: walk temps: %w", err)
		}
		for _, fe := range files {
			if err := ctx.Err(); err != nil {
				return err
			}
			if !fe.Type().IsRegular() || checkTempKey(fe.Name()) != nil {
				continue
			}
			info, err := fe.Info()
			if err != nil {
				continue // removed meanwhile
			}
			if !info.ModTime().Before(olderThan) {
				continue
			}
			if err := fn(Temp{DID: did, Key: fe.Name(), Size: info.Size(), ModTime: info.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *Disk) Get(ctx context.Context, did string, c cid.Cid) (io.ReadCloser, int64, error) {
	f, size, err := d.open(did, c)
	if err != nil {
		return nil, 0, err
	}
	return f, size, nil
}

func (d *Disk) GetRange(ctx context.Context, did string, c cid.Cid, offset, length int64) (io.ReadCloser, int64, error) {
	f, size, err := d.open(did, c)
	if err != nil {
		return nil, 0, err
	}
	n, err := checkRange(offset, length, size)
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blobstore: get %s/%s: %w", did, c, err)
	}
	return readCloser{io.NewSectionReader(f, offset, n), f}, size, nil
}

func (d *Disk) open(did string, c cid.Cid) (*os.File, int64, error) {
	if err := checkBlob(did, c); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(d.storedPath(did, c))
	if err != nil {
		return nil, 0, notFound(fmt.Sprintf("get %s/%s", did, c), err)
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blobstore: get %s/%s: %w", did, c, err)
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("blobstore: get %s/%s: not a regular file", did, c)
	}
	return f, info.Size(), nil
}

func (d *Disk) Stat(ctx context.Context, did string, c cid.Cid) (int64, error) {
	if err := checkBlob(did, c); err != nil {
		return 0, err
	}
	info, err := os.Stat(d.storedPath(did, c))
	if err != nil {
		return 0, notFound(fmt.Sprintf("stat %s/%s", did, c), err)
	}
	return info.Size(), nil
}

func (d *Disk) Delete(ctx context.Context, did string, c cid.Cid) error {
	if err := checkBlob(did, c); err != nil {
		return err
	}
	return removeIfExists(d.storedPath(did, c))
}

func (d *Disk) DeleteAll(ctx context.Context, did string) error {
	if err := checkDID(did); err != nil {
		return err
	}
	for _, root := range []string{d.location, d.tmp, d.quarantine} {
		if err := os.RemoveAll(filepath.Join(root, did)); err != nil {
			return fmt.Errorf("blobstore: delete all of %s: %w", did, err)
		}
	}
	return nil
}

func (d *Disk) Quarantine(ctx context.Context, did string, c cid.Cid) error {
	if err := checkBlob(did, c); err != nil {
		return err
	}
	return d.swap("quarantine", d.storedPath(did, c), d.quarantinePath(did, c))
}

func (d *Disk) Unquarantine(ctx context.Context, did string, c cid.Cid) error {
	if err := checkBlob(did, c); err != nil {
		return err
	}
	return d.swap("unquarantine", d.quarantinePath(did, c), d.storedPath(did, c))
}

// swap moves a blob between the permanent and quarantine folders; a
// missing source is fine when the destination already holds it.
func (d *Disk) swap(op, src, dst string) error {
	err := d.move(src, dst)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(dst); serr == nil {
			return nil
		}
		return fmt.Errorf("blobstore: %s %s: %w", op, src, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("blobstore: %s: %w", op, err)
	}
	return nil
}

func (d *Disk) Check(ctx context.Context) error {
	for _, dir := range []string{d.location, d.tmp} {
		info, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("blobstore: %w", err)
		}
		if !info.IsDir() {
			return fmt.Errorf("blobstore: %s is not a folder", dir)
		}
	}
	return nil
}

// ensureDir makes dir (0700) and, when it made it, syncs its parent so the
// new entry survives a crash together with the files put in it.
func ensureDir(dir string) error {
	err := os.Mkdir(dir, 0o700)
	switch {
	case err == nil:
		return syncDir(filepath.Dir(dir))
	case errors.Is(err, fs.ErrExist):
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return err
		}
		return ensureDir(dir)
	default:
		return err
	}
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: %w", err)
	}
	return nil
}

func notFound(op string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: %s: %w", op, ErrNotFound)
	}
	return fmt.Errorf("blobstore: %s: %w", op, err)
}
