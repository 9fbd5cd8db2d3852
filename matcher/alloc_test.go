//go:build !race

package matcher

import "testing"

// TestMatchAllocs guards the hot path. testing.AllocsPerRun truncates the
// average, so the rare refill of a sync.Pool after a garbage collection does
// not count.
func TestMatchAllocs(t *testing.T) {
	m, err := New(benchPatterns(20))
	if err != nil {
		t.Fatal(err)
	}
	var empty Matcher
	dst := make([]Hit, 0, 8)
	f := func(name string, want float64, fn func()) {
		t.Helper()
		if got := testing.AllocsPerRun(100, fn); got != want {
			t.Errorf("%s: %v allocations per run, want %v", name, got, want)
		}
	}
	f("no hit", 0, func() { dst = m.Match(dst[:0], "Hi! Is this still available? Thanks") })
	f("empty matcher", 0, func() { dst = empty.Match(dst[:0], "keyword2") })
	f("source, no hit", 0, func() { m.Source("Hi! Is this still available?") })
	// ahocorasick.MatchThreadSafe returns its candidates in a new slice.
	f("one hit", 1, func() { dst = m.Match(dst[:0], "I want keyword2 please") })
	f("one near miss", 1, func() { dst = m.Match(dst[:0], "I want keyword2x please") })
	f("source, one hit", 1, func() { m.Source("source phrase 3") })
}
