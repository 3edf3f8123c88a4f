package xrpc

import (
	"context"
	"encoding/json"
	"io"

	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/ipfs/go-cid"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/blobs"
	"github.com/hearth-pds/hearth/identity"
	"github.com/hearth-pds/hearth/records"
	"github.com/hearth-pds/hearth/store"
)

// The domain services as the handlers use them, so handlers can be tested
// with fakes. Each lists the methods called here, no more.

// Accounts runs sign-up, sessions, app passwords, invites, preferences
// and handles (account.Service does).
type Accounts interface {
	CreateAccount(ctx context.Context, in account.CreateAccountInput) (*account.Session, error)
	CreateSession(ctx context.Context, identifier, password string) (*account.Session, error)
	GetSession(ctx context.Context, did string) (*account.Session, error)
	RefreshSession(ctx context.Context, claims account.Claims) (*account.Session, error)
	DeleteSession(ctx context.Context, claims account.Claims) error

	CreateAppPassword(ctx context.Context, did, name string, privileged bool) (*account.AppPassword, error)
	ListAppPasswords(ctx context.Context, did string) ([]store.AppPassword, error)
	RevokeAppPassword(ctx context.Context, did, name string) error

	CreateInviteCodes(ctx context.Context, count, uses int, forAccounts []string) ([]account.InviteCodes, error)
	AccountInviteCodes(ctx context.Context, did string, includeUsed bool) ([]store.InviteCode, error)
	DisableInviteCodes(ctx context.Context, codes, accounts []string) error

	Deactivate(ctx context.Context, did string) error
	Activate(ctx context.Context, did string) error
	Preferences(ctx context.Context, did string, full bool) ([]json.RawMessage, error)
	PutPreferences(ctx context.Context, did string, prefs []json.RawMessage, full bool) error

	UpdateHandle(ctx context.Context, did, handle string) error
	RecommendedCredentials(ctx context.Context, did string) (identity.Credentials, error)
	// HandleDID is the DID of a hosted handle, account.ErrAccountNotFound
	// for a handle not hosted here.
	HandleDID(ctx context.Context, handle string) (string, error)
	DIDDocument(ctx context.Context, did string) (json.RawMessage, error)
}

// Verifier checks session tokens (account.Tokens does).
type Verifier interface {
	VerifyAccess(token string) (account.Claims, error)
	VerifyRefresh(token string) (account.Claims, error)
}

// Records serves the record API and the sync reads (records.Service
// does).
type Records interface {
	ResolveRepo(ctx context.Context, raw string) (*store.Account, error)
	Servable(ctx context.Context, did syntax.DID) error
	Apply(ctx context.Context, req records.Request) (*records.Response, error)
	GetRecord(ctx context.Context, did syntax.DID, collection, rkey, wantCID string) (*records.Record, error)
	ListRecords(ctx context.Context, did syntax.DID, collection string, limit int, cursor string, reverse bool) ([]records.Record, string, error)
	Collections(ctx context.Context, did syntax.DID) ([]syntax.NSID, error)

	LatestCommit(ctx context.Context, did syntax.DID) (*records.Head, error)
	PrepareExport(ctx context.Context, did syntax.DID, since string) (*records.Export, error)
	RecordProof(ctx context.Context, w io.Writer, did syntax.DID, collection, rkey string) error
	Blocks(ctx context.Context, w io.Writer, did syntax.DID, cids []string) error
	Status(ctx context.Context, did syntax.DID) (*records.RepoStatus, error)
	ListRepos(ctx context.Context, cursor string, limit int) ([]store.RepoInfo, string, error)
}

// Blobs takes uploads and serves blobs (blobs.Service does).
type Blobs interface {
	Upload(ctx context.Context, did syntax.DID, contentType string, declaredLength int64, body io.Reader) (*blobs.Blob, error)
	Stat(ctx context.Context, did syntax.DID, c cid.Cid) (*store.Blob, error)
	Read(ctx context.Context, meta *store.Blob, offset, length int64) (io.ReadCloser, error)
	List(ctx context.Context, did syntax.DID, since syntax.TID, cursor string, limit int) ([]cid.Cid, error)
	Missing(ctx context.Context, did syntax.DID, cursor string, limit int) ([]store.BlobRef, error)
}

var (
	_ Accounts = (*account.Service)(nil)
	_ Verifier = (*account.Tokens)(nil)
	_ Records  = (*records.Service)(nil)
	_ Blobs    = (*blobs.Service)(nil)
)
