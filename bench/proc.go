package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Memory is a process's resident memory as /proc/PID/status reports it.
type Memory struct {
	RSS  int64 // VmRSS, bytes: resident now
	HWM  int64 // VmHWM, bytes: the peak resident size so far
	Anon int64 // RssAnon, bytes: the private part of RSS (heaps, stacks)
	File int64 // RssFile, bytes: mapped file pages (mostly the executable's own code and data)
}

// MiB converts bytes to mebibytes.
func MiB(n int64) float64 { return float64(n) / (1 << 20) }

// ReadMemory reads VmRSS, VmHWM, RssAnon and RssFile of pid.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	var m Memory
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		var field *int64
		switch name {
		case "VmRSS":
			field = &m.RSS
		case "VmHWM":
			field = &m.HWM
		case "RssAnon":
			field = &m.Anon
		case "RssFile":
			field = &m.File
		}
		if !ok || field == nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("pid %d: unexpected %s line %q", pid, name, rest)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("pid %d: %s: %w", pid, name, err)
		}
		*field = kb << 10
		seen++
	}
	if seen != 4 {
		return Memory{}, fmt.Errorf("pid %d: no VmRSS/VmHWM/RssAnon/RssFile in /proc status (a kernel thread?)", pid)
	}
	return m, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat times. It is 100 on
// every Linux architecture Go supports (the kernel fixes it for userspace).
const clockTicks = 100

// ReadCPU returns the CPU time pid has used so far: user plus system time
// (utime+stime, fields 14 and 15 of /proc/PID/stat), excluding children.
func ReadCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces and parentheses: fields
	// are counted from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), so utime (14) is f[11] and stime (15) f[12].
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pid %d: cpu time: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
