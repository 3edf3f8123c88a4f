package config

import (
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
	"github.com/bluesky-social/indigo/atproto/syntax"
)

// The variables Hearth reads. Names, meanings and defaults are the official
// PDS's (packages/pds/src/config/env.ts and config.ts in bluesky-social/atproto).
const (
	envPort              = "PDS_PORT"
	envListenHost        = "HEARTH_LISTEN_HOST"
	envHostname          = "PDS_HOSTNAME"
	envServiceDID        = "PDS_SERVICE_DID"
	envServiceName       = "PDS_SERVICE_NAME"
	envHomeURL           = "PDS_HOME_URL"
	envPrivacyPolicyURL  = "PDS_PRIVACY_POLICY_URL"
	envTermsOfServiceURL = "PDS_TERMS_OF_SERVICE_URL"
	envSupportURL        = "PDS_SUPPORT_URL"
	envContactEmail      = "PDS_CONTACT_EMAIL_ADDRESS"
	envBlobUploadLimit   = "PDS_BLOB_UPLOAD_LIMIT"
	envAcceptingImports  = "PDS_ACCEPTING_REPO_IMPORTS"
	envMaxImportSize     = "PDS_MAX_REPO_IMPORT_SIZE"
	envDevMode           = "PDS_DEV_MODE"

	envDataDirectory    = "PDS_DATA_DIRECTORY"
	envAccountDB        = "PDS_ACCOUNT_DB_LOCATION"
	envSequencerDB      = "PDS_SEQUENCER_DB_LOCATION"
	envDIDCacheDB       = "PDS_DID_CACHE_DB_LOCATION"
	envActorStoreDir    = "PDS_ACTOR_STORE_DIRECTORY"
	envBlobDisk         = "PDS_BLOBSTORE_DISK_LOCATION"
	envBlobDiskTmp      = "PDS_BLOBSTORE_DISK_TMP_LOCATION"
	envS3Bucket         = "PDS_BLOBSTORE_S3_BUCKET"
	envS3Region         = "PDS_BLOBSTORE_S3_REGION"
	envS3Endpoint       = "PDS_BLOBSTORE_S3_ENDPOINT"
	envS3PathStyle      = "PDS_BLOBSTORE_S3_FORCE_PATH_STYLE"
	envS3AccessKeyID    = "PDS_BLOBSTORE_S3_ACCESS_KEY_ID"
	envS3SecretKey      = "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY"
	envS3UploadTimeout  = "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS"
	envS3RequestTimeout = "PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS"
	envBlobGrace        = "HEARTH_BLOB_GRACE_MS"
	envBlobCollectEvery = "HEARTH_BLOB_COLLECT_INTERVAL_MS"

	envPLCURL           = "PDS_DID_PLC_URL"
	envRecoveryDIDKey   = "PDS_RECOVERY_DID_KEY"
	envHandleDomains    = "PDS_SERVICE_HANDLE_DOMAINS"
	envDIDCacheStaleTTL = "PDS_DID_CACHE_STALE_TTL"
	envDIDCacheMaxTTL   = "PDS_DID_CACHE_MAX_TTL"
	envResolverTimeout  = "PDS_ID_RESOLVER_TIMEOUT"

	envInviteRequired = "PDS_INVITE_REQUIRED"

	envEmailSMTPURL       = "PDS_EMAIL_SMTP_URL"
	envEmailFrom          = "PDS_EMAIL_FROM_ADDRESS"
	envEmailNoConfirmLink = "PDS_EMAIL_DISABLE_CONFIRMATION_LINK"

	envMaxSubBuffer  = "PDS_MAX_SUBSCRIPTION_BUFFER"
	envBackfillLimit = "PDS_REPO_BACKFILL_LIMIT_MS"

	envAppViewURL    = "PDS_BSKY_APP_VIEW_URL"
	envAppViewDID    = "PDS_BSKY_APP_VIEW_DID"
	envAppViewCDN    = "PDS_BSKY_APP_VIEW_CDN_URL_PATTERN"
	envModServiceURL = "PDS_MOD_SERVICE_URL"
	envModServiceDID = "PDS_MOD_SERVICE_DID"
	envReportURL     = "PDS_REPORT_SERVICE_URL"
	envReportDID     = "PDS_REPORT_SERVICE_DID"
	envCrawlers      = "PDS_CRAWLERS"

	envRateLimits    = "PDS_RATE_LIMITS_ENABLED"
	envRateBypassKey = "PDS_RATE_LIMIT_BYPASS_KEY"
	envRateBypassIPs = "PDS_RATE_LIMIT_BYPASS_IPS"
	envDisableSSRF   = "PDS_DISABLE_SSRF_PROTECTION"

	envLogEnabled = "LOG_ENABLED"
	envLogLevel   = "LOG_LEVEL"

	envJWTSecret      = "PDS_JWT_SECRET"
	envAdminPassword  = "PDS_ADMIN_PASSWORD"
	envDPoPSecret     = "PDS_DPOP_SECRET"
	envRotationKeyHex = "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX"
	envRotationKMS    = "PDS_PLC_ROTATION_KEY_KMS_KEY_ID"

	envProxyHeadersTimeout = "PDS_PROXY_HEADERS_TIMEOUT"
	envProxyBodyTimeout    = "PDS_PROXY_BODY_TIMEOUT"
	envProxyMaxResponse    = "PDS_PROXY_MAX_RESPONSE_SIZE"
)

