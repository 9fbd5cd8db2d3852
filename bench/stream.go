package main

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"sync/atomic"
)

// webhookTemplate is testdata/webhooks/cloud/text_ctwa_referral.json in the compact form
// Meta sends, with {{…}} where every request gets its own values.
const webhookTemplate = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":` +
	`{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930609859535","phone_number_id":"106540352242922"},` +
	`"contacts":[{"profile":{"name":"Lena Vogel"},"wa_id":"{{lead}}"}],` +
	`"messages":[{"from":"{{lead}}","id":"{{id}}","timestamp":"{{ts}}","type":"text",` +
	`"text":{"body":"Hi! I saw your ad, is the spring sale still on?"},` +
	`"referral":{"source_url":"https://fb.me/4kQ9vZx2b","source_id":"{{ad}}","source_type":"ad",` +
	`"body":"Spring sale: 20% off all running shoes until Sunday","headline":"Chat with us on WhatsApp",` +
	`"media_type":"image","image_url":"https://scontent.xx.fbcdn.net/v/t45.1600-4/441234567_1202145678_n.jpg",` +
	`"ctwa_clid":"{{clid}}"}}]},"field":"messages"}]}]}`

// adCount is how many distinct ads the leads click, as a small advertiser runs.
const adCount = 100

// stream produces distinct CTWA webhooks: each has a new message id, a new lead and a
// new click id, as real traffic does (a repeated id would be deduplicated by the sidecar
// and make it unfairly cheap). One stream feeds every system and every round, so ids
// never repeat within a run. Bodies of one run all have the same length.
//
// Message and click ids are random-looking and in no order, like Meta's: a store whose
// keys follow the message id (the dedupe index does) would be flattered by sequential
// ids, which always append at the end of its key space. Leads are scrambled for the
// same reason (see leadDigits).
type stream struct {
	parts []string // literal text, then a field, then literal text, …
	ts    string   // unix seconds of every message
	seed  uint64   // mixed into every id, so that runs differ
	seq   atomic.Uint64
}

func newStream(unixSeconds int64) *stream {
	s := &stream{ts: strconv.FormatInt(unixSeconds, 10), seed: mix64(uint64(unixSeconds))}
	s.parts = splitTemplate(webhookTemplate)
	return s
}

// splitTemplate cuts a template into literal text and the {{field}} names between.
func splitTemplate(rest string) []string {
	var parts []string
	for {
		before, after, found := strings.Cut(rest, "{{")
		parts = append(parts, before)
		if !found {
			return parts
		}
		field, tail, _ := strings.Cut(after, "}}")
		parts = append(parts, field)
		rest = tail
	}
}

// appendNext appends the next webhook of the stream to dst. It is safe for concurrent use
// and does not allocate when dst has room.
func (s *stream) appendNext(dst []byte) []byte {
	n := s.seq.Add(1)
	var w idWords
	w.fill(s.seed, n)
	for i, p := range s.parts {
		if i%2 == 0 {
			dst = append(dst, p...)
			continue
		}
		switch p {
		case "lead": // a 12-digit German mobile number, one per request
			dst = appendPadded(append(dst, "49"...), leadDigits(s.seed, n), 10)
		case "id":
			dst = w.appendMessageID(dst)
		case "clid":
			dst = w.appendClickID(dst)
		case "ad": // 18 digits like Meta's ad ids
			dst = appendPadded(append(dst, "1202145678900"...), n%adCount, 5)
		case "ts":
			dst = append(dst, s.ts...)
		}
	}
	return dst
}

