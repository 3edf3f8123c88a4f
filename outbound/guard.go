// Package outbound is the guard on every request this server makes to an
// address a user or a document chose (handle well-known files, did:web
// documents, proxied services): connections to private, loopback,
// link-local and shared addresses are refused at connect time, after DNS,
// so neither a hostname resolving inward nor a redirect can reach the
// operator's network (SSRF). Dev mode and tests on loopback lift it.
package outbound

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"syscall"
	"time"
)

// ErrForbiddenAddress: an outbound fetch was about to reach a private,
// loopback or otherwise non-public address.
var ErrForbiddenAddress = errors.New("address not allowed for outbound fetch")

// Client returns an HTTP client for fetching user-supplied URLs (handle
// well-known files, did:web documents), each request within timeout and
// at most three redirects. allowPrivate lifts the address check, for dev
// mode and tests on loopback.
func Client(allowPrivate bool, timeout time.Duration) *http.Client {
	return &http.Client{
		Transport: Transport(allowPrivate, timeout),
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			return nil
		},
	}
}

// Transport returns a transport whose connections are checked: the check
// runs on the resolved address at connect time, after DNS, so a hostname
// that resolves to 127.0.0.1 or a redirect to an internal name is refused
// too. timeout bounds the dial, the TLS handshake and the wait for
// response headers; callers tune the rest on their copy.
func Transport(allowPrivate bool, timeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			return checkPublic(address)
		}
	}
	return &http.Transport{
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
		MaxIdleConns:          16,
		IdleConnTimeout:       30 * time.Second,
	}
}

// checkPublic refuses every address that is not a global unicast one.
func checkPublic(address string) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("outbound fetch: %w", err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("outbound fetch: %w", err)
	}
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() ||
		cgnat.Contains(ip) || ip.IsUnspecified() {
		return fmt.Errorf("%w: %s", ErrForbiddenAddress, ip)
	}
	return nil
}

// cgnat is the shared address space (RFC 6598), private in practice.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")
