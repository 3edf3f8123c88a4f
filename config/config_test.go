package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

// A K-256 key from the atproto interop vectors, and its public did:key.
const (
	testKeyHex    = "9085d2bef69286a6cbb51623c8fa258629945cd55ca705cc4e66700396894e0c"
	testKeyDIDKey = "did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme"
	testRecovery  = "did:key:zDnaembgSGUhZULN2Caob4HLJPaxBh92N7rtH21TErzqf8HQo"
)

// minimal is the smallest environment that starts.
func minimal() map[string]string {
	return map[string]string{
		"PDS_HOSTNAME":       "pds.example.com",
		"PDS_JWT_SECRET":     "jwt-secret-value",
		"PDS_ADMIN_PASSWORD": "admin-password-value",
		"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": testKeyHex,
	}
}

func with(env map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func fromMap(env map[string]string) (Config, []string, error) {
	environ := make([]string, 0, len(env))
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	return FromEnv(func(k string) string { return env[k] }, environ)
}

func TestFromEnvDefaults(t *testing.T) {
	c, ignored, err := fromMap(minimal())
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	if len(ignored) != 0 {
		t.Errorf("ignored = %v, want none", ignored)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"port", c.Service.Port, 3000},
		{"did", c.Service.DID.String(), "did:web:pds.example.com"},
		{"name", c.Service.Name, "pds.example.com PDS"},
		{"public url", c.PublicURL(), "https://pds.example.com"},
		{"blob limit", c.Service.BlobUploadLimit, int64(5 << 20)},
		{"accepting imports", c.Service.AcceptingImports, true},
		{"dev mode", c.Service.DevMode, false},
		{"account db", c.Storage.AccountDBLocation, "account.sqlite"},
		{"sequencer db", c.Storage.SequencerDBLocation, "sequencer.sqlite"},
		{"did cache db", c.Storage.DIDCacheDBLocation, "did_cache.sqlite"},
		{"actors", c.Storage.ActorStoreDirectory, "actors"},
		{"blob disk", c.Blobstore.DiskLocation, "blocks"},
		{"blob tmp", c.Blobstore.DiskTmpLocation, "blocks/tempt"},
		{"uses s3", c.Blobstore.UsesS3(), false},
		{"plc", c.Identity.PLCURL, "https://plc.directory"},
		{"handle domains", c.Identity.ServiceHandleDomains, []string{".pds.example.com"}},
		{"recovery", c.Identity.RecoveryDIDKey, nil},
		{"stale ttl", c.Identity.CacheStaleTTL, time.Hour},
		{"max ttl", c.Identity.CacheMaxTTL, 24 * time.Hour},
		{"resolver timeout", c.Identity.ResolverTimeout, 3 * time.Second},
		{"invites", c.Invites.Required, true},
		{"email", c.Email.Enabled(), false},
		{"buffer", c.Subscription.MaxBuffer, 500},
		{"backfill", c.Subscription.RepoBackfillLimit, 24 * time.Hour},
		{"appview", c.AppView.Configured(), false},
		{"report", c.ReportService.Configured(), false},
		{"crawlers", len(c.Crawlers), 0},
		{"rate limits", c.RateLimits.Enabled, false},
		{"ssrf off", c.Outbound.DisableSSRFProtection, false},
		{"log enabled", c.Log.Enabled, true},
		{"log level", c.Log.Level, slog.LevelInfo},
		{"jwt", string(c.Secrets.JWTSecret), "jwt-secret-value"},
		{"admin", string(c.Secrets.AdminPassword), "admin-password-value"},
		{"s3 upload timeout", c.Blobstore.S3.UploadTimeout, 20 * time.Second},
	}
	for _, ch := range checks {
		if fmt.Sprint(ch.got) != fmt.Sprint(ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	pub, err := c.Secrets.PLCRotationKey.PublicKey()
	if err != nil || pub.DIDKey() != testKeyDIDKey {
		t.Errorf("rotation key public did:key = %v (%v), want %s", pub, err, testKeyDIDKey)
	}
}

func TestFromEnvDerived(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want func(Config) []any // pairs of got, want
	}{
		{
			name: "localhost is the official local mode",
			env:  with(minimal(), "PDS_HOSTNAME", "localhost", "PDS_PORT", "2583"),
			want: func(c Config) []any {
				return []any{
					c.PublicURL(), "http://localhost:2583",
					c.Service.DID.String(), "did:web:localhost",
					c.Identity.ServiceHandleDomains, []string{".test"},
				}
			},
		},
		{
			name: "dev mode alone keeps https and turns off the SSRF guard",
			env:  with(minimal(), "PDS_HOSTNAME", "pds.test", "PDS_DEV_MODE", "true"),
			want: func(c Config) []any {
				return []any{
					c.PublicURL(), "https://pds.test",
					c.Outbound.DisableSSRFProtection, true,
					c.Identity.ServiceHandleDomains, []string{".pds.test"},
				}
			},
		},
		{
			name: "dev mode with the SSRF guard explicitly on",
			env:  with(minimal(), "PDS_DEV_MODE", "1", "PDS_DISABLE_SSRF_PROTECTION", "false"),
			want: func(c Config) []any { return []any{c.Outbound.DisableSSRFProtection, false} },
		},
		{
			name: "hostname is lowercased",
			env:  with(minimal(), "PDS_HOSTNAME", "PDS.Example.COM"),
			want: func(c Config) []any {
				return []any{c.Service.Hostname, "pds.example.com", c.Service.DID.String(), "did:web:pds.example.com"}
			},
		},
		{
			name: "data directory roots every location",
			env:  with(minimal(), "PDS_DATA_DIRECTORY", "/pds"),
			want: func(c Config) []any {
				return []any{
					c.Storage.AccountDBLocation, "/pds/account.sqlite",
					c.Storage.SequencerDBLocation, "/pds/sequencer.sqlite",
					c.Storage.DIDCacheDBLocation, "/pds/did_cache.sqlite",
					c.Storage.ActorStoreDirectory, "/pds/actors",
					c.Blobstore.DiskLocation, "/pds/blocks",
					c.Blobstore.DiskTmpLocation, "/pds/blocks/tempt",
				}
			},
		},
		{
			name: "explicit locations win",
			env: with(minimal(), "PDS_DATA_DIRECTORY", "/pds", "PDS_ACCOUNT_DB_LOCATION", "/db/a.sqlite",
				"PDS_BLOBSTORE_DISK_LOCATION", "/blobs", "PDS_BLOBSTORE_DISK_TMP_LOCATION", "/tmp/blobs"),
			want: func(c Config) []any {
				return []any{
					c.Storage.AccountDBLocation, "/db/a.sqlite",
					c.Storage.SequencerDBLocation, "/pds/sequencer.sqlite",
					c.Blobstore.DiskLocation, "/blobs",
					c.Blobstore.DiskTmpLocation, "/tmp/blobs",
				}
			},
		},
		{
			name: "s3 replaces the disk default",
			env: with(minimal(), "PDS_DATA_DIRECTORY", "/pds", "PDS_BLOBSTORE_S3_BUCKET", "blobs",
				"PDS_BLOBSTORE_S3_REGION", "eu-west-1", "PDS_BLOBSTORE_S3_ENDPOINT", "http://127.0.0.1:7070",
				"PDS_BLOBSTORE_S3_FORCE_PATH_STYLE", "true", "PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKID",
				"PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "s3-secret-value", "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS", "1500"),
			want: func(c Config) []any {
				return []any{
					c.Blobstore.UsesS3(), true,
					c.Blobstore.DiskLocation, "",
					c.Blobstore.S3.Region, "eu-west-1",
					c.Blobstore.S3.ForcePathStyle, true,
					c.Blobstore.S3.UploadTimeout, 1500 * time.Millisecond,
					string(c.Blobstore.S3.SecretAccessKey), "s3-secret-value",
				}
			},
		},
		{
			name: "handle domains list is trimmed and lowercased",
			env:  with(minimal(), "PDS_SERVICE_HANDLE_DOMAINS", " .Example.com, .pds.example.com ,"),
			want: func(c Config) []any {
				return []any{c.Identity.ServiceHandleDomains, []string{".example.com", ".pds.example.com"}}
			},
		},
		{
			name: "installer-style values",
			env: with(minimal(),
				"PDS_BLOB_UPLOAD_LIMIT", "104857600",
				"PDS_INVITE_REQUIRED", "false",
				"PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app",
				"PDS_BSKY_APP_VIEW_DID", "did:web:api.bsky.app",
				"PDS_REPORT_SERVICE_URL", "https://mod.bsky.app",
				"PDS_REPORT_SERVICE_DID", "did:plc:ar7c4by46qjdydhdevvrndac",
				"PDS_CRAWLERS", "https://bsky.network,https://relay.example.com",
				"PDS_RATE_LIMITS_ENABLED", "true",
				"PDS_RATE_LIMIT_BYPASS_IPS", "10.0.0.1, 192.168.0.0/16",
				"PDS_RECOVERY_DID_KEY", testRecovery,
				"PDS_REPO_BACKFILL_LIMIT_MS", "3600000",
				"PDS_MAX_SUBSCRIPTION_BUFFER", "1000",
				"LOG_ENABLED", "TRUE",
				"LOG_LEVEL", "debug",
			),
			want: func(c Config) []any {
				return []any{
					c.Service.BlobUploadLimit, int64(104857600),
					c.Invites.Required, false,
					c.AppView.DID.String(), "did:web:api.bsky.app",
					c.ReportService.URL, "https://mod.bsky.app",
					c.Crawlers, []string{"https://bsky.network", "https://relay.example.com"},
					c.RateLimits.Enabled, true,
					c.RateLimits.BypassIPs, []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("192.168.0.0")},
					c.Identity.RecoveryDIDKey.DIDKey(), testRecovery,
					c.Subscription.RepoBackfillLimit, time.Hour,
					c.Subscription.MaxBuffer, 1000,
					c.Log.Enabled, true,
					c.Log.Level, slog.LevelDebug,
				}
			},
		},
		{
			name: "report service defaults to the mod service",
			env:  with(minimal(), "PDS_MOD_SERVICE_URL", "https://mod.example.com", "PDS_MOD_SERVICE_DID", "did:web:mod.example.com"),
			want: func(c Config) []any {
				return []any{c.ReportService.URL, "https://mod.example.com", c.ReportService.DID.String(), "did:web:mod.example.com"}
			},
		},
		{
			name: "KMS replaces the rotation key",
			env:  with(minimal(), "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "", "PDS_PLC_ROTATION_KEY_KMS_KEY_ID", "arn:aws:kms:key/1"),
			want: func(c Config) []any {
				return []any{c.Secrets.PLCRotationKey == nil, true, c.Secrets.PLCRotationKMSKeyID, "arn:aws:kms:key/1"}
			},
		},
		{
			name: "LOG_LEVEL silent turns logging off",
			env:  with(minimal(), "LOG_LEVEL", "silent"),
			want: func(c Config) []any { return []any{c.Log.Enabled, false} },
		},
		{
			name: "LOG_ENABLED f",
			env:  with(minimal(), "LOG_ENABLED", "f", "LOG_LEVEL", "TRACE"),
			want: func(c Config) []any { return []any{c.Log.Enabled, false, c.Log.Level, slog.LevelDebug - 4} },
		},
		{
			name: "uppercase hex rotation key",
			env:  with(minimal(), "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", strings.ToUpper(testKeyHex)),
			want: func(c Config) []any { return []any{c.Secrets.PLCRotationKey != nil, true} },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := fromMap(tt.env)
			if err != nil {
				t.Fatalf("FromEnv: %v", err)
			}
			pairs := tt.want(c)
			for i := 0; i+1 < len(pairs); i += 2 {
				if got, want := fmt.Sprint(pairs[i]), fmt.Sprint(pairs[i+1]); got != want {
					t.Errorf("value %d = %s, want %s", i/2, got, want)
				}
			}
		})
	}
}

func TestFromEnvErrors(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantVars []string // every variable the error must name, each once
		wantText []string // substrings the message must contain
	}{
		{
			name:     "nothing set",
			env:      map[string]string{},
			wantVars: []string{"PDS_HOSTNAME", "PDS_JWT_SECRET", "PDS_ADMIN_PASSWORD", "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX"},
			wantText: []string{"PDS_JWT_SECRET is required: make one with `hearth keygen` or `openssl rand --hex 16`", "hearth keygen"},
		},
		{name: "port not a number", env: with(minimal(), "PDS_PORT", "30OO"), wantVars: []string{"PDS_PORT"}, wantText: []string{`"30OO"`}},
		{name: "port out of range", env: with(minimal(), "PDS_PORT", "70000"), wantVars: []string{"PDS_PORT"}},
		{name: "negative port", env: with(minimal(), "PDS_PORT", "-1"), wantVars: []string{"PDS_PORT"}},
		{name: "hostname with scheme", env: with(minimal(), "PDS_HOSTNAME", "https://pds.example.com"), wantVars: []string{"PDS_HOSTNAME"}, wantText: []string{"scheme"}},
		{name: "hostname with port", env: with(minimal(), "PDS_HOSTNAME", "pds.example.com:3000"), wantVars: []string{"PDS_HOSTNAME"}},
		{name: "hostname with path", env: with(minimal(), "PDS_HOSTNAME", "pds.example.com/x"), wantVars: []string{"PDS_HOSTNAME"}},
		{name: "hostname is an IP", env: with(minimal(), "PDS_HOSTNAME", "203.0.113.7"), wantVars: []string{"PDS_HOSTNAME"}, wantText: []string{"IP address"}},
		{name: "hostname bad label", env: with(minimal(), "PDS_HOSTNAME", "-pds.example.com"), wantVars: []string{"PDS_HOSTNAME"}},
		{name: "hostname trailing dot", env: with(minimal(), "PDS_HOSTNAME", "pds.example.com."), wantVars: []string{"PDS_HOSTNAME"}},
		{name: "bad bool", env: with(minimal(), "PDS_INVITE_REQUIRED", "yes"), wantVars: []string{"PDS_INVITE_REQUIRED"}, wantText: []string{"true or false"}},
		{name: "bad dev mode", env: with(minimal(), "PDS_DEV_MODE", "on"), wantVars: []string{"PDS_DEV_MODE"}},
		{name: "bad LOG_ENABLED", env: with(minimal(), "LOG_ENABLED", "yes"), wantVars: []string{"LOG_ENABLED"}},
		{name: "bad LOG_LEVEL", env: with(minimal(), "LOG_LEVEL", "verbose"), wantVars: []string{"LOG_LEVEL"}},
		{name: "rotation key not hex", env: with(minimal(), "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", "zz"+testKeyHex[2:]), wantVars: []string{"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX"}, wantText: []string{"64 hex characters"}},
		{name: "rotation key short", env: with(minimal(), "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", testKeyHex[:62]), wantVars: []string{"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX"}},
		{name: "rotation key zero", env: with(minimal(), "PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX", strings.Repeat("0", 64)), wantVars: []string{"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX"}},
		{name: "rotation key and KMS", env: with(minimal(), "PDS_PLC_ROTATION_KEY_KMS_KEY_ID", "arn:aws:kms:key/1"), wantVars: []string{"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX"}, wantText: []string{"PDS_PLC_ROTATION_KEY_KMS_KEY_ID"}},
		{name: "bad recovery key", env: with(minimal(), "PDS_RECOVERY_DID_KEY", "did:plc:abc"), wantVars: []string{"PDS_RECOVERY_DID_KEY"}},
		{name: "bad recovery multibase", env: with(minimal(), "PDS_RECOVERY_DID_KEY", "did:key:zNotAKey"), wantVars: []string{"PDS_RECOVERY_DID_KEY"}},
		{name: "bad service DID", env: with(minimal(), "PDS_SERVICE_DID", "web:pds.example.com"), wantVars: []string{"PDS_SERVICE_DID"}},
		{name: "handle domain without dot", env: with(minimal(), "PDS_SERVICE_HANDLE_DOMAINS", "example.com"), wantVars: []string{"PDS_SERVICE_HANDLE_DOMAINS"}},
		{name: "handle domain dot only", env: with(minimal(), "PDS_SERVICE_HANDLE_DOMAINS", "."), wantVars: []string{"PDS_SERVICE_HANDLE_DOMAINS"}},
		{name: "handle domain disallowed TLD", env: with(minimal(), "PDS_SERVICE_HANDLE_DOMAINS", ".pds.local"), wantVars: []string{"PDS_SERVICE_HANDLE_DOMAINS"}},
		{name: "handle domain numeric TLD", env: with(minimal(), "PDS_SERVICE_HANDLE_DOMAINS", ".pds.123"), wantVars: []string{"PDS_SERVICE_HANDLE_DOMAINS"}},
		{name: "disk and s3", env: with(minimal(), "PDS_BLOBSTORE_DISK_LOCATION", "/b", "PDS_BLOBSTORE_S3_BUCKET", "b"), wantVars: []string{"PDS_BLOBSTORE_DISK_LOCATION"}, wantText: []string{"PDS_BLOBSTORE_S3_BUCKET"}},
		{name: "s3 half credentials", env: with(minimal(), "PDS_BLOBSTORE_S3_BUCKET", "b", "PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKID"), wantVars: []string{"PDS_BLOBSTORE_S3_ACCESS_KEY_ID"}, wantText: []string{"PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY"}},
		{name: "s3 zero upload timeout", env: with(minimal(), "PDS_BLOBSTORE_S3_BUCKET", "b", "PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS", "0"), wantVars: []string{"PDS_BLOBSTORE_S3_UPLOAD_TIMEOUT_MS"}},
		{name: "bad ms", env: with(minimal(), "PDS_REPO_BACKFILL_LIMIT_MS", "1d"), wantVars: []string{"PDS_REPO_BACKFILL_LIMIT_MS"}},
		{name: "zero blob limit", env: with(minimal(), "PDS_BLOB_UPLOAD_LIMIT", "0"), wantVars: []string{"PDS_BLOB_UPLOAD_LIMIT"}},
		{name: "bad PLC URL", env: with(minimal(), "PDS_DID_PLC_URL", "plc.directory"), wantVars: []string{"PDS_DID_PLC_URL"}},
		{name: "smtp without from", env: with(minimal(), "PDS_EMAIL_SMTP_URL", "smtps://u:p@smtp.example.com"), wantVars: []string{"PDS_EMAIL_FROM_ADDRESS"}},
		{name: "from without smtp", env: with(minimal(), "PDS_EMAIL_FROM_ADDRESS", "pds@example.com"), wantVars: []string{"PDS_EMAIL_SMTP_URL"}},
		{name: "smtp bad scheme", env: with(minimal(), "PDS_EMAIL_SMTP_URL", "https://u:p@smtp.example.com", "PDS_EMAIL_FROM_ADDRESS", "pds@example.com"), wantVars: []string{"PDS_EMAIL_SMTP_URL"}},
		{name: "appview url without did", env: with(minimal(), "PDS_BSKY_APP_VIEW_URL", "https://api.bsky.app"), wantVars: []string{"PDS_BSKY_APP_VIEW_DID"}},
		{name: "report did without url", env: with(minimal(), "PDS_REPORT_SERVICE_DID", "did:web:mod.example.com"), wantVars: []string{"PDS_REPORT_SERVICE_URL"}},
		{name: "bad crawler", env: with(minimal(), "PDS_CRAWLERS", "bsky.network"), wantVars: []string{"PDS_CRAWLERS"}},
		{name: "bad bypass ip", env: with(minimal(), "PDS_RATE_LIMIT_BYPASS_IPS", "10.0.0.300"), wantVars: []string{"PDS_RATE_LIMIT_BYPASS_IPS"}},
		{name: "bad contact email", env: with(minimal(), "PDS_CONTACT_EMAIL_ADDRESS", "nobody"), wantVars: []string{"PDS_CONTACT_EMAIL_ADDRESS"}},
		{
			name:     "several problems at once",
			env:      with(minimal(), "PDS_PORT", "x", "PDS_JWT_SECRET", "", "PDS_DEV_MODE", "maybe"),
			wantVars: []string{"PDS_PORT", "PDS_JWT_SECRET", "PDS_DEV_MODE"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := fromMap(tt.env)
			if err == nil {
				t.Fatal("FromEnv succeeded, want an error")
			}
			var vars []string
			for _, e := range unjoin(err) {
				var ve *VarError
				if !errors.As(e, &ve) {
					t.Errorf("error %q is not a *VarError", e)
					continue
				}
				if !strings.HasPrefix(ve.Error(), ve.Var+" ") {
					t.Errorf("message %q does not start with its variable", ve.Error())
				}
				vars = append(vars, ve.Var)
			}
			slices.Sort(vars)
			want := slices.Clone(tt.wantVars)
			slices.Sort(want)
			if !slices.Equal(vars, want) {
				t.Errorf("error names %v, want %v\nerror: %v", vars, want, err)
			}
			for _, s := range tt.wantText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not contain %q", err, s)
				}
			}
			for _, secret := range []string{"jwt-secret-value", "admin-password-value", testKeyHex, testKeyHex[2:40], ":p@"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q reveals a secret", err)
				}
			}
		})
	}
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func TestIgnoredAndUnknownNames(t *testing.T) {
	env := with(minimal(),
		"PDS_REDIS_SCRATCH_ADDRESS", "127.0.0.1:6379",
		"PDS_VERSION", "0.4.0",
		"LOG_DESTINATION", "/var/log/pds.log",
		"PDS_REPO_SIGNING_KEY_K256_PRIVATE_KEY_HEX", "00", // retired official name
		"PDS_ENTRYWAY_URL", "", // empty means unset
		"PDS_HOSTNAM", "typo.example.com",
		"HOME", "/root",
	)
	_, ignored, err := fromMap(env)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	want := []string{"LOG_DESTINATION", "PDS_REDIS_SCRATCH_ADDRESS", "PDS_REPO_SIGNING_KEY_K256_PRIVATE_KEY_HEX", "PDS_VERSION"}
	if !slices.Equal(ignored, want) {
		t.Errorf("ignored = %v, want %v", ignored, want)
	}
	environ := []string{"PDS_HOSTNAM=typo.example.com", "PDS_PORT=3000", "HOME=/root", "PDS_NEW="}
	if got, want := UnknownNames(environ), []string{"PDS_HOSTNAM"}; !slices.Equal(got, want) {
		t.Errorf("UnknownNames = %v, want %v", got, want)
	}
}

