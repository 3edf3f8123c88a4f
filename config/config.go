package config

import (
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// Config is everything Hearth takes from its environment. Each field names
// the variable it comes from; the defaults are the official PDS's (see
// [Default] and [Config.WithDerivedDefaults]).
//
// Build one with [FromEnv] in production. Tests and `hearth dev` may build
// one in code: start from [Default], set fields, call
// [Config.WithDerivedDefaults] and then [Config.Validate].
type Config struct {
	Service       Service
	Storage       Storage
	Blobstore     Blobstore
	Identity      Identity
	Invites       Invites
	Email         Email
	Subscription  Subscription
	AppView       AppView
	ModService    Upstream // PDS_MOD_SERVICE_URL, PDS_MOD_SERVICE_DID
	ReportService Upstream // PDS_REPORT_SERVICE_URL, PDS_REPORT_SERVICE_DID; defaults to ModService
	// Crawlers are relays told about new commits with requestCrawl
	// (PDS_CRAWLERS, comma separated URLs; none by default).
	Crawlers   []string
	RateLimits RateLimits
	Outbound   Outbound
	Log        Log
	Secrets    Secrets
}

// Service describes this server as the world sees it.
type Service struct {
	// Port is the TCP port to listen on (PDS_PORT). The official library
	// defaults to 2583 but its Docker image, which is what operators run,
	// sets 3000; we default to 3000. Zero means "any free port" (tests).
	Port int
	// ListenHost is the address to listen on (HEARTH_LISTEN_HOST, Hearth's
	// own; default every interface, like the official PDS). Tests and
	// sidecar setups set 127.0.0.1.
	ListenHost string
	// Hostname is the public DNS name, without scheme or port
	// (PDS_HOSTNAME, required). "localhost" selects the local development
	// behaviour of the official PDS: http URLs and ".test" handles.
	Hostname string
	// DID is the service's own DID (PDS_SERVICE_DID, default did:web:<Hostname>).
	DID syntax.DID
	// Name is shown on the OAuth sign-in pages (PDS_SERVICE_NAME,
	// default "<Hostname> PDS").
	Name string

	HomeURL             string // PDS_HOME_URL
	PrivacyPolicyURL    string // PDS_PRIVACY_POLICY_URL
	TermsOfServiceURL   string // PDS_TERMS_OF_SERVICE_URL
	SupportURL          string // PDS_SUPPORT_URL
	ContactEmailAddress string // PDS_CONTACT_EMAIL_ADDRESS

	// BlobUploadLimit is the largest blob accepted, in bytes
	// (PDS_BLOB_UPLOAD_LIMIT, default 5 MiB; the official installer writes 100 MiB).
	BlobUploadLimit int64
	// AcceptingImports allows com.atproto.repo.importRepo
	// (PDS_ACCEPTING_REPO_IMPORTS, default true).
	AcceptingImports bool
	// MaxImportSize caps an imported CAR in bytes; 0 means no limit
	// (PDS_MAX_REPO_IMPORT_SIZE).
	MaxImportSize int64
	// DevMode relaxes production safeguards (PDS_DEV_MODE, default false);
	// in particular it turns off the outbound private-address guard unless
	// PDS_DISABLE_SSRF_PROTECTION says otherwise.
	DevMode bool
}

// Storage holds where the databases live. Hearth keeps its own store in
// DataDirectory; the official locations are kept so an existing official
// data directory can be found and adopted in place.
type Storage struct {
	// DataDirectory is the root of all local state (PDS_DATA_DIRECTORY).
	// Empty means the working directory, as in the official PDS.
	DataDirectory string

	AccountDBLocation   string // PDS_ACCOUNT_DB_LOCATION, default <data>/account.sqlite
	SequencerDBLocation string // PDS_SEQUENCER_DB_LOCATION, default <data>/sequencer.sqlite
	DIDCacheDBLocation  string // PDS_DID_CACHE_DB_LOCATION, default <data>/did_cache.sqlite
	ActorStoreDirectory string // PDS_ACTOR_STORE_DIRECTORY, default <data>/actors
}

// Blobstore selects where blobs live: exactly one of a disk folder or an S3
// bucket. Both use the official layout, so an existing store is used as is.
type Blobstore struct {
	// DiskLocation is the blob folder (PDS_BLOBSTORE_DISK_LOCATION). When
	// neither it nor an S3 bucket is set we use <data>/blocks, the official
	// installer's layout, where the official PDS would refuse to start.
	DiskLocation string
	// DiskTmpLocation holds uploads not yet referenced by a record
	// (PDS_BLOBSTORE_DISK_TMP_LOCATION, default <DiskLocation>/tempt: the
	// official spelling, kept so adopted folders line up).
	DiskTmpLocation string
	S3              S3
	// CollectGrace is how long an upload no record references, or a blob
	// no record references any more, is kept before it is deleted
	// (HEARTH_BLOB_GRACE_MS, Hearth's own, default 1 h; the official PDS
	// never deletes unreferenced uploads).
	CollectGrace time.Duration
	// CollectInterval is how often the collector runs
	// (HEARTH_BLOB_COLLECT_INTERVAL_MS, default 10 min).
	CollectInterval time.Duration
}

// UsesS3 reports whether blobs go to S3 rather than to disk.
func (b Blobstore) UsesS3() bool { return b.S3.Bucket != "" }

// S3 configures the S3 blobstore (PDS_BLOBSTORE_S3_*). Credentials are
// optional: without them the SDK's default chain applies.
type S3 struct {
	Bucket          string // PDS_BLOBSTORE_S3_BUCKET
	Region          string // PDS_BLOBSTORE_S3_REGION
	Endpoint        string // PDS_BLOBSTORE_S3_ENDPOINT, for non-AWS stores
	ForcePathStyle  bool   // PDS_BLOBSTORE_S3_FORCE_PATH_STYLE
	AccessKeyID     string // PDS_BLOBSTORE_S3_ACCESS_KEY_ID
	SecretAccessKey Secret // PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY
	// UploadTimeout bounds one upload (PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS, default 20 s).
	UploadTimeout time.Duration
	// RequestTimeout bounds other requests; 0 leaves the SDK default
	// (PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS).
	RequestTimeout time.Duration
}

// Identity configures DIDs and handles.
type Identity struct {
	// PLCURL is the did:plc directory (PDS_DID_PLC_URL, default https://plc.directory).
	PLCURL string
	// RecoveryDIDKey, when set, is put first in the rotation keys of every
	// DID this server creates, so the operator can recover accounts if the
	// server's own rotation key is lost (PDS_RECOVERY_DID_KEY, a did:key).
	RecoveryDIDKey atcrypto.PublicKey
	// ServiceHandleDomains are the suffixes, each starting with a dot, under
	// which users get handles here (PDS_SERVICE_HANDLE_DOMAINS, default
	// "."+Hostname, or ".test" when Hostname is localhost).
	ServiceHandleDomains []string
	// CacheStaleTTL and CacheMaxTTL bound how long resolved DID documents are
	// served from cache before a background refresh, and at most
	// (PDS_DID_CACHE_STALE_TTL default 1 h, PDS_DID_CACHE_MAX_TTL default 24 h, both in ms).
	CacheStaleTTL time.Duration
	CacheMaxTTL   time.Duration
	// ResolverTimeout bounds one DID or handle resolution
	// (PDS_ID_RESOLVER_TIMEOUT in ms, default 3 s).
	ResolverTimeout time.Duration
}

// Invites configures invite codes.
type Invites struct {
	// Required makes createAccount demand an invite code
	// (PDS_INVITE_REQUIRED). The official default is true: a fresh server is
	// closed until the operator hands out codes.
	Required bool
}

// Email configures outgoing mail. Mail is off unless both the SMTP URL and
// the from address are set.
type Email struct {
	// SMTPURL is smtp:// or smtps://, usually with credentials, hence a
	// Secret (PDS_EMAIL_SMTP_URL).
	SMTPURL     Secret
	FromAddress string // PDS_EMAIL_FROM_ADDRESS
	// DisableConfirmationLink sends confirmation codes without a clickable
	// link (PDS_EMAIL_DISABLE_CONFIRMATION_LINK).
	DisableConfirmationLink bool
}

// Enabled reports whether mail can be sent.
func (e Email) Enabled() bool { return e.SMTPURL != "" }

// Subscription configures the firehose (com.atproto.sync.subscribeRepos).
type Subscription struct {
	// MaxBuffer is how many events a subscriber may fall behind before it is
	// dropped (PDS_MAX_SUBSCRIPTION_BUFFER, default 500).
	MaxBuffer int
	// RepoBackfillLimit is how far back a cursor may reach; older cursors
	// get an OutdatedCursor info frame and start at the oldest kept event
	// (PDS_REPO_BACKFILL_LIMIT_MS, default 24 h).
	RepoBackfillLimit time.Duration
}

// Upstream is a service this server forwards to, named by URL and DID.
// Both are set or neither is.
type Upstream struct {
	URL string
	DID syntax.DID
}

// Configured reports whether the upstream is set.
func (u Upstream) Configured() bool { return u.URL != "" }

// AppView is the Bluesky AppView that app.bsky.* requests are proxied to by
// default (PDS_BSKY_APP_VIEW_URL, PDS_BSKY_APP_VIEW_DID; none by default, the
// official installer writes https://api.bsky.app and did:web:api.bsky.app).
type AppView struct {
	Upstream
	// CDNURLPattern rewrites blob URLs in read-after-write responses
	// (PDS_BSKY_APP_VIEW_CDN_URL_PATTERN).
	CDNURLPattern string
}

// RateLimits configures request rate limiting.
type RateLimits struct {
	Enabled   bool   // PDS_RATE_LIMITS_ENABLED, default false
	BypassKey Secret // PDS_RATE_LIMIT_BYPASS_KEY: requests carrying it are not limited
	// BypassIPs are never limited (PDS_RATE_LIMIT_BYPASS_IPS). The official
	// PDS accepts "ip/prefix" but drops the prefix and matches the address
	// only; so do we.
	BypassIPs []netip.Addr
}

// Outbound configures requests the server makes to addresses users choose
// (DID documents, handles, OAuth client metadata, proxied services).
type Outbound struct {
	// DisableSSRFProtection allows private and loopback addresses
	// (PDS_DISABLE_SSRF_PROTECTION, default PDS_DEV_MODE).
	DisableSSRFProtection bool
	// ProxyHeadersTimeout bounds the wait for a proxied upstream's response
	// headers (PDS_PROXY_HEADERS_TIMEOUT in ms, default 10 s),
	// ProxyBodyTimeout the silence within its body (PDS_PROXY_BODY_TIMEOUT,
	// default 30 s), and ProxyMaxResponseSize its size in bytes
	// (PDS_PROXY_MAX_RESPONSE_SIZE, default 10 MiB).
	ProxyHeadersTimeout  time.Duration
	ProxyBodyTimeout     time.Duration
	ProxyMaxResponseSize int64
}

// Log configures the process logger. These variables have no PDS_ prefix in
// the official PDS either.
type Log struct {
	// Enabled turns logging on (LOG_ENABLED). The official library defaults
	// to off and its installer turns it on; we default to on, because a
	// server that logs nothing cannot be operated.
	Enabled bool
	// Level is the minimum level (LOG_LEVEL: trace, debug, info, warn,
	// error, fatal or silent; default info). trace maps below debug and
	// fatal above error; silent turns logging off.
	Level slog.Level
}

// Secrets are the values that must never be printed. Their String, Format
// and LogValue redact them.
type Secrets struct {
	// JWTSecret signs legacy session tokens (PDS_JWT_SECRET, required).
	JWTSecret Secret
	// AdminPassword authenticates the admin API with HTTP basic auth
	// (PDS_ADMIN_PASSWORD, required).
	AdminPassword Secret
	// DPoPSecret keys OAuth DPoP nonces so several replicas agree
	// (PDS_DPOP_SECRET, optional: a random one per process otherwise).
	DPoPSecret Secret
	// PLCRotationKey signs did:plc operations for hosted accounts
	// (PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX, 32 bytes in hex; required
	// unless PLCRotationKMSKeyID is set).
	PLCRotationKey *atcrypto.PrivateKeyK256
	// PLCRotationKMSKeyID names an AWS KMS key holding the rotation key
	// instead (PDS_PLC_ROTATION_KEY_KMS_KEY_ID). It is accepted so that
	// official configurations validate, but Hearth cannot sign with KMS
	// yet: whatever wires the identity package must refuse it with a clear
	// error rather than run without a rotation key.
	PLCRotationKMSKeyID string
	// KeyEncryptionSecret, when set, encrypts the accounts' signing keys in
	// the store (HEARTH_KEY_ENCRYPTION_SECRET, Hearth's own: at least 32
	// random bytes as 64 or more hex characters). Unset, keys are stored
	// plain, as before; set, existing plain keys are sealed at start-up.
	// See package keyring.
	KeyEncryptionSecret Secret
}

// KeyEncryptionKey is the decoded KeyEncryptionSecret, nil when unset.
// Validate has checked it.
func (s Secrets) KeyEncryptionKey() []byte {
	if s.KeyEncryptionSecret == "" {
		return nil
	}
	return decodeKeySecret(s.KeyEncryptionSecret)
}

// Default returns the official defaults for everything that does not depend
// on other values. Hostname and the secrets have no default.
func Default() Config {
	return Config{
		Service: Service{
			Port:             3000,
			BlobUploadLimit:  5 * 1024 * 1024,
			AcceptingImports: true,
		},
		Blobstore: Blobstore{S3: S3{UploadTimeout: 20 * time.Second}, CollectGrace: time.Hour, CollectInterval: 10 * time.Minute},
		Identity: Identity{
			PLCURL:          "https://plc.directory",
			CacheStaleTTL:   time.Hour,
			CacheMaxTTL:     24 * time.Hour,
			ResolverTimeout: 3 * time.Second,
		},
		Invites:      Invites{Required: true},
		Outbound:     Outbound{ProxyHeadersTimeout: 10 * time.Second, ProxyBodyTimeout: 30 * time.Second, ProxyMaxResponseSize: 10 << 20},
		Subscription: Subscription{MaxBuffer: 500, RepoBackfillLimit: 24 * time.Hour},
		Log:          Log{Enabled: true, Level: slog.LevelInfo},
	}
}

// WithDerivedDefaults fills the defaults that depend on other values: the
// service DID, name and handle domains from the hostname, the database and
// blob locations from the data directory, and the report service from the
// moderation service. Fields already set are kept.
func (c Config) WithDerivedDefaults() Config {
	h := c.Service.Hostname
	if c.Service.DID == "" && h != "" {
		c.Service.DID = syntax.DID("did:web:" + h)
	}
	if c.Service.Name == "" && h != "" {
		c.Service.Name = h + " PDS"
	}
	if len(c.Identity.ServiceHandleDomains) == 0 && h != "" {
		if h == "localhost" {
			c.Identity.ServiceHandleDomains = []string{".test"}
		} else {
			c.Identity.ServiceHandleDomains = []string{"." + h}
		}
	}

	inData := func(name string) string { return filepath.Join(c.Storage.DataDirectory, name) }
	setIfEmpty(&c.Storage.AccountDBLocation, inData("account.sqlite"))
	setIfEmpty(&c.Storage.SequencerDBLocation, inData("sequencer.sqlite"))
	setIfEmpty(&c.Storage.DIDCacheDBLocation, inData("did_cache.sqlite"))
	setIfEmpty(&c.Storage.ActorStoreDirectory, inData("actors"))

	if !c.Blobstore.UsesS3() {
		setIfEmpty(&c.Blobstore.DiskLocation, inData("blocks"))
		setIfEmpty(&c.Blobstore.DiskTmpLocation, filepath.Join(c.Blobstore.DiskLocation, "tempt"))
	}

	// Only a complete mod service is copied, so that a half-set one is
	// reported once, under its own names.
	if c.ReportService == (Upstream{}) && c.ModService.URL != "" && c.ModService.DID != "" {
		c.ReportService = c.ModService
	}
	return c
}

func setIfEmpty(s *string, v string) {
	if *s == "" {
		*s = v
	}
}

// PublicURL is the URL clients, relays and DID documents use to reach this
// server. Like the official PDS, it is http://localhost:<port> when the
// hostname is localhost and https://<hostname> otherwise; it does not depend
// on DevMode, so a dev setup behind a TLS front (e.g. https://pds.test) keeps
// its https name. It is not the listen address.
func (c Config) PublicURL() string {
	if c.Service.Hostname == "localhost" {
		return "http://localhost:" + strconv.Itoa(c.Service.Port)
	}
	return "https://" + c.Service.Hostname
}

// LogValue implements slog.LogValuer: the whole configuration with every
// secret redacted (set secrets show as "[redacted]", unset ones as "").
func (c Config) LogValue() slog.Value {
	s := c.Service
	st := c.Storage
	b := c.Blobstore
	id := c.Identity

	blob := []slog.Attr{slog.String("provider", "disk"), slog.String("location", b.DiskLocation), slog.String("tmp_location", b.DiskTmpLocation)}
	if b.UsesS3() {
		blob = []slog.Attr{
			slog.String("provider", "s3"),
			slog.String("bucket", b.S3.Bucket),
			slog.String("region", b.S3.Region),
			slog.String("endpoint", b.S3.Endpoint),
			slog.Bool("force_path_style", b.S3.ForcePathStyle),
			slog.String("access_key_id", b.S3.AccessKeyID),
			slog.Any("secret_access_key", b.S3.SecretAccessKey),
			slog.Duration("upload_timeout", b.S3.UploadTimeout),
			slog.Duration("request_timeout", b.S3.RequestTimeout),
		}
	}
	recovery := ""
	if id.RecoveryDIDKey != nil {
		recovery = id.RecoveryDIDKey.DIDKey()
	}
	bypassIPs := make([]string, len(c.RateLimits.BypassIPs))
	for i, ip := range c.RateLimits.BypassIPs {
		bypassIPs[i] = ip.String()
	}

	return slog.GroupValue(
		slog.Group("service",
			slog.String("hostname", s.Hostname),
			slog.Int("port", s.Port),
			slog.String("public_url", c.PublicURL()),
			slog.String("did", s.DID.String()),
			slog.String("name", s.Name),
			slog.String("home_url", s.HomeURL),
			slog.String("privacy_policy_url", s.PrivacyPolicyURL),
			slog.String("terms_of_service_url", s.TermsOfServiceURL),
			slog.String("support_url", s.SupportURL),
			slog.String("contact_email_address", s.ContactEmailAddress),
			slog.Int64("blob_upload_limit", s.BlobUploadLimit),
			slog.Bool("accepting_imports", s.AcceptingImports),
			slog.Int64("max_import_size", s.MaxImportSize),
			slog.Bool("dev_mode", s.DevMode),
		),
		slog.Group("storage",
			slog.String("data_directory", st.DataDirectory),
			slog.String("account_db", st.AccountDBLocation),
			slog.String("sequencer_db", st.SequencerDBLocation),
			slog.String("did_cache_db", st.DIDCacheDBLocation),
			slog.String("actor_store_directory", st.ActorStoreDirectory),
		),
		slog.Attr{Key: "blobstore", Value: slog.GroupValue(blob...)},
		slog.Group("identity",
			slog.String("plc_url", id.PLCURL),
			slog.String("recovery_did_key", recovery),
			slog.Any("service_handle_domains", id.ServiceHandleDomains),
			slog.Duration("cache_stale_ttl", id.CacheStaleTTL),
			slog.Duration("cache_max_ttl", id.CacheMaxTTL),
			slog.Duration("resolver_timeout", id.ResolverTimeout),
		),
		slog.Bool("invites.required", c.Invites.Required),
		slog.Group("email",
			slog.String("smtp_url", redactURL(string(c.Email.SMTPURL))),
			slog.String("from_address", c.Email.FromAddress),
			slog.Bool("disable_confirmation_link", c.Email.DisableConfirmationLink),
		),
		slog.Group("subscription",
			slog.Int("max_buffer", c.Subscription.MaxBuffer),
			slog.Duration("repo_backfill_limit", c.Subscription.RepoBackfillLimit),
		),
		slog.Group("appview",
			slog.String("url", c.AppView.URL),
			slog.String("did", c.AppView.DID.String()),
			slog.String("cdn_url_pattern", c.AppView.CDNURLPattern),
		),
		slog.Group("mod_service", slog.String("url", c.ModService.URL), slog.String("did", c.ModService.DID.String())),
		slog.Group("report_service", slog.String("url", c.ReportService.URL), slog.String("did", c.ReportService.DID.String())),
		slog.Any("crawlers", c.Crawlers),
		slog.Group("rate_limits",
			slog.Bool("enabled", c.RateLimits.Enabled),
			slog.Any("bypass_key", c.RateLimits.BypassKey),
			slog.Any("bypass_ips", bypassIPs),
		),
		slog.Bool("outbound.disable_ssrf_protection", c.Outbound.DisableSSRFProtection),
		slog.Group("log", slog.Bool("enabled", c.Log.Enabled), slog.String("level", c.Log.Level.String())),
		slog.Any("secrets", c.Secrets),
	)
}

// LogValue implements slog.LogValuer. The rotation key is shown by its public
// did:key, which is what operators compare with the DID documents.
func (s Secrets) LogValue() slog.Value {
	rotation := ""
	if s.PLCRotationKey != nil {
		if pub, err := s.PLCRotationKey.PublicKey(); err == nil {
			rotation = pub.DIDKey()
		} else {
			rotation = redacted
		}
	}
	return slog.GroupValue(
		slog.Any("jwt_secret", s.JWTSecret),
		slog.Any("admin_password", s.AdminPassword),
		slog.Any("dpop_secret", s.DPoPSecret),
		slog.String("plc_rotation_key", rotation),
		slog.String("plc_rotation_kms_key_id", s.PLCRotationKMSKeyID),
		slog.Any("key_encryption_secret", s.KeyEncryptionSecret),
	)
}

// String renders the configuration as space-separated key=value pairs with
// secrets redacted, for humans (e.g. `hearth check`).
func (c Config) String() string { return formatValue(c.LogValue()) }

// String renders the secrets redacted.
func (s Secrets) String() string { return formatValue(s.LogValue()) }

// Format makes every fmt verb, %#v included, use the redacted String: without
// it %#v would print the private key's internals.
func (c Config) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, c.String()) }

// Format makes every fmt verb use the redacted String.
func (s Secrets) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, s.String()) }

var (
	_ slog.LogValuer = Config{}
	_ slog.LogValuer = Secrets{}
	_ fmt.Formatter  = Config{}
	_ fmt.Formatter  = Secrets{}
)
