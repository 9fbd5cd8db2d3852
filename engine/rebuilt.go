package engine

import (
	"hash/maphash"
	"math/bits"
)

// keyFilter is a Bloom filter of the lead and rollup keys a refresh wrote. The refresh
// deleted all of the app's leads and rollups first, so one it has not written is absent
// and needs no store read — every lead's first message and every source's first
// message of a day, about 465 000 reads in a refresh of 1 M messages, each through
// every level of the store (`go run ./bench -store-scale 1000000 -refresh-profile F`:
// store reads took 9.9 % of the refresh's CPU, 5.6 % with the filter). A false positive
// costs the read it would have cost anyway, so only a false negative could change
// numbers, and a Bloom filter has none.
type keyFilter struct {
	bits []uint64
	mask uint64 // bit positions wrap at len(bits)*64, a power of two
}

// Bloom filter shape: 10 bits a key and 7 probes, about 1 % false positives.
const (
	filterBitsPerKey = 10
	filterProbes     = 7
	filterMinBits    = 1 << 16
)

var filterSeed = maphash.MakeSeed()

// newKeyFilter returns a filter sized for n keys (it takes more, with more false
// positives).
func newKeyFilter(n int) *keyFilter {
	m := max(uint64(n)*filterBitsPerKey, filterMinBits)
	m = 1 << bits.Len64(m-1) // the next power of two
	return &keyFilter{bits: make([]uint64, m/64), mask: m - 1}
}

// probes calls fn with each bit position of key (double hashing of one 64-bit hash).
func (f *keyFilter) probes(key []byte, fn func(pos uint64) bool) bool {
	h := maphash.Bytes(filterSeed, key)
	h1, h2 := h, h>>32|h<<32|1
	for i := range uint64(filterProbes) {
		if !fn((h1 + i*h2) & f.mask) {
			return false
		}
	}
	return true
}

func (f *keyFilter) add(key []byte) {
	f.probes(key, func(pos uint64) bool {
		f.bits[pos/64] |= 1 << (pos % 64)
		return true
	})
}

// mayHave reports whether key may have been added: false means it never was.
func (f *keyFilter) mayHave(key []byte) bool {
	return f.probes(key, func(pos uint64) bool { return f.bits[pos/64]&(1<<(pos%64)) != 0 })
}