func TestUnknownNames(t *testing.T) {
	for _, tc := range []struct {
		name    string
		environ []string
		want    []string
	}{
		{"none", []string{"HOME=/root", "PDS_PORT=3000", "LOG_LEVEL=debug"}, nil},
		{"PDS typo", []string{"PDS_HOSTNAM=x"}, []string{"PDS_HOSTNAM"}},
		{"HEARTH typo", []string{"HEARTH_LISTEN_HOTS=127.0.0.1"}, []string{"HEARTH_LISTEN_HOTS"}},
		{"Hearth's own", []string{"HEARTH_LISTEN_HOST=127.0.0.1", "HEARTH_BLOB_GRACE_MS=1", "HEARTH_BLOB_COLLECT_INTERVAL_MS=1"}, nil},
		{"dev command's own", []string{"HEARTH_DEV_PLC_PORT=2582"}, nil},
		{"official, not read by Hearth", []string{"PDS_VERSION=0.4.0", "PDS_REDIS_SCRATCH_ADDRESS=x"}, nil},
		{"not yet", []string{"PDS_RATE_LIMITS_ENABLED=true"}, nil},
		{"empty is unset", []string{"HEARTH_NEW=", "PDS_NEW="}, nil},
		{"sorted, once", []string{"PDS_B=1", "HEARTH_A=1", "PDS_B=2"}, []string{"HEARTH_A", "PDS_B"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := UnknownNames(tc.environ); !slices.Equal(got, tc.want) {
				t.Errorf("UnknownNames(%q) = %v, want %v", tc.environ, got, tc.want)
			}
		})
	}
}

