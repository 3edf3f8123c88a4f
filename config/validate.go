package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"
)

// VarError is one missing or malformed variable. Start-up errors are an
// errors.Join of these, so an operator sees every problem at once, each
// naming its variable and, where it helps, how to make a value.
type VarError struct {
	Var     string // the environment variable, e.g. "PDS_JWT_SECRET"
	Problem string // what is wrong, phrased to follow the name: "is required: ..."
	Err     error  // the underlying parse error, if any; never one that echoes a secret
}

func (e *VarError) Error() string {
	if e.Err != nil {
		return e.Var + " " + e.Problem + ": " + e.Err.Error()
	}
	return e.Var + " " + e.Problem
}

func (e *VarError) Unwrap() error { return e.Err }

// Hints for values an operator has to make up. They name the commands the
// official installer uses, so both work.
const (
	hintSecret      = "make one with `hearth keygen` or `openssl rand --hex 16`"
	hintRotationKey = "make one with `hearth keygen` or `openssl ecparam --name secp256k1 --genkey --noout --outform DER | tail --bytes=+8 | head --bytes=32 | xxd --plain --cols 32`"
	hintKeySecret   = "make one with `openssl rand --hex 32`"
	hintHostname    = "set it to this server's public DNS name without scheme, port or path (e.g. pds.example.com), or to localhost for local development"
)

