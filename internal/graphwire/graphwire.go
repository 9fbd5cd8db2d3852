// Package graphwire is what the Graph API stubs of the tests write as Meta does: its
// error object, trace ids, and the messages of its throttling and unsupported-request
// errors (sources in each stub's package doc).
package graphwire

import (
	"fmt"
	"math/rand/v2"
)

// Error is Graph's error object.
type Error struct {
	Message        string `json:"message"`
	Type           string `json:"type"`
	Code           int    `json:"code"`
	ErrorSubcode   int    `json:"error_subcode,omitempty"`
	IsTransient    bool   `json:"is_transient"`
	ErrorUserTitle string `json:"error_user_title,omitempty"`
	ErrorUserMsg   string `json:"error_user_msg,omitempty"`
	FBTraceID      string `json:"fbtrace_id"`
}

// TraceID is a random fbtrace_id of Meta's shape.
func TraceID() string {
	const alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"
	b := make([]byte, 23)
	b[0] = 'A'
	for i := 1; i < len(b); i++ {
		b[i] = alpha[rand.IntN(len(alpha))]
	}
	return string(b)
}

// ThrottleMessage is Graph's message for a rate-limit error code.
func ThrottleMessage(code int) string {
	what := map[int]string{
		80000: "this ad-account", 80001: "this Page account", 80002: "this Instagram account",
		80003: "this ad-account", 80004: "this ad-account", 80005: "this ad-account",
		80006: "this Messenger account", 80008: "this WhatsApp Business account",
		80009: "this Catalog account", 80014: "this Catalog account",
	}
	switch {
	case code == 4:
		return "(#4) Application request limit reached"
	case code == 17:
		return "(#17) User request limit reached"
	case code == 32:
		return "(#32) Page request limit reached"
	case code == 613:
		return "(#613) Calls to this api have exceeded the rate limit."
	case code >= 80000 && code <= 80014:
		w := what[code]
		if w == "" {
			w = "this account"
		}
		return fmt.Sprintf("(#%d) There have been too many calls to %s. Wait a bit and try again. "+
			"For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.", code, w)
	}
	return fmt.Sprintf("(#%d) Rate limit reached", code)
}

// Unsupported is Graph's message for an object that does not exist or cannot be reached.
func Unsupported(method, id string) string {
	return fmt.Sprintf("Unsupported %s request. Object with ID '%s' does not exist, cannot be loaded due to missing "+
		"permissions, or does not support this operation. Please read the Graph API documentation at "+
		"https://developers.facebook.com/docs/graph-api", method, id)
}
