package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/hearth-pds/hearth/config"
	"github.com/hearth-pds/hearth/keyring"
	"github.com/hearth-pds/hearth/pds"
	"github.com/hearth-pds/hearth/store/sqlite"
)

const keysUsage = `usage: hearth keys rotate [--plain]

Re-encrypts every account signing key in the store, in one transaction,
from HEARTH_KEY_ENCRYPTION_SECRET (unset: the keys are plain now) to
HEARTH_KEY_ENCRYPTION_SECRET_NEW; with --plain, writes them unencrypted.
Reads the same environment as serve. Stop the server first.`

// keys runs `hearth keys <command>`: the account signing keys in the
// store. Secrets come from the environment only, never from arguments,
// and are never printed.
func keys(ctx context.Context, args []string, getenv func(string) string, environ []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "rotate" {
		return usageError(keysUsage)
	}
	flags := flag.NewFlagSet("keys rotate", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	plain := flags.Bool("plain", false, "")
	if err := flags.Parse(args[1:]); err != nil || flags.NArg() > 0 {
		return usageError(keysUsage)
	}

	cfg, _, err := config.FromEnv(getenv, environ)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	newSecret, err := config.NewKeyEncryptionSecret(getenv)
	if err != nil {
		return err
	}
	switch {
	case newSecret == nil && !*plain:
		return usageError("HEARTH_KEY_ENCRYPTION_SECRET_NEW is not set: set it to the new secret (make one with `openssl rand --hex 32`), or pass --plain to store the keys unencrypted")
	case newSecret != nil && *plain:
		return usageError("--plain and HEARTH_KEY_ENCRYPTION_SECRET_NEW are both given: choose one")
	}
	from, err := keyring.SealerFor(cfg.Secrets.KeyEncryptionKey())
	if err != nil {
		return fmt.Errorf("HEARTH_KEY_ENCRYPTION_SECRET: %w", err)
	}
	to, err := keyring.SealerFor(newSecret)
	if err != nil {
		return fmt.Errorf("HEARTH_KEY_ENCRYPTION_SECRET_NEW: %w", err)
	}

	// Opening a missing database would create an empty one and report
	// success on nothing.
	path := pds.DatabasePath(cfg)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("no store at %s: set PDS_DATA_DIRECTORY to the server's data directory", path)
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer st.Close()
	changed, total, err := keyring.Reseal(ctx, st, from, to)
	if err != nil {
		return fmt.Errorf("nothing changed: %w", err)
	}
	if to == nil {
		fmt.Fprintf(stdout, "decrypted %d of %d signing keys; unset HEARTH_KEY_ENCRYPTION_SECRET before the next start\n", changed, total)
		return nil
	}
	fmt.Fprintf(stdout, "encrypted %d of %d signing keys with HEARTH_KEY_ENCRYPTION_SECRET_NEW (the others already were); set HEARTH_KEY_ENCRYPTION_SECRET to it before the next start\n", changed, total)
	return nil
}
