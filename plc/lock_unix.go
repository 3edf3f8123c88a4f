//go:build unix

package plc

import (
	"errors"
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on the journal, so a second
// process (a second `hearth dev` on the same data directory) fails at
// start instead of interleaving appends. The lock goes with the file
// descriptor, so closing the journal releases it, and a crash does too.
func lockFile(f *os.File) error {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return errors.New("in use by another plc directory (another Hearth process on the same data directory?)")
	}
	return err
}
