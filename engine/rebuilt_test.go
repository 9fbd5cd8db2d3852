package engine

import (
	"fmt"
	"testing"
)

// The filter of written keys has no false negatives (one would lose a lead's or a
// rollup's earlier state in a refresh) and about 1 % false positives at its size.
func TestKeyFilter(t *testing.T) {
	const n = 100_000
	f := newKeyFilter(n)
	key := func(i int) []byte { return fmt.Appendf(nil, "lead\x00106540352242922\x00%d", 491700000000+i) }
	for i := range n {
		f.add(key(i))
	}
	for i := range n {
		if !f.mayHave(key(i)) {
			t.Fatalf("key %d was added but the filter says it never was", i)
		}
	}
	fp := 0
	for i := n; i < 2*n; i++ {
		if f.mayHave(key(i)) {
			fp++
		}
	}
	if rate := float64(fp) / n; rate > 0.02 {
		t.Fatalf("false positives %.2f %%, want about 1 %%", 100*rate)
	}
}