// hearthVars is every variable FromEnv reads; a test keeps it in step with
// the parser. All are official except those named HEARTH_*, Hearth's own.
var hearthVars = []string{
	envProxyHeadersTimeout, envProxyBodyTimeout, envProxyMaxResponse,
	envPort, envListenHost, envHostname, envServiceDID, envServiceName, envHomeURL, envPrivacyPolicyURL,
	envTermsOfServiceURL, envSupportURL, envContactEmail, envBlobUploadLimit,
	envAcceptingImports, envMaxImportSize, envDevMode,
	envDataDirectory, envAccountDB, envSequencerDB, envDIDCacheDB, envActorStoreDir,
	envBlobDisk, envBlobDiskTmp, envS3Bucket, envS3Region, envS3Endpoint, envS3PathStyle,
	envS3AccessKeyID, envS3SecretKey, envS3UploadTimeout, envS3RequestTimeout, envBlobGrace, envBlobCollectEvery,
	envPLCURL, envRecoveryDIDKey, envHandleDomains, envDIDCacheStaleTTL, envDIDCacheMaxTTL,
	envResolverTimeout, envInviteRequired,
	envEmailSMTPURL, envEmailFrom, envEmailNoConfirmLink,
	envMaxSubBuffer, envBackfillLimit,
	envAppViewURL, envAppViewDID, envAppViewCDN, envModServiceURL, envModServiceDID,
	envReportURL, envReportDID, envCrawlers,
	envRateLimits, envRateBypassKey, envRateBypassIPs, envDisableSSRF,
	envLogEnabled, envLogLevel,
	envJWTSecret, envAdminPassword, envDPoPSecret, envRotationKeyHex, envRotationKMS,
}

