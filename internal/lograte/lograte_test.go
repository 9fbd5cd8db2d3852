package lograte

import (
	"sync"
	"testing"
	"time"
)

func TestAllowOncePerEvery(t *testing.T) {
	var l Limiter
	t0 := time.Unix(1773652447, 0)
	var lines []int64
	for i := range 12 { // one occurrence a second
		if n, ok := l.Allow(t0.Add(time.Duration(i) * time.Second)); ok {
			lines = append(lines, n)
		}
	}
	// At 0 s (1 occurrence), 5 s (the 5 since) and 10 s (5 more); 11 s is held back.
	if len(lines) != 3 || lines[0] != 1 || lines[1] != 5 || lines[2] != 5 {
		t.Fatalf("lines for %v occurrences, want [1 5 5]", lines)
	}
}

func TestAllowConcurrent(t *testing.T) {
	var l Limiter
	now := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	let := 0
	for range 50 {
		wg.Go(func() {
			if _, ok := l.Allow(now); ok {
				mu.Lock()
				let++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if let != 1 {
		t.Fatalf("%d lines let through at one instant, want 1", let)
	}
}
