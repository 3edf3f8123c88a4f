package testenv

import (
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/hearth-pds/hearth/plc"
)

// StartEmbeddedPLC serves Hearth's own PLC directory (the one `hearth dev`
// embeds) on a loopback port for the test, keeping its operations in a
// temporary folder, and returns its base URL.
func StartEmbeddedPLC(t testing.TB) string {
	t.Helper()
	d, err := plc.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("testenv: open embedded plc directory: %v", err)
	}
	srv := httptest.NewServer(d)
	t.Cleanup(func() {
		srv.Close()
		d.Close()
	})
	return srv.URL
}
