package proxy

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/identity/diddoc"
	"github.com/hearth-pds/hearth/refusal"
)

// Upstream is a service requests are forwarded to: its DID (the audience
// of the tokens it gets) and its URL.
type Upstream struct {
	URL string
	DID string
}

// Configured reports whether the upstream is set.
func (u Upstream) Configured() bool { return u.URL != "" && u.DID != "" }

// Target is where one request goes: the origin (scheme, host and port;
// the official PDS ignores any path in a service endpoint) and the DID
// that tokens are addressed to.
type Target struct {
	origin string
	aud    string
}

// modMethods go to the moderation service by default; the official PDS
// lists them one by one (other tools.ozone methods go to the AppView).
var modMethods = map[string]bool{
	"tools.ozone.communication.createTemplate":      true,
	"tools.ozone.communication.deleteTemplate":      true,
	"tools.ozone.communication.listTemplates":       true,
	"tools.ozone.communication.updateTemplate":      true,
	"tools.ozone.moderation.cancelScheduledActions": true,
	"tools.ozone.moderation.emitEvent":              true,
	"tools.ozone.moderation.getAccountTimeline":     true,
	"tools.ozone.moderation.getEvent":               true,
	"tools.ozone.moderation.getRecord":              true,
	"tools.ozone.moderation.getRepo":                true,
	"tools.ozone.moderation.listScheduledActions":   true,
	"tools.ozone.moderation.queryEvents":            true,
	"tools.ozone.moderation.queryStatuses":          true,
	"tools.ozone.moderation.scheduleAction":         true,
	"tools.ozone.moderation.searchRepos":            true,
	"tools.ozone.safelink.addRule":                  true,
	"tools.ozone.safelink.queryEvents":              true,
	"tools.ozone.safelink.queryRules":               true,
	"tools.ozone.safelink.removeRule":               true,
	"tools.ozone.safelink.updateRule":               true,
	"tools.ozone.team.addMember":                    true,
	"tools.ozone.team.deleteMember":                 true,
	"tools.ozone.team.listMembers":                  true,
	"tools.ozone.team.updateMember":                 true,
	"tools.ozone.verification.grantVerifications":   true,
	"tools.ozone.verification.listVerifications":    true,
	"tools.ozone.verification.revokeVerifications":  true,
}

const createReport = "com.atproto.moderation.createReport"

// defaultUpstream is where nsid goes without an atproto-proxy header.
func (p *Proxy) defaultUpstream(nsid string) Upstream {
	switch {
	case modMethods[nsid]:
		return p.cfg.ModService
	case nsid == createReport:
		return p.cfg.ReportService
	default:
		return p.cfg.AppView
	}
}

// resolveTarget picks the upstream of a request: the service its
// atproto-proxy header names, else the default one for nsid. Its errors
// are the official ones, worded alike.
func (p *Proxy) resolveTarget(ctx context.Context, h http.Header, nsid string) (Target, error) {
	header := strings.Join(h.Values("Atproto-Proxy"), ", ")
	if header == "" {
		up := p.defaultUpstream(nsid)
		if !up.Configured() {
			return Target{}, badRequest("No service configured for " + nsid)
		}
		return Target{origin: origin(up.URL), aud: up.DID}, nil
	}
	did, serviceID, err := parseProxyHeader(header)
	if err != nil {
		return Target{}, err
	}
	// The configured AppView is used as configured, without resolving it.
	if p.cfg.AppView.Configured() && header == p.cfg.AppView.DID+"#bsky_appview" {
		return Target{origin: origin(p.cfg.AppView.URL), aud: did}, nil
	}
	if !resolvable(did) {
		// The official PDS answers these with a 500; it is bad input.
		return Target{}, badRequest("could not resolve proxy did")
	}
	doc, err := p.docs.Resolve(ctx, did)
	switch {
	case errors.Is(err, diddoc.ErrNotFound):
		return Target{}, badRequest("could not resolve proxy did")
	case err != nil:
		// Malformed documents and unreachable directories are internal
		// errors in the official PDS too.
		return Target{}, err
	}
	endpoint := doc.ServiceEndpoint(serviceID)
	if endpoint == "" {
		return Target{}, badRequest("could not resolve proxy did service url")
	}
	o := origin(endpoint)
	if o == "" {
		return Target{}, badRequest("could not resolve proxy did service url")
	}
	return Target{origin: o, aud: did}, nil
}

// parseProxyHeader splits "did#service_id", returning the service id with
// its '#', with the official checks in the official order.
func parseProxyHeader(v string) (did, serviceID string, err error) {
	i := strings.IndexByte(v, '#')
	switch {
	case i == 0:
		return "", "", badRequest("no did specified in proxy header")
	case i < 0 || i == len(v)-1:
		return "", "", badRequest("no service id specified in proxy header")
	case strings.IndexByte(v[i+1:], '#') >= 0:
		return "", "", badRequest("invalid proxy header format")
	case strings.Contains(v, " "):
		return "", "", badRequest("proxy header cannot contain spaces")
	}
	return v[:i], v[i:], nil
}

// resolvable reports whether did is a DID of a method we resolve.
func resolvable(did string) bool {
	d, err := syntax.ParseDID(did)
	return err == nil && (d.Method() == "plc" || d.Method() == "web")
}

// origin reduces an endpoint URL to scheme://host[:port], as the official
// HTTP agent does with its origin option; "" if it is not an http(s) URL.
func origin(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func badRequest(msg string) *refusal.Error {
	return refusal.New("InvalidRequest", msg)
}
