package handle

import (
	"regexp"
	"strings"
)

// The explicit-slur check keeps the most unambiguous slurs out of handles,
// as the official PDS does with its own (different) patterns. It is
// deliberately small: a list that tries to catch everything mostly catches
// innocent names (the "Scunthorpe problem"), and moderation, not sign-up,
// is where judgement belongs.
//
// Two kinds of entry:
//   - anywhere: words so distinctive they are matched inside other text,
//     after removing separators such as dots and hyphens ("a.b-c" reads "abc");
//   - word: words matched only whole, between separators,
//     optionally pluralised, because they are also innocent substrings
//     ("raccoon", "spicy").
//
// Both are matched after undoing common digit substitutions (0→o, 1→i, 3→e,
// 4→a, 5→s, 7→t). A letter may be repeated to dodge the list, but a doubled
// letter must stay doubled, so that "niger" (the country, the river) is not
// caught.
//
// The words are stored ROT13-encoded so they do not show up in searches of
// the code or in review diffs; they are decoded once at start-up.
var (
	slursAnywhere = rot13Fields("avttre avttn snttbg")
	slursWord     = rot13Fields("puvax pbba snt xvxr fcvp genaal jrgonpx tbbx enturnq gbjryurnq ornare")

	slurAnywhereRE = regexp.MustCompile(alternation(slursAnywhere))
	slurWordRE     = regexp.MustCompile("^(?:" + alternation(slursWord) + ")[sz]*$")
)

var undoDigits = strings.NewReplacer("0", "o", "1", "i", "3", "e", "4", "a", "5", "s", "7", "t")

// HasExplicitSlur reports whether s, a handle or a record key, contains an
// explicit slur. Letters are compared case-insensitively; anything that is
// not an ASCII letter or digit separates words.
//
// The official PDS runs the same kind of check on record keys too, refusing
// such writes with InvalidRecord "Unacceptable slur in record key"; the repo
// write path can call this for that.
func HasExplicitSlur(s string) bool {
	s = strings.ToLower(s)
	isSep := func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }
	joined := strings.Join(strings.FieldsFunc(s, isSep), "")
	if slurAnywhereRE.MatchString(undoDigits.Replace(joined)) {
		return true
	}
	for _, word := range strings.FieldsFunc(s, isSep) {
		if slurWordRE.MatchString(undoDigits.Replace(word)) || slurWordRE.MatchString(stripDigits(word)) {
			return true
		}
	}
	return false
}

func stripDigits(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return -1
		}
		return r
	}, s)
}

// alternation turns words into "w1|w2|..." where each run of n equal
// letters matches n or more of them.
func alternation(words []string) string {
	parts := make([]string, len(words))
	for i, w := range words {
		var b strings.Builder
		for j := 0; j < len(w); {
			k := j
			for k < len(w) && w[k] == w[j] {
				k++
			}
			b.WriteString(regexp.QuoteMeta(w[j:k]))
			b.WriteByte('+')
			j = k
		}
		parts[i] = b.String()
	}
	return strings.Join(parts, "|")
}

func rot13Fields(s string) []string {
	return strings.Fields(strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return 'a' + (r-'a'+13)%26
		case r >= 'A' && r <= 'Z':
			return 'A' + (r-'A'+13)%26
		}
		return r
	}, s))
}