func TestNotYetSet(t *testing.T) {
	environ := []string{
		"PDS_RATE_LIMITS_ENABLED=true",
		"PDS_EMAIL_SMTP_URL=smtps://u:p@smtp.example.com",
		"PDS_EMAIL_FROM_ADDRESS=pds@example.com",
		"PDS_DPOP_SECRET=",       // empty is unset
		"PDS_HOSTNAME=localhost", // used
		"PDS_DEV_MODE=true",      // used: the default of PDS_DISABLE_SSRF_PROTECTION
		"PDS_ACCOUNT_DB_LOCATION=/pds/account.sqlite",
	}
	got := NotYetSet(environ)
	var names []string
	for _, v := range got {
		names = append(names, v.Name)
		if v.Reason == "" {
			t.Errorf("%s has no reason", v.Name)
		}
	}
	want := []string{"PDS_ACCOUNT_DB_LOCATION", "PDS_EMAIL_FROM_ADDRESS", "PDS_EMAIL_SMTP_URL", "PDS_RATE_LIMITS_ENABLED"}
	if !slices.Equal(names, want) {
		t.Errorf("NotYetSet = %v, want %v", names, want)
	}
	if got[len(got)-1].Reason != reasonRateLimits {
		t.Errorf("PDS_RATE_LIMITS_ENABLED: reason %q, want %q", got[len(got)-1].Reason, reasonRateLimits)
	}
	// The variables with no effect yet are still read and checked, so a
	// malformed value stops start-up as for any other.
	if _, _, err := fromMap(with(minimal(), "PDS_RATE_LIMITS_ENABLED", "yes")); err == nil {
		t.Error("FromEnv accepted PDS_RATE_LIMITS_ENABLED=yes")
	}
}

