package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// formatValue flattens a resolved slog value into "a.b=v c=w" pairs.
func formatValue(v slog.Value) string {
	var b strings.Builder
	var walk func(prefix string, v slog.Value)
	walk = func(prefix string, v slog.Value) {
		v = v.Resolve()
		if v.Kind() != slog.KindGroup {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(prefix)
			b.WriteByte('=')
			b.WriteString(quoteIfNeeded(valueString(v)))
			return
		}
		for _, a := range v.Group() {
			key := a.Key
			if prefix != "" {
				key = prefix + "." + key
			}
			walk(key, a.Value)
		}
	}
	walk("", v)
	return b.String()
}

func valueString(v slog.Value) string {
	if v.Kind() == slog.KindAny {
		if ss, ok := v.Any().([]string); ok {
			return strings.Join(ss, ",")
		}
		return fmt.Sprint(v.Any())
	}
	return v.String()
}

func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\n\"=") {
		return strconv.Quote(s)
	}
	return s
}

// redactURL hides the password of a URL, keeping the rest readable; a URL
// that does not parse is hidden entirely, since it may be all secret.
func redactURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil {
		return redacted
	}
	return u.Redacted()
}
