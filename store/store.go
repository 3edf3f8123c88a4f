// Package store holds the records Hearth persists and the contract every
// database engine implements (store/sqlite now, store/postgres later).
//
// The contract is deliberately coarse: an operation that must be atomic for
// the protocol (creating an account with its invite use, its keys and its
// first commit) is one method, so each engine runs it in one transaction and
// no caller can leave half of it behind.
package store

import (
	"context"
	"errors"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"
)

// Errors an engine returns; callers test them with errors.Is.
var (
	// ErrNotFound: the looked-up row does not exist.
	ErrNotFound = errors.New("not found")
	// ErrHandleTaken: another account already has the handle.
	ErrHandleTaken = errors.New("handle already taken")
	// ErrEmailTaken: another account already has the email address.
	ErrEmailTaken = errors.New("email already taken")
	// ErrDIDTaken: an account with the DID already exists.
	ErrDIDTaken = errors.New("did already exists")
	// ErrInviteUnavailable: the invite code does not exist, is disabled or
	// has no uses left at the moment of use.
	ErrInviteUnavailable = errors.New("invite code not available")
	// ErrDuplicate: a row with the same key already exists (app password name).
	ErrDuplicate = errors.New("duplicate")
	// ErrRepoChanged: a commit was built on a head that is no longer the
	// repository's current one.
	ErrRepoChanged = errors.New("repository head changed")
	// ErrBlobNotFound: a commit references a blob the account has not
	// uploaded (or whose upload was collected).
	ErrBlobNotFound = errors.New("blob not found")
)

// Account is one hosted account.
type Account struct {
	DID              syntax.DID
	Handle           syntax.Handle // empty when the account has none
	Email            string
	PasswordHash     string
	EmailConfirmedAt *time.Time
	InvitesDisabled  bool
	CreatedAt        time.Time
	DeactivatedAt    *time.Time
	TakedownRef      string
}

// Active reports whether the account may act (not deactivated or taken down).
func (a *Account) Active() bool { return a.DeactivatedAt == nil && a.TakedownRef == "" }

// Status is the account status name used by the API ("" when active).
func (a *Account) Status() string {
	switch {
	case a.TakedownRef != "":
		return "takendown"
	case a.DeactivatedAt != nil:
		return "deactivated"
	}
	return ""
}

// Block is one content-addressed block of a repository.
type Block struct {
	CID     cid.Cid
	Content []byte
}

// NewAccount is everything written when an account is created, in one
// transaction: the account row, its signing key, the use of an invite code
// and the repository's first commit.
type NewAccount struct {
	Account
	// SigningKey is the account's repo signing key, exported bytes.
	SigningKey []byte
	// InviteCode, when set, is consumed atomically (ErrInviteUnavailable when
	// it has no use left).
	InviteCode string
	// Root is the first commit: its CID, rev and blocks.
	RootCID cid.Cid
	Rev     syntax.TID
	Blocks  []Block
	// Events announce the account on the firehose.
	Events []NewEvent
}

// EventKind is what a firehose event announces: its frame type without
// the "#" (the sequencer's frame types are made from these).
type EventKind string

// The kinds of stored events.
const (
	KindCommit   EventKind = "commit"
	KindSync     EventKind = "sync"
	KindIdentity EventKind = "identity"
	KindAccount  EventKind = "account"
)

// Event is one sequenced firehose event, as it is stored and sent; the
// sequencer streams these as they are.
type Event struct {
	// Seq is the event's sequence number, assigned by the store inside the
	// write transaction; 1..MaxSeq, increasing, gaps allowed.
	Seq  int64
	DID  syntax.DID
	Kind EventKind
	// Time is when the event was sequenced.
	Time time.Time
	// Frame is the whole WebSocket message (header and body), sent to
	// every subscriber as is. It is shared by every subscriber and must
	// not be modified once published.
	Frame []byte
}

// NewEvent is an event to append. Encode makes its frame once the store
// has assigned its sequence number and time, inside the write transaction,
// so the frame is encoded exactly once.
type NewEvent struct {
	DID    syntax.DID
	Kind   EventKind
	Encode func(seq int64, at time.Time) ([]byte, error)
}

// RecordRef is a row of the record index.
type RecordRef struct {
	Collection syntax.NSID
	RKey       syntax.RecordKey
	CID        cid.Cid
	Rev        syntax.TID
}

// IndexedRecord is a record index row with the time it was indexed.
type IndexedRecord struct {
	RecordRef
	IndexedAt time.Time
}

// Commit is one signed repository write, applied atomically: the new
// blocks, the new head, the record index changes and the firehose events.
type Commit struct {
	DID syntax.DID
	// PrevCID is the head the commit was built on; ErrRepoChanged when it
	// is no longer current.
	PrevCID cid.Cid
	CID     cid.Cid
	Rev     syntax.TID
	Blocks  []Block
	Puts    []RecordRef // created or updated records
	Deletes []RecordRef // deleted records (Collection and RKey)
	// Removed are blocks the new head no longer references (replaced tree
	// nodes, the previous commit), deleted in the same transaction.
	Removed []cid.Cid
	// Released are record blocks an update or delete replaced; each is
	// deleted unless another record of the repository still has that CID.
	Released []cid.Cid
	// BlobRefs are the blobs the new versions of Puts reference. The
	// references of every written or deleted record are replaced by these;
	// referenced blobs become permanent and blobs left with no reference
	// are released for the collector.
	BlobRefs []BlobRef
	Events   []NewEvent
}

