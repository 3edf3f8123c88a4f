package xrpc

import "testing"

func TestParseRange(t *testing.T) {
	const size = 100
	tests := []struct {
		header               string
		offset, length       int64
		partial, satisfiable bool
	}{
		{"", 0, 100, false, true},
		{"bytes=0-9", 0, 10, true, true},
		{"bytes=90-", 90, 10, true, true},
		{"bytes=-5", 95, 5, true, true},
		{"bytes=-500", 0, 100, true, true},
		{"bytes=50-500", 50, 50, true, true},
		{"bytes=100-", 0, 0, false, false},
		{"bytes=0-1,5-6", 0, 100, false, true},
		{"bytes=x-y", 0, 100, false, true},
		{"bytes=9-2", 0, 100, false, true},
		{"items=0-1", 0, 100, false, true},
	}
	for _, tt := range tests {
		off, n, partial, ok := parseRange(tt.header, size)
		if off != tt.offset || n != tt.length || partial != tt.partial || ok != tt.satisfiable {
			t.Errorf("parseRange(%q) = %d, %d, %v, %v; want %d, %d, %v, %v", tt.header, off, n, partial, ok, tt.offset, tt.length, tt.partial, tt.satisfiable)
		}
	}
}
