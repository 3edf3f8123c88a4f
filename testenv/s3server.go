package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Server is a versitygw process, like StartS3's, that a test can stop
// and start again on the same address and folder: what a PDS does while
// its object store is unreachable, and that it recovers once the store is
// back, with every object still there.
type S3Server struct {
	// Endpoint is http://127.0.0.1:PORT, addressed path-style.
	Endpoint  string
	AccessKey string
	SecretKey string
	Bucket    string
	// Root is versitygw's posix folder: Root/Bucket holds the objects.
	Root string
	// Client talks to the server with the root keys, for tests that look
	// into the bucket; it fails while the server is stopped.
	Client *minio.Client

	t    testing.TB
	bin  string
	addr string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	out    *capped
}

// StartS3Server starts versitygw on a free loopback port with the bucket
// S3Bucket, like StartS3, and returns a handle that can stop and restart
// it. It is stopped when the test ends.
func StartS3Server(t testing.TB) *S3Server {
	t.Helper()
	bin := peerBinary(t, "versitygw")
	s := &S3Server{
		AccessKey: "hearth" + randomHex(t, 6),
		SecretKey: randomHex(t, 20),
		Bucket:    S3Bucket,
		Root:      t.TempDir(),
		t:         t,
		bin:       bin,
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			s.mu.Lock()
			if s.out != nil {
				t.Logf("versitygw output:\n%s", s.out)
			}
			s.mu.Unlock()
		}
	})
	var lastErr error
	for range 3 {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		s.addr = "127.0.0.1:" + strconv.Itoa(port)
		s.Endpoint = "http://" + s.addr
		if s.Client, err = minio.New(s.addr, &minio.Options{
			Creds:        credentials.NewStaticV4(s.AccessKey, s.SecretKey, ""),
			Region:       "us-east-1",
			BucketLookup: minio.BucketLookupPath,
			MaxRetries:   1,
		}); err != nil {
			t.Fatal(err)
		}
		if lastErr = s.start(true); lastErr == nil {
			return s
		}
	}
	t.Fatalf("testenv: versitygw did not start: %v", lastErr)
	return nil
}

// Env is the PDS_BLOBSTORE_S3_* environment that points a PDS at s.
func (s *S3Server) Env() []string {
	return []string{
		"PDS_BLOBSTORE_S3_BUCKET=" + s.Bucket,
		"PDS_BLOBSTORE_S3_REGION=us-east-1",
		"PDS_BLOBSTORE_S3_ENDPOINT=" + s.Endpoint,
		"PDS_BLOBSTORE_S3_FORCE_PATH_STYLE=true",
		"PDS_BLOBSTORE_S3_ACCESS_KEY_ID=" + s.AccessKey,
		"PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
}

// Stop kills the server and waits for it to exit; its port then refuses
// connections. Stopping a stopped server does nothing.
func (s *S3Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Restart starts the server again on the same address, folder and keys,
// and waits until the bucket answers.
func (s *S3Server) Restart() {
	s.t.Helper()
	// The port was ours a moment ago; a listener of another process could
	// take it meanwhile, so try for a while rather than once.
	var err error
	for range 3 {
		if err = s.start(false); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	s.t.Fatalf("testenv: restart versitygw on %s: %v", s.addr, err)
}

func (s *S3Server) start(makeBucket bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("versitygw on %s is already running", s.addr)
	}
	out := &capped{max: 64 << 10}
	cmd := exec.Command(s.bin, "--port", s.addr, "--quiet", "posix", s.Root)
	cmd.Env = append(versityEnv(os.Environ()), "ROOT_ACCESS_KEY="+s.AccessKey, "ROOT_SECRET_KEY="+s.SecretKey)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		// Ready means the bucket answers: the listener and the storage
		// folder both work.
		var err error
		if makeBucket {
			err = s.Client.MakeBucket(ctx, s.Bucket, minio.MakeBucketOptions{})
		} else {
			var ok bool
			if ok, err = s.Client.BucketExists(ctx, s.Bucket); err == nil && !ok {
				err = fmt.Errorf("bucket %s is gone", s.Bucket)
			}
		}
		if err == nil {
			break
		}
		select {
		case <-exited:
			return fmt.Errorf("versitygw exited before answering (%s): last error %v\n%s", cmd.ProcessState, err, out)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("versitygw at %s: no bucket within 20s: %v\n%s", s.addr, err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.cmd, s.exited, s.out = cmd, exited, out
	return nil
}

// Objects lists the keys under prefix, and the keys of multipart uploads
// begun and neither completed nor aborted under it (parts a failed upload
// would leave billed in a real bucket).
func (s *S3Server) Objects(ctx context.Context, prefix string) (objects, uploads []string, err error) {
	for obj := range s.Client.ListObjects(ctx, s.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, nil, obj.Err
		}
		objects = append(objects, obj.Key)
	}
	for up := range s.Client.ListIncompleteUploads(ctx, s.Bucket, prefix, true) {
		if up.Err != nil {
			return nil, nil, up.Err
		}
		uploads = append(uploads, up.Key)
	}
	return objects, uploads, nil
}
