package blobstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/hearth-pds/hearth/config"
)

// S3 keeps blobs in an S3 bucket, in the official PDS's layout:
//
//	blocks/<did>/<cid>       permanent
//	tmp/<did>/<key>          temporary
//	quarantine/<did>/<cid>   quarantined
//
// The DID is written as is, colons and all, exactly like the official
// PDS, so an existing bucket is used without renaming anything.
//
// It speaks S3 through minio-go, which works with AWS, R2, MinIO, Hetzner,
// Backblaze and versitygw alike, sends no trailing checksums that some of
// them refuse, and ignores AWS_CA_BUNDLE (a private CA goes in
// SSL_CERT_FILE, as for any Go program).
type S3 struct {
	client         *minio.Client
	core           minio.Core
	bucket         string
	uploadTimeout  time.Duration
	requestTimeout time.Duration
	log            *slog.Logger
}

var _ Store = (*S3)(nil)

// partSize is the size of every part of a multipart upload but the last:
// S3's minimum, so one upload holds at most 5 MiB of the blob in memory.
// R2 also wants all non-final parts the same size, which a fixed size gives.
const partSize = 5 << 20

// NewS3 makes an S3 store from the PDS_BLOBSTORE_S3_* settings. It does not
// contact the bucket (see Check): a store briefly unreachable at start-up
// should not stop the server.
//
// Without an endpoint it talks to AWS. Without static credentials it uses
// the usual AWS chain: AWS_ACCESS_KEY_ID and friends, the shared
// credentials file (AWS_PROFILE), then the container, web identity (EKS
// IRSA) and EC2 instance providers.
func NewS3(cfg config.S3, log *slog.Logger) (*S3, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("blobstore: S3 bucket is empty")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	host, secure := "s3.amazonaws.com", true
	if cfg.Endpoint != "" {
		u, err := url.Parse(cfg.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("blobstore: S3 endpoint %q: want http(s)://host[:port]", cfg.Endpoint)
		}
		if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("blobstore: S3 endpoint %q: want no path, query or user", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}

	var creds *credentials.Credentials
	if cfg.AccessKeyID != "" {
		creds = credentials.NewStaticV4(cfg.AccessKeyID, string(cfg.SecretAccessKey), "")
	} else {
		creds = credentials.NewChainCredentials([]credentials.Provider{
			&credentials.EnvAWS{},
			&credentials.FileAWSCredentials{},
			&credentials.IAM{Client: &http.Client{Transport: http.DefaultTransport}},
		})
	}

	transport, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("blobstore: %w", err)
	}
	if cfg.RequestTimeout > 0 {
		// Bounds the wait for each response's headers: a stalled store is
		// noticed (and the request retried) without cutting short a download
		// streamed to a slow client, which a whole-request deadline would.
		transport.ResponseHeaderTimeout = cfg.RequestTimeout
	}

	pathStyle := cfg.ForcePathStyle
	client, err := minio.New(host, &minio.Options{
		Creds:     creds,
		Secure:    secure,
		Region:    cfg.Region,
		Transport: transport,
		BucketLookupViaURL: func(u url.URL, bucket string) minio.BucketLookupType {
			return bucketLookup(pathStyle, u, bucket)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("blobstore: S3 client: %w", err)
	}
	return &S3{
		client:         client,
		core:           minio.Core{Client: client},
		bucket:         cfg.Bucket,
		uploadTimeout:  cfg.UploadTimeout,
		requestTimeout: cfg.RequestTimeout,
		log:            log,
	}, nil
}

// bucketLookup addresses the bucket as the official PDS's SDK does:
// virtual-hosted (bucket.host) unless PDS_BLOBSTORE_S3_FORCE_PATH_STYLE is
// set, the endpoint is an IP address, or the bucket name cannot be a DNS
// label under TLS. minio-go's own default would use path style for every
// endpoint it does not recognise, which some providers refuse.
func bucketLookup(forcePathStyle bool, u url.URL, bucket string) minio.BucketLookupType {
	host := u.Hostname()
	switch {
	case forcePathStyle, bucket == "":
		return minio.BucketLookupPath
	case net.ParseIP(host) != nil:
		return minio.BucketLookupPath
	case strings.Contains(bucket, ".") && u.Scheme == "https":
		return minio.BucketLookupPath
	case bucket != strings.ToLower(bucket) || strings.Contains(bucket, "_"):
		return minio.BucketLookupPath
	default:
		return minio.BucketLookupDNS
	}
}

func tmpKey(did, key string) string          { return "tmp/" + did + "/" + key }
func storedKey(did string, c cid.Cid) string { return "blocks/" + did + "/" + c.String() }
func quarantineKey(did string, c cid.Cid) string {
	return "quarantine/" + did + "/" + c.String()
}

// requestCtx bounds a request that moves no blob bytes (stat, copy,
// delete) by PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS, when set.
func (s *S3) requestCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.requestTimeout > 0 {
		return context.WithTimeout(ctx, s.requestTimeout)
	}
	return ctx, func() {}
}

func (s *S3) PutTemp(ctx context.Context, did string, r io.Reader) (string, int64, error) {
	if err := checkDID(did); err != nil {
		return "", 0, err
	}
	// Like the official PDS, the upload timeout covers the whole upload,
	// reading the client's body included.
	if s.uploadTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.uploadTimeout)
		defer cancel()
	}
	key := newTempKey()
	name := tmpKey(did, key)
	r = ctxReader{ctx, r}

	first, pooled, more, err := readFirstPart(r)
	if pooled != nil {
		defer partPool.Put(pooled)
	}
	if err != nil {
		return "", 0, fmt.Errorf("blobstore: put temp: %w", err)
	}
	if !more {
		// Most blobs (images) fit in one part: one PUT, not three requests.
		if _, err := s.client.PutObject(ctx, s.bucket, name, bytes.NewReader(first), int64(len(first)), minio.PutObjectOptions{}); err != nil {
			return "", 0, fmt.Errorf("blobstore: put temp %s: %w", name, err)
		}
		return key, int64(len(first)), nil
	}
	size, err := s.putMultipart(ctx, name, first, r)
	if err != nil {
		return "", 0, fmt.Errorf("blobstore: put temp %s: %w", name, err)
	}
	return key, size, nil
}

