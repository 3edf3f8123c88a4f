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
	"time"

	"github.com/hearth-pds/hearth/account"
	"github.com/hearth-pds/hearth/blobs"
	"github.com/hearth-pds/hearth/blobstore"
	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/crawlers"
	"github.com/hearth-pds/hearth/handle"
	"github.com/hearth-pds/hearth/identity"
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

// The SQLite store is what each domain package asks of a store.
var (
	_ records.Store = (*sqlite.Store)(nil)
	_ blobs.Store   = (*sqlite.Store)(nil)
)

// DatabaseFile is Hearth's SQLite store inside the data directory. Its
// own name keeps it apart from the official PDS's files in the same folder.
const DatabaseFile = "hearth.sqlite"

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
}

// New opens the store and builds every service from cfg, which must be
// valid (config.Config.Validate).
func New(ctx context.Context, cfg config.Config, version string, log *slog.Logger) (*PDS, error) {
	if cfg.Secrets.PLCRotationKey == nil {
		return nil, errors.New("PDS_PLC_ROTATION_KEY_KMS_KEY_ID is not supported: set PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX")
	}
	dir := cfg.Storage.DataDirectory
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, DatabaseFile))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
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
	if lexicons.Count() == 0 {
		log.Warn("built without lexicon schemas (run `go generate ./lexicons`): every record type is treated as unknown")
	}
	bytes, err := blobstore.Open(cfg.Blobstore, log.With("component", "blobstore"))
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("open blob store: %w", err)
	}
	blobSvc := blobs.New(st, bytes, cfg.Service.BlobUploadLimit, cfg.Blobstore.CollectGrace, log.With("component", "blobs"))
	recs := records.New(st, blobSvc, repo.NewEngine(0), events, lexicons.Lazy{}, log.With("component", "records"))
	tokens := &account.Tokens{Secret: []byte(cfg.Secrets.JWTSecret), ServiceDID: cfg.Service.DID.String()}
	accounts := account.NewService(account.Service{
		Store:          st,
		Identities:     plc,
		Handles:        handle.Rules{ServiceDomains: cfg.Identity.ServiceHandleDomains},
		Resolver:       resolver,
		Events:         events,
		Tokens:         tokens,
		InviteRequired: cfg.Invites.Required,
		Hostname:       cfg.Service.Hostname,
		Logger:         log.With("component", "account"),
	})
	// One issuer signs the proxy's tokens and getServiceAuth's, sharing
	// its cache of parsed keys.
	issuer := serviceauth.NewIssuer(st)
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
	go pruneEvents(bg, st, cfg.Subscription.RepoBackfillLimit, log.With("component", "sequencer"))
	notifier.Start(bg)
	go blobSvc.RunCollector(bg, cfg.Blobstore.CollectInterval)
	p := &PDS{cfg: cfg, log: log, store: st, accounts: accounts, seq: seq, handler: api, stop: stop}
	p.http = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return p, nil
}

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
// ctx) and closes the store.
func (p *PDS) Shutdown(ctx context.Context) error {
	p.stop()
	// Close the firehose first: its WebSockets are hijacked connections
	// that http.Server.Shutdown does not wait for or close.
	p.seq.Close()
	err := p.http.Shutdown(ctx)
	return errors.Join(err, p.store.Close())
}
