package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// S3Bucket is the bucket StartS3 creates.
const S3Bucket = "hearth-blobs"

// StartS3 starts versitygw, a real S3-compatible server keeping objects in
// a temporary folder, on a free loopback port, creates the bucket S3Bucket
// with fresh root credentials, and returns what a client needs: the
// endpoint (http://127.0.0.1:PORT, path-style addressing), the keys and the
// bucket. The server is killed when the test ends; its output is logged
// if the test failed.
//
// The binary is the pinned one scripts/install-test-peers.sh builds into
// .peers/bin. Without it the test fails, never skips: an S3 test that
// silently does not run proves nothing. Under -short it skips (see
// needPeer).
func StartS3(t testing.TB) (endpoint, accessKey, secretKey, bucket string) {
	t.Helper()
	bin := peerBinary(t, "versitygw")
	accessKey = "hearth" + randomHex(t, 6)
	secretKey = randomHex(t, 20)
	root := t.TempDir()

	var lastErr error
	for range 3 {
		endpoint, lastErr = startVersityGW(t, bin, root, accessKey, secretKey)
		if lastErr == nil {
			return endpoint, accessKey, secretKey, S3Bucket
		}
	}
	t.Fatalf("testenv: versitygw did not start: %v", lastErr)
	return "", "", "", ""
}

func startVersityGW(t testing.TB, bin, root, accessKey, secretKey string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	out := &capped{max: 64 << 10}
	cmd := exec.Command(bin, "--port", addr, "--quiet", "posix", root)
	cmd.Env = append(versityEnv(os.Environ()), "ROOT_ACCESS_KEY="+accessKey, "ROOT_SECRET_KEY="+secretKey)
	cmd.Stdout = out
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}

	client, err := minio.New(addr, &minio.Options{
		Creds:        credentials.NewStaticV4(accessKey, secretKey, ""),
		Region:       "us-east-1",
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		stop()
		return "", err
	}
	// Ready means the bucket exists: creating it is the first request that
	// needs both the listener and the storage folder working.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		err := client.MakeBucket(ctx, S3Bucket, minio.MakeBucketOptions{})
		if err == nil {
			break
		}
		select {
		case <-exited:
			return "", fmt.Errorf("versitygw exited before answering (%s): last error %v\n%s", cmd.ProcessState, err, out)
		case <-ctx.Done():
			stop()
			return "", fmt.Errorf("versitygw at %s: no bucket within 20s: %v\n%s", addr, err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("versitygw output:\n%s", out)
		}
	})
	return "http://" + addr, nil
}

// versityEnv drops what would change versitygw's behaviour from the
// caller's environment: its own VGW_* settings and root keys, and
// AWS_CA_BUNDLE, which aws-sdk-go-v2 (inside versitygw) trips on.
func versityEnv(env []string) []string {
	out := WithoutEnv(env, "AWS_CA_BUNDLE", "ROOT_ACCESS_KEY", "ROOT_ACCESS_KEY_ID", "ROOT_SECRET_KEY", "ROOT_SECRET_ACCESS_KEY", "LOGFILE")
	kept := out[:0]
	for _, kv := range out {
		if !strings.HasPrefix(kv, "VGW_") {
			kept = append(kept, kv)
		}
	}
	return kept
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
