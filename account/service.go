package account

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	"github.com/did-method-plc/go-didplc/didplc"

	hnd "github.com/hearth-pds/hearth/handle"
	"github.com/hearth-pds/hearth/identity"
	"github.com/hearth-pds/hearth/refusal"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/store"
)

// HandleRules validates handles a user asks for.
type HandleRules interface {
	// Validate normalizes raw and checks it may be hosted here; hasDID
	// reports whether the user brings an existing DID. Refusals are
	// *refusal.Error.
	Validate(raw string, hasDID bool) (syntax.Handle, error)
	// IsServiceHandle reports whether h is under one of our domains.
	IsServiceHandle(h syntax.Handle) bool
}

// HandleResolver resolves a handle hosted elsewhere to the DID it claims,
// from a cache that Forget clears for one handle.
type HandleResolver interface {
	ResolveHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error)
	Forget(h syntax.Handle)
}

// Identities publishes and reads did:plc identities.
type Identities interface {
	Genesis(handle string, signing atcrypto.PublicKey, recoveryKey string) (string, *didplc.RegularOp, error)
	Submit(ctx context.Context, did string, op *didplc.RegularOp) error
	UpdateHandle(ctx context.Context, did, handle string) error
	Document(ctx context.Context, did string) (json.RawMessage, error)
	Recommended(handle string, signing atcrypto.PublicKey) (identity.Credentials, error)
}

// Keys makes, seals and reads the accounts' repo signing keys
// (keyring.Keyring does).
type Keys interface {
	Generate() (atcrypto.PrivateKeyExportable, error)
	// Seal returns the bytes to store for did's new key.
	Seal(did string, key atcrypto.PrivateKeyExportable) ([]byte, error)
	SigningKey(ctx context.Context, did string) (atcrypto.PrivateKey, error)
}

// Service runs the account lifecycle. Its store stays inside: handlers
// get domain methods and the Account view, never the stored row with its
// password hash.
type Service struct {
	store      store.Store
	Keys       Keys
	Identities Identities
	Handles    HandleRules
	Resolver   HandleResolver
	// Events receives the firehose events of sign-ups and handle changes.
	Events         Publisher
	Tokens         *Tokens
	InviteRequired bool
	// Hostname names invite codes, as the official PDS does.
	Hostname string
	Logger   *slog.Logger

	tids *syntax.TIDClock
}

// NewService wires a Service on st; every field of s must be set.
func NewService(st store.Store, s Service) *Service {
	s.store = st
	s.tids = syntax.NewTIDClock(0)
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	return &s
}

// Session is a signed-in account with its tokens.
type Session struct {
	Account    *Account
	AccessJWT  string
	RefreshJWT string
	DIDDoc     json.RawMessage
	Scope      Scope
}

// CreateAccountInput is com.atproto.server.createAccount's input.
type CreateAccountInput struct {
	Email       string
	Handle      string
	DID         string
	InviteCode  string
	Password    string
	RecoveryKey string
}

// Password limits of the official PDS: sign-up refuses over 256
// characters, login over 512 (older accounts may have longer ones).
const (
	maxPasswordLength      = 256
	maxLoginPasswordLength = 512
)

