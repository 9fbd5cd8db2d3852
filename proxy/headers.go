package proxy

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/valyala/fasthttp"
)

// hopByHop lists the headers that describe one connection, not the message (RFC 9110 §7.6.1),
// so they are never relayed in either direction. Proxy-* is matched by prefix.
var hopByHop = [][]byte{
	[]byte("Connection"), []byte("Keep-Alive"), []byte("TE"), []byte("Trailer"),
	[]byte("Transfer-Encoding"), []byte("Upgrade"),
}

var proxyPrefix = []byte("Proxy-")

// isHopByHop reports whether the header name is always hop-by-hop, ignoring case.
func isHopByHop(name []byte) bool {
	if len(name) >= len(proxyPrefix) && bytes.EqualFold(name[:len(proxyPrefix)], proxyPrefix) {
		return true
	}
	for _, h := range hopByHop {
		if bytes.EqualFold(name, h) {
			return true
		}
	}
	return false
}

// appendConnectionOptions appends the value of header k to dst, comma-terminated, when k is
// a Connection header: the names it lists are hop-by-hop for this one message (RFC 9110
// §7.6.1), and a message may carry several Connection lines.
func appendConnectionOptions(dst, k, v []byte) []byte {
	if !sameHeaderName(k, "Connection") {
		return dst
	}
	return append(append(dst, v...), ',')
}

// isHopByHopIn reports whether header name is hop-by-hop in a message whose Connection
// headers list options (as appendConnectionOptions collects them). Listed names match as
// the forwarding rule normalizes names, so a sender cannot keep a header it declared
// hop-by-hop by spelling it differently.
func isHopByHopIn(options, name []byte) bool {
	if isHopByHop(name) {
		return true
	}
	for len(options) > 0 {
		var opt []byte
		opt, options, _ = bytes.Cut(options, strComma)
		if sameHeaderName(name, bytes.TrimSpace(opt)) {
			return true
		}
	}
	return false
}

var strComma = []byte(",")

// standardHeaders are the registered HTTP header names whose spelling is kept as received.
// Every other name is treated as a custom header and normalized (SPEC §3.3).
var standardHeaders = []string{
	"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Authorization",
	"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Content-Length", "Content-Location", "Content-Range", "Content-Type", "Cookie", "Date",
	"Expect", "Forwarded", "From", "Host", "If-Match", "If-Modified-Since", "If-None-Match",
	"If-Range", "If-Unmodified-Since", "Max-Forwards", "Origin", "Pragma", "Range", "Referer",
	"User-Agent", "Via", "Warning", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
	"X-Real-IP", "X-Request-ID",
}

// isStandard reports whether name is a standard header name, ignoring case.
func isStandard(name []byte) bool {
	for _, s := range standardHeaders {
		if len(s) == len(name) && strings.EqualFold(s, string(name)) {
			return true
		}
	}
	return false
}

// AppendHeaderName appends the forwarded spelling of a header name to dst: standard names
// unchanged; custom names lower-cased with '_' turned into '-', the rewrite On-Premises
// WhatsApp applies to custom webhook headers (seed 001), applied here deterministically so
// the upstream sees one spelling whichever path a webhook took.
func AppendHeaderName(dst, name []byte) []byte {
	if isStandard(name) {
		return append(dst, name...)
	}
	for _, c := range name {
		switch {
		case c == '_':
			c = '-'
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// Header is one extra header added to every forwarded request (-upstream-header).
type Header struct {
	Name, Value string
	// Given is the name as the operator wrote it; it differs from Name when normalized.
	Given string
}

// ParseHeader parses an -upstream-header value of the form "Name: value".
func ParseHeader(s string) (Header, error) {
	name, value, ok := strings.Cut(s, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		return Header{}, fmt.Errorf("-upstream-header %q is not of the form 'Name: value'", s)
	}
	if strings.ContainsAny(name, " \t\r\n") || strings.ContainsAny(value, "\r\n") {
		return Header{}, fmt.Errorf("-upstream-header %q has white space in the name or a line break", s)
	}
	if isHopByHop([]byte(name)) || strings.EqualFold(name, "Host") || strings.EqualFold(name, "Content-Length") {
		return Header{}, fmt.Errorf("-upstream-header %q sets %s, which the proxy controls", s, name)
	}
	normalized := string(AppendHeaderName(nil, []byte(name)))
	return Header{Name: normalized, Value: strings.TrimSpace(value), Given: name}, nil
}

// HeaderValue returns the first value of the request header name, matching names as
// the forwarding rule normalizes them (case-insensitive, '_' equal to '-'), so that
// Authorization, authorization and X_Hub_Signature_256 are all found. fasthttp's own
// Peek is case-sensitive once name normalizing is disabled, as it is here.
func HeaderValue(h *fasthttp.RequestHeader, name string) []byte {
	for k, v := range h.All() {
		if sameHeaderName(k, name) {
			return v
		}
	}
	return nil
}

func sameHeaderName[T string | []byte](k []byte, name T) bool {
	if len(k) != len(name) {
		return false
	}
	for i := range k {
		a, b := lowerDash(k[i]), lowerDash(name[i])
		if a != b {
			return false
		}
	}
	return true
}

func lowerDash(c byte) byte {
	switch {
	case c == '_':
		return '-'
	case 'A' <= c && c <= 'Z':
		return c + 'a' - 'A'
	}
	return c
}
