package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hearth-pds/hearth/pds"
	"github.com/hearth-pds/hearth/plc"
)

// Dev-mode defaults. Each can be overridden by the environment variable of
// the same meaning, so scripts can run several dev servers side by side.
const (
	devDataDir = "hearth-dev"
	devPort    = "2583"
	devPLCPort = "2582"
)

// dev runs a local PDS on embedded defaults: hostname localhost (so handles
// end in .test and the public URL is http://localhost:PORT), SQLite and
// blobs under ./hearth-dev, and an embedded PLC directory on loopback.
// Secrets are made on first start and kept in the data directory, so a
// restart keeps accounts usable.
func dev(ctx context.Context, getenv func(string) string, environ []string, stdout io.Writer) error {
	dataDir := getenv("PDS_DATA_DIRECTORY")
	if dataDir == "" {
		dataDir = devDataDir
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	sec, err := devSecrets(filepath.Join(dataDir, "dev-secrets.json"))
	if err != nil {
		return err
	}
	plcPort := getenv("HEARTH_DEV_PLC_PORT")
	if plcPort == "" {
		plcPort = devPLCPort
	}
	plcURL := "http://127.0.0.1:" + plcPort
	defaults := map[string]string{
		"PDS_HOSTNAME":       "localhost",
		"PDS_PORT":           devPort,
		"PDS_DATA_DIRECTORY": dataDir,
		"PDS_DEV_MODE":       "true",
		"PDS_JWT_SECRET":     sec.JWTSecret,
		"PDS_ADMIN_PASSWORD": sec.AdminPassword,
		"PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX": sec.RotationKeyHex,
		"PDS_DID_PLC_URL": plcURL,
	}
	devenv := func(name string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return defaults[name]
	}
	cfg, log, err := configure(devenv, environ, stdout)
	if err != nil {
		return err
	}

	// The embedded PLC directory, unless the user pointed at another one.
	if cfg.Identity.PLCURL == plcURL {
		stopPLC, err := startDevPLC(filepath.Join(dataDir, "plc"), "127.0.0.1:"+plcPort, log)
		if err != nil {
			return err
		}
		defer stopPLC()
	}

	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Service.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.Service.Port, err)
	}
	cfg.Service.Port = ln.Addr().(*net.TCPAddr).Port

	return runServer(ctx, cfg, ln, log, func(p *pds.PDS) error {
		invite := ""
		if cfg.Invites.Required {
			codes, err := p.Accounts().CreateInviteCodes(ctx, 1, 10, nil)
			if err != nil {
				return fmt.Errorf("create dev invite code: %w", err)
			}
			invite = codes[0].Codes[0]
		}
		// The admin password in force: PDS_ADMIN_PASSWORD when set, else
		// the one in the secrets file.
		fmt.Fprintf(stdout, strings.Join([]string{
			"",
			"Hearth %s is running in dev mode.",
			"  PDS:            %s",
			"  PLC directory:  %s",
			"  Admin password: %s   (HTTP Basic user \"admin\")",
			"  Invite code:    %s   (10 uses)",
			"  Handles:        <name>%s",
			"  Data:           %s",
			"",
		}, "\n")+"\n", version, cfg.PublicURL(), cfg.Identity.PLCURL, string(cfg.Secrets.AdminPassword), orNone(invite),
			cfg.Identity.ServiceHandleDomains[0], dataDir)
		return nil
	})
}

func orNone(s string) string {
	if s == "" {
		return "(not required)"
	}
	return s
}

// devSecrets loads the dev secrets file, or makes one (mode 0600).
func devSecrets(path string) (secrets, error) {
	var s secrets
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("read %s: %w (delete it to start over)", path, err)
		}
		return s, nil
	case !errors.Is(err, fs.ErrNotExist):
		return s, fmt.Errorf("read dev secrets: %w", err)
	}
	if s, err = newSecrets(); err != nil {
		return s, err
	}
	b, _ = json.MarshalIndent(s, "", "  ")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return s, fmt.Errorf("write dev secrets: %w", err)
	}
	return s, nil
}

// startDevPLC serves the embedded PLC directory on addr.
func startDevPLC(dir, addr string, log *slog.Logger) (stop func(), err error) {
	d, err := plc.Open(dir, log.With("component", "plc"))
	if err != nil {
		return nil, fmt.Errorf("open embedded plc directory: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		d.Close()
		return nil, fmt.Errorf("listen for embedded plc directory on %s (set HEARTH_DEV_PLC_PORT to change): %w", addr, err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return func() {
		srv.Close()
		d.Close()
	}, nil
}