// TestNotYetAreRead: every variable listed as having no effect yet is one
// FromEnv reads (so it is checked, and not reported as ignored or unknown),
// and is listed once.
func TestNotYetAreRead(t *testing.T) {
	seen := map[string]bool{}
	for _, v := range notYet {
		if !slices.Contains(hearthVars, v.Name) {
			t.Errorf("%s is listed as not yet in effect but FromEnv does not read it", v.Name)
		}
		if seen[v.Name] {
			t.Errorf("%s is listed twice", v.Name)
		}
		seen[v.Name] = true
	}
}

// TestHearthVarsMatchParser keeps hearthVars (which decides what is reported
// as ignored) equal to what FromEnv actually reads.
func TestHearthVarsMatchParser(t *testing.T) {
	var read []string
	getenv := func(k string) string {
		if !slices.Contains(read, k) {
			read = append(read, k)
		}
		return minimal()[k]
	}
	if _, _, err := FromEnv(getenv, nil); err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	got := slices.Sorted(slices.Values(read))
	want := slices.Sorted(slices.Values(hearthVars))
	if !slices.Equal(got, want) {
		t.Errorf("FromEnv reads %v\nhearthVars lists %v", got, want)
	}
	for _, v := range hearthVars {
		if !slices.Contains(officialVars, v) && !strings.HasPrefix(v, "HEARTH_") {
			t.Errorf("%s is read by Hearth but is not an official variable; document it as Hearth's own", v)
		}
	}
}

