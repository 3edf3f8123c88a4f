package xrpc

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

func newTestServer(store Pinger) *Server {
	return New(Config{Version: "test", Store: store, Describe: Describe{DID: "did:web:pds.test", Hostname: "pds.test"}})
}

func TestCORS(t *testing.T) {
	s := newTestServer(pinger{})
	tests := []struct {
		name    string
		method  string
		headers map[string]string
		want    map[string]string
		status  int
	}{
		{"preflight", http.MethodOptions, map[string]string{
			"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization,content-type",
		}, map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "GET,HEAD,PUT,PATCH,POST,DELETE",
			"Access-Control-Allow-Headers": "authorization,content-type",
			"Access-Control-Max-Age":       "86400",
			"Vary":                         "Access-Control-Request-Headers",
		}, http.StatusNoContent},
		{"preflight without headers", http.MethodOptions, map[string]string{"Access-Control-Request-Method": "GET"},
			map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": ""}, http.StatusNoContent},
		{"simple request", http.MethodGet, map[string]string{"Origin": "https://app.example"},
			map[string]string{"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": ""}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, "/xrpc/com.atproto.server.describeServer", nil)
			for k, v := range tt.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			s.ServeHTTP(w, r)
			if w.Code != tt.status {
				t.Errorf("status %d, want %d", w.Code, tt.status)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHealth(t *testing.T) {
	for _, tc := range []struct {
		store  Pinger
		status int
	}{
		{pinger{}, http.StatusOK},
		{pinger{errors.New("database is locked")}, http.StatusServiceUnavailable},
	} {
		w := httptest.NewRecorder()
		newTestServer(tc.store).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/xrpc/_health", nil))
		if w.Code != tc.status || !strings.Contains(w.Body.String(), `"version":"test"`) {
			t.Errorf("health with %v: %d %s", tc.store, w.Code, w.Body)
		}
	}
}

func TestPlainRoutes(t *testing.T) {
	s := newTestServer(pinger{})
	for path, want := range map[string]string{
		"/":           "Personal Data Server",
		"/robots.txt": "User-agent: *",
		"/xrpc/com.atproto.server.describeServer": `"did":"did:web:pds.test"`,
	} {
		w := httptest.NewRecorder()
		s.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), want) {
			t.Errorf("GET %s: %d %q, want it to contain %q", path, w.Code, w.Body, want)
		}
	}
}
