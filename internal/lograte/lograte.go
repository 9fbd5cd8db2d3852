// Package lograte lets the log line of a repeated failure through at most once per
// Every, saying how many times it happened since the last line: on a hot path a flood
// of errors must not become a flood of log lines (every one is counted in /metrics).
package lograte

import (
	"sync/atomic"
	"time"
)

// Every is the least time between two lines of one Limiter.
const Every = 5 * time.Second

// Limiter is safe for concurrent use; its zero value lets the first line through.
type Limiter struct {
	last  atomic.Int64 // unix nanoseconds of the last line let through
	since atomic.Int64 // occurrences since then
}

// Allow notes one occurrence at now and reports whether to log it; n is how many
// occurrences the line stands for, this one included.
func (l *Limiter) Allow(now time.Time) (n int64, ok bool) {
	l.since.Add(1)
	t, last := now.UnixNano(), l.last.Load()
	if last != 0 && t-last < int64(Every) || !l.last.CompareAndSwap(last, t) {
		return 0, false
	}
	return l.since.Swap(0), true
}