// BlobRef is one record's reference to a blob.
type BlobRef struct {
	Collection syntax.NSID
	RKey       syntax.RecordKey
	CID        cid.Cid
}

// Blob is a blob's metadata.
type Blob struct {
	DID      syntax.DID
	CID      cid.Cid
	MimeType string
	Size     int64
	// TempKey is set while the blob is an unreferenced upload.
	TempKey     string
	CreatedAt   time.Time
	ReleasedAt  *time.Time
	TakedownRef string
}

// RepoInfo is one hosted repository, for sync.listRepos.
type RepoInfo struct {
	DID    syntax.DID
	Head   cid.Cid
	Rev    syntax.TID
	Active bool
	Status string
}

// RepoRoot is the current head of an account's repository.
type RepoRoot struct {
	DID syntax.DID
	CID cid.Cid
	Rev syntax.TID
}

// AppPassword is a named password with restricted scope.
type AppPassword struct {
	DID          syntax.DID
	Name         string
	PasswordHash string
	Privileged   bool
	CreatedAt    time.Time
}

// RefreshToken is a stored refresh token; access tokens are stateless.
type RefreshToken struct {
	ID              string // the JWT's jti
	DID             syntax.DID
	AppPasswordName string // empty for a full session
	ExpiresAt       time.Time
}

// InviteCode is an invite with its uses.
type InviteCode struct {
	Code       string
	Available  int
	Disabled   bool
	ForAccount string
	CreatedBy  string
	CreatedAt  time.Time
	Uses       []InviteUse
}

// InviteUse records one account created with a code.
type InviteUse struct {
	UsedBy syntax.DID
	UsedAt time.Time
}

