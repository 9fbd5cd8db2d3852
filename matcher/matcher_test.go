package matcher

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

var testPatterns = []Pattern{
	{ID: "k-yes", Text: "yes", Kind: KindKeyword},
	{ID: "k-ja", Text: "JA", Kind: KindKeyword},
	{ID: "k-uber", Text: "über", Kind: KindKeyword},
	{ID: "k-price", Text: "Price", Kind: KindKeyword},
	{ID: "s-billboard-a", Text: "Billboard   A", Kind: KindSource},
	{ID: "s-billboard", Text: "billboard", Kind: KindSource},
	{ID: "k-black-friday", Text: " black friday ", Kind: KindKeyword},
	{ID: "k-fire", Text: "🔥", Kind: KindKeyword},
	{ID: "k-50-off", Text: "50% off", Kind: KindKeyword},
	{ID: "k-yes-again", Text: "YES", Kind: KindKeyword}, // same text as k-yes
	{ID: "k-istanbul", Text: "istanbul", Kind: KindKeyword},
	{ID: "k-cafe", Text: "cafe", Kind: KindKeyword},
	{ID: "s-yes", Text: "yes", Kind: KindSource}, // same text, other kind
	{ID: "k-ela", Text: "ΕΛΑ", Kind: KindKeyword},
}

func hitIDs(hits []Hit) []string {
	ids := make([]string, len(hits))
	for i, h := range hits {
		ids[i] = h.ID
	}
	return ids
}

func TestMatch(t *testing.T) {
	m, err := New(testPatterns)
	if err != nil {
		t.Fatal(err)
	}
	yes := []string{"k-yes", "k-yes-again", "s-yes"}
	f := func(text string, want ...string) {
		t.Helper()
		got := hitIDs(m.Match(nil, text))
		if !slices.Equal(got, want) {
			t.Errorf("Match(%q) = %q, want %q", text, got, want)
		}
	}
	f("")
	f("   ")
	f("no keyword here")
	f("yes", yes...)
	f("YES!", yes...)
	f("(Yes)", yes...)
	f("yes_", yes...)
	f("yesyes yes", yes...)
	f("yesterday")
	f("eyes")
	f("yes2")
	f("2yes")
	f("yesterday, then yes", yes...) // the first occurrence fails, a later one counts
	f("\xffyes\xff", yes...)         // invalid UTF-8 is no letter
	f("Ja, bitte", "k-ja")
	f("jaja")
	f("ÜBER alles", "k-uber")
	f("uber")
	f("ἘΛΆ ΕΛΑ", "k-ela")
	f("see the BILLBOARD\t\n a today", "s-billboard-a", "s-billboard")
	f("billboard ab", "s-billboard")
	f("billboards")
	f("BLACK  FRIDAY deals", "k-black-friday")
	f("black-friday")
	f("blackfriday")
	f("hot🔥", "k-fire")
	f("🔥🔥", "k-fire")
	f("yes 🔥 yes", "k-yes", "k-fire", "k-yes-again", "s-yes")
	f("get 50% OFF now", "k-50-off")
	f("150% off")
	f("50% offer")
	f("İSTANBUL", "k-istanbul") // İ lower-cases to one byte fewer
	f("ȺȺȺ yes", yes...)        // Ⱥ lower-cases to one byte more
	f("ȺȺȺyes")
	f("cafe\u0301") // combining accent: still one word
	f("café")
	f("cafe.", "k-cafe")
	f("Price? yes.", "k-yes", "k-price", "k-yes-again", "s-yes")
	f("prices")
	f(strings.Repeat("lorem ipsum ", 500)+"the price", "k-price")
}

func TestMatchAppends(t *testing.T) {
	m, err := New(testPatterns)
	if err != nil {
		t.Fatal(err)
	}
	dst := []Hit{{Index: -1}}
	dst = m.Match(dst, "price")
	want := []Hit{{Index: -1}, {Index: 3, Pattern: testPatterns[3]}}
	if !slices.Equal(dst, want) {
		t.Fatalf("Match = %+v, want %+v", dst, want)
	}
}

func TestZeroMatcher(t *testing.T) {
	var m Matcher
	if hits := m.Match(nil, "yes"); len(hits) != 0 {
		t.Fatalf("zero Matcher found %+v", hits)
	}
	if err := m.Set(nil); err != nil {
		t.Fatal(err)
	}
	if hits := m.Match(nil, "yes"); len(hits) != 0 {
		t.Fatalf("empty Matcher found %+v", hits)
	}
}