// TestNoSecretsPrinted prints a configuration every way a log line or a
// debug session might, and looks for every secret in the output.
func TestNoSecretsPrinted(t *testing.T) {
	env := with(minimal(),
		"PDS_BLOBSTORE_S3_BUCKET", "b",
		"PDS_BLOBSTORE_S3_ACCESS_KEY_ID", "AKID",
		"PDS_BLOBSTORE_S3_SECRET_ACCESS_KEY", "s3-secret-value",
		"PDS_EMAIL_SMTP_URL", "smtps://mailer:smtp-password-value@smtp.example.com:465",
		"PDS_EMAIL_FROM_ADDRESS", "pds@example.com",
		"PDS_RATE_LIMIT_BYPASS_KEY", "bypass-key-value",
		"PDS_DPOP_SECRET", "dpop-secret-value",
	)
	c, _, err := fromMap(env)
	if err != nil {
		t.Fatalf("FromEnv: %v", err)
	}
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	logger.Info("config", "config", c)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c, "secrets", c.Secrets, "s3", c.Blobstore.S3)
	j, _ := json.Marshal(c)
	buf.Write(j)
	fmt.Fprintf(&buf, "%v %+v %#v %s %q %x", c, c, c, c, c, c)
	fmt.Fprintf(&buf, "%v %+v %#v", c.Secrets, c.Secrets, c.Email)
	fmt.Fprintf(&buf, "%v %+v %#v %s %x", c.Secrets.JWTSecret, c.Blobstore.S3, c.Blobstore, c.Secrets.AdminPassword, c.RateLimits.BypassKey)
	buf.WriteString(c.String())
	out := buf.String()

	for _, secret := range []string{"jwt-secret-value", "admin-password-value", testKeyHex, "s3-secret-value",
		"smtp-password-value", "bypass-key-value", "dpop-secret-value"} {
		if strings.Contains(out, secret) {
			t.Errorf("output reveals %q", secret)
		}
	}
	for _, visible := range []string{"pds.example.com", testKeyDIDKey, "AKID", "smtps://mailer:xxxxx@smtp.example.com:465", redacted} {
		if !strings.Contains(out, visible) {
			t.Errorf("output lacks %q, which is not secret and helps operators", visible)
		}
	}
}