// Validate checks the configuration as a whole and returns nil or an
// errors.Join of *VarError, one per problem. Call it on a configuration
// built in code; [FromEnv] already calls it.
func (c Config) Validate() error {
	errs := c.problems()
	if len(errs) == 0 {
		return nil
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return errors.Join(joined...)
}

func (c Config) problems() []*VarError {
	var errs []*VarError
	add := func(name, format string, args ...any) {
		errs = append(errs, &VarError{Var: name, Problem: fmt.Sprintf(format, args...)})
	}

	// Service.
	s := c.Service
	if s.Port < 0 || s.Port > 65535 {
		add(envPort, "is %d: want a TCP port number (1-65535; 0 picks a free port)", s.Port)
	}
	// Values derived from a bad hostname are bad too; report the hostname only.
	derivedFromBadHost := func(v string) bool { return false }
	if p := hostnameProblem(s.Hostname); p != "" {
		add(envHostname, "%s", p)
		derivedFromBadHost = func(v string) bool {
			return v == "did:web:"+s.Hostname || v == "."+s.Hostname
		}
	}
	switch _, didErr := syntax.ParseDID(string(s.DID)); {
	case derivedFromBadHost(string(s.DID)):
		// Reported as PDS_HOSTNAME.
	case s.DID == "" && s.Hostname != "":
		add(envServiceDID, "is empty: leave it unset for did:web:<hostname>, or set a DID")
	case s.DID != "" && didErr != nil:
		add(envServiceDID, "is %q, not a DID (e.g. did:web:pds.example.com)", s.DID)
	}
	for _, u := range []struct{ name, val string }{
		{envHomeURL, s.HomeURL},
		{envPrivacyPolicyURL, s.PrivacyPolicyURL},
		{envTermsOfServiceURL, s.TermsOfServiceURL},
		{envSupportURL, s.SupportURL},
	} {
		if u.val != "" && !isHTTPURL(u.val) {
			add(u.name, "is %q: want an http(s) URL", u.val)
		}
	}
	if s.ContactEmailAddress != "" {
		if _, err := mail.ParseAddress(s.ContactEmailAddress); err != nil {
			add(envContactEmail, "is %q, not an email address", s.ContactEmailAddress)
		}
	}
	if s.BlobUploadLimit <= 0 {
		add(envBlobUploadLimit, "is %d: want a positive number of bytes", s.BlobUploadLimit)
	}
	if s.MaxImportSize < 0 {
		add(envMaxImportSize, "is %d: want a number of bytes, or 0 for no limit", s.MaxImportSize)
	}

	// Blobs.
	b := c.Blobstore
	switch {
	case b.UsesS3() && b.DiskLocation != "":
		add(envBlobDisk, "and %s are both set: blobs go to disk or to S3, choose one", envS3Bucket)
	case !b.UsesS3() && b.DiskLocation == "":
		add(envBlobDisk, "is empty: set it, or %s for S3", envS3Bucket)
	}
	if b.UsesS3() {
		if (b.S3.AccessKeyID == "") != (b.S3.SecretAccessKey == "") {
			add(envS3AccessKeyID, "and %s must be set together (or both left unset for the default credential chain)", envS3SecretKey)
		}
		if b.S3.Endpoint != "" && !isHTTPURL(b.S3.Endpoint) {
			add(envS3Endpoint, "is %q: want an http(s) URL", b.S3.Endpoint)
		}
		if b.S3.UploadTimeout <= 0 {
			add(envS3UploadTimeout, "is %v: want a positive number of milliseconds", b.S3.UploadTimeout)
		}
		if b.S3.RequestTimeout < 0 {
			add(envS3RequestTimeout, "is %v: want a number of milliseconds, or 0 for the default", b.S3.RequestTimeout)
		}
	}

	// Identity.
	id := c.Identity
	if !isHTTPURL(id.PLCURL) {
		add(envPLCURL, "is %q: want an http(s) URL (e.g. https://plc.directory)", id.PLCURL)
	}
	if len(id.ServiceHandleDomains) == 0 && s.Hostname != "" {
		add(envHandleDomains, "is empty: leave it unset for .<hostname>, or list domains such as .pds.example.com")
	}
	for _, d := range id.ServiceHandleDomains {
		if p := handleDomainProblem(d); p != "" && !derivedFromBadHost(d) {
			add(envHandleDomains, "%s", p)
		}
	}
	for _, d := range []struct {
		name string
		val  time.Duration
	}{
		{envDIDCacheStaleTTL, id.CacheStaleTTL},
		{envDIDCacheMaxTTL, id.CacheMaxTTL},
		{envResolverTimeout, id.ResolverTimeout},
	} {
		if d.val <= 0 {
			add(d.name, "is %v: want a positive number of milliseconds", d.val)
		}
	}
	if id.CacheStaleTTL > id.CacheMaxTTL && id.CacheMaxTTL > 0 {
		add(envDIDCacheStaleTTL, "(%v) is longer than %s (%v)", id.CacheStaleTTL, envDIDCacheMaxTTL, id.CacheMaxTTL)
	}

	// Mail: both or neither, as the official PDS requires.
	e := c.Email
	switch {
	case e.SMTPURL != "" && e.FromAddress == "":
		add(envEmailFrom, "is required when %s is set", envEmailSMTPURL)
	case e.SMTPURL == "" && e.FromAddress != "":
		add(envEmailSMTPURL, "is required when %s is set (e.g. smtps://user:password@smtp.example.com)", envEmailFrom)
	}
	if e.SMTPURL != "" && !isSMTPURL(string(e.SMTPURL)) {
		// The value is not echoed: it usually carries a password.
		add(envEmailSMTPURL, "is not an smtp:// or smtps:// URL with a host")
	}
	if e.FromAddress != "" {
		if _, err := mail.ParseAddress(e.FromAddress); err != nil {
			add(envEmailFrom, "is %q, not an email address", e.FromAddress)
		}
	}

	// Firehose.
	if c.Subscription.MaxBuffer <= 0 {
		add(envMaxSubBuffer, "is %d: want a positive number of events", c.Subscription.MaxBuffer)
	}
	if c.Subscription.RepoBackfillLimit < 0 {
		add(envBackfillLimit, "is negative: want a number of milliseconds")
	}

	// Upstream services: a URL without a DID cannot be addressed by
	// service-auth tokens, so the official PDS refuses it; so do we.
	for _, u := range []struct {
		urlVar, didVar string
		up             Upstream
	}{
		{envAppViewURL, envAppViewDID, c.AppView.Upstream},
		{envModServiceURL, envModServiceDID, c.ModService},
		{envReportURL, envReportDID, c.ReportService},
	} {
		switch {
		case u.up.URL != "" && u.up.DID == "":
			add(u.didVar, "is required when %s is set", u.urlVar)
		case u.up.URL == "" && u.up.DID != "":
			add(u.urlVar, "is required when %s is set", u.didVar)
		}
		if u.up.URL != "" && !isHTTPURL(u.up.URL) {
			add(u.urlVar, "is %q: want an http(s) URL", u.up.URL)
		}
		if u.up.DID != "" {
			if _, err := syntax.ParseDID(string(u.up.DID)); err != nil {
				add(u.didVar, "is %q, not a DID", u.up.DID)
			}
		}
	}

	for _, cr := range c.Crawlers {
		if !isHTTPURL(cr) {
			add(envCrawlers, "lists %q: want http(s) URLs such as https://bsky.network", cr)
		}
	}

	// Secrets. Values are never echoed.
	sec := c.Secrets
	if sec.JWTSecret == "" {
		add(envJWTSecret, "is required: %s", hintSecret)
	}
	if sec.AdminPassword == "" {
		add(envAdminPassword, "is required: %s", hintSecret)
	}
	switch {
	case sec.PLCRotationKey != nil && sec.PLCRotationKMSKeyID != "":
		add(envRotationKeyHex, "and %s are both set: choose one", envRotationKMS)
	case sec.PLCRotationKey == nil && sec.PLCRotationKMSKeyID == "":
		add(envRotationKeyHex, "is required (32 bytes as 64 hex characters): %s", hintRotationKey)
	}
	if sec.KeyEncryptionSecret != "" {
		if p := keySecretProblem(sec.KeyEncryptionSecret); p != "" {
			add(envKeySecret, "%s", p)
		}
	}
	return errs
}

// minKeySecretBytes is the shortest key-encryption secret, decoded. It is
// expanded with HKDF, which does not slow guessing, so it must be random:
// hex of 32 bytes or more is what a generator prints, never a passphrase.
const minKeySecretBytes = 32

// keySecretProblem explains why s cannot be a key-encryption secret, or
// returns "". Only its length is named, never its content.
func keySecretProblem(s Secret) string {
	raw, err := hex.DecodeString(string(s))
	if err != nil || len(raw) < minKeySecretBytes {
		return fmt.Sprintf("is not %d or more random bytes in hex (want at least %d hex characters, got %d characters): %s",
			minKeySecretBytes, 2*minKeySecretBytes, len(s), hintKeySecret)
	}
	return ""
}

func decodeKeySecret(s Secret) []byte {
	raw, _ := hex.DecodeString(string(s))
	return raw
}

// hostnameProblem explains why h cannot be PDS_HOSTNAME, or returns "".
func hostnameProblem(h string) string {
	switch {
	case h == "":
		return "is required: " + hintHostname
	case strings.Contains(h, "://"):
		return fmt.Sprintf("is %q, which has a scheme: %s", h, hintHostname)
	case strings.ContainsAny(h, "/:@?# \t\r\n"):
		return fmt.Sprintf("is %q: %s", h, hintHostname)
	case h != strings.ToLower(h):
		return fmt.Sprintf("is %q: use lowercase", h)
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return fmt.Sprintf("is the IP address %q: a PDS needs a DNS name for its did:web, handles and TLS", h)
	}
	if !isDomainName(h) {
		return fmt.Sprintf("is %q, not a valid DNS name: %s", h, hintHostname)
	}
	return ""
}

// handleDomainProblem explains why d cannot be a service handle domain.
func handleDomainProblem(d string) string {
	rest, ok := strings.CutPrefix(d, ".")
	if !ok || !isDomainName(rest) || d != strings.ToLower(d) {
		return fmt.Sprintf("lists %q: each domain must be a lowercase DNS name starting with a dot, e.g. .pds.example.com", d)
	}
	// A domain under which no handle could pass syntax or TLD checks would
	// make every sign-up fail; better to say so at start-up.
	h, err := syntax.ParseHandle("abc" + d)
	if err != nil || !h.AllowedTLD() {
		return fmt.Sprintf("lists %q: handles under it are not valid atproto handles (its TLD must start with a letter and not be a disallowed one such as .local)", d)
	}
	return ""
}

// isDomainName reports whether s is a lowercase DNS name: labels of 1-63
// letters, digits and inner hyphens, 253 characters at most, no trailing dot.
func isDomainName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

func isHTTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func isSMTPURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "smtp" || u.Scheme == "smtps") && u.Host != ""
}
