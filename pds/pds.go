// Package pds wires Hearth together: the store, the domain services and
// the HTTP layer, from one config.Config. It is the one place that knows
// every part, so `hearth serve`, `hearth dev` and the tests all start the
// same server (tests on 127.0.0.1:0).
package pds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"time"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/blobs"
	"github.com/hearth-pds/hearth/blobstore"
	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/crawlers"
	"github.com/hearth-pds/hearth/handle"
	"github.com/hearth-pds/hearth/identity"
	"github.com/hearth-pds/hearth/keyring"
	"github.com/hearth-pds/hearth/lexicons"
	"github.com/hearth-pds/hearth/readafterwrite"
	"github.com/hearth-pds/hearth/records"
	"github.com/hearth-pds/hearth/repo"
	"github.com/hearth-pds/hearth/sequencer"
	"github.com/hearth-pds/hearth/serviceauth"
	"github.com/hearth-pds/hearth/store"
	"github.com/hearth-pds/hearth/store/sqlite"
	"github.com/hearth-pds/hearth/xrpc"
)

// DatabasePath is where the store of cfg lives.
func DatabasePath(cfg config.Config) string {
	return filepath.Join(cfg.Storage.DataDirectory, sqlite.FileName)
}

// The SQLite store is what each domain package asks of a store.
var (
	_ records.Store = (*sqlite.Store)(nil)
	_ blobs.Store   = (*sqlite.Store)(nil)
)

// PDS is a configured server, ready to serve.
type PDS struct {
	cfg      config.Config
	log      *slog.Logger
	store    store.Store
	accounts *account.Service
	seq      *sequencer.Sequencer
	handler  http.Handler
	http     *http.Server
	stop     context.CancelFunc
	// background is the store's users that run beside requests (the event
	// pruner, the blob collector); Shutdown waits for them before it
	// closes the store.
	background *sync.WaitGroup
}

