package matcher

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unicode/utf8"

	"github.com/cloudflare/ahocorasick"
)

// dict is an immutable dictionary: patterns and the automaton built from them.
type dict struct {
	patterns []Pattern
	needleOf []int                // per pattern, its index in needles
	needles  []needle             // distinct normalized texts, indexed like the automaton
	ac       *ahocorasick.Matcher // nil without patterns, which spares the scan
	bytes    int                  // sum of the needles' lengths
}

// needle is one distinct normalized pattern text.
type needle struct {
	text []byte
	// wordStart and wordEnd say whether the text begins or ends with a word
	// rune, which must then not touch another word rune in the matched text.
	wordStart, wordEnd bool
	patterns           []int // indexes of the patterns with this text, ascending
}

// build checks patterns and builds their dictionary, or returns every problem.
func build(patterns []Pattern) (*dict, error) {
	d := &dict{
		patterns: slices.Clone(patterns),
		needleOf: make([]int, len(patterns)),
	}
	seen := make(map[string]int, len(patterns))
	var errs []error
	for i, p := range d.patterns {
		text := bytes.Trim(appendNormalized(nil, p.Text), " ")
		if err := validate(p, text); err != nil {
			errs = append(errs, err)
			continue
		}
		k, ok := seen[string(text)]
		if !ok {
			k = len(d.needles)
			seen[string(text)] = k
			d.needles = append(d.needles, newNeedle(text))
			d.bytes += len(text)
		}
		d.needleOf[i] = k
		d.needles[k].patterns = append(d.needles[k].patterns, i)
	}
	if d.bytes > MaxDictionaryBytes {
		errs = append(errs, fmt.Errorf("dictionary of %d bytes is larger than the %d-byte cap", d.bytes, MaxDictionaryBytes))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if len(d.needles) > 0 {
		d.ac = ahocorasick.NewMatcher(d.texts())
	}
	return d, nil
}

func newNeedle(text []byte) needle {
	first, _ := utf8.DecodeRune(text)
	last, _ := utf8.DecodeLastRune(text)
	return needle{text: text, wordStart: isWordRune(first), wordEnd: isWordRune(last)}
}

// texts returns the automaton's dictionary.
func (d *dict) texts() [][]byte {
	texts := make([][]byte, len(d.needles))
	for k := range d.needles {
		texts[k] = d.needles[k].text
	}
	return texts
}

// normalized is a pooled buffer for the normalized text of a message.
type normalized struct{ b []byte }

var normalizedPool = sync.Pool{New: func() any { return new(normalized) }}

// match appends the patterns that occur in text to dst, ordered by index.
func (d *dict) match(dst []Hit, text string) []Hit {
	if d == nil || d.ac == nil || text == "" {
		return dst
	}
	buf := normalizedPool.Get().(*normalized)
	buf.b = appendNormalized(buf.b[:0], text)
	n := len(dst)
	for _, k := range d.ac.MatchThreadSafe(buf.b) {
		if !d.needles[k].occursIn(buf.b) {
			continue
		}
		for _, i := range d.needles[k].patterns {
			dst = append(dst, Hit{Index: i, Pattern: d.patterns[i]})
		}
	}
	normalizedPool.Put(buf)
	// The automaton reports texts in the order their first occurrence ends;
	// definition order is easier to rely on.
	slices.SortFunc(dst[n:], func(a, b Hit) int { return a.Index - b.Index })
	return dst
}

// occursIn reports whether the needle occurs in text on word boundaries.
// Both are valid UTF-8, so every occurrence starts on a rune.
func (n *needle) occursIn(text []byte) bool {
	for from := 0; ; {
		i := bytes.Index(text[from:], n.text)
		if i < 0 {
			return false
		}
		start := from + i
		if n.boundedAt(text, start, start+len(n.text)) {
			return true
		}
		from = start + 1
	}
}

// boundedAt reports whether text[start:end], an occurrence of the needle,
// sits on word boundaries.
func (n *needle) boundedAt(text []byte, start, end int) bool {
	if before, _ := utf8.DecodeLastRune(text[:start]); n.wordStart && isWordRune(before) {
		return false
	}
	after, _ := utf8.DecodeRune(text[end:])
	return !n.wordEnd || !isWordRune(after)
}

// size returns the dictionary bytes, 0 for no dictionary.
func (d *dict) size() int {
	if d == nil {
		return 0
	}
	return d.bytes
}

// len returns the number of patterns, 0 for no dictionary.
func (d *dict) len() int {
	if d == nil {
		return 0
	}
	return len(d.patterns)
}

// textLen returns the normalized length of pattern i.
func (d *dict) textLen(i int) int {
	return len(d.needles[d.needleOf[i]].text)
}
