package kv

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
)

// Rollup is the daily summary of one source of one app: the session counts credited to
// the day a session started, and the off-thread events of that day. Insights add
// rollups over a date range instead of walking events (SPEC §8: an ads list over 1 M
// events in ≤ 50 ms). The leads behind the sessions are kept apart, one key each
// (RollupLeadKey), so that a busy day's rollup stays small to rewrite.
type Rollup struct {
	Sessions      int64
	Engaged       int64
	Converted     int64
	KeywordEvents int64
	Keywords      []Count // keyword events by keyword group id, sorted by ID
	OffCount      int64   // attributed off-thread events
	Revenue       []Money // off-thread revenue by currency, sorted by currency
	AutoEvents    int64   // automatic_event events (leads and purchases Meta detected)
}

// Count is a number of events for one id.
type Count struct {
	ID string
	N  int64
}

// Money is an amount in one currency.
type Money struct {
	Currency string
	Amount   float64
}

// AddKeyword counts one keyword event of group id.
func (r *Rollup) AddKeyword(id string) {
	r.KeywordEvents++
	i, ok := slices.BinarySearchFunc(r.Keywords, id, func(c Count, id string) int { return strings.Compare(c.ID, id) })
	if !ok {
		r.Keywords = slices.Insert(r.Keywords, i, Count{ID: id})
	}
	r.Keywords[i].N++
}

// AddRevenue adds amount in currency.
func (r *Rollup) AddRevenue(currency string, amount float64) {
	i, ok := slices.BinarySearchFunc(r.Revenue, currency, func(m Money, c string) int { return strings.Compare(m.Currency, c) })
	if !ok {
		r.Revenue = slices.Insert(r.Revenue, i, Money{Currency: currency})
	}
	r.Revenue[i].Amount += amount
}

// LeadHash is the stable 64-bit FNV-1a hash of a lead, used for unique-user counts.
func LeadHash(lead string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(lead); i++ {
		h ^= uint64(lead[i])
		h *= 1099511628211
	}
	return h
}

// AppendRollup appends the encoding of r to dst.
func AppendRollup(dst []byte, r *Rollup) []byte {
	dst = append(dst, recordVersion)
	for _, n := range [...]int64{r.Sessions, r.Engaged, r.Converted, r.KeywordEvents, r.OffCount} {
		dst = appendInt(dst, n)
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Keywords)))
	for _, c := range r.Keywords {
		dst = appendInt(appendStr(dst, c.ID), c.N)
	}
	dst = binary.AppendUvarint(dst, uint64(len(r.Revenue)))
	for _, m := range r.Revenue {
		dst = binary.BigEndian.AppendUint64(appendStr(dst, m.Currency), math.Float64bits(m.Amount))
	}
	return appendInt(dst, r.AutoEvents)
}

// DecodeRollup decodes a record written by AppendRollup into r, reusing its slices.
func DecodeRollup(b []byte, r *Rollup) error {
	rd := newReader(b)
	r.Sessions, r.Engaged, r.Converted, r.KeywordEvents, r.OffCount = rd.int(), rd.int(), rd.int(), rd.int(), rd.int()
	r.Keywords = r.Keywords[:0]
	for n := rd.count(); n > 0; n-- {
		r.Keywords = append(r.Keywords, Count{ID: rd.str(), N: rd.int()})
	}
	r.Revenue = r.Revenue[:0]
	for n := rd.count(); n > 0; n-- {
		r.Revenue = append(r.Revenue, Money{Currency: rd.str(), Amount: math.Float64frombits(rd.uint64())})
	}
	r.AutoEvents = 0
	if rd.more() { // rollups written before automatic events end here
		r.AutoEvents = rd.int()
	}
	return rd.err
}
