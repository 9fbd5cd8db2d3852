//go:build !race

package main

import (
	"testing"
	"time"
)

// The race detector allocates on its own; these guards run without it.

func TestStreamAllocFree(t *testing.T) {
	s := newStream(1773652507)
	buf := s.appendNext(nil)
	if n := testing.AllocsPerRun(1000, func() { buf = s.appendNext(buf[:0]) }); n != 0 {
		t.Errorf("appendNext allocates %.1f times per webhook, want 0", n)
	}
	tr := newScaleTraffic(100_000, time.Unix(1773652507, 0))
	i := uint64(0)
	buf = make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(1000, func() { i++; buf = tr.appendBody(buf[:0], i) }); n != 0 {
		t.Errorf("scale appendBody allocates %.1f times per webhook, want 0", n)
	}
}
