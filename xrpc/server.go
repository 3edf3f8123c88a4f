// Package xrpc is Hearth's HTTP face: the route table of XRPC methods with
// the auth each demands, the handlers (named after their NSID), the one
// mapping from errors to the XRPC error body, CORS, body limits and request
// logging. Handlers parse input at the edge and call domain packages.
package xrpc

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/syntax"

	"github.com/hearth-pds/hearth/proxy"
	"github.com/hearth-pds/hearth/serviceauth"
)

// maxJSONBody is the largest JSON request body accepted, the official
// PDS's limit.
const maxJSONBody = 150 * 1024

// Describe is what com.atproto.server.describeServer reports.
type Describe struct {
	DID                  string
	AvailableUserDomains []string
	InviteCodeRequired   bool
	PrivacyPolicyURL     string
	TermsOfServiceURL    string
	ContactEmail         string
	Hostname             string
	HomeURL              string
	// BlobUploadLimit is the largest blob accepted, in bytes
	// (PDS_BLOB_UPLOAD_LIMIT).
	BlobUploadLimit int64
}

// Pinger checks the store answers, for /xrpc/_health.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Proxy serves the XRPC methods this server does not implement itself,
// by forwarding them upstream (the AppView, a service named in an
// atproto-proxy header), and the few the official PDS serves with local
// handling on top of an upstream (proxy.Proxy does). Route picks the
// upstream and refuses what it cannot forward, before the caller is
// authenticated; Forward and the local handlers get the caller known.
// Errors are rendered like handler errors.
type Proxy interface {
	Route(r *http.Request, nsid string) (proxy.Target, error)
	Forward(w http.ResponseWriter, r *http.Request, nsid string, t proxy.Target, c serviceauth.Caller) error
	// ServesFeeds reports whether GetFeed can serve (an AppView is set).
	ServesFeeds() bool
	GetFeed(w http.ResponseWriter, r *http.Request, c serviceauth.Caller) error
	CreateReport(w http.ResponseWriter, r *http.Request, c serviceauth.Caller) error
	Push(w http.ResponseWriter, r *http.Request, nsid string, c serviceauth.Caller) error
}

// ServiceAuth mints the tokens com.atproto.server.getServiceAuth asks
// for (serviceauth.Issuer does).
type ServiceAuth interface {
	GetServiceAuth(ctx context.Context, c serviceauth.Caller, req serviceauth.Request) (string, error)
}

// Views serves the AppView views the caller's newer records are patched
// into (readafterwrite.Viewer does): view nsid for the account did.
type Views interface {
	ServeView(w http.ResponseWriter, r *http.Request, nsid, did string) error
}

// HandleResolver resolves handles hosted elsewhere.
type HandleResolver interface {
	ResolveHandle(ctx context.Context, h syntax.Handle) (syntax.DID, error)
}

// Config is everything the HTTP layer needs.
type Config struct {
	Version       string
	AdminPassword string
	Describe      Describe
	Accounts      Accounts
	Records       Records
	Blobs         Blobs
	// Firehose serves com.atproto.sync.subscribeRepos (a WebSocket).
	Firehose http.Handler
	// Proxy forwards methods not served here; nil answers them as the
	// official PDS does without an AppView.
	Proxy Proxy
	// ServiceAuth serves com.atproto.server.getServiceAuth; nil leaves
	// the method to the proxy.
	ServiceAuth ServiceAuth
	// Views serves the read-after-write views (set with an AppView); nil
	// leaves them to the proxy.
	Views   Views
	Tokens  Verifier
	Store   Pinger
	Handles HandleResolver
	// HandleDomains are the service handle suffixes (".example.com"),
	// used to answer /.well-known/atproto-did and /tls-check.
	HandleDomains []string
	Logger        *slog.Logger
	// LogRequests writes one log line per request.
	LogRequests bool
}

// Server serves the PDS's HTTP API.
type Server struct {
	version       string
	adminPassword string
	describe      Describe
	accounts      Accounts
	records       Records
	blobs         Blobs
	firehose      http.Handler
	proxy         Proxy
	serviceAuth   ServiceAuth
	views         Views
	tokens        Verifier
	store         Pinger
	handles       HandleResolver
	handleDomains []string
	log           *slog.Logger
	logRequests   bool

	table table
	mux   *http.ServeMux
}

// handlerFunc is an XRPC method: it writes its response or returns an error
// for toError to render.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c caller) error