// officialVars is every variable the official PDS reads (env.ts as of
// @atproto/pds 0.5.29, plus the logger's LOG_* variables), and the names it
// read in earlier versions, which old pds.env files still carry. Those Hearth
// does not use are accepted and reported by FromEnv as ignored.
var officialVars = []string{
	"PDS_ACCEPTING_REPO_IMPORTS", "PDS_ACCOUNT_DB_LOCATION", "PDS_ACTOR_STORE_CACHE_SIZE",
	"PDS_ACTOR_STORE_DIRECTORY", "PDS_ADMIN_PASSWORD", "PDS_BACKGROUND_DARK_URL",
	"PDS_BACKGROUND_LIGHT_URL", "PDS_BLOBSTORE_DISK_LOCATION", "PDS_BLOBSTORE_DISK_TMP_LOCATION",
	"PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "PDS_BLOBSTORE_S3_BUCKET", "PDS_BLOBSTORE_S3_ENDPOINT",
	"PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "PDS_BLOBSTORE_S3_REGION",
	"PDS_BLOBSTORE_S3_REQUEST_TIMEOUT_MS", "PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY",
	"PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS", "PDS_BLOB_UPLOAD_LIMIT",
	"PDS_BSKY_APP_VIEW_CDN_URL_PATTERN", "PDS_BSKY_APP_VIEW_DID", "PDS_BSKY_APP_VIEW_URL",
	"PDS_CONTACT_EMAIL_ADDRESS", "PDS_CRAWLERS", "PDS_DATA_DIRECTORY", "PDS_DEV_MODE",
	"PDS_DID_CACHE_DB_LOCATION", "PDS_DID_CACHE_MAX_TTL", "PDS_DID_CACHE_STALE_TTL",
	"PDS_DID_PLC_URL", "PDS_DISABLE_SSRF_PROTECTION", "PDS_DPOP_SECRET",
	"PDS_EMAIL_DISABLE_CONFIRMATION_LINK", "PDS_EMAIL_FROM_ADDRESS", "PDS_EMAIL_SMTP_URL",
	"PDS_ENABLE_DID_DOC_WITH_SESSION", "PDS_ENTRYWAY_ADMIN_TOKEN", "PDS_ENTRYWAY_DID",
	"PDS_ENTRYWAY_JWT_VERIFY_KEY_K256_PUBLIC_KEY_HEX", "PDS_ENTRYWAY_PLC_ROTATION_KEY",
	"PDS_ENTRYWAY_URL", "PDS_ERROR_COLOR", "PDS_FETCH_MAX_RESPONSE_SIZE",
	"PDS_HANDLE_BACKUP_NAMESERVERS", "PDS_HCAPTCHA_SECRET_KEY", "PDS_HCAPTCHA_SITE_KEY",
	"PDS_HCAPTCHA_TOKEN_SALT", "PDS_HOME_URL", "PDS_HOSTNAME", "PDS_ID_RESOLVER_TIMEOUT",
	"PDS_INFO_COLOR", "PDS_INVITE_EPOCH", "PDS_INVITE_INTERVAL", "PDS_INVITE_REQUIRED",
	"PDS_JWT_SECRET", "PDS_LEXICON_AUTHORITY_DID", "PDS_LOGO_URL", "PDS_MAX_REPO_IMPORT_SIZE",
	"PDS_MAX_SUBSCRIPTION_BUFFER", "PDS_MODERATION_EMAIL_ADDRESS",
	"PDS_MODERATION_EMAIL_SMTP_URL", "PDS_MOD_SERVICE_DID", "PDS_MOD_SERVICE_URL",
	"PDS_OAUTH_TRUSTED_CLIENTS", "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX",
	"PDS_PLC_ROTATION_KEY_KMS_KEY_ID", "PDS_PORT", "PDS_PRIMARY_COLOR",
	"PDS_PRIVACY_POLICY_URL", "PDS_PROXY_ALLOW_HTTP2", "PDS_PROXY_BODY_TIMEOUT",
	"PDS_PROXY_HEADERS_TIMEOUT", "PDS_PROXY_MAX_RESPONSE_SIZE", "PDS_PROXY_MAX_RETRIES",
	"PDS_PROXY_PREFER_COMPRESSED", "PDS_RATE_LIMITS_ENABLED", "PDS_RATE_LIMIT_BYPASS_IPS",
	"PDS_RATE_LIMIT_BYPASS_KEY", "PDS_RECOVERY_DID_KEY", "PDS_REDIS_SCRATCH_ADDRESS",
	"PDS_REDIS_SCRATCH_PASSWORD", "PDS_REPORT_SERVICE_DID", "PDS_REPORT_SERVICE_URL",
	"PDS_REPO_BACKFILL_LIMIT_MS", "PDS_SEQUENCER_DB_LOCATION", "PDS_SERVICE_DID",
	"PDS_SERVICE_HANDLE_DOMAINS", "PDS_SERVICE_NAME", "PDS_SQLITE_DISABLE_WAL_AUTO_CHECKPOINT",
	"PDS_SUCCESS_COLOR", "PDS_SUPPORT_URL", "PDS_TERMS_OF_SERVICE_URL", "PDS_VERSION",
	"PDS_WARNING_COLOR",
	"LOG_ENABLED", "LOG_LEVEL", "LOG_DESTINATION", "LOG_SYSTEMS",

	// Read by earlier official versions.
	"PDS_BSKY_APP_VIEW_MODERATION", "PDS_CONTRAST_SATURATION", "PDS_DARK_COLOR",
	"PDS_DB_POSTGRES_MIGRATION_URL", "PDS_DB_POSTGRES_POOL_IDLE_TIMEOUT_MS",
	"PDS_DB_POSTGRES_POOL_MAX_USES", "PDS_DB_POSTGRES_POOL_SIZE", "PDS_DB_POSTGRES_SCHEMA",
	"PDS_DB_POSTGRES_URL", "PDS_DB_SQLITE_LOCATION", "PDS_ERROR_COLOR_CONTRAST",
	"PDS_ERROR_COLOR_HUE", "PDS_INFO_COLOR_CONTRAST", "PDS_INFO_COLOR_HUE", "PDS_LIGHT_COLOR",
	"PDS_MODERATOR_PASSWORD", "PDS_PRIMARY_COLOR_CONTRAST", "PDS_PRIMARY_COLOR_HUE",
	"PDS_REPO_SIGNING_KEY_K256_PRIVATE_KEY_HEX", "PDS_REPO_SIGNING_KEY_KMS_KEY_ID",
	"PDS_SEQUENCER_LEADER_ENABLED", "PDS_SEQUENCER_LEADER_LOCK_ID",
	"PDS_SUCCESS_COLOR_CONTRAST", "PDS_SUCCESS_COLOR_HUE", "PDS_TRIAGE_PASSWORD",
	"PDS_WARNING_COLOR_CONTRAST", "PDS_WARNING_COLOR_HUE",
}

