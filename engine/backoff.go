package engine

import (
	"math/rand/v2"
	"time"
)

// backoff is the wait after the n-th failure in a row (n ≥ 1): first doubled n-1 times,
// at most limit, with jitter in its upper half so that retries do not come in step.
func backoff(first, limit time.Duration, n int) time.Duration {
	d := min(first<<min(n-1, 20), limit)
	return d/2 + rand.N(d/2+1)
}