// New builds the server; its routes are in routes.go.
func New(cfg Config) *Server {
	s := &Server{
		version:       cfg.Version,
		adminPassword: cfg.AdminPassword,
		describe:      cfg.Describe,
		accounts:      cfg.Accounts,
		records:       cfg.Records,
		blobs:         cfg.Blobs,
		firehose:      cfg.Firehose,
		proxy:         cfg.Proxy,
		serviceAuth:   cfg.ServiceAuth,
		views:         cfg.Views,
		tokens:        cfg.Tokens,
		store:         cfg.Store,
		handles:       cfg.Handles,
		handleDomains: cfg.HandleDomains,
		log:           cfg.Logger,
		logRequests:   cfg.LogRequests,
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.table = newTable(s.routes())

	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.banner)
	mux.HandleFunc("GET /robots.txt", s.robots)
	mux.HandleFunc("GET /xrpc/_health", s.health)
	mux.HandleFunc("GET /.well-known/atproto-did", s.wellKnownDID)
	mux.HandleFunc("GET /tls-check", s.tlsCheck)
	mux.HandleFunc("/xrpc/{nsid}", s.serveXRPC)
	mux.HandleFunc("/xrpc/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, invalidRequest("invalid xrpc path"))
	})
	s.mux = mux
	return s
}

// ServeHTTP applies CORS and request logging around the routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
	if cors(rec, r) {
		s.logRequest(r, rec.status, start)
		return
	}
	s.mux.ServeHTTP(rec, r)
	s.logRequest(r, rec.status, start)
}

func (s *Server) logRequest(r *http.Request, status int, start time.Time) {
	if !s.logRequests {
		return
	}
	s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", status,
		"duration_ms", float64(time.Since(start).Microseconds())/1000, "remote", r.RemoteAddr,
		"user_agent", r.UserAgent())
}

// serveXRPC dispatches /xrpc/{nsid} through the route table. Methods not
// served here get the official PDS's answer when it has no upstream
// service to forward them to.
func (s *Server) serveXRPC(w http.ResponseWriter, r *http.Request) {
	nsid := r.PathValue("nsid")
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost:
	default:
		writeError(w, invalidRequest("XRPC requests only supports GET and POST"))
		return
	}
	rt, ok := s.lookup(nsid)
	if !ok {
		s.serveProxied(w, r, nsid)
		return
	}
	if r.Method != rt.verb && !(rt.verb == http.MethodGet && r.Method == http.MethodHead) {
		// The official PDS sends a method with the wrong verb on to its
		// proxy, which answers for it; so does this server.
		s.serveProxied(w, r, nsid)
		return
	}
	if rt.check != nil {
		if err := rt.check(r.URL.Query()); err != nil {
			writeError(w, toError(err, s.log, r))
			return
		}
	}
	if rt.auth != authNone && rt.auth != authOptional {
		markPrivate(w)
	}
	c, err := s.authenticate(r, rt.auth)
	if err == nil {
		err = rt.h(w, r, c)
	}
	if err != nil {
		writeError(w, toError(err, s.log, r))
	}
}

// serveProxied hands a method this server does not implement to the
// proxy, in the official order: the upstream is picked (or the request
// refused) first, then the caller authenticated, then the request
// forwarded.
func (s *Server) serveProxied(w http.ResponseWriter, r *http.Request, nsid string) {
	if s.proxy == nil {
		writeError(w, invalidRequest("No service configured for "+nsid))
		return
	}
	t, err := s.proxy.Route(r, nsid)
	if err == nil {
		markPrivate(w)
		var c caller
		if c, err = s.authenticate(r, authAccess); err == nil {
			err = s.proxy.Forward(w, r, nsid, t, c.service())
		}
	}
	if err != nil {
		writeError(w, toError(err, s.log, r))
	}
}

// markPrivate keeps responses that depend on who asks out of shared
// caches.
func markPrivate(w http.ResponseWriter) {
	w.Header().Set("Cache-Control", "private")
	w.Header().Add("Vary", "Authorization")
}

// statusRecorder remembers the status written, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

// Flush and Unwrap keep streaming responses working through the recorder.
func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hijack lets the firehose take the connection over for its WebSocket.
func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	r.status = http.StatusSwitchingProtocols
	return h.Hijack()
}

// cors answers preflights and marks every response readable cross-origin,
// as the official PDS does (apps run in browsers on other origins). It
// reports whether the request was a preflight and is fully answered.
func cors(w http.ResponseWriter, r *http.Request) bool {
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", "*")
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Set("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE")
	if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
		h.Set("Access-Control-Allow-Headers", req)
		h.Add("Vary", "Access-Control-Request-Headers")
	}
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// hostOnly strips a port from a Host header value and lower-cases it.
func hostOnly(host string) string {
	if i := strings.LastIndexByte(host, ':'); i >= 0 && !strings.Contains(host[i:], "]") {
		host = host[:i]
	}
	return strings.ToLower(strings.TrimSuffix(host, "."))
}
