package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/pds"
)

// serve runs the production server from the environment.
func serve(ctx context.Context, getenv func(string) string, environ []string, stdout io.Writer) error {
	cfg, log, err := configure(getenv, environ, stdout)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Service.ListenHost, strconv.Itoa(cfg.Service.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.Service.Port, err)
	}
	return runServer(ctx, cfg, ln, log, nil)
}

// configure reads the configuration from the environment and builds the
// logger it asks for, then reports what in environ does nothing: official
// variables Hearth does not read (debug), variables whose feature has not
// landed (one warning naming each, with why) and PDS_*/HEARTH_* names
// nobody reads, most likely typos (a warning).
func configure(getenv func(string) string, environ []string, stdout io.Writer) (config.Config, *slog.Logger, error) {
	cfg, ignored, err := config.FromEnv(getenv, environ)
	if err != nil {
		return cfg, nil, fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(cfg.Log, stdout)
	for _, name := range ignored {
		log.Debug("environment variable accepted but not used", "name", name)
	}
	if set := config.NotYetSet(environ); len(set) > 0 {
		why := make(map[string]string, len(set))
		for _, v := range set {
			why[v.Name] = v.Reason
		}
		log.Warn("environment variables set that have no effect yet", "variables", why)
	}
	if unknown := config.UnknownNames(environ); len(unknown) > 0 {
		log.Warn("unknown environment variables: neither Hearth nor the official PDS reads them (a typo?)", "names", unknown)
	}
	return cfg, log, nil
}

// runServer serves on ln until ctx ends, then shuts down gracefully. ready,
// when not nil, runs once the server is serving (the dev command makes its
// invite code and prints its banner there); its error stops the server.
func runServer(ctx context.Context, cfg config.Config, ln net.Listener, log *slog.Logger, ready func(*pds.PDS) error) error {
	p, err := pds.New(ctx, cfg, version, log)
	if err != nil {
		ln.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
	if ready != nil {
		if err := ready(p); err != nil {
			p.Shutdown(context.Background())
			return err
		}
	}
	select {
	case err := <-done:
		p.Shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := p.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return <-done
}

// newLogger builds the process logger: JSON lines on stdout, or nothing
// when LOG_ENABLED is false.
func newLogger(c config.Log, w io.Writer) *slog.Logger {
	if !c.Enabled {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: c.Level}))
}