func TestSource(t *testing.T) {
	m, err := New([]Pattern{
		{ID: "k-billboard-a", Text: "billboard a b", Kind: KindKeyword},
		{ID: "s-billboard", Text: "billboard", Kind: KindSource},
		{ID: "s-billboard-a", Text: "billboard a", Kind: KindSource},
		{ID: "s-bus", Text: "bus stop", Kind: KindSource},
		{ID: "s-qr", Text: "qr code", Kind: KindSource},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := func(text, want string) {
		t.Helper()
		h, ok := m.Source(text)
		if h.ID != want || ok != (want != "") {
			t.Errorf("Source(%q) = %q, %v; want %q", text, h.ID, ok, want)
		}
	}
	f("", "")
	f("hello", "")
	f("Billboard A B", "s-billboard-a") // longest source; keywords do not count
	f("billboard b", "s-billboard")
	f("QR code or BUS STOP", "s-bus") // equally long: the earlier definition
}

func TestSetErrors(t *testing.T) {
	long := strings.Repeat("a", MaxPatternBytes+1)
	f := func(patterns []Pattern, want ...string) {
		t.Helper()
		var m Matcher
		err := m.Set(patterns)
		if err == nil {
			t.Fatalf("Set succeeded, want %q", want)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Set = %q, want it to contain %q", err, w)
			}
		}
		if m.d.Load() != nil {
			t.Errorf("Set installed a dictionary despite %q", err)
		}
	}
	f([]Pattern{{ID: "k1", Kind: KindKeyword}}, `keyword "" (id "k1") is empty`)
	f([]Pattern{{ID: "s1", Text: " \t\u00a0", Kind: KindSource}}, `source phrase " \t\u00a0" (id "s1") is empty`)
	f([]Pattern{{ID: "k1", Text: long, Kind: KindKeyword}}, `keyword "`+long+`" (id "k1") is longer than 100 bytes`)
	// 34 runes of 2 bytes lower-case to 3 bytes each: the limit counts what the automaton holds.
	f([]Pattern{{ID: "k1", Text: strings.Repeat("Ⱥ", 34), Kind: KindKeyword}}, `(id "k1") is longer than 100 bytes`)
	f([]Pattern{{ID: "k1", Text: "yes"}}, `pattern "yes" (id "k1") has unknown kind 0`)
	f([]Pattern{
		{ID: "k1", Kind: KindKeyword},
		{ID: "k2", Text: "fine", Kind: KindKeyword},
		{ID: "k3", Text: long, Kind: KindKeyword},
	}, `(id "k1") is empty`, `(id "k3") is longer than 100 bytes`)
	f(distinctPatterns(MaxDictionaryBytes/MaxPatternBytes+1, MaxPatternBytes),
		`dictionary of 8200 bytes is larger than the 8192-byte cap`)
}

func TestSetLimits(t *testing.T) {
	f := func(patterns []Pattern) {
		t.Helper()
		if _, err := New(patterns); err != nil {
			t.Fatal(err)
		}
	}
	f([]Pattern{{ID: "k1", Text: "  " + strings.Repeat("a", MaxPatternBytes) + "\n", Kind: KindKeyword}})
	full := distinctPatterns(MaxDictionaryBytes/MaxPatternBytes, MaxPatternBytes)
	rest := MaxDictionaryBytes % MaxPatternBytes
	full = append(full, distinctPatterns(1, rest)[0])
	f(full)
	// Duplicate texts share automaton bytes, so they do not count against the cap.
	f(append(full, full...))
}

// distinctPatterns returns n keywords of size bytes each.
func distinctPatterns(n, size int) []Pattern {
	patterns := make([]Pattern, n)
	for i := range patterns {
		text := fmt.Sprintf("k%d ", i)
		text += strings.Repeat("x", size-len(text))
		patterns[i] = Pattern{ID: fmt.Sprint(i), Text: text, Kind: KindKeyword}
	}
	return patterns
}

func TestSetKeepsOldDictionaryOnError(t *testing.T) {
	m, err := New([]Pattern{{ID: "k1", Text: "yes", Kind: KindKeyword}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Set([]Pattern{{ID: "k2", Kind: KindKeyword}}); err == nil {
		t.Fatal("Set accepted an empty keyword")
	}
	if got := hitIDs(m.Match(nil, "yes")); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("after a failed Set, Match = %q, want [k1]", got)
	}
}

func TestSetCopiesPatterns(t *testing.T) {
	patterns := []Pattern{{ID: "k1", Text: "yes", Kind: KindKeyword}}
	m, err := New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	patterns[0].ID = "changed"
	if got := hitIDs(m.Match(nil, "yes")); !slices.Equal(got, []string{"k1"}) {
		t.Fatalf("Match = %q after the caller changed its slice, want [k1]", got)
	}
}

func TestMetrics(t *testing.T) {
	_, err := New([]Pattern{
		{ID: "k1", Text: "Yes", Kind: KindKeyword},
		{ID: "k2", Text: "black   friday", Kind: KindKeyword},
		{ID: "s1", Text: "yes", Kind: KindSource},
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	for _, want := range []string{
		"ctwa_sidecar_matcher_dictionary_bytes 15\n", // "yes" + "black friday"
		"ctwa_sidecar_matcher_patterns 3\n",
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, buf.String())
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindKeyword: "keyword", KindSource: "source phrase", 7: "kind 7"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// TestConcurrentSet matches from many goroutines while another one swaps
// dictionaries: every result must come whole from one dictionary.
func TestConcurrentSet(t *testing.T) {
	a := []Pattern{{ID: "a-yes", Text: "yes", Kind: KindKeyword}}
	b := []Pattern{{ID: "b-yes", Text: "yes", Kind: KindKeyword}, {ID: "b-no", Text: "no", Kind: KindSource}}
	m, err := New(a)
	if err != nil {
		t.Fatal(err)
	}
	const text = "Yes or no?"
	wantA, wantB := []string{"a-yes"}, []string{"b-yes", "b-no"}
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	wg.Go(func() {
		for i := range 200 {
			if err := m.Set([][]Pattern{a, b}[i%2]); err != nil {
				errs <- err
				return
			}
		}
	})
	for range 8 {
		wg.Go(func() {
			var hits []Hit
			for range 2000 {
				hits = m.Match(hits[:0], text)
				if got := hitIDs(hits); !slices.Equal(got, wantA) && !slices.Equal(got, wantB) {
					errs <- fmt.Errorf("Match(%q) = %q, want %q or %q", text, got, wantA, wantB)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
