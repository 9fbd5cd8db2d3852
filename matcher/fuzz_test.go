package matcher

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzMatch compares Match with a plain reference: strings.ToLower,
// strings.Fields and a scan of every position. patterns holds up to 8
// patterns separated by "|".
func FuzzMatch(f *testing.F) {
	for _, seed := range [][2]string{
		{"Yes, yesterday", "yes|yesterday|day"},
		{"eyes (YES!)", "yes|eyes|s (yes"},
		{"ÜBER İSTANBUL ȺȺ ja", "über|istanbul|ⱥⱥ|JA"},
		{"see the billboard \t a", "billboard a|billboard|a"},
		{"hot🔥🔥 50% off", "🔥|🔥🔥|50%|% off|off"},
		{"aaa aa a", "a|aa|a a|aa a|aaa"},
		{"cafe\u0301 café cafe", "cafe|café|e\u0301"},
		{"\xff\xfeyes\xc3", "yes|\xff|\xc3"},
		{"", "yes"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, text, list string) {
		patterns := fuzzPatterns(list)
		m, err := New(patterns)
		if wantErr := !referenceValid(patterns); (err != nil) != wantErr {
			t.Fatalf("New(%q) error = %v, want an error: %v", patterns, err, wantErr)
		}
		if err != nil {
			return
		}
		var got []int
		for _, h := range m.Match(nil, text) {
			if h.Pattern != patterns[h.Index] {
				t.Fatalf("hit %+v does not carry pattern %d %+v", h, h.Index, patterns[h.Index])
			}
			got = append(got, h.Index)
		}
		if want := referenceMatch(patterns, text); !slices.Equal(got, want) {
			t.Fatalf("Match(%q) with %q = %v, want %v", text, patterns, got, want)
		}
	})
}

func fuzzPatterns(list string) []Pattern {
	var patterns []Pattern
	for i, text := range strings.SplitN(list, "|", 8) {
		kind := KindKeyword
		if i%2 == 1 {
			kind = KindSource
		}
		patterns = append(patterns, Pattern{ID: strings.Repeat("p", i+1), Text: text, Kind: kind})
	}
	return patterns
}

func referenceNormalize(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), " ")
}

func referenceValid(patterns []Pattern) bool {
	distinct := map[string]bool{}
	size := 0
	for _, p := range patterns {
		n := referenceNormalize(p.Text)
		if n == "" || len(n) > MaxPatternBytes {
			return false
		}
		if !distinct[n] {
			distinct[n] = true
			size += len(n)
		}
	}
	return size <= MaxDictionaryBytes
}

// referenceMatch returns the indexes of the patterns that occur in text.
func referenceMatch(patterns []Pattern, text string) []int {
	text = referenceNormalize(text)
	var found []int
	for i, p := range patterns {
		needle := referenceNormalize(p.Text)
		for at := 0; at+len(needle) <= len(text); at++ {
			if strings.HasPrefix(text[at:], needle) && referenceBounded(text[:at], needle, text[at+len(needle):]) {
				found = append(found, i)
				break
			}
		}
	}
	return found
}

func referenceBounded(before, needle, after string) bool {
	word := func(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r) }
	first, _ := utf8.DecodeRuneInString(needle)
	last, _ := utf8.DecodeLastRuneInString(needle)
	prev, _ := utf8.DecodeLastRuneInString(before)
	next, _ := utf8.DecodeRuneInString(after)
	return !(word(first) && word(prev)) && !(word(last) && word(next))
}