// Store is the persistence contract. Every method is safe for concurrent use.
type Store interface {
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	Close() error

	// CreateAccount writes a NewAccount atomically and returns its stored
	// events. Errors: ErrHandleTaken, ErrEmailTaken, ErrDIDTaken,
	// ErrInviteUnavailable; on any error nothing is written.
	CreateAccount(ctx context.Context, a NewAccount) ([]Event, error)
	// Account lookups return ErrNotFound when there is no match. Email
	// matching is case-insensitive.
	AccountByDID(ctx context.Context, did syntax.DID) (*Account, error)
	AccountByHandle(ctx context.Context, handle syntax.Handle) (*Account, error)
	AccountByEmail(ctx context.Context, email string) (*Account, error)
	// UpdateHandle sets an account's handle and appends its events in the
	// same transaction (ErrHandleTaken, ErrNotFound).
	UpdateHandle(ctx context.Context, did syntax.DID, handle syntax.Handle, events []NewEvent) ([]Event, error)
	// SetDeactivated deactivates (at set) or reactivates (at nil) an
	// account and appends its events in the same transaction (ErrNotFound).
	SetDeactivated(ctx context.Context, did syntax.DID, at *time.Time, events []NewEvent) ([]Event, error)
	// SigningKey returns an account's repo signing key bytes as stored
	// (plain or sealed: the keyring package tells them apart).
	SigningKey(ctx context.Context, did syntax.DID) ([]byte, error)
	// RewriteSigningKeys calls fn with every account's stored signing key,
	// ordered by DID, in one write transaction, and stores what fn returns
	// in the key's place (nil leaves the row as it is). It returns how many
	// keys it replaced. An error from fn rolls every change back and is
	// returned as is.
	RewriteSigningKeys(ctx context.Context, fn func(did syntax.DID, key []byte) ([]byte, error)) (int, error)

	// RepoRoot returns the current head of a repository (ErrNotFound).
	RepoRoot(ctx context.Context, did syntax.DID) (*RepoRoot, error)
	// ApplyCommit stores a commit atomically and returns its stored events
	// (ErrRepoChanged, ErrNotFound). On error nothing is written.
	ApplyCommit(ctx context.Context, c Commit) ([]Event, error)
	// Block returns a block of a repository (ErrNotFound).
	Block(ctx context.Context, did syntax.DID, c cid.Cid) ([]byte, error)
	// BlocksSince calls fn for every block of did written after rev sinceRev
	// ("" for all), in no particular order.
	BlocksSince(ctx context.Context, did syntax.DID, sinceRev syntax.TID, fn func(Block) error) error
	// Record returns an index row (ErrNotFound).
	Record(ctx context.Context, did syntax.DID, collection syntax.NSID, rkey syntax.RecordKey) (*RecordRef, error)
	// ListRecords lists a collection in record-key order, after cursor
	// (exclusive; "" from the start), descending when reverse.
	ListRecords(ctx context.Context, did syntax.DID, collection syntax.NSID, limit int, cursor string, reverse bool) ([]RecordRef, error)
	// RecordsSince lists up to limit records of did last written at a rev
	// after since, oldest rev first (then by collection and key). It lists
	// none when did has no record at or before since: such a since comes
	// from before the repository lived here (a migrated account) and
	// every record would look new.
	RecordsSince(ctx context.Context, did syntax.DID, since syntax.TID, limit int) ([]IndexedRecord, error)
	// Collections lists the collections a repository has records in.
	Collections(ctx context.Context, did syntax.DID) ([]syntax.NSID, error)
	// ListRepos lists hosted repositories by DID after cursor.
	ListRepos(ctx context.Context, cursor string, limit int) ([]RepoInfo, error)

	// PutBlob records an upload. When the account already has the blob it
	// returns the existing row and stores nothing (the caller drops its
	// upload).
	PutBlob(ctx context.Context, b Blob) (existing *Blob, err error)
	// Blob returns a blob's metadata (ErrNotFound).
	Blob(ctx context.Context, did syntax.DID, c cid.Cid) (*Blob, error)
	// ListBlobs lists the CIDs of blobs referenced by records written after
	// rev since ("" for all), ordered by CID, after cursor.
	ListBlobs(ctx context.Context, did syntax.DID, since syntax.TID, cursor string, limit int) ([]cid.Cid, error)
	// MissingBlobs lists blobs referenced by records but not stored, with
	// the referencing record, ordered by CID, after cursor.
	MissingBlobs(ctx context.Context, did syntax.DID, cursor string, limit int) ([]BlobRef, error)
	// CollectableBlobs lists blobs never referenced and uploaded before
	// before, or released before before, up to limit.
	CollectableBlobs(ctx context.Context, before time.Time, limit int) ([]Blob, error)
	// DeleteBlob deletes a blob's row if it is still unreferenced; it
	// reports whether it did, so the caller deletes the bytes only then.
	DeleteBlob(ctx context.Context, did syntax.DID, c cid.Cid) (bool, error)

	// Preferences returns an account's preferences as the JSON array last
	// stored ("[]" when none).
	Preferences(ctx context.Context, did syntax.DID) ([]byte, error)
	// PutPreferences replaces an account's preferences.
	PutPreferences(ctx context.Context, did syntax.DID, prefs []byte) error

	// AppendEvents stores events outside a commit (identity, account).
	AppendEvents(ctx context.Context, events []NewEvent) ([]Event, error)
	// EventsAfter returns up to limit events with seq > after, in order.
	EventsAfter(ctx context.Context, after int64, limit int) ([]Event, error)
	// EventBounds returns the oldest and newest stored seq (0, 0 if none).
	EventBounds(ctx context.Context) (oldest, newest int64, err error)
	// PruneEvents deletes events sequenced before t, always keeping the
	// newest so sequence numbers never restart.
	PruneEvents(ctx context.Context, before time.Time) (int64, error)

	// CreateAppPassword stores a new app password (ErrDuplicate on the name).
	CreateAppPassword(ctx context.Context, p AppPassword) error
	// AppPasswordByHash finds the app password of did whose hash is hash
	// (ErrNotFound); hashes are deterministic per account for this lookup.
	AppPasswordByHash(ctx context.Context, did syntax.DID, hash string) (*AppPassword, error)
	// ListAppPasswords lists an account's app passwords, newest first.
	ListAppPasswords(ctx context.Context, did syntax.DID) ([]AppPassword, error)
	// DeleteAppPassword removes an app password and revokes every refresh
	// token made with it. Deleting an unknown name is not an error.
	DeleteAppPassword(ctx context.Context, did syntax.DID, name string) error

	// PutRefreshToken stores a refresh token.
	PutRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshToken returns a live refresh token (ErrNotFound when unknown,
	// revoked or expired).
	RefreshToken(ctx context.Context, id string) (*RefreshToken, error)
	// RotateRefreshToken replaces a live refresh token by next, atomically.
	// The old token is not revoked at once: its expiry is cut to
	// graceUntil (if earlier) and it remembers next's id, so a client that
	// refreshes twice with it (two tabs, a lost response) gets the same
	// successor again (its row stored anew if it was deleted). It returns
	// the successor's id, or ErrNotFound when old is no longer live.
	RotateRefreshToken(ctx context.Context, oldID string, next RefreshToken, graceUntil time.Time) (string, error)
	// RevokeRefreshToken deletes a refresh token; unknown ids are ignored.
	RevokeRefreshToken(ctx context.Context, id string) error

	// CreateInviteCodes stores new invite codes.
	CreateInviteCodes(ctx context.Context, codes []InviteCode) error
	// InviteCode returns a code with its uses (ErrNotFound).
	InviteCode(ctx context.Context, code string) (*InviteCode, error)
	// AccountInviteCodes lists the codes made for an account, with uses.
	AccountInviteCodes(ctx context.Context, did syntax.DID) ([]InviteCode, error)
	// DisableInviteCodes disables the given codes and every code made for
	// the given accounts.
	DisableInviteCodes(ctx context.Context, codes, accounts []string) error
}
