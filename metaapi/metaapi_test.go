package metaapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestErrorClasses: which of Meta's answers are retried, which are of the setup, and
// which refuse events (SPEC §9; codes from Meta's Graph API error reference).
func TestErrorClasses(t *testing.T) {
	for _, tc := range []struct {
		e              Error
		retry, account bool
	}{
		{Error{Transport: errors.New("connection refused")}, true, false},
		{Error{Status: 500, Code: 1}, true, false},
		{Error{Status: 503, Code: 2}, true, false},
		{Error{Status: 429}, true, false},
		{Error{Status: 400, Code: 4}, true, false},
		{Error{Status: 400, Code: 17}, true, false},
		{Error{Status: 400, Code: 613}, true, false},
		{Error{Status: 400, Code: 80000}, true, false},
		{Error{Status: 400, Code: 80014}, true, false},
		{Error{Status: 400, Code: 80015}, false, false},
		{Error{Status: 401, Code: 190}, false, true},
		{Error{Status: 403, Code: 10}, false, true},
		{Error{Status: 400, Code: 100, Subcode: 33}, false, true},
		{Error{Status: 400, Code: 100, Subcode: 2804087}, false, false},
		{Error{Status: 400, Code: 100, Subcode: 2804066}, false, false},
		{Error{Status: 400, Code: 100, Subcode: 2804116}, false, false},
	} {
		if tc.e.Retryable() != tc.retry || tc.e.Account() != tc.account {
			t.Errorf("%+v: retryable %v account %v, want %v %v", tc.e, tc.e.Retryable(), tc.e.Account(), tc.retry, tc.account)
		}
	}
}

// TestAnswerError: Meta's error object, its Retry-After and a 200 without events_received
// become an *Error that names what Meta said; the token never appears in it.
func TestAnswerError(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/2/events") {
			w.Write([]byte(`{"messages":[]}`))
			return
		}
		w.Header().Set("Retry-After", "7")
		w.WriteHeader(400)
		w.Write([]byte(`{"error":{"message":"Invalid parameter","type":"OAuthException","code":100,"error_subcode":2804087,"error_user_title":"Messaging Event Invalid Ctwa Clid","fbtrace_id":"AbC"}}`))
	}))
	defer srv.Close()
	c := New(srv.URL, DefaultVersion, "SECRET-TOKEN", time.Second)
	_, err := c.SendEvents(context.Background(), "1", []Event{{EventName: "Purchase"}}, "")
	var e *Error
	if !errors.As(err, &e) || e.Code != 100 || e.Subcode != 2804087 || e.RetryAfter != 7*time.Second || e.FBTrace != "AbC" {
		t.Fatalf("error = %#v", err)
	}
	if msg := err.Error(); msg != "graph API HTTP 400, code 100/2804087: Invalid parameter (Messaging Event Invalid Ctwa Clid) [fbtrace_id AbC]" {
		t.Errorf("message %q", msg)
	}
	_, err = c.SendEvents(context.Background(), "2", []Event{{EventName: "Purchase"}}, "")
	if err == nil || !strings.Contains(err.Error(), "events_received") || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("a 200 without events_received: %v", err)
	}
}
