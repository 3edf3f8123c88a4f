package testenv

import (
	"testing"
)

// Kill ends the server with SIGKILL, as a crash or the OOM killer would:
// no shutdown code runs. It waits until the process is gone.
func (h *Hearth) Kill(t testing.TB) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil {
		t.Fatalf("testenv: kill hearth: %v", err)
	}
	<-h.exited
}

// Restart starts the binary again with the environment of the first
// start: the same data directory, port, secrets and PLC directory. The
// previous process must have exited (Kill or Stop). The output of earlier
// runs is logged if the test fails.
func (h *Hearth) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-h.exited:
	default:
		t.Fatalf("testenv: restart hearth while it still runs (pid %d)", h.PID())
	}
	earlier := h.out.String()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("hearth output before a restart:\n%s", earlier)
		}
	})
	if err := h.start(Binary(t)); err != nil {
		t.Fatalf("testenv: restart hearth: %v", err)
	}
}