// partPool recycles whole part buffers between large uploads.
var partPool = sync.Pool{New: func() any { return new([partSize]byte) }}

// readFirstPart reads up to partSize bytes into a buffer that starts at
// 64 KiB and grows fourfold up to 1 MiB, so small blobs do not each cost a
// whole part; beyond, it takes a whole part from partPool, returned as
// pooled for the caller to give back. more is true when the buffer filled,
// so the blob may go on.
func readFirstPart(r io.Reader) (buf []byte, pooled *[partSize]byte, more bool, err error) {
	buf = make([]byte, 64<<10)
	n := 0
	for {
		m, err := io.ReadFull(r, buf[n:])
		n += m
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return buf[:n], pooled, false, nil
		case err != nil:
			return nil, pooled, false, err
		case n == partSize:
			return buf, pooled, true, nil
		}
		var grown []byte
		if 4*len(buf) <= 1<<20 {
			grown = make([]byte, 4*len(buf))
		} else {
			pooled = partPool.Get().(*[partSize]byte)
			grown = pooled[:]
		}
		copy(grown, buf[:n])
		buf = grown
	}
}

// putMultipart uploads first and then the rest of r in parts of partSize,
// reusing first's buffer for every part, and aborts the upload on failure so
// no invisible parts are left billed in the bucket.
func (s *S3) putMultipart(ctx context.Context, name string, first []byte, r io.Reader) (size int64, err error) {
	id, err := s.core.NewMultipartUpload(ctx, s.bucket, name, minio.PutObjectOptions{})
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			// The upload's context may be what failed: abort on a fresh one.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if aerr := s.core.AbortMultipartUpload(actx, s.bucket, name, id); aerr != nil {
				s.log.Warn("blobstore: abort multipart upload", "key", name, "err", aerr)
			}
		}
	}()
	var parts []minio.CompletePart
	buf, n := first, len(first)
	for {
		number := len(parts) + 1
		part, err := s.core.PutObjectPart(ctx, s.bucket, name, id, number, bytes.NewReader(buf[:n]), int64(n), minio.PutObjectPartOptions{})
		if err != nil {
			return 0, err
		}
		parts = append(parts, minio.CompletePart{PartNumber: number, ETag: part.ETag})
		size += int64(n)

		n, err = io.ReadFull(r, buf)
		if err == io.EOF {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return 0, err
		}
	}
	if _, err := s.core.CompleteMultipartUpload(ctx, s.bucket, name, id, parts, minio.PutObjectOptions{}); err != nil {
		return 0, err
	}
	return size, nil
}