// FromEnv builds the configuration from the environment: [Default], then
// every variable Hearth reads, then [Config.WithDerivedDefaults], then
// [Config.Validate].
//
// getenv looks a variable up (os.Getenv); environ lists the environment
// (os.Environ) and is used only to find names. As in the official PDS an
// empty value means unset.
//
// The second result lists, sorted, the official variables that are set but
// that Hearth does not use, for the caller to log at debug level. The error
// is nil or an errors.Join of *VarError covering every problem found, each
// naming its variable; on error the Config is not usable.
//
// Parsing is stricter than the official PDS, which silently treats a bad
// number or boolean as unset: here it is an error.
func FromEnv(getenv func(string) string, environ []string) (Config, []string, error) {
	p := &envParser{getenv: getenv}
	c := Default()

	s := &c.Service
	s.Port = p.int(envPort, s.Port)
	s.ListenHost = p.str(envListenHost, "")
	s.Hostname = strings.ToLower(p.str(envHostname, ""))
	s.DID = p.did(envServiceDID)
	s.Name = p.str(envServiceName, "")
	s.HomeURL = p.str(envHomeURL, "")
	s.PrivacyPolicyURL = p.str(envPrivacyPolicyURL, "")
	s.TermsOfServiceURL = p.str(envTermsOfServiceURL, "")
	s.SupportURL = p.str(envSupportURL, "")
	s.ContactEmailAddress = p.str(envContactEmail, "")
	s.BlobUploadLimit = p.int64(envBlobUploadLimit, s.BlobUploadLimit)
	s.AcceptingImports = p.bool(envAcceptingImports, s.AcceptingImports)
	s.MaxImportSize = p.int64(envMaxImportSize, s.MaxImportSize)
	s.DevMode = p.bool(envDevMode, s.DevMode)

	st := &c.Storage
	st.DataDirectory = p.str(envDataDirectory, "")
	st.AccountDBLocation = p.str(envAccountDB, "")
	st.SequencerDBLocation = p.str(envSequencerDB, "")
	st.DIDCacheDBLocation = p.str(envDIDCacheDB, "")
	st.ActorStoreDirectory = p.str(envActorStoreDir, "")

	b := &c.Blobstore
	b.DiskLocation = p.str(envBlobDisk, "")
	b.DiskTmpLocation = p.str(envBlobDiskTmp, "")
	b.S3.Bucket = p.str(envS3Bucket, "")
	b.S3.Region = p.str(envS3Region, "")
	b.S3.Endpoint = p.str(envS3Endpoint, "")
	b.S3.ForcePathStyle = p.bool(envS3PathStyle, false)
	b.S3.AccessKeyID = p.str(envS3AccessKeyID, "")
	b.S3.SecretAccessKey = Secret(p.str(envS3SecretKey, ""))
	b.S3.UploadTimeout = p.ms(envS3UploadTimeout, b.S3.UploadTimeout)
	b.S3.RequestTimeout = p.ms(envS3RequestTimeout, 0)
	b.CollectGrace = p.ms(envBlobGrace, b.CollectGrace)
	b.CollectInterval = p.ms(envBlobCollectEvery, b.CollectInterval)

	id := &c.Identity
	id.PLCURL = p.str(envPLCURL, id.PLCURL)
	id.RecoveryDIDKey = p.didKey(envRecoveryDIDKey)
	id.ServiceHandleDomains = p.list(envHandleDomains, strings.ToLower)
	id.CacheStaleTTL = p.ms(envDIDCacheStaleTTL, id.CacheStaleTTL)
	id.CacheMaxTTL = p.ms(envDIDCacheMaxTTL, id.CacheMaxTTL)
	id.ResolverTimeout = p.ms(envResolverTimeout, id.ResolverTimeout)

	c.Invites.Required = p.bool(envInviteRequired, c.Invites.Required)

	c.Email.SMTPURL = Secret(p.str(envEmailSMTPURL, ""))
	c.Email.FromAddress = p.str(envEmailFrom, "")
	c.Email.DisableConfirmationLink = p.bool(envEmailNoConfirmLink, false)

	c.Subscription.MaxBuffer = p.int(envMaxSubBuffer, c.Subscription.MaxBuffer)
	c.Subscription.RepoBackfillLimit = p.ms(envBackfillLimit, c.Subscription.RepoBackfillLimit)

	c.AppView.URL = p.str(envAppViewURL, "")
	c.AppView.DID = p.did(envAppViewDID)
	c.AppView.CDNURLPattern = p.str(envAppViewCDN, "")
	c.ModService.URL = p.str(envModServiceURL, "")
	c.ModService.DID = p.did(envModServiceDID)
	c.ReportService.URL = p.str(envReportURL, "")
	c.ReportService.DID = p.did(envReportDID)
	c.Crawlers = p.list(envCrawlers, nil)

	c.RateLimits.Enabled = p.bool(envRateLimits, false)
	c.RateLimits.BypassKey = Secret(p.str(envRateBypassKey, ""))
	c.RateLimits.BypassIPs = p.ips(envRateBypassIPs)
	c.Outbound.DisableSSRFProtection = p.bool(envDisableSSRF, s.DevMode)
	c.Outbound.ProxyHeadersTimeout = p.ms(envProxyHeadersTimeout, c.Outbound.ProxyHeadersTimeout)
	c.Outbound.ProxyBodyTimeout = p.ms(envProxyBodyTimeout, c.Outbound.ProxyBodyTimeout)
	c.Outbound.ProxyMaxResponseSize = p.int64(envProxyMaxResponse, c.Outbound.ProxyMaxResponseSize)

	c.Log.Enabled = p.logEnabled(envLogEnabled, c.Log.Enabled)
	level, silent := p.logLevel(envLogLevel)
	c.Log.Level = level
	if silent {
		c.Log.Enabled = false
	}

	sec := &c.Secrets
	sec.JWTSecret = Secret(p.str(envJWTSecret, ""))
	sec.AdminPassword = Secret(p.str(envAdminPassword, ""))
	sec.DPoPSecret = Secret(p.str(envDPoPSecret, ""))
	sec.PLCRotationKey = p.rotationKey(envRotationKeyHex)
	sec.PLCRotationKMSKeyID = p.str(envRotationKMS, "")

	c = c.WithDerivedDefaults()

	// A variable that did not parse is reported once, by the parser, not
	// again as "required" or "invalid" by Validate.
	errs := p.errs
	for _, e := range c.problems() {
		if !p.failed(e.Var) {
			errs = append(errs, e)
		}
	}
	ignored := IgnoredNames(environ)
	if len(errs) > 0 {
		joined := make([]error, len(errs))
		for i, e := range errs {
			joined[i] = e
		}
		return c, ignored, errors.Join(joined...)
	}
	return c, ignored, nil
}

