// Package buckets holds the upper bounds of the sidecar's Prometheus histograms (le
// buckets, which histogram_quantile reads), so that forwarding and store commits are
// charted on the same scale.
package buckets

// Latency is for durations in seconds: from 100 µs, since SPEC §8 speaks of a
// millisecond added, to the 10 s of a slow upstream.
var Latency = []float64{
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Count is for numbers of things in a group, such as requests per group commit.
var Count = []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}