// Meta's message ids are "wamid." and standard base64 of 42 bytes (62 characters in
// all), e.g. wamid.HBgMNDkxNzAxMjM0NTY3FQIAEhgUQzA0MUVGREFBNzg3RjYwNEVDNDAA; the bytes
// start 1c 18 0c ("HBgM") and hold the sender's number and a hex id. Here the first
// three bytes are Meta's and the other 39 random, so ids keep Meta's length, alphabet
// and prefix but sort in no order. Click ids are "AR" and 96 characters of URL-safe
// base64 (98 in all; Meta's run to about a hundred).
const (
	idRandomBytes   = 39
	clickRandBytes  = 72
	idWordsN        = (idRandomBytes+7)/8 + clickRandBytes/8 // 5 for the message id, 9 for the click id
	idMessageWords  = (idRandomBytes + 7) / 8
	golden          = 0x9e3779b97f4a7c15 // splitmix64's increment (odd)
	leadSpace       = 10_000_000_000     // 10-digit subscriber numbers
	messageIDPrefix = "wamid."
)

var metaIDHead = [3]byte{0x1c, 0x18, 0x0c}

// idWords is the randomness of one message: 64-bit words for its message id, then
// for its click id.
type idWords [idWordsN]uint64

// fill sets w to the words of message seq. Word k is splitmix64 at state
// seed + (seq·idWordsN + k + 1)·golden: the states of distinct (seq, k) differ (golden is
// odd, so multiplying by it is a bijection of uint64, and k < idWordsN), and splitmix64's
// mixer is a bijection too, so no two words of a run are equal; in particular word 0, all
// of which goes into the message id, and word idMessageWords, into the click id. Ids
// therefore never repeat while seq < 2⁶⁴/idWordsN.
func (w *idWords) fill(seed, seq uint64) {
	base := seq * idWordsN
	for k := range w {
		w[k] = mix64(seed + (base+uint64(k)+1)*golden)
	}
}

// mix64 is splitmix64's output function, a bijection of uint64.
func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// appendMessageID appends "wamid." and the base64 of Meta's head and 39 random bytes.
func (w *idWords) appendMessageID(dst []byte) []byte {
	var b [len(metaIDHead) + idMessageWords*8]byte
	copy(b[:], metaIDHead[:])
	for k := range idMessageWords {
		binary.LittleEndian.PutUint64(b[len(metaIDHead)+8*k:], w[k])
	}
	return base64.StdEncoding.AppendEncode(append(dst, messageIDPrefix...), b[:len(metaIDHead)+idRandomBytes])
}

// appendClickID appends "AR" and the URL-safe base64 of 72 random bytes.
func (w *idWords) appendClickID(dst []byte) []byte {
	var b [clickRandBytes]byte
	for k := range clickRandBytes / 8 {
		binary.LittleEndian.PutUint64(b[8*k:], w[idMessageWords+k])
	}
	return base64.RawURLEncoding.AppendEncode(append(dst, "AR"...), b[:])
}

// leadDigits is the subscriber part of lead n: a permutation of the 10-digit numbers
// (offset by the seed, then scrambled), so leads stay distinct for the first 10¹⁰
// values of n but come in no order. The scramble is a bijection of 34-bit numbers
// (xor-shifts and odd multipliers modulo 2³⁴) applied until the result is below 10¹⁰
// ("cycle walking"), which keeps it a bijection of [0, 10¹⁰): 1.7 rounds on average.
func leadDigits(seed, n uint64) uint64 {
	x := (n%leadSpace + seed%leadSpace) % leadSpace
	for {
		if x = scramble34(x); x < leadSpace {
			return x
		}
	}
}

func scramble34(x uint64) uint64 {
	const mask = 1<<34 - 1
	x ^= x >> 17
	x = x * 0xed5ad4bb & mask
	x ^= x >> 11
	x = x * 0xac4c1b51 & mask
	x ^= x >> 15
	x = x * 0x31848bab & mask
	return x ^ x>>14
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(dst []byte, n uint64, width int) []byte {
	start := len(dst)
	for range width {
		dst = append(dst, '0')
	}
	for i := len(dst) - 1; i >= start && n > 0; i-- {
		dst[i] = byte('0' + n%10)
		n /= 10
	}
	return dst
}
