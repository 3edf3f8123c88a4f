//go:build !unix

package plc

import "os"

// lockFile is a no-op where flock is unavailable: Hearth runs on unix
// systems; elsewhere two processes on one data directory are not guarded.
func lockFile(*os.File) error { return nil }
