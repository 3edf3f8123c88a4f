package pds

import (
	"log/slog"

	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/identity/diddoc"
	"github.com/hearth-pds/hearth/proxy"
	"github.com/hearth-pds/hearth/readafterwrite"
	"github.com/hearth-pds/hearth/serviceauth"
	"github.com/hearth-pds/hearth/xrpc"
)

// The HTTP layer calls the proxy and the read-after-write views through
// interfaces of its own.
var (
	_ xrpc.Proxy = (*proxy.Proxy)(nil)
	_ xrpc.Views = (*readafterwrite.Viewer)(nil)
)

// newProxy builds the forwarding of methods not served here: a cached
// DID document resolver for atproto-proxy headers, service-auth tokens
// signed with each account's repo key, and the configured upstreams. It
// is always set, even without an AppView: proxy headers still work, and
// the proxy answers "No service configured" itself in the official order.
func newProxy(cfg config.Config, issuer *serviceauth.Issuer, log *slog.Logger) *proxy.Proxy {
	docs := diddoc.New(diddoc.Config{
		PLCURL:       cfg.Identity.PLCURL,
		StaleTTL:     cfg.Identity.CacheStaleTTL,
		MaxTTL:       cfg.Identity.CacheMaxTTL,
		Timeout:      cfg.Identity.ResolverTimeout,
		AllowPrivate: cfg.Outbound.DisableSSRFProtection,
		Logger:       log.With("component", "diddoc"),
	})
	upstream := func(u config.Upstream) proxy.Upstream {
		return proxy.Upstream{URL: u.URL, DID: u.DID.String()}
	}
	return proxy.New(proxy.Config{
		AppView:         upstream(cfg.AppView.Upstream),
		ModService:      upstream(cfg.ModService),
		ReportService:   upstream(cfg.ReportService),
		AllowPrivate:    cfg.Outbound.DisableSSRFProtection,
		HeadersTimeout:  cfg.Outbound.ProxyHeadersTimeout,
		BodyTimeout:     cfg.Outbound.ProxyBodyTimeout,
		MaxResponseSize: cfg.Outbound.ProxyMaxResponseSize,
		Logger:          log.With("component", "proxy"),
	}, issuer, docs)
}
