// Package metaapi is the sidecar's client of Meta's Graph API: the Conversions API for
// Business Messaging (a WABA's dataset, and events sent to it). It speaks HTTP and JSON
// only; what to send and when is engine's (conversions.go).
package metaapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	json "github.com/goccy/go-json"
)

// DefaultVersion is the Graph API version used unless -graph-version says otherwise.
const DefaultVersion = "v23.0"

// DefaultTimeout is Meta's advice for Conversions API calls: most answer within 600 ms.
const DefaultTimeout = 1500 * time.Millisecond

// InsightsTimeout bounds a Marketing API call: a page of insights can take seconds, and
// Meta answers a request too large for it with an error (then the async report) within it.
const InsightsTimeout = time.Minute

// maxAnswer bounds what is read of an answer: a page of 500 insights rows is ~200 KB.
const maxAnswer = 8 << 20

// Client calls one Graph API (base URL and version) with one access token.
type Client struct {
	base, version, token string
	http                 *http.Client

	// Marketing API pacing (ads.go): the wait at usage near 100 %, the poll interval of
	// an async report, and the sleep used for both (tests record it instead).
	PaceMax   time.Duration
	PollEvery time.Duration
	Sleep     func(ctx context.Context, d time.Duration) error

	mu        sync.Mutex
	usage     Usage  // of the last answer
	tokenFile string // read for every call when set (ReadTokenFrom)
}

// ReadTokenFrom makes every call read the token from path (-meta-token-file), so a token
// replaced in the file is used without a restart; a file that cannot be read leaves the
// token New was given.
func (c *Client) ReadTokenFrom(path string) { c.tokenFile = path }

// Token is the token the next call sends.
func (c *Client) Token() string {
	if c.tokenFile != "" {
		if b, err := os.ReadFile(c.tokenFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return string(bytes.TrimSpace(b))
		}
	}
	return c.token
}

// New returns a client of the Graph API at base (e.g. https://graph.facebook.com).
func New(base, version, token string, timeout time.Duration) *Client {
	return &Client{base: strings.TrimSuffix(base, "/"), version: version, token: token,
		http: &http.Client{Timeout: timeout}, PaceMax: time.Minute, PollEvery: 5 * time.Second}
}

// Event is a Conversions API event of the business-messaging channel.
type Event struct {
	EventName        string      `json:"event_name"`
	EventTime        int64       `json:"event_time"` // unix seconds
	EventID          string      `json:"event_id"`
	ActionSource     string      `json:"action_source"`     // always business_messaging
	MessagingChannel string      `json:"messaging_channel"` // always whatsapp
	UserData         UserData    `json:"user_data"`
	CustomData       *CustomData `json:"custom_data,omitempty"`
}

// UserData names the click the conversion belongs to; the click id is sent as is.
type UserData struct {
	CtwaClid string `json:"ctwa_clid"`
	WABA     string `json:"whatsapp_business_account_id"`
}

// CustomData is a purchase's value, in currency units.
type CustomData struct {
	Currency string  `json:"currency"`
	Value    float64 `json:"value"`
}

// MaxEvents is the most events one request may carry.
const MaxEvents = 1000

// SendEvents posts events to dataset and returns how many Meta says it received. Meta
// answers 200 even when it drops events: the caller compares received with len(events).
// testCode, when set, sends them to the dataset's Test Events instead.
func (c *Client) SendEvents(ctx context.Context, dataset string, events []Event, testCode string) (received int, err error) {
	body := struct {
		Data     []Event `json:"data"`
		TestCode string  `json:"test_event_code,omitempty"`
	}{events, testCode}
	var ans struct {
		Received *int `json:"events_received"`
	}
	if err := c.call(ctx, http.MethodPost, dataset+"/events", body, &ans); err != nil {
		return 0, err
	}
	if ans.Received == nil {
		return 0, &Error{Status: 200, Message: "the answer has no events_received"}
	}
	return *ans.Received, nil
}

