package main

import (
	"strconv"
	"strings"
	"sync/atomic"
)

// webhookTemplate is testdata/webhooks/cloud/text_ctwa_referral.json in the compact form
// Meta sends, with {{…}} where every request gets its own values.
const webhookTemplate = `{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":` +
	`{"messaging_product":"whatsapp","metadata":{"display_phone_number":"4930609859535","phone_number_id":"106540352242922"},` +
	`"contacts":[{"profile":{"name":"Lena Vogel"},"wa_id":"{{lead}}"}],` +
	`"messages":[{"from":"{{lead}}","id":"wamid.HBgM{{seq}}","timestamp":"{{ts}}","type":"text",` +
	`"text":{"body":"Hi! I saw your ad, is the spring sale still on?"},` +
	`"referral":{"source_url":"https://fb.me/4kQ9vZx2b","source_id":"{{ad}}","source_type":"ad",` +
	`"body":"Spring sale: 20% off all running shoes until Sunday","headline":"Chat with us on WhatsApp",` +
	`"media_type":"image","image_url":"https://scontent.xx.fbcdn.net/v/t45.1600-4/441234567_1202145678_n.jpg",` +
	`"ctwa_clid":"ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFD{{seq}}"}}]},"field":"messages"}]}]}`

// adCount is how many distinct ads the leads click, as a small advertiser runs.
const adCount = 100

// stream produces distinct CTWA webhooks: each has a new message id, a new lead and a
// new click id, as real traffic does (a repeated id would be deduplicated by the sidecar
// and make it unfairly cheap). One stream feeds every system and every round, so ids
// never repeat within a run. Bodies of one run all have the same length.
type stream struct {
	parts []string // literal text, then a field, then literal text, …
	ts    string   // unix seconds of every message
	seq   atomic.Uint64
}

func newStream(unixSeconds int64) *stream {
	s := &stream{ts: strconv.FormatInt(unixSeconds, 10)}
	rest := webhookTemplate
	for {
		before, after, found := strings.Cut(rest, "{{")
		s.parts = append(s.parts, before)
		if !found {
			return s
		}
		field, tail, _ := strings.Cut(after, "}}")
		s.parts = append(s.parts, field)
		rest = tail
	}
}

// appendNext appends the next webhook of the stream to dst. It is safe for concurrent use
// and does not allocate when dst has room.
func (s *stream) appendNext(dst []byte) []byte {
	n := s.seq.Add(1)
	for i, p := range s.parts {
		if i%2 == 0 {
			dst = append(dst, p...)
			continue
		}
		switch p {
		case "lead": // a 12-digit German mobile number, one per request
			dst = appendPadded(append(dst, "49"...), n, 10)
		case "seq":
			dst = appendPadded(dst, n, 20)
		case "ad": // 18 digits like Meta's ad ids
			dst = appendPadded(append(dst, "1202145678900"...), n%adCount, 5)
		case "ts":
			dst = append(dst, s.ts...)
		}
	}
	return dst
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
