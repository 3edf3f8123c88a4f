// Command hearth is an AT Protocol Personal Data Server.
//
//	hearth serve    run in production, configured by PDS_* environment variables
//	hearth dev      run locally on embedded defaults (SQLite, disk, a local PLC directory)
//	hearth keygen   print fresh secrets for an env file
//	hearth keys     re-encrypt the account signing keys with a new secret
//	hearth version  print the version
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is stamped at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

func main() {
	// A PDS's heap is small and mostly short-lived request garbage: collect
	// at 50% growth rather than Go's 100%, which measured a few percent of
	// CPU for a tenth less memory. GOGC, when set, still decides.
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(50)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		fmt.Fprintln(os.Stderr, "hearth:", err)
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError string

func (e usageError) Error() string { return string(e) }

const usage = `usage: hearth <command>

commands:
  serve     run the PDS, configured by PDS_* environment variables
  dev       run a local PDS with a local PLC directory on embedded defaults
  keygen    print fresh PDS_JWT_SECRET, PDS_ADMIN_PASSWORD and rotation key lines
  keys      keys rotate: re-encrypt the account signing keys (HEARTH_KEY_ENCRYPTION_SECRET_NEW)
  version   print the version`

// run dispatches a subcommand; it is main without the process exits.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError(usage)
	}
	switch args[0] {
	case "serve":
		return serve(ctx, os.Getenv, os.Environ(), stdout)
	case "dev":
		return dev(ctx, os.Getenv, os.Environ(), stdout)
	case "keygen":
		return keygen(stdout)
	case "keys":
		return keys(ctx, args[1:], os.Getenv, os.Environ(), stdout)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "hearth", version)
		return nil
	case "help", "--help", "-h":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return usageError(fmt.Sprintf("unknown command %q\n%s", args[0], usage))
}