func TestSecretPrinting(t *testing.T) {
	tests := []struct {
		s    Secret
		want string
	}{
		{"", ""},
		{"hunter2", redacted},
	}
	for _, tt := range tests {
		for _, got := range []string{
			tt.s.String(),
			fmt.Sprintf("%v", tt.s),
			fmt.Sprintf("%#v", tt.s),
			fmt.Sprintf("%s", tt.s),
			tt.s.LogValue().String(),
		} {
			if got != tt.want {
				t.Errorf("Secret(%q) printed %q, want %q", string(tt.s), got, tt.want)
			}
		}
	}
}

// TestValidateBuiltInCode covers configurations made without the
// environment, as `hearth dev` and the tests make them.
func TestValidateBuiltInCode(t *testing.T) {
	c := Default()
	c.Service.Hostname = "localhost"
	c.Service.Port = 0
	c.Secrets.JWTSecret = "j"
	c.Secrets.AdminPassword = "a"
	c.Secrets.PLCRotationKMSKeyID = "kms"
	c.Storage.DataDirectory = "/tmp/hearth"
	if err := c.Validate(); err == nil {
		t.Error("Validate accepted a config without derived defaults (no service DID, handle domains or blob location)")
	}
	c = c.WithDerivedDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if got, want := c.Blobstore.DiskLocation, "/tmp/hearth/blocks"; got != want {
		t.Errorf("blob location = %q, want %q", got, want)
	}
	c.Service.Port = 4000
	if got, want := c.PublicURL(), "http://localhost:4000"; got != want {
		t.Errorf("PublicURL = %q, want %q", got, want)
	}
	// Derived defaults never overwrite what is set.
	c.Identity.ServiceHandleDomains = []string{".dev.test"}
	if got := c.WithDerivedDefaults().Identity.ServiceHandleDomains; !slices.Equal(got, []string{".dev.test"}) {
		t.Errorf("WithDerivedDefaults replaced handle domains: %v", got)
	}
}