// Dataset returns the dataset of the WABA, creating it when the WABA has none. Meta
// answers the lookup as {"id": …} or {"data": [{"id": …}]}.
func (c *Client) Dataset(ctx context.Context, waba string) (string, error) {
	var found struct {
		ID   string `json:"id"`
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if err := c.call(ctx, http.MethodGet, waba+"/dataset", nil, &found); err != nil {
		return "", err
	}
	switch {
	case found.ID != "":
		return found.ID, nil
	case len(found.Data) > 0 && found.Data[0].ID != "":
		return found.Data[0].ID, nil
	}
	var created struct {
		ID string `json:"id"`
	}
	if err := c.call(ctx, http.MethodPost, waba+"/dataset", nil, &created); err != nil {
		return "", err
	}
	if created.ID == "" {
		return "", &Error{Status: 200, Message: "creating the dataset answered no id"}
	}
	return created.ID, nil
}

// call sends one request to path (under the version) with the bearer token and decodes a
// 200 answer into out; any other answer is an *Error.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	_, err := c.callURL(ctx, method, c.base+"/"+c.version+"/"+path, in, out)
	return err
}

// callURL is call for a whole URL (a paging.next link); it returns the answer's headers,
// which carry Meta's usage.
func (c *Client) callURL(ctx context.Context, method, u string, in, out any) (http.Header, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &Error{Transport: redact(err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return resp.Header, &Error{Status: resp.StatusCode, Transport: err}
	}
	if resp.StatusCode != http.StatusOK {
		return resp.Header, answerError(resp, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return resp.Header, &Error{Status: resp.StatusCode, Message: fmt.Sprintf("the answer is not the JSON expected: %v", err)}
	}
	return resp.Header, nil
}

// redact drops the URL from a transport error: a query could hold a token.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Error is a failed Graph API call: a transport failure, or Meta's error object.
type Error struct {
	Status     int // HTTP status; 0 for a transport failure
	Code       int
	Subcode    int
	Type       string
	Message    string
	UserTitle  string
	UserMsg    string
	FBTrace    string
	RetryAfter time.Duration // from a Retry-After header
	Transport  error         // timeout, refused connection, cut answer
}

func answerError(resp *http.Response, raw []byte) *Error {
	var ans struct {
		Error struct {
			Message   string `json:"message"`
			Type      string `json:"type"`
			Code      int    `json:"code"`
			Subcode   int    `json:"error_subcode"`
			UserTitle string `json:"error_user_title"`
			UserMsg   string `json:"error_user_msg"`
			FBTrace   string `json:"fbtrace_id"`
		} `json:"error"`
	}
	e := &Error{Status: resp.StatusCode}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		e.RetryAfter = time.Duration(secs) * time.Second
	}
	if json.Unmarshal(raw, &ans) != nil || ans.Error.Message == "" && ans.Error.Code == 0 {
		e.Message = fmt.Sprintf("HTTP %d without a Graph error object", resp.StatusCode)
		return e
	}
	a := ans.Error
	e.Code, e.Subcode, e.Type, e.Message, e.UserTitle, e.UserMsg, e.FBTrace =
		a.Code, a.Subcode, a.Type, a.Message, a.UserTitle, a.UserMsg, a.FBTrace
	return e
}

func (e *Error) Error() string {
	if e.Transport != nil {
		return "graph API unreachable: " + e.Transport.Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "graph API HTTP %d", e.Status)
	if e.Code != 0 {
		fmt.Fprintf(&b, ", code %d", e.Code)
		if e.Subcode != 0 {
			fmt.Fprintf(&b, "/%d", e.Subcode)
		}
	}
	b.WriteString(": " + e.Message)
	if e.UserTitle != "" {
		b.WriteString(" (" + e.UserTitle + ")")
	}
	if e.FBTrace != "" {
		b.WriteString(" [fbtrace_id " + e.FBTrace + "]")
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Transport }

// Retryable reports whether the same request may succeed later: a timeout or connection
// failure, a server error, or throttling (HTTP 429; codes 4, 17, 613, 80000–80014; the
// transient codes 1 and 2). Other client errors will not change by retrying (Meta's advice).
func (e *Error) Retryable() bool {
	switch {
	case e.Transport != nil, e.Status >= 500, e.Status == http.StatusTooManyRequests:
		return true
	case e.Code == 1, e.Code == 2, e.Code == 4, e.Code == 17, e.Code == 613:
		return true
	}
	return e.Code >= 80000 && e.Code <= 80014
}

// Account reports an error of the setup rather than of the events: an invalid or expired
// token (190), missing permission (10, 200–299), or a dataset that does not exist or
// cannot be reached with the token (100/33). Every event would fail the same way.
func (e *Error) Account() bool {
	return e.Code == 190 || e.Code == 10 || e.Code >= 200 && e.Code <= 299 || e.Code == 100 && e.Subcode == 33
}