// IgnoredNames returns, sorted, the official PDS variables that are set to a
// non-empty value in environ but that Hearth does not use.
func IgnoredNames(environ []string) []string {
	return setNames(environ, func(name string) bool {
		return slices.Contains(officialVars, name) && !slices.Contains(hearthVars, name)
	})
}

// UnknownNames returns, sorted, the PDS_* and HEARTH_* variables set in
// environ that neither Hearth nor any version of the official PDS reads:
// most likely typos, worth a warning.
func UnknownNames(environ []string) []string {
	return setNames(environ, func(name string) bool {
		return hasOurPrefix(name) && !isKnown(name)
	})
}

func setNames(environ []string, keep func(string) bool) []string {
	var names []string
	for _, kv := range environ {
		name, value, _ := strings.Cut(kv, "=")
		if value != "" && keep(name) && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// envParser reads variables and collects one *VarError per bad variable.
type envParser struct {
	getenv func(string) string
	errs   []*VarError
}

func (p *envParser) fail(name, problem string, err error) {
	p.errs = append(p.errs, &VarError{Var: name, Problem: problem, Err: err})
}

func (p *envParser) failed(name string) bool {
	return slices.ContainsFunc(p.errs, func(e *VarError) bool { return e.Var == name })
}

func (p *envParser) str(name, def string) string {
	if v := p.getenv(name); v != "" {
		return v
	}
	return def
}

func (p *envParser) int(name string, def int) int {
	return int(p.integer(name, int64(def), strconv.IntSize))
}

func (p *envParser) int64(name string, def int64) int64 { return p.integer(name, def, 64) }

func (p *envParser) integer(name string, def int64, bits int) int64 {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, bits)
	if err != nil {
		p.fail(name, "is "+strconv.Quote(v)+", not a whole number", nil)
		return def
	}
	return n
}

// ms reads a whole number of milliseconds, as all the official durations are.
func (p *envParser) ms(name string, def time.Duration) time.Duration {
	v := p.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > int64(time.Duration(1<<63-1)/time.Millisecond) {
		p.fail(name, "is "+strconv.Quote(v)+", not a number of milliseconds", nil)
		return def
	}
	return time.Duration(n) * time.Millisecond
}

// bool accepts the official spellings, true/1 and false/0, in any case.
func (p *envParser) bool(name string, def bool) bool {
	v := p.getenv(name)
	switch strings.ToLower(v) {
	case "":
		return def
	case "true", "1":
		return true
	case "false", "0":
		return false
	}
	p.fail(name, "is "+strconv.Quote(v)+": want true or false (or 1 or 0)", nil)
	return def
}

// logEnabled follows the official logger, which also accepts "t".
func (p *envParser) logEnabled(name string, def bool) bool {
	switch v := strings.ToLower(p.getenv(name)); v {
	case "t":
		return true
	case "f":
		return false
	}
	return p.bool(name, def)
}

// logLevel maps the official logger's (pino) level names onto slog levels.
func (p *envParser) logLevel(name string) (level slog.Level, silent bool) {
	v := p.getenv(name)
	switch strings.ToLower(v) {
	case "", "info":
		return slog.LevelInfo, false
	case "trace":
		return slog.LevelDebug - 4, false
	case "debug":
		return slog.LevelDebug, false
	case "warn", "warning":
		return slog.LevelWarn, false
	case "error":
		return slog.LevelError, false
	case "fatal":
		return slog.LevelError + 4, false
	case "silent":
		return slog.LevelInfo, true
	}
	p.fail(name, "is "+strconv.Quote(v)+": want trace, debug, info, warn, error, fatal or silent", nil)
	return slog.LevelInfo, false
}

// list splits a comma-separated list, trimming spaces and dropping empty
// items so that a trailing comma is harmless.
func (p *envParser) list(name string, norm func(string) string) []string {
	v := p.getenv(name)
	if v == "" {
		return nil
	}
	var out []string
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if norm != nil {
			item = norm(item)
		}
		out = append(out, item)
	}
	return out
}