// CreateAccount signs a user up: checks in the official PDS's order, then
// a signing key, a did:plc genesis operation published to the directory,
// and the account with its first commit and invite use in one store
// transaction.
func (s *Service) CreateAccount(ctx context.Context, in CreateAccountInput) (*Session, error) {
	if len(in.Password) > maxPasswordLength {
		return nil, invalidRequest("Password too long. Maximum length is %d characters.", maxPasswordLength)
	}
	if s.InviteRequired && in.InviteCode == "" {
		return nil, ErrNoInvite
	}
	email := strings.TrimSpace(in.Email)
	if email == "" {
		return nil, invalidRequest("Email is required")
	}
	if !validEmail(email) {
		return nil, invalidRequest("This email address is not supported, please use a different email.")
	}
	// Unlike the official PDS, which creates an account nobody can log in
	// to, an empty password is refused.
	if in.Password == "" {
		return nil, invalidRequest("Password is required")
	}
	h, err := s.Handles.Validate(in.Handle, in.DID != "")
	if err != nil {
		return nil, err
	}
	handle := h.String()
	if err := s.checkInvite(ctx, in.InviteCode); err != nil {
		return nil, err
	}
	if _, err := s.store.AccountByHandle(ctx, syntax.Handle(handle)); err == nil {
		return nil, invalidRequest("Handle already taken: %s", handle)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if _, err := s.store.AccountByEmail(ctx, email); err == nil {
		return nil, invalidRequest("Email already taken: %s", email)
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if in.DID != "" {
		// Bringing an existing DID (account migration) needs service auth
		// from the account, which no anonymous request carries.
		return nil, refusal.New("AuthenticationRequired", "Missing auth to create account with did: "+in.DID)
	}
	if in.RecoveryKey != "" {
		if _, err := atcrypto.ParsePublicDIDKey(in.RecoveryKey); err != nil {
			return nil, invalidRequest("Unsupported key type %s: %v", in.RecoveryKey, err)
		}
	}
	passwordHash, err := hashPassword(ctx, in.Password)
	if err != nil {
		return nil, err
	}

	key, err := s.Keys.Generate()
	if err != nil {
		return nil, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("signing public key: %w", err)
	}
	did, op, err := s.Identities.Genesis(handle, pub, in.RecoveryKey)
	if err != nil {
		return nil, err
	}
	rev := s.tids.Next().String()
	root, blocks, err := repo.Genesis(did, key, rev)
	if err != nil {
		return nil, err
	}
	// Publish the identity before storing the account: an account whose DID
	// does not resolve is useless, while a DID published for an account that
	// then fails to store is harmless (it names nothing we serve).
	if err := s.Identities.Submit(ctx, did, op); err != nil {
		return nil, fmt.Errorf("publish did: %w", err)
	}
	sealed, err := s.Keys.Seal(did, key)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	na := store.NewAccount{
		Account:    store.Account{DID: syntax.DID(did), Handle: syntax.Handle(handle), Email: email, PasswordHash: passwordHash, CreatedAt: now},
		SigningKey: sealed,
		InviteCode: in.InviteCode,
		RootCID:    root,
		Rev:        syntax.TID(rev),
	}
	for _, b := range blocks {
		na.Blocks = append(na.Blocks, store.Block{CID: b.CID, Content: b.Data})
	}
	if na.Events, err = genesisEvents(did, handle, root, rev, blocks); err != nil {
		return nil, err
	}
	stored, err := s.store.CreateAccount(ctx, na)
	switch {
	case errors.Is(err, store.ErrHandleTaken):
		return nil, invalidRequest("Handle already taken: %s", handle)
	case errors.Is(err, store.ErrEmailTaken):
		return nil, invalidRequest("Email already taken: %s", email)
	case errors.Is(err, store.ErrInviteUnavailable):
		return nil, ErrInviteUnavailable
	case err != nil:
		return nil, fmt.Errorf("store account: %w", err)
	}
	s.Events.Publish(stored...)
	s.Logger.Info("account created", "did", did, "handle", handle)
	acct := na.Account
	return s.issue(ctx, &acct, ScopeAccess, "")
}

// validEmail accepts one plain address whose domain has a dot.
func validEmail(email string) bool {
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email {
		return false
	}
	_, domain, _ := strings.Cut(email, "@")
	return strings.Contains(domain, ".") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// checkInvite checks a code is usable now; the store checks again when it
// consumes it. A code given when none is required is checked too, before
// anything is published, so a bad one leaves no orphan DID behind.
func (s *Service) checkInvite(ctx context.Context, code string) error {
	if code == "" {
		return nil
	}
	ic, err := s.store.InviteCode(ctx, code)
	if errors.Is(err, store.ErrNotFound) {
		return ErrInviteUnavailable
	}
	if err != nil {
		return err
	}
	if ic.Disabled || len(ic.Uses) >= ic.Available {
		return ErrInviteUnavailable
	}
	return nil
}

// issue makes a new session: an access token and a stored refresh token.
func (s *Service) issue(ctx context.Context, a *store.Account, scope Scope, appPassword string) (*Session, error) {
	access, err := s.Tokens.Access(a.DID.String(), scope)
	if err != nil {
		return nil, err
	}
	refresh, claims, err := s.Tokens.Refresh(a.DID.String(), NewRefreshID())
	if err != nil {
		return nil, err
	}
	err = s.store.PutRefreshToken(ctx, store.RefreshToken{ID: claims.ID, DID: a.DID, AppPasswordName: appPassword, ExpiresAt: claims.ExpiresAt})
	if err != nil {
		return nil, err
	}
	return &Session{Account: view(a), AccessJWT: access, RefreshJWT: refresh, Scope: scope, DIDDoc: s.document(ctx, a.DID.String())}, nil
}

// document is the account's DID document for session responses; a
// directory outage must not block sign-in, so failures give none.
func (s *Service) document(ctx context.Context, did string) json.RawMessage {
	doc, err := s.Identities.Document(ctx, did)
	if err != nil {
		s.Logger.Warn("did document unavailable", "did", did, "err", err)
		return nil
	}
	return doc
}

// lookup finds an account by handle, email or DID.
func (s *Service) lookup(ctx context.Context, identifier string) (*store.Account, error) {
	id := strings.ToLower(strings.TrimSpace(identifier))
	switch {
	case strings.HasPrefix(id, "did:"):
		return s.store.AccountByDID(ctx, syntax.DID(strings.TrimSpace(identifier)))
	case strings.Contains(id, "@"):
		return s.store.AccountByEmail(ctx, id)
	default:
		return s.store.AccountByHandle(ctx, syntax.Handle(id))
	}
}

// CreateSession logs in with the account password or an app password.
//
// Every failed login does the same work, whether the identifier names an
// account or not: two argon2id runs (the account password, then the app
// password's hash) and the same two store reads, so neither the time taken
// nor the load tells an attacker which accounts exist. An unknown
// identifier is checked against dummyHash and looked up under unknownDID.
func (s *Service) CreateSession(ctx context.Context, identifier, password string) (*Session, error) {
	if len(password) > maxLoginPasswordLength {
		return nil, refusal.New("AuthenticationRequired", "Password too long. Consider resetting your password.")
	}
	if identifier == "" || password == "" {
		return nil, ErrAuthFailed
	}
	a, err := s.lookup(ctx, identifier)
	known := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	did, hash := unknownDID, dummyHash
	if known {
		did, hash = a.DID.String(), a.PasswordHash
	}
	ok, err := checkPassword(ctx, password, hash)
	if err != nil {
		return nil, fmt.Errorf("check password of %s: %w", did, err)
	}
	scope, appName := ScopeAccess, ""
	if !ok || !known {
		appHash, err := hashAppPassword(ctx, did, password)
		if err != nil {
			return nil, fmt.Errorf("hash app password of %s: %w", did, err)
		}
		ap, err := s.store.AppPasswordByHash(ctx, syntax.DID(did), appHash)
		if errors.Is(err, store.ErrNotFound) || (err == nil && !known) {
			return nil, ErrAuthFailed
		}
		if err != nil {
			return nil, err
		}
		scope, appName = ScopeAppPass, ap.Name
		if ap.Privileged {
			scope = ScopeAppPassPrivileged
		}
	}
	if a.TakedownRef != "" {
		return nil, ErrAccountTakedown
	}
	return s.issue(ctx, a, scope, appName)
}

// unknownDID is the DID a login with an unknown identifier looks its app
// password up under: a did:web under the reserved .invalid name, which no
// account can have.
const unknownDID = "did:web:nobody.invalid"

// RefreshSession rotates a refresh token and issues a new pair with the
// session's scope; see refreshGrace for what happens to the old token.
func (s *Service) RefreshSession(ctx context.Context, claims Claims) (*Session, error) {
	old, err := s.store.RefreshToken(ctx, claims.ID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && old.DID.String() != claims.DID) {
		return nil, ErrSessionRevoked
	}
	if err != nil {
		return nil, err
	}
	a, err := s.store.AccountByDID(ctx, old.DID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrAccountNotFound
	}
	if err != nil {
		return nil, err
	}
	if a.TakedownRef != "" {
		return nil, ErrAccountTakedown
	}
	scope := ScopeAccess
	if old.AppPasswordName != "" {
		scope = ScopeAppPass
		ap, err := s.appPassword(ctx, a.DID.String(), old.AppPasswordName)
		if err != nil {
			return nil, err
		}
		if ap.Privileged {
			scope = ScopeAppPassPrivileged
		}
	}
	nextID, err := s.store.RotateRefreshToken(ctx, claims.ID, store.RefreshToken{
		ID: NewRefreshID(), DID: a.DID, AppPasswordName: old.AppPasswordName, ExpiresAt: time.Now().Add(RefreshLifetime)},
		time.Now().Add(refreshGrace))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrSessionRevoked
	}
	if err != nil {
		return nil, err
	}
	access, err := s.Tokens.Access(a.DID.String(), scope)
	if err != nil {
		return nil, err
	}
	refresh, _, err := s.Tokens.Refresh(a.DID.String(), nextID)
	if err != nil {
		return nil, err
	}
	return &Session{Account: view(a), AccessJWT: access, RefreshJWT: refresh, Scope: scope, DIDDoc: s.document(ctx, a.DID.String())}, nil
}

// refreshGrace is how long a rotated refresh token keeps answering with
// its successor, the official PDS's two hours: clients that refresh from
// two tabs at once, or lose a response, are not logged out.
const refreshGrace = 2 * time.Hour

func (s *Service) appPassword(ctx context.Context, did, name string) (*store.AppPassword, error) {
	list, err := s.store.ListAppPasswords(ctx, syntax.DID(did))
	if err != nil {
		return nil, err
	}
	for i := range list {
		if list[i].Name == name {
			return &list[i], nil
		}
	}
	return nil, ErrSessionRevoked
}

// DeleteSession revokes a refresh token.
func (s *Service) DeleteSession(ctx context.Context, claims Claims) error {
	return s.store.RevokeRefreshToken(ctx, claims.ID)
}

// account returns a hosted account by DID.
func (s *Service) account(ctx context.Context, did string) (*store.Account, error) {
	a, err := s.store.AccountByDID(ctx, syntax.DID(did))
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrAccountNotFound
	}
	return a, err
}

// GetSession returns the session's account and DID document.
func (s *Service) GetSession(ctx context.Context, did string) (*Session, error) {
	a, err := s.store.AccountByDID(ctx, syntax.DID(did))
	if errors.Is(err, store.ErrNotFound) {
		return nil, invalidRequest("Could not find user info for account: %s", did)
	}
	if err != nil {
		return nil, err
	}
	return &Session{Account: view(a), DIDDoc: s.document(ctx, did)}, nil
}

// UpdateHandle moves an account to a new handle: a PLC operation first,
// then the local index, so the index never names a handle the DID document
// does not.
func (s *Service) UpdateHandle(ctx context.Context, did, raw string) error {
	h, err := s.Handles.Validate(raw, true)
	if err != nil {
		return err
	}
	handle := h.String()
	if !s.Handles.IsServiceHandle(h) {
		// A custom domain must already point at the account, by DNS TXT
		// or HTTPS well-known, before we publish it; asked afresh, since
		// the user has likely just set it up.
		s.Resolver.Forget(h)
		got, err := s.Resolver.ResolveHandle(ctx, h)
		if err != nil || got.String() != did {
			return hnd.ErrExternalHandleMismatch
		}
	}
	if other, err := s.store.AccountByHandle(ctx, syntax.Handle(handle)); err == nil {
		if other.DID.String() == did {
			// Nothing to publish, but the official PDS still announces the
			// identity, which lets a client ask relays to re-check it.
			stored, err := s.store.AppendEvents(ctx, []store.NewEvent{identityEvent(did, handle)})
			if err != nil {
				return err
			}
			s.Events.Publish(stored...)
			return nil
		}
		return invalidRequest("Handle already taken: %s", handle)
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := s.Identities.UpdateHandle(ctx, did, handle); err != nil {
		return fmt.Errorf("publish handle: %w", err)
	}
	stored, err := s.store.UpdateHandle(ctx, syntax.DID(did), syntax.Handle(handle), []store.NewEvent{identityEvent(did, handle)})
	if errors.Is(err, store.ErrHandleTaken) {
		return invalidRequest("Handle already taken: %s", handle)
	} else if err != nil {
		return err
	}
	s.Events.Publish(stored...)
	s.Logger.Info("handle updated", "did", did, "handle", handle)
	return nil
}

// RecommendedCredentials returns what the account's DID document should
// hold for this PDS to serve it.
func (s *Service) RecommendedCredentials(ctx context.Context, did string) (identity.Credentials, error) {
	a, err := s.account(ctx, did)
	if err != nil {
		return identity.Credentials{}, err
	}
	key, err := s.Keys.SigningKey(ctx, did)
	if err != nil {
		return identity.Credentials{}, err
	}
	pub, err := key.PublicKey()
	if err != nil {
		return identity.Credentials{}, err
	}
	return s.Identities.Recommended(a.Handle.String(), pub)
}

// randomString returns n characters of lower-case base32.
func randomString(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	b := make([]byte, n)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