func (s *S3) MakePermanent(ctx context.Context, did string, key string, c cid.Cid) error {
	if err := checkTemp(did, key); err != nil {
		return err
	}
	if err := checkCID(c); err != nil {
		return err
	}
	src, dst := tmpKey(did, key), storedKey(did, c)
	// Optimistic, as the official PDS: copy first, look only on failure.
	if err := s.copy(ctx, src, dst); err != nil {
		if !isNoSuchKey(err) {
			return fmt.Errorf("blobstore: make permanent %s: %w", src, err)
		}
		if ok, herr := s.exists(ctx, dst); herr != nil || !ok {
			if herr != nil {
				return fmt.Errorf("blobstore: make permanent %s: %w", src, herr)
			}
			return fmt.Errorf("blobstore: make permanent %s: %w", src, ErrNotFound)
		}
		return nil
	}
	if err := s.remove(ctx, src); err != nil {
		// The blob is in place; a stray temporary object costs only space
		// and the temp collector removes it later.
		s.log.Warn("blobstore: remove temporary object", "key", src, "err", err)
	}
	return nil
}

func (s *S3) copy(ctx context.Context, src, dst string) error {
	ctx, cancel := s.requestCtx(ctx)
	defer cancel()
	_, err := s.client.CopyObject(ctx,
		minio.CopyDestOptions{Bucket: s.bucket, Object: dst},
		minio.CopySrcOptions{Bucket: s.bucket, Object: src})
	return err
}

func (s *S3) remove(ctx context.Context, name string) error {
	ctx, cancel := s.requestCtx(ctx)
	defer cancel()
	return s.client.RemoveObject(ctx, s.bucket, name, minio.RemoveObjectOptions{})
}

func (s *S3) stat(ctx context.Context, name string) (minio.ObjectInfo, error) {
	ctx, cancel := s.requestCtx(ctx)
	defer cancel()
	return s.client.StatObject(ctx, s.bucket, name, minio.StatObjectOptions{})
}

func (s *S3) exists(ctx context.Context, name string) (bool, error) {
	_, err := s.stat(ctx, name)
	switch {
	case err == nil:
		return true, nil
	case isNoSuchKey(err):
		return false, nil
	default:
		return false, err
	}
}

// isNoSuchKey tells a missing object from every other failure. A missing
// bucket is not "not found": it is a misconfiguration, and must stay loud.
func isNoSuchKey(err error) bool {
	var er minio.ErrorResponse
	if !errors.As(err, &er) {
		return false
	}
	return er.Code == "NoSuchKey" || (er.StatusCode == http.StatusNotFound && er.Code != "NoSuchBucket")
}

func (s *S3) DeleteTemp(ctx context.Context, did string, key string) error {
	if err := checkTemp(did, key); err != nil {
		return err
	}
	if err := s.remove(ctx, tmpKey(did, key)); err != nil {
		return fmt.Errorf("blobstore: delete temp: %w", err)
	}
	return nil
}

