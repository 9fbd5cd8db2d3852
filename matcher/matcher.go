// Package matcher finds tracked keywords and custom-source phrases in lead
// messages (SPEC §4.3, §6.3).
//
// # Matching rules
//
// A pattern occurs in a text when its words appear there in sequence:
//
//   - case-insensitively, by Unicode simple lower-casing (unicode.ToLower) of
//     both sides, so "JA" matches "ja" and "ÜBER" matches "über";
//   - with every run of white space, in the pattern and in the text, read as
//     one space, so "billboard   a" matches "billboard a";
//   - on word boundaries: when the pattern begins with a word rune (a letter,
//     digit or combining mark) the text must not have a word rune just before
//     the occurrence, and likewise at its end. "yes" therefore does not fire in
//     "yesterday" or "eyes" but does in "yes!" and "(yes)"; a pattern that
//     begins or ends with a symbol, such as "🔥", also fires in "hot🔥".
//
// Every occurrence in the whole text counts, and each pattern is reported at
// most once per text. Simple lower-casing is not full case folding: "ß" does
// not match "SS". Scripts written without spaces (Chinese, Japanese, Thai)
// have no word boundaries between words, so a pattern only fires there when
// it is delimited by spaces or punctuation.
//
// # Design
//
// One cloudflare/ahocorasick automaton holds the distinct normalized texts of
// all patterns. It is case-sensitive, reports no positions and keeps only the
// last index of duplicate texts, so patterns are normalized when the
// dictionary is built, the text is normalized into a pooled buffer when
// matching, and the automaton only says which texts occur somewhere; the word
// boundaries of those few candidates are then checked by scanning their
// occurrences in the normalized text. Patterns that share a text share one
// automaton entry and are all reported.
//
// The automaton's Match is not safe for concurrent use, so matching goes
// through MatchThreadSafe. A Matcher keeps its dictionary behind an
// atomic.Pointer: Set builds a new one and swaps it in while running Match
// calls finish on the old one.
//
// # Allocations
//
// Match allocates nothing when no pattern occurs and dst has room for the
// hits, except when MatchThreadSafe refills its sync.Pool of de-duplication
// maps after the garbage collector empties it: about 36 bytes per automaton
// node, 300 KiB at the cap, for each goroutine matching at that moment. When the automaton finds candidates, near
// misses included, MatchThreadSafe returns them in a slice it grows with
// append: one allocation for up to 4 candidates, one more each time their
// number doubles. The library offers no way to pass that slice in.
//
// # Dictionary cap
//
// The automaton costs about 4.1 KiB per byte of dictionary, whether or not
// patterns share prefixes: each trie node holds two 256-pointer tables and the
// library allocates one node per byte up front. A pattern is limited to
// MaxPatternBytes and the distinct normalized texts together to
// MaxDictionaryBytes (8 KiB), that is about 33 MiB of automaton, and twice
// that for a moment while Set replaces a dictionary. That leaves most of the
// sidecar's 256 MiB resident-memory budget to the store and the HTTP servers
// and still holds some 800 keywords and phrases of 10 bytes. The cap counts
// normalized bytes because those are what the automaton is built from.
//
// # Metrics
//
// ctwa_sidecar_matcher_dictionary_bytes and ctwa_sidecar_matcher_patterns
// describe the dictionary most recently installed by New or Set on any
// Matcher; the process has one.
package matcher

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// Limits on a dictionary; see the package documentation for the reasoning.
const (
	MaxPatternBytes    = 100     // normalized bytes of one pattern
	MaxDictionaryBytes = 8 << 10 // normalized bytes of all distinct pattern texts
)

// Kind tells a tracked keyword from a custom-source phrase.
type Kind uint8

// The kinds of pattern; the zero Kind is invalid so that a forgotten Kind is
// rejected instead of silently becoming a keyword.
const (
	KindKeyword Kind = iota + 1
	KindSource
)

// String returns the noun used in error messages.
func (k Kind) String() string {
	switch k {
	case KindKeyword:
		return "keyword"
	case KindSource:
		return "source phrase"
	}
	return "kind " + strconv.Itoa(int(k))
}

// Pattern is a keyword or phrase to find; Text may hold several words.
type Pattern struct {
	ID   string // definition id, reported back unchanged
	Text string
	Kind Kind
}

// Hit is a pattern that occurs in a text.
type Hit struct {
	Index int // index of the pattern in the slice given to New or Set
	Pattern
}

// Matcher finds patterns in texts. It is safe for concurrent use, including
// Set while Match runs. The zero Matcher matches nothing.
type Matcher struct {
	d atomic.Pointer[dict]
	// setMu serializes Set, so that concurrent calls neither hold several new
	// automata at once nor leave the metrics on a dictionary that lost.
	setMu sync.Mutex
}

// current is the dictionary the metrics report.
var current atomic.Pointer[dict]

var (
	_ = metrics.NewGauge(`ctwa_sidecar_matcher_dictionary_bytes`, func() float64 {
		return float64(current.Load().size())
	})
	_ = metrics.NewGauge(`ctwa_sidecar_matcher_patterns`, func() float64 {
		return float64(current.Load().len())
	})
)

// New returns a Matcher for patterns, or every reason they are invalid.
func New(patterns []Pattern) (*Matcher, error) {
	m := new(Matcher)
	if err := m.Set(patterns); err != nil {
		return nil, err
	}
	return m, nil
}

// Set replaces the dictionary with patterns. When they are invalid it returns
// every reason, joined, and keeps the old dictionary.
func (m *Matcher) Set(patterns []Pattern) error {
	m.setMu.Lock()
	defer m.setMu.Unlock()
	d, err := build(patterns)
	if err != nil {
		return err
	}
	m.d.Store(d)
	current.Store(d)
	return nil
}

// Match appends to dst every pattern that occurs in text, in the order of
// Hit.Index, each once.
func (m *Matcher) Match(dst []Hit, text string) []Hit {
	return m.d.Load().match(dst, text)
}

// Source returns the custom-source phrase that occurs in text. When several
// do, the longest wins because it is the most specific ("billboard a" over
// "billboard"), then the earliest defined.
func (m *Matcher) Source(text string) (Hit, bool) {
	d := m.d.Load()
	var buf [8]Hit // enough for the usual case without allocating
	best := -1
	hits := d.match(buf[:0], text)
	for i, h := range hits {
		if h.Kind == KindSource && (best < 0 || d.textLen(h.Index) > d.textLen(hits[best].Index)) {
			best = i
		}
	}
	if best < 0 {
		return Hit{}, false
	}
	return hits[best], true
}

// validate reports why p, normalized to text, cannot be in a dictionary.
func validate(p Pattern, text []byte) error {
	switch {
	case p.Kind != KindKeyword && p.Kind != KindSource:
		return fmt.Errorf("pattern %q (id %q) has unknown %s", p.Text, p.ID, p.Kind)
	case len(text) == 0:
		return fmt.Errorf("%s %q (id %q) is empty", p.Kind, p.Text, p.ID)
	case len(text) > MaxPatternBytes:
		return fmt.Errorf("%s %q (id %q) is longer than %d bytes", p.Kind, p.Text, p.ID, MaxPatternBytes)
	}
	return nil
}
