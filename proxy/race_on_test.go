//go:build race

package proxy

// raceEnabled: the race detector slows the store several times over; big tests shrink.
const raceEnabled = true