// New opens the store and builds every service from cfg, which must be
// valid (config.Config.Validate).
func New(ctx context.Context, cfg config.Config, version string, log *slog.Logger) (*PDS, error) {
	if cfg.Secrets.PLCRotationKey == nil {
		return nil, errors.New("PDS_PLC_ROTATION_KEY_KMS_KEY_ID is not supported: set PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX")
	}
	// A server without schemas would store any record unvalidated.
	if lexicons.Count() == 0 {
		return nil, errors.New("built without lexicon schemas: lexicons/schemas.jsonl is empty (run `go generate ./lexicons`)")
	}
	dir := cfg.Storage.DataDirectory
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, sqlite.FileName))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	keys, err := openKeyring(ctx, st, cfg.Secrets.KeyEncryptionKey(), log)
	if err != nil {
		st.Close()
		return nil, err
	}

	allowPrivate := cfg.Outbound.DisableSSRFProtection
	plc := &identity.PLC{
		DirectoryURL: cfg.Identity.PLCURL,
		RotationKey:  cfg.Secrets.PLCRotationKey,
		Endpoint:     cfg.PublicURL(),
		HTTPClient:   &http.Client{Timeout: 15 * time.Second},
	}
	if cfg.Identity.RecoveryDIDKey != nil {
		plc.RecoveryKey = cfg.Identity.RecoveryDIDKey.DIDKey()
	}
	resolver := identity.NewHandleResolver(allowPrivate, cfg.Identity.ResolverTimeout, cfg.Identity.CacheStaleTTL)
	seq, err := sequencer.New(ctx, eventLog{st}, sequencer.Config{
		MaxBuffer: cfg.Subscription.MaxBuffer,
		Logger:    log.With("component", "sequencer"),
	})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("start sequencer: %w", err)
	}
	notifier := crawlers.New(cfg.Service.Hostname, cfg.Crawlers, 0, log.With("component", "crawlers"))
	events := firehose{seq: seq, crawlers: notifier}
	bytes, err := blobstore.Open(cfg.Blobstore, log.With("component", "blobstore"))
	if err != nil {
		seq.Close()
		st.Close()
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	blobSvc := blobs.New(st, bytes, cfg.Service.BlobUploadLimit, cfg.Blobstore.CollectGrace, log.With("component", "blobs"))
	recs := records.New(st, keys, blobSvc, repo.NewEngine(0), events, lexicons.Lazy{}, log.With("component", "records"))
	tokens := &account.Tokens{Secret: []byte(cfg.Secrets.JWTSecret), ServiceDID: cfg.Service.DID.String()}
	accounts := account.NewService(st, account.Service{
		Keys:           keys,
		Identities:     plc,
		Handles:        handle.Rules{ServiceDomains: cfg.Identity.ServiceHandleDomains},
		Resolver:       resolver,
		Events:         events,
		Tokens:         tokens,
		InviteRequired: cfg.Invites.Required,
		Hostname:       cfg.Service.Hostname,
		Logger:         log.With("component", "account"),
	})
	// One issuer signs the proxy's tokens and getServiceAuth's.
	issuer := serviceauth.NewIssuer(keys)
	forwarder := newProxy(cfg, issuer, log)
	// The read-after-write views exist with an AppView only, as in the
	// official PDS.
	var views xrpc.Views
	if cfg.AppView.Configured() {
		views = readafterwrite.New(readafterwrite.Config{
			PublicURL:     cfg.PublicURL(),
			CDNURLPattern: cfg.AppView.CDNURLPattern,
			Logger:        log.With("component", "readafterwrite"),
		}, forwarder, st)
	}
	api := xrpc.New(xrpc.Config{
		Version:       version,
		AdminPassword: string(cfg.Secrets.AdminPassword),
		Describe: xrpc.Describe{
			DID:                  cfg.Service.DID.String(),
			AvailableUserDomains: cfg.Identity.ServiceHandleDomains,
			InviteCodeRequired:   cfg.Invites.Required,
			PrivacyPolicyURL:     cfg.Service.PrivacyPolicyURL,
			TermsOfServiceURL:    cfg.Service.TermsOfServiceURL,
			ContactEmail:         cfg.Service.ContactEmailAddress,
			Hostname:             cfg.Service.Hostname,
			HomeURL:              cfg.Service.HomeURL,
			BlobUploadLimit:      cfg.Service.BlobUploadLimit,
		},
		Accounts:      accounts,
		Records:       recs,
		Blobs:         blobSvc,
		Firehose:      seq,
		Proxy:         forwarder,
		ServiceAuth:   issuer,
		Views:         views,
		Tokens:        tokens,
		Store:         st,
		Handles:       resolver,
		HandleDomains: cfg.Identity.ServiceHandleDomains,
		Logger:        log.With("component", "xrpc"),
		LogRequests:   cfg.Log.Enabled,
	})
	bg, stop := context.WithCancel(context.Background())
	background := &sync.WaitGroup{}
	background.Go(func() { pruneEvents(bg, st, cfg.Subscription.RepoBackfillLimit, log.With("component", "sequencer")) })
	notifier.Start(bg)
	background.Go(func() { blobSvc.RunCollector(bg, cfg.Blobstore.CollectInterval) })
	p := &PDS{cfg: cfg, log: log, store: st, accounts: accounts, seq: seq, handler: api, stop: stop, background: background}
	p.http = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

// openKeyring builds the one keyring of the server, sealing the store's
// plain keys when a secret is set, and refuses to start when a stored key
// cannot be read with the secret given (or without one).
func openKeyring(ctx context.Context, st store.Store, secret []byte, log *slog.Logger) (*keyring.Keyring, error) {
	sealer, err := keyring.SealerFor(secret)
	if err != nil {
		return nil, fmt.Errorf("HEARTH_KEY_ENCRYPTION_SECRET: %w", err)
	}
	keys := keyring.New(st, sealer)
	sealed, err := keys.Prepare(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("check stored signing keys: %w", err)
	}
	if sealed > 0 {
		log.Info("encrypted stored signing keys with HEARTH_KEY_ENCRYPTION_SECRET", "count", sealed)
	}
	return keys, nil
}

// The keyring is what each signer asks for its keys, and the store is what
// the keyring reads and rewrites.
var (
	_ records.Signer   = (*keyring.Keyring)(nil)
	_ serviceauth.Keys = (*keyring.Keyring)(nil)
	_ account.Keys     = (*keyring.Keyring)(nil)
	_ keyring.Store    = store.Store(nil)
	_ keyring.Rewriter = store.Store(nil)
)

// Handler is the HTTP handler, for tests that drive it in process.
func (p *PDS) Handler() http.Handler { return p.handler }

// Accounts is the account service, for the dev command's first invite.
func (p *PDS) Accounts() *account.Service { return p.accounts }

// Serve serves on ln until Shutdown; it returns nil after a clean shutdown.
func (p *PDS) Serve(ln net.Listener) error {
	p.log.Info("serving", "addr", ln.Addr().String(), "public_url", p.cfg.PublicURL())
	// Start-up garbage (migrations, configuration) is returned to the OS
	// now rather than at the runtime's leisure: an idle PDS should be small.
	debug.FreeOSMemory()
	if err := p.http.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve http: %w", err)
	}
	return nil
}

// Shutdown stops accepting requests, waits for those in flight (bounded by
// ctx) and for the background work (event pruner, blob collector), then
// closes the store.
func (p *PDS) Shutdown(ctx context.Context) error {
	p.stop()
	// Close the firehose first: its WebSockets are hijacked connections
	// that http.Server.Shutdown does not wait for or close.
	p.seq.Close()
	err := p.http.Shutdown(ctx)
	// The pruner and the collector see the cancelled context at their next
	// store call or tick; a store closed under them would fail that call.
	p.background.Wait()
	return errors.Join(err, p.store.Close())
}
