package blobstore

import (
	"errors"
	"log/slog"

	"github.com/hearth-pds/hearth/config"
)

// Open returns the store cfg selects: S3 when a bucket is set, otherwise
// the disk folders. Setting both is an error, as in the official PDS,
// because blobs would silently go to one of two places. cfg is expected to
// have passed config's validation; Open checks only what it relies on.
func Open(cfg config.Blobstore, log *slog.Logger) (Store, error) {
	switch {
	case cfg.UsesS3() && cfg.DiskLocation != "":
		return nil, errors.New("blobstore: both a disk location and an S3 bucket are configured; choose one")
	case cfg.UsesS3():
		return NewS3(cfg.S3, log)
	case cfg.DiskLocation != "":
		return NewDisk(cfg.DiskLocation, cfg.DiskTmpLocation, log)
	default:
		return nil, errors.New("blobstore: neither a disk location nor an S3 bucket is configured")
	}
}
