package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// maxBody bounds how much of a response is read.
const maxBody = 4 << 20

// ErrNotLoopback is returned for a URL, or a connection, that does not
// stay on this machine's loopback interface.
var ErrNotLoopback = errors.New("not a loopback address")

// ParseLoopbackURL parses a PDS base URL and accepts it only when its host
// is a loopback IP literal (127.0.0.0/8, ::1) or localhost. Names are not
// resolved here; the client's dialer checks every address it connects to.
func ParseLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil {
		return nil, fmt.Errorf("parse PDS URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("PDS URL %q: scheme must be http or https", raw)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("PDS URL %q: want only scheme, host and port", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return u, nil
	}
	if h := strings.ToLower(host); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return u, nil
	}
	return nil, fmt.Errorf("PDS URL %q: %w (use 127.0.0.1, ::1 or localhost)", raw, ErrNotLoopback)
}

// loopbackOnly is a net.Dialer Control hook refusing non-loopback peers,
// after name resolution, so no redirect or DNS answer can lead elsewhere.
func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("dial %s: %w", address, ErrNotLoopback)
	}
	return nil
}

// Client calls XRPC methods of one PDS on loopback.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client for the PDS at base (see ParseLoopbackURL),
// keeping up to conns idle connections and giving each call timeout.
func NewClient(base string, conns int, timeout time.Duration) (*Client, error) {
	u, err := ParseLoopbackURL(base)
	if err != nil {
		return nil, err
	}
	d := &net.Dialer{Timeout: 5 * time.Second, Control: loopbackOnly}
	tr := &http.Transport{
		Proxy:               nil, // never through a proxy from the environment
		DialContext:         d.DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     30 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &Client{
		base: u.String(),
		http: &http.Client{
			Transport: tr,
			Timeout:   timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}, nil
}

// Close drops the idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Error is a non-2xx XRPC answer.
type Error struct {
	Status  int
	Name    string `json:"error"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Name, e.Message)
}

// Basic is the Authorization header value of the admin API.
func Basic(password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+password))
}

// Bearer is the Authorization header value of a session token.
func Bearer(token string) string { return "Bearer " + token }

// Call calls nsid: a query (GET) when in is nil, else a procedure (POST)
// with in as its JSON body. auth, when set, is the Authorization header.
// The response is decoded into out when out is not nil, else drained.
func (c *Client) Call(ctx context.Context, nsid, auth string, in, out any) error {
	method, body := http.MethodGet, io.Reader(nil)
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		method, body = http.MethodPost, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+"/xrpc/"+nsid, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	r := io.LimitReader(resp.Body, maxBody)
	if resp.StatusCode/100 != 2 {
		e := &Error{Status: resp.StatusCode}
		b, _ := io.ReadAll(r)
		if json.Unmarshal(b, e) != nil {
			e.Message = strings.TrimSpace(string(b[:min(len(b), 200)]))
		}
		return e
	}
	if out == nil {
		_, err = io.Copy(io.Discard, r)
		return err
	}
	if err := json.NewDecoder(r).Decode(out); err != nil {
		return fmt.Errorf("%s: decode response: %w", nsid, err)
	}
	return nil
}

// Describe is the part of describeServer the load needs.
type Describe struct {
	DID                  string   `json:"did"`
	AvailableUserDomains []string `json:"availableUserDomains"`
	InviteCodeRequired   bool     `json:"inviteCodeRequired"`
}

// DescribeServer calls com.atproto.server.describeServer.
func (c *Client) DescribeServer(ctx context.Context) (Describe, error) {
	var d Describe
	err := c.Call(ctx, "com.atproto.server.describeServer", "", nil, &d)
	return d, err
}

// inviteBatch stays under both servers' per-request limits.
const inviteBatch = 500

// CreateInviteCodes makes count single-use invite codes through the admin
// API (com.atproto.server.createInviteCodes, HTTP Basic admin:password).
func (c *Client) CreateInviteCodes(ctx context.Context, adminPassword string, count int) ([]string, error) {
	var codes []string
	for len(codes) < count {
		n := min(inviteBatch, count-len(codes))
		var out struct {
			Codes []struct {
				Codes []string `json:"codes"`
			} `json:"codes"`
		}
		in := map[string]any{"codeCount": n, "useCount": 1}
		if err := c.Call(ctx, "com.atproto.server.createInviteCodes", Basic(adminPassword), in, &out); err != nil {
			return nil, fmt.Errorf("create invite codes: %w", err)
		}
		got := 0
		for _, g := range out.Codes {
			codes = append(codes, g.Codes...)
			got += len(g.Codes)
		}
		if got == 0 {
			return nil, errors.New("create invite codes: the server returned none")
		}
	}
	return codes[:count], nil
}

// NewAccount is the input of com.atproto.server.createAccount.
type NewAccount struct {
	Handle     string `json:"handle"`
	Email      string `json:"email"`
	Password   string `json:"password"`
	InviteCode string `json:"inviteCode,omitempty"`
}

// Session is the part of a session answer the load needs.
type Session struct {
	DID        string `json:"did"`
	Handle     string `json:"handle"`
	AccessJWT  string `json:"accessJwt"`
	RefreshJWT string `json:"refreshJwt"`
}

// CreateAccount calls com.atproto.server.createAccount.
func (c *Client) CreateAccount(ctx context.Context, a NewAccount) (Session, error) {
	var s Session
	err := c.Call(ctx, "com.atproto.server.createAccount", "", a, &s)
	return s, err
}

// CreateSession calls com.atproto.server.createSession.
func (c *Client) CreateSession(ctx context.Context, identifier, password string) (Session, error) {
	var s Session
	in := map[string]string{"identifier": identifier, "password": password}
	err := c.Call(ctx, "com.atproto.server.createSession", "", in, &s)
	return s, err
}

// GetSession calls com.atproto.server.getSession and drains the answer.
func (c *Client) GetSession(ctx context.Context, accessJWT string) error {
	return c.Call(ctx, "com.atproto.server.getSession", Bearer(accessJWT), nil, nil)
}
