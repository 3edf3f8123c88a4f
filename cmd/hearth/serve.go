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
	cfg, ignored, err := config.FromEnv(getenv, environ)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	log := newLogger(cfg.Log, stdout)
	for _, name := range ignored {
		log.Debug("environment variable accepted but not used", "name", name)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Service.ListenHost, strconv.Itoa(cfg.Service.Port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", cfg.Service.Port, err)
	}
	return runServer(ctx, cfg, ln, log)
}

// runServer serves until ctx ends, then shuts down gracefully.
func runServer(ctx context.Context, cfg config.Config, ln net.Listener, log *slog.Logger) error {
	p, err := pds.New(ctx, cfg, version, log)
	if err != nil {
		ln.Close()
		return err
	}
	done := make(chan error, 1)
	go func() { done <- p.Serve(ln) }()
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