func (p *envParser) did(name string) syntax.DID {
	v := p.getenv(name)
	if v == "" {
		return ""
	}
	d, err := syntax.ParseDID(v)
	if err != nil {
		p.fail(name, "is "+strconv.Quote(v)+", not a DID", err)
		return ""
	}
	return d
}

func (p *envParser) didKey(name string) atcrypto.PublicKey {
	v := p.getenv(name)
	if v == "" {
		return nil
	}
	k, err := atcrypto.ParsePublicDIDKey(v)
	if err != nil {
		p.fail(name, "is "+strconv.Quote(v)+", not a K-256 or P-256 did:key (e.g. did:key:zQ3sh...)", err)
		return nil
	}
	return k
}

func (p *envParser) ips(name string) []netip.Addr {
	var out []netip.Addr
	for _, item := range p.list(name, nil) {
		addr, _, _ := strings.Cut(item, "/")
		ip, err := netip.ParseAddr(addr)
		if err != nil {
			p.fail(name, "lists "+strconv.Quote(item)+", not an IP address", nil)
			continue
		}
		out = append(out, ip)
	}
	return out
}

// rotationKey parses the K-256 rotation key. The value is a secret: errors
// describe its shape, never its content.
func (p *envParser) rotationKey(name string) *atcrypto.PrivateKeyK256 {
	v := p.getenv(name)
	if v == "" {
		return nil
	}
	raw, err := hex.DecodeString(v)
	if err != nil || len(raw) != 32 {
		p.fail(name, "is not 32 bytes in hex (want 64 hex characters, got "+strconv.Itoa(len(v))+" characters): "+hintRotationKey, nil)
		return nil
	}
	k, err := atcrypto.ParsePrivateBytesK256(raw)
	if err != nil {
		// A zero or out-of-range scalar. The library error is dropped: it is about the secret.
		p.fail(name, "is not a valid K-256 private key: "+hintRotationKey, nil)
		return nil
	}
	return k
}