func (s *S3) WalkTemps(ctx context.Context, olderThan time.Time, fn func(Temp) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine when fn fails
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: "tmp/", Recursive: true}) {
		if obj.Err != nil {
			return fmt.Errorf("blobstore: walk temps: %w", obj.Err)
		}
		did, key, ok := strings.Cut(strings.TrimPrefix(obj.Key, "tmp/"), "/")
		if !ok || checkTemp(did, key) != nil {
			continue
		}
		if !obj.LastModified.Before(olderThan) {
			continue
		}
		if err := fn(Temp{DID: did, Key: key, Size: obj.Size, ModTime: obj.LastModified}); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (s *S3) Get(ctx context.Context, did string, c cid.Cid) (io.ReadCloser, int64, error) {
	if err := checkBlob(did, c); err != nil {
		return nil, 0, err
	}
	name := storedKey(did, c)
	body, info, _, err := s.core.GetObject(ctx, s.bucket, name, minio.GetObjectOptions{})
	if err != nil {
		return nil, 0, s3Error("get "+name, err)
	}
	return body, info.Size, nil
}

func (s *S3) GetRange(ctx context.Context, did string, c cid.Cid, offset, length int64) (io.ReadCloser, int64, error) {
	if err := checkBlob(did, c); err != nil {
		return nil, 0, err
	}
	name := storedKey(did, c)
	if err := checkRangeArgs(offset, length); err != nil {
		return nil, 0, fmt.Errorf("blobstore: get %s: %w", name, err)
	}
	if length == 0 {
		// Nothing to read: only the blob's existence and size matter.
		info, err := s.stat(ctx, name)
		if err != nil {
			return nil, 0, s3Error("get "+name, err)
		}
		if _, err := checkRange(offset, length, info.Size); err != nil {
			return nil, 0, fmt.Errorf("blobstore: get %s: %w", name, err)
		}
		return io.NopCloser(bytes.NewReader(nil)), info.Size, nil
	}
	var opts minio.GetObjectOptions
	switch {
	case length > 0:
		opts.SetRange(offset, offset+length-1)
	case offset > 0:
		opts.SetRange(offset, 0) // bytes=offset-
	}
	body, info, header, err := s.core.GetObject(ctx, s.bucket, name, opts)
	if err != nil {
		err = s3Error("get "+name, err)
		if offset == 0 && errors.Is(err, ErrInvalidRange) {
			// S3 refuses any range of an empty object; we promise that
			// offset 0 reads it as nothing.
			return io.NopCloser(bytes.NewReader(nil)), 0, nil
		}
		return nil, 0, err
	}
	// A 206 names the total size in Content-Range; a server that ignored
	// the Range header sent the whole blob, which we skip and cut here.
	total, ranged := contentRangeTotal(header.Get("Content-Range"))
	if !ranged {
		total = info.Size
	}
	n, err := checkRange(offset, length, total)
	if err != nil {
		body.Close()
		return nil, 0, fmt.Errorf("blobstore: get %s: %w", name, err)
	}
	if !ranged && offset > 0 {
		if _, err := io.CopyN(io.Discard, body, offset); err != nil {
			body.Close()
			return nil, 0, fmt.Errorf("blobstore: get %s: %w", name, err)
		}
	}
	return readCloser{io.LimitReader(body, n), body}, total, nil
}

// contentRangeTotal parses the total of "bytes first-last/total".
func contentRangeTotal(v string) (int64, bool) {
	_, total, ok := strings.Cut(v, "/")
	if !ok || !strings.HasPrefix(v, "bytes ") {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil
}

func s3Error(op string, err error) error {
	var er minio.ErrorResponse
	switch {
	case isNoSuchKey(err):
		return fmt.Errorf("blobstore: %s: %w", op, ErrNotFound)
	case errors.As(err, &er) && (er.Code == "InvalidRange" || er.StatusCode == http.StatusRequestedRangeNotSatisfiable):
		return fmt.Errorf("blobstore: %s: %w", op, ErrInvalidRange)
	default:
		return fmt.Errorf("blobstore: %s: %w", op, err)
	}
}

func (s *S3) Stat(ctx context.Context, did string, c cid.Cid) (int64, error) {
	if err := checkBlob(did, c); err != nil {
		return 0, err
	}
	name := storedKey(did, c)
	info, err := s.stat(ctx, name)
	if err != nil {
		return 0, s3Error("stat "+name, err)
	}
	return info.Size, nil
}

func (s *S3) Delete(ctx context.Context, did string, c cid.Cid) error {
	if err := checkBlob(did, c); err != nil {
		return err
	}
	if err := s.remove(ctx, storedKey(did, c)); err != nil {
		return fmt.Errorf("blobstore: delete: %w", err)
	}
	return nil
}

func (s *S3) DeleteAll(ctx context.Context, did string) error {
	if err := checkDID(did); err != nil {
		return err
	}
	for _, prefix := range []string{"blocks/", "tmp/", "quarantine/"} {
		// The trailing slash keeps did:plc:abc from matching did:plc:abcd.
		if err := s.removePrefix(ctx, prefix+did+"/"); err != nil {
			return fmt.Errorf("blobstore: delete all of %s: %w", did, err)
		}
	}
	return nil
}

// removePrefix deletes every object under prefix, in batches (one
// DeleteObjects request per thousand keys).
func (s *S3) removePrefix(ctx context.Context, prefix string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var listErr error
	toRemove := make(chan minio.ObjectInfo)
	go func() {
		defer close(toRemove)
		for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
			if obj.Err != nil {
				listErr = obj.Err
				return
			}
			select {
			case toRemove <- obj:
			case <-ctx.Done():
				return
			}
		}
	}()
	var err error
	for rerr := range s.client.RemoveObjects(ctx, s.bucket, toRemove, minio.RemoveObjectsOptions{}) {
		if err == nil {
			err = fmt.Errorf("remove %s: %w", rerr.ObjectName, rerr.Err)
		}
	}
	// RemoveObjects drained toRemove, so the lister has returned.
	if err == nil {
		err = listErr
	}
	return err
}

func (s *S3) Quarantine(ctx context.Context, did string, c cid.Cid) error {
	if err := checkBlob(did, c); err != nil {
		return err
	}
	return s.swap(ctx, "quarantine", storedKey(did, c), quarantineKey(did, c))
}

func (s *S3) Unquarantine(ctx context.Context, did string, c cid.Cid) error {
	if err := checkBlob(did, c); err != nil {
		return err
	}
	return s.swap(ctx, "unquarantine", quarantineKey(did, c), storedKey(did, c))
}

// swap moves a blob between the permanent and quarantine prefixes. Unlike
// MakePermanent, failing to remove the source is an error: a taken-down
// blob left under blocks/ would still be served.
func (s *S3) swap(ctx context.Context, op, src, dst string) error {
	if err := s.copy(ctx, src, dst); err != nil {
		if !isNoSuchKey(err) {
			return fmt.Errorf("blobstore: %s %s: %w", op, src, err)
		}
		ok, herr := s.exists(ctx, dst)
		switch {
		case herr != nil:
			return fmt.Errorf("blobstore: %s %s: %w", op, src, herr)
		case !ok:
			return fmt.Errorf("blobstore: %s %s: %w", op, src, ErrNotFound)
		}
		return nil
	}
	if err := s.remove(ctx, src); err != nil {
		return fmt.Errorf("blobstore: %s %s: %w", op, src, err)
	}
	return nil
}

func (s *S3) Check(ctx context.Context) error {
	ctx, cancel := s.requestCtx(ctx)
	defer cancel()
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return fmt.Errorf("blobstore: S3 bucket %s: %w", s.bucket, err)
	}
	if !ok {
		return fmt.Errorf("blobstore: S3 bucket %s does not exist", s.bucket)
	}
	return nil
}
