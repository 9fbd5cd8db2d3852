package matcher

import (
	"fmt"
	"strings"
	"testing"
)

// benchPatterns returns n patterns: three keywords for every source phrase.
func benchPatterns(n int) []Pattern {
	patterns := make([]Pattern, n)
	for i := range patterns {
		patterns[i] = Pattern{ID: fmt.Sprint("k", i), Text: fmt.Sprint("keyword", i), Kind: KindKeyword}
		if i%4 == 3 {
			patterns[i] = Pattern{ID: fmt.Sprint("s", i), Text: fmt.Sprint("Source Phrase ", i), Kind: KindSource}
		}
	}
	return patterns
}

// longMiss is a caption of about 4 KiB, the most a stored message keeps;
// longHits adds two keywords and a source phrase at its end.
var (
	longMiss = strings.Repeat("Olá! Quero saber o preço do produto e se tem entrega amanhã. ", 64)
	longHits = longMiss + "KEYWORD150, keyword12 and source phrase 7."
)

func BenchmarkMatch(b *testing.B) {
	for _, bc := range []struct {
		name     string
		patterns int
		text     string
	}{
		{"short-20kw-miss", 20, "Hi! Is this still available? Thanks"},
		{"short-20kw-hit", 20, "Hi! I want KEYWORD2, is it available?"},
		{"long-200kw-miss", 200, longMiss},
		{"long-200kw-hits", 200, longHits},
	} {
		b.Run(bc.name, func(b *testing.B) {
			m, err := New(benchPatterns(bc.patterns))
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]Hit, 0, 8)
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.text)))
			for b.Loop() {
				dst = m.Match(dst[:0], bc.text)
			}
		})
	}
}

func BenchmarkMatchParallel(b *testing.B) {
	m, err := New(benchPatterns(200))
	if err != nil {
		b.Fatal(err)
	}
	const text = "Hi! I want KEYWORD2, is it available?"
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]Hit, 0, 8)
		for pb.Next() {
			dst = m.Match(dst[:0], text)
		}
	})
}

// BenchmarkSet builds a dictionary at the cap, the worst case of a definition change.
func BenchmarkSet(b *testing.B) {
	patterns := distinctPatterns(MaxDictionaryBytes/MaxPatternBytes, MaxPatternBytes)
	var m Matcher
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Set(patterns); err != nil {
			b.Fatal(err)
		}
	}
}
