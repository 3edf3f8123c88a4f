// Package blobstore keeps the bytes of blobs (images, videos) in a disk
// folder or an S3 bucket, in exactly the layout the official PDS uses, so
// an operator's existing folder or bucket is used as is. What a blob is
// for (its MIME type, which records use it, whether it is taken down) is
// the database's business, not this package's.
//
// # Layout
//
// Names come straight from the official PDS (packages/pds/src/disk-blobstore.ts
// and packages/aws/src/s3.ts). The DID is written as it is, colons and
// percent signs included, neither escaped nor sanitised: that is what the
// official PDS does, and a valid DID holds nothing that can leave its
// folder (see ErrInvalidName). CIDs are in their usual string form: base32
// "bafkrei…" for CIDv1, base58 "Qm…" for the rare CIDv0.
//
//	                disk                                    S3 key
//	permanent       <location>/<did>/<cid>                  blocks/<did>/<cid>
//	temporary       <tmpLocation>/<did>/<key>               tmp/<did>/<key>
//	quarantined     <location>/quarantine/<did>/<cid>       quarantine/<did>/<cid>
//
// <location> is PDS_BLOBSTORE_DISK_LOCATION, <tmpLocation>
// PDS_BLOBSTORE_DISK_TMP_LOCATION (default <location>/tempt, the official
// spelling). A temporary key is 32 random bytes in lower-case base32, as
// the official PDS makes them.
//
// # Lifecycle
//
// An upload is streamed with PutTemp, which returns a temporary key. The
// caller records the key in its database with the blob's CID; when a record
// that references the blob commits, MakePermanent moves the bytes to their
// permanent name. Call it before the record's transaction commits, so a
// committed record never points at bytes still in the temporary area; if
// the transaction then fails, the database row still names the temporary
// key and the collector deletes both places.
//
// Temporary uploads are tracked by the caller's database, not by listing
// the store: the database knows which uploads a record took up, and
// listing a large bucket is slow and billed. WalkTemps exists for the
// leftovers the database never heard of (the process died between PutTemp
// and the insert, or during the upload): a periodic sweep deletes
// temporary objects older than a grace period well above the time a
// client may take between uploading and posting (hours, not minutes).
//
// Quarantine and Unquarantine implement takedowns the official way, by
// moving the bytes aside; Get then answers ErrNotFound. The database keeps
// the takedown too, and is what handlers should consult first.
//
// # Tricky bits
//
//   - Durability (disk): PutTemp syncs the file before returning its key,
//     and moves sync the destination folder, so a blob whose record has
//     committed survives a crash. When the temporary folder is on another
//     file system, MakePermanent copies to a hidden ".partial-*" file beside
//     the destination, syncs and renames it, so a blob is never seen half
//     written. A crash mid-copy leaves that hidden file; DeleteAll removes
//     it with the account.
//   - Memory (S3): an upload of unknown length holds at most one 5 MiB part
//     at a time, and blobs under 5 MiB (most) go in one PUT with a buffer
//     grown to their size. Many large uploads at once cost 5 MiB each:
//     PDS_BLOB_UPLOAD_LIMIT and rate limits bound that, not this package.
//   - Abandoned multipart uploads (S3): a failed upload is aborted, but a
//     process killed mid-upload leaves invisible parts that the provider
//     bills until a lifecycle rule ("abort incomplete multipart uploads
//     after 1 day") removes them. The official PDS has the same exposure.
//   - Timeouts (S3): PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS covers a whole
//     upload, reading the client's body included, as in the official PDS.
//     PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS bounds the wait for each response's
//     headers and each request that moves no blob bytes, never a download
//     streamed to a slow client.
//
// # Why minio-go
//
// Both minio-go and aws-sdk-go-v2 stream uploads of unknown length and take
// a custom endpoint with path-style addressing. minio-go was chosen because
// it is one module rather than a dozen; it is built for the S3-compatible
// stores PDS operators use (R2, MinIO, Hetzner, Backblaze, Garage); it does
// not send the CRC trailing checksums that aws-sdk-go-v2 enables by default
// and several of those stores reject; and it does not read AWS_CA_BUNDLE,
// which makes aws-sdk-go-v2 fail outright when given a custom HTTP client
// (a private CA goes in SSL_CERT_FILE, as for any Go program). Its
// credential chain covers what servers use: environment, shared files
// (AWS_PROFILE), ECS/EKS container credentials, web identity (IRSA) and EC2
// instance roles; AWS SSO profiles are not supported.
package blobstore
