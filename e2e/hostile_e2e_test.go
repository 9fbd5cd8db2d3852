package e2e

// Hostile-input suite: a sidecar started through sidecar.Run with every credential set
// (API token, off-thread key, Meta app secret) is fed what an attacker or a broken client
// sends — oversize bodies and headers, malformed framing, deep JSON, invalid UTF-8, wrong
// content types, forged signatures, wrong credentials on every API route, path traversal
// in ids, spreadsheet formulas in exported values — and each answer is checked. Every
// input counts in hostileInputs (printed by TestMain).

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/VictoriaMetrics/metrics"
	json "github.com/goccy/go-json"
)

const (
	hostileToken  = "tok-7f3a9c1e5d"
	hostileKey    = "key-51be02aa9f"
	hostileSecret = "app-secret-0c4d"
)

// refusedByClose reports whether err is the server closing on a request it refused.
func refusedByClose(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) ||
		strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe")
}

// hostileSidecar runs the sidecar with every credential set and a 1 MiB body limit.
func hostileSidecar(t *testing.T) (*runSidecar, *stubUpstream) {
	t.Helper()
	up := startUpstream(t, echoUpstream)
	sc := startSidecar(t, "http://"+up.addr, "-api-token", hostileToken, "-api-key", hostileKey,
		"-app-secret", hostileSecret, "-max-body", "1MiB")
	return sc, up
}

// rawExchange writes req on a new connection while reading the answer, so that a server
// that answers and closes before the whole request is written is still heard.
func rawExchange(base, req string) (string, error) {
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	go io.WriteString(conn, req)
	resp, err := io.ReadAll(conn)
	if len(resp) > 0 {
		err = nil
	}
	return string(resp), err
}

func metaSignature(body []byte) string {
	mac := hmac.New(sha256.New, []byte(hostileSecret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// hostileSend sends one hostile request and counts it.
func hostileSend(method, url, contentType string, body []byte, header ...string) (int, http.Header, []byte, error) {
	hostileInputs.Add(1)
	return do(method, url, contentType, body, header...)
}

// sendWebhook posts body, signed with sig when not empty, and requires the upstream's
// echo: forwarded byte for byte, answered with the upstream's status.
func sendWebhook(t *testing.T, sc *runSidecar, contentType string, body []byte, header ...string) {
	t.Helper()
	status, _, got, err := hostileSend("POST", sc.webhook+"/webhook", contentType, body, header...)
	if err != nil || status != 201 || !bytes.Equal(got, append([]byte("echo:"), body...)) {
		t.Fatalf("webhook answered %d (%v) with %d bytes; want the upstream's 201 echo of all %d bytes",
			status, err, len(got), len(body))
	}
}

func signed(body []byte) []string { return []string{"X-Hub-Signature-256", metaSignature(body)} }

// authed calls the API with the right token and requires status want (0: any).
func authed(t *testing.T, sc *runSidecar, method, path, contentType string, body []byte, want int) []byte {
	t.Helper()
	status, _, got, err := do(method, sc.api+path, contentType, body, "Authorization", "Bearer "+hostileToken)
	if err != nil || (want != 0 && status != want) {
		t.Fatalf("%s %s: %d %v %.300s, want %d", method, path, status, err, got, want)
	}
	return got
}

// countEvents is the number of events of the fixture app on 2026-03-16.
func countEvents(t *testing.T, sc *runSidecar, filter string) int {
	t.Helper()
	var p eventsPage
	body := authed(t, sc, "GET", appPath+"/events?date_from=2026-03-16&date_to=2026-03-16&limit=1000"+filter, "", nil, 200)
	if err := json.Unmarshal(body, &p); err != nil {
		t.Fatal(err)
	}
	return p.TotalCount
}

// sumSamples sums every series of name whose labels contain label, in this process.
func sumSamples(name, label string) float64 {
	var b bytes.Buffer
	metrics.WritePrometheus(&b, false)
	sum := 0.0
	for line := range bytes.Lines(b.Bytes()) {
		if bytes.HasPrefix(line, []byte(name+"{")) && bytes.Contains(line, []byte(label)) {
			f := bytes.Fields(line)
			v, _ := strconv.ParseFloat(string(f[len(f)-1]), 64)
			sum += v
		}
	}
	return sum
}

// ---- webhook listener ----

func TestHostileWebhookLimits(t *testing.T) {
	sc, up := hostileSidecar(t)
	before := len(up.requests())
	const limit = 1 << 20

	t.Run("oversize body", func(t *testing.T) {
		// Refused on the announced length, before a byte of the body is read.
		hostileInputs.Add(1)
		resp, err := rawExchange(sc.webhook, fmt.Sprintf("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
			"Content-Length: %d\r\n\r\n", limit+1))
		if err != nil || !strings.HasPrefix(resp, "HTTP/1.1 413") {
			t.Fatalf("announced max-body+1: %.120q %v, want 413", resp, err)
		}
		// Sent in full, the sender gets the 413 or, when the listener closes while the
		// body is still coming, a reset: never an acknowledgement.
		status, _, _, err := hostileSend("POST", sc.webhook+"/webhook", "application/json", make([]byte, limit+1))
		if err == nil && status != 413 {
			t.Fatalf("body of max-body+1: %d, want 413", status)
		}
		// Chunked, so the size is known only while reading.
		chunk := strings.Repeat("x", 64<<10)
		var req strings.Builder
		req.WriteString("POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
		for range limit/len(chunk) + 1 {
			fmt.Fprintf(&req, "%x\r\n%s\r\n", len(chunk), chunk)
		}
		req.WriteString("0\r\n\r\n")
		hostileInputs.Add(1)
		if resp, err := rawExchange(sc.webhook, req.String()); err == nil && !strings.HasPrefix(resp, "HTTP/1.1 413") {
			t.Fatalf("chunked body over max-body: %.120q, want 413", resp)
		}
	})

	t.Run("oversize headers", func(t *testing.T) {
		many := make([]string, 0, 1200)
		for i := range 600 {
			many = append(many, fmt.Sprintf("X-Filler-%04d", i), strings.Repeat("v", 20))
		}
		for name, header := range map[string][]string{
			"one 17 KiB header":   {"X-Big", strings.Repeat("a", 17<<10)},
			"600 small headers":   many,
			"17 KiB cookie value": {"Cookie", "session=" + strings.Repeat("c", 17<<10)},
		} {
			status, _, _, err := hostileSend("POST", sc.webhook+"/webhook", "application/json", []byte("{}"), header...)
			// The listener answers 431 and closes; a client still writing its headers may
			// see the close as a reset instead. Either way nothing is forwarded (checked
			// at the end of the test).
			if err != nil && !refusedByClose(err) || err == nil && status != 431 && status != 400 {
				t.Errorf("%s: %d %v, want 431 or 400 (or the connection closed on it)", name, status, err)
			}
		}
		status, _, _, err := hostileSend("GET", sc.webhook+"/webhook?q="+strings.Repeat("q", 17<<10), "", nil)
		if err != nil && !refusedByClose(err) || err == nil && status != 431 && status != 414 && status != 400 {
			t.Errorf("17 KiB request line: %d %v, want 431, 414 or 400 (or the connection closed on it)", status, err)
		}
	})

	t.Run("malformed framing", func(t *testing.T) {
		for name, req := range map[string]string{
			"negative length":      "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
			"non-numeric length":   "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n{}",
			"huge length":          "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n{}",
			"bad chunk size":       "POST /webhook HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
			"no version":           "POST /webhook\r\nHost: x\r\n\r\n",
			"header without colon": "POST /webhook HTTP/1.1\r\nHost: x\r\nNoColonHere\r\nContent-Length: 2\r\n\r\n{}",
			"space before colon":   "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length : 2\r\n\r\n{}",
			"NUL in header":        "POST /webhook HTTP/1.1\r\nHost: x\r\nX-A\x00b: 1\r\nContent-Length: 2\r\n\r\n{}",
			"not HTTP":             "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello\r\n\r\n",
		} {
			hostileInputs.Add(1)
			resp := rawRequest(t, sc.webhook, req)
			if resp != "" && !regexp.MustCompile(`^HTTP/1\.1 4\d\d `).MatchString(resp) {
				t.Errorf("%s: answered %.80q, want a 4xx or a closed connection", name, resp)
			}
		}
		// Content-Length and Transfer-Encoding together (request smuggling): whatever the
		// listener makes of it, the upstream gets requests framed by the sidecar alone —
		// no Transfer-Encoding, one upstream request per answer the sender got.
		n0 := len(up.requests())
		hostileInputs.Add(1)
		resp := rawRequest(t, sc.webhook, "POST /webhook HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"+
			"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
		answers := strings.Count(resp, "HTTP/1.1 ")
		got := up.requests()[n0:]
		if len(got) != answers-strings.Count(resp, "HTTP/1.1 4") {
			t.Errorf("CL+TE: sender got %d answers (%.200q), upstream %d requests", answers, resp, len(got))
		}
		for _, r := range got {
			if strings.Contains(strings.ToLower(r.rawHeaders), "transfer-encoding") {
				t.Errorf("upstream got a Transfer-Encoding header: %q", r.rawHeaders)
			}
		}
		before += len(got) // forwarded as separate, well-framed requests: allowed
	})

	if got := len(up.requests()); got != before {
		t.Fatalf("upstream got %d requests that the listener should have refused", got-before)
	}
}

func TestHostileWebhookPayloads(t *testing.T) {
	sc, up := hostileSidecar(t)
	at := day(2026, 3, 16).Add(10 * time.Hour)

	t.Run("deep JSON", func(t *testing.T) {
		undecodable0 := sumSamples("ctwa_sidecar_webhooks_total", `result="undecodable"`)
		events0 := countEvents(t, sc, "")
		deep := []string{
			`{"object":"whatsapp_business_account","entry":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `}`,
			`{"object":"whatsapp_business_account","entry":[{"changes":[{"value":` + strings.Repeat(`{"a":`, 100000) + `1` +
				strings.Repeat("}", 100000) + `}]}]}`,
			strings.Repeat("[", 200000),
		}
		for _, body := range deep {
			sendWebhook(t, sc, "application/json", []byte(body), signed([]byte(body))...)
		}
		if got := sumSamples("ctwa_sidecar_webhooks_total", `result="undecodable"`) - undecodable0; got != float64(len(deep)) {
			t.Errorf("undecodable webhooks rose by %.0f, want %d", got, len(deep))
		}
		if n := countEvents(t, sc, ""); n != events0 {
			t.Errorf("deep JSON recorded %d events", n-events0)
		}
	})

	t.Run("invalid UTF-8", func(t *testing.T) {
		// Forwarded byte for byte; recorded, with each invalid byte read as U+FFFD, so
		// that the API answers valid JSON and valid CSV; a retry is a duplicate.
		// Marshalling would replace the bytes itself: put them in afterwards.
		body := messagesWebhook(buttonMsg("4915900000001", at, "PAY@@LOAD", "Yes @( please"))
		body = bytes.Replace(body, []byte("PAY@@LOAD"), []byte("PAY\xff\xfeLOAD"), 1)
		body = bytes.Replace(body, []byte("Yes @( please"), []byte("Yes \xc3( please"), 1)
		if utf8.Valid(body) {
			t.Fatal("the test body is valid UTF-8")
		}
		dup0 := sumSamples("ctwa_sidecar_webhooks_total", `result="duplicate"`)
		sendWebhook(t, sc, "application/json", body, signed(body)...)
		sendWebhook(t, sc, "application/json", body, signed(body)...)
		if got := up.requests()[len(up.requests())-1].body; !bytes.Equal(got, body) {
			t.Fatal("the upstream did not get the bytes as sent")
		}
		if got := sumSamples("ctwa_sidecar_webhooks_total", `result="duplicate"`) - dup0; got != 1 {
			t.Errorf("the retry counted %.0f duplicates, want 1", got)
		}
		raw := authed(t, sc, "GET", appPath+"/events?date_from=2026-03-16&date_to=2026-03-16&event_type=button", "", nil, 200)
		var p eventsPage
		if err := json.Unmarshal(raw, &p); err != nil || !utf8.Valid(raw) {
			t.Fatalf("events answer is not valid UTF-8 JSON (%v): %q", err, raw)
		}
		if len(p.Data) != 1 || p.Data[0].TypeID != "PAY\uFFFD\uFFFDLOAD" || p.Data[0].TypeValue != "Yes \uFFFD( please" {
			t.Fatalf("button events %+v, want one with U+FFFD for each invalid byte", p.Data)
		}
		csvRaw := authed(t, sc, "GET", appPath+"/events/export?date_from=2026-03-16&date_to=2026-03-16", "", nil, 200)
		if !utf8.Valid(csvRaw) || !bytes.Contains(csvRaw, []byte("PAY\uFFFD\uFFFDLOAD")) {
			t.Fatalf("export is not valid UTF-8 with the replaced bytes: %q", csvRaw)
		}
	})

	t.Run("any content type is forwarded unchanged", func(t *testing.T) {
		for i, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=xyz",
			"application/json; charset=latin1", "application/xml", ""} {
			body := messagesWebhook(textMsg(fmt.Sprintf("49159100000%02d", i), at, "hello"))
			sendWebhook(t, sc, ct, body, signed(body)...)
			last := up.requests()[len(up.requests())-1]
			if ct != "" && !strings.Contains(last.rawHeaders, "Content-Type: "+ct+"\r\n") {
				t.Errorf("content type %q reached the upstream as %q", ct, last.rawHeaders)
			}
		}
		// Recording reads the body, not the label: each one counted once.
		if n := countEvents(t, sc, "&event_type=conversation"); n < 6 {
			t.Errorf("%d conversations after six signed webhooks under various content types", n)
		}
	})

	t.Run("missing and invalid signatures", func(t *testing.T) {
		body := messagesWebhook(textMsg("4915920000001", at, "forged?").fromAd("120299999999999999"))
		other := messagesWebhook(textMsg("4915920000002", at, "other"))
		good := metaSignature(body)
		mac := hmac.New(sha256.New, []byte("not-the-secret"))
		mac.Write(body)
		cases := map[string][]string{
			"none":                   nil,
			"empty value":            {"X-Hub-Signature-256", ""},
			"empty hex":              {"X-Hub-Signature-256", "sha256="},
			"not hex":                {"X-Hub-Signature-256", "sha256=" + strings.Repeat("zz", 32)},
			"wrong secret":           {"X-Hub-Signature-256", "sha256=" + hex.EncodeToString(mac.Sum(nil))},
			"another body's":         {"X-Hub-Signature-256", metaSignature(other)},
			"truncated":              {"X-Hub-Signature-256", good[:len(good)-2]},
			"extended":               {"X-Hub-Signature-256", good + "00"},
			"sha1 prefix":            {"X-Hub-Signature-256", "sha1=" + good[7:]},
			"base64 of the mac":      {"X-Hub-Signature-256", "sha256=" + base64.StdEncoding.EncodeToString(must(hex.DecodeString(good[7:])))},
			"in the legacy header":   {"X-Hub-Signature", good},
			"in another header name": {"X-Signature-256", good},
		}
		bad0 := sumSamples("ctwa_sidecar_webhooks_total", `result="bad_signature"`) + sumSamples("ctwa_sidecar_webhooks_total", `result="unsigned"`)
		n0 := len(up.requests())
		for name, h := range cases {
			sendWebhook(t, sc, "application/json", body, h...)
			if got := countEvents(t, sc, "&ad_id=120299999999999999"); got != 0 {
				t.Fatalf("signature %s: the webhook was recorded", name)
			}
		}
		if got := len(up.requests()) - n0; got != len(cases) {
			t.Errorf("upstream got %d of %d unsigned or forged webhooks: all must be forwarded", got, len(cases))
		}
		if got := sumSamples("ctwa_sidecar_webhooks_total", `result="bad_signature"`) + sumSamples("ctwa_sidecar_webhooks_total", `result="unsigned"`) - bad0; got != float64(len(cases)) {
			t.Errorf("unsigned + bad_signature rose by %.0f, want %d", got, len(cases))
		}
		// The genuine signature, in upper-case hex under an On-Premises-style header
		// name, is recorded: the refusals above were for the signature alone.
		sendWebhook(t, sc, "application/json", body, "X_HUB_SIGNATURE_256", "sha256="+strings.ToUpper(good[7:]))
		if got := countEvents(t, sc, "&ad_id=120299999999999999"); got != 1 {
			t.Fatalf("the genuinely signed webhook left %d events, want 1", got)
		}
	})
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// ---- API credentials ----

// apiRoutes are the routes of the local API as sidecar/recording.go registers them (proxy/*_api.go,
// proxy/dashboard.go), with their placeholders filled in. proxy/auth_routes_test.go
// enumerates the router's own table and fails when a route is added without auth.
var apiRoutes = []struct {
	method, path string
	body         string // a valid body for the write routes: refused only for the credentials
}{
	{"GET", "/v1/clients/default/facebook-accounts", ""},
	{"GET", "/v1/clients/default/facebook-accounts/fb-1", ""},
	{"GET", appPath + "/ads/account/act_1", ""},
	{"GET", appPath + "/ads/120214567890123456", ""},
	{"GET", appPath + "/ads/120214567890123456/insights?date_from=2026-03-16&date_to=2026-03-16", ""},
	{"GET", appPath + "/campaigns/account/act_1", ""},
	{"GET", appPath + "/campaigns/c-1", ""},
	{"GET", appPath + "/campaigns/c-1/insights?date_from=2026-03-16&date_to=2026-03-16", ""},
	{"POST", appPath + "/ads/account/act_1/refresh", ""},
	{"POST", appPath + "/ads/120214567890123456/refresh", ""},
	{"POST", appPath + "/campaigns/account/act_1/refresh", ""},
	{"POST", appPath + "/campaigns/c-1/refresh", ""},
	{"POST", appPath + "/converted_events", `{"campaign_id":"c-1","type":"keyword","type_value":"price"}`},
	{"GET", appPath + "/event_types?date_from=2026-03-16&date_to=2026-03-16", ""},
	{"GET", appPath + "/events?date_from=2026-03-16&date_to=2026-03-16", ""},
	{"GET", appPath + "/events/export?date_from=2026-03-16&date_to=2026-03-16", ""},
	{"GET", appPath + "/standalone-events-stats", ""},
	{"GET", appPath + "/event_groups", ""},
	{"POST", appPath + "/event_groups", `{"type":"keyword","type_value":"price"}`},
	{"PATCH", appPath + "/event_groups/1", `{"status":"archived"}`},
	{"GET", appPath + "/sources", ""},
	{"POST", appPath + "/sources", `{"name":"Billboard A","phrase":"billboard a"}`},
	{"GET", appPath + "/contacts/export", ""},
	{"POST", appPath + "/ads/import", `{"ad_account":{"id":"act_1","name":"A","currency":"EUR"},` +
		`"facebook_account":{"id":"fb-1","email":"a@example.com"},"rows":[{"date":"2026-03-16","campaign_id":"c-1",` +
		`"ad_id":"120214567890123456","impressions":100,"clicks":10,"spend":5}]}`},
	{"GET", "/v1/clients/default/no-such-route", ""}, // unknown /v1 paths need the token too
}

func TestHostileAPICredentials(t *testing.T) {
	sc, _ := hostileSidecar(t)
	// Data a leak would show: a lead, an ad and a click id.
	fixture := cloudFixture(t, "text_ctwa_referral")
	sendWebhook(t, sc, "application/json", fixture, signed(fixture)...)
	secrets := []string{leadLena, adSpring, "ARAkLkA8rmlFeiCktEJQ", hostileToken, hostileKey}

	wrong := map[string][]string{
		"no credentials":       nil,
		"wrong token":          {"Authorization", "Bearer tok-guess"},
		"empty bearer":         {"Authorization", "Bearer "},
		"token prefix":         {"Authorization", "Bearer " + hostileToken[:len(hostileToken)-1]},
		"token extended":       {"Authorization", "Bearer " + hostileToken + "0"},
		"token in upper case":  {"Authorization", "Bearer " + strings.ToUpper(hostileToken)},
		"two spaces":           {"Authorization", "Bearer  " + hostileToken},
		"basic scheme":         {"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+hostileToken))},
		"token scheme":         {"Authorization", "Token " + hostileToken},
		"no scheme":            {"Authorization", hostileToken},
		"off-thread key":       {"Authorization", "Bearer " + hostileKey},
		"token in another hdr": {"X-Api-Token", hostileToken},
		"token as cookie":      {"Cookie", "token=" + hostileToken},
	}
	for _, r := range apiRoutes {
		for name, h := range wrong {
			status, hdr, body, err := hostileSend(r.method, sc.api+r.path, "application/json", []byte(r.body), h...)
			if err != nil || status != 401 || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with %s: %d %v, want 401 with WWW-Authenticate", r.method, r.path, name, status, err)
				continue
			}
			var e struct{ Error struct{ Code string } }
			if json.Unmarshal(body, &e) != nil || e.Error.Code != "unauthorized" {
				t.Errorf("%s %s with %s: body %q is not the JSON unauthorized error", r.method, r.path, name, body)
			}
			for _, s := range secrets {
				if bytes.Contains(body, []byte(s)) {
					t.Errorf("%s %s with %s: the 401 body shows %q", r.method, r.path, name, s)
				}
			}
		}
		// Token in the query string: still no.
		sep := "?"
		if strings.Contains(r.path, "?") {
			sep = "&"
		}
		if status, _, _, _ := hostileSend(r.method, sc.api+r.path+sep+"access_token="+hostileToken+"&token="+hostileToken,
			"application/json", []byte(r.body)); status != 401 {
			t.Errorf("%s %s with the token in the query: %d, want 401", r.method, r.path, status)
		}
	}

	// Nothing the refused writes asked for happened.
	var groups, sources struct{ Data []map[string]any }
	json.Unmarshal(authed(t, sc, "GET", appPath+"/event_groups", "", nil, 200), &groups)
	json.Unmarshal(authed(t, sc, "GET", appPath+"/sources", "", nil, 200), &sources)
	accounts := authed(t, sc, "GET", "/v1/clients/default/facebook-accounts", "", nil, 200)
	for _, s := range sources.Data {
		if s["type"] == "custom" {
			t.Errorf("a refused write defined source %v", s)
		}
	}
	if len(groups.Data) != 0 || strings.TrimSpace(string(accounts)) != "[]" {
		t.Errorf("refused writes left groups %v and accounts %s", groups.Data, accounts)
	}

	// With the right token (and a lower-case scheme) every route is there: the 401s above
	// were for the credentials, not for a path the router does not know.
	for _, r := range apiRoutes[:len(apiRoutes)-1] {
		status, _, body, err := do(r.method, sc.api+r.path, "application/json", []byte(r.body), "Authorization", "bearer "+hostileToken)
		if err != nil || status == 401 || status == 405 || status >= 500 || bytes.Contains(body, []byte("no route for")) {
			t.Errorf("%s %s with the token: %d %v %.200s", r.method, r.path, status, err, body)
		}
	}
	json.Unmarshal(authed(t, sc, "GET", appPath+"/event_groups", "", nil, 200), &groups)
	if len(groups.Data) == 0 {
		t.Error("the authorized POST event_groups did not define a group: the refused one proved nothing")
	}
}

func TestHostileOffThreadKeys(t *testing.T) {
	sc, _ := hostileSidecar(t)
	path := "/clients/default/external-events"
	event := func(key string) []byte {
		return fmt.Appendf(nil, `{%s"lead_phone":"+49 170 1234567","action":"purchase","revenue":{"amount":49.9,"currency":"EUR"},"event_time":"2026-03-16T10:00:00Z"}`, key)
	}
	stored := func() float64 {
		return sumSamples("ctwa_sidecar_offthread_events_total", `result="attributed"`) +
			sumSamples("ctwa_sidecar_offthread_events_total", `result="unattributed"`)
	}
	stored0 := stored()
	cases := []struct {
		name   string
		body   []byte
		header []string
	}{
		{"no key", event(""), nil},
		{"wrong body key", event(`"api_key":"nope",`), nil},
		{"empty body key", event(`"api_key":"",`), nil},
		{"key in upper case", event(`"api_key":"` + strings.ToUpper(hostileKey) + `",`), nil},
		{"key with a space", event(`"api_key":"` + hostileKey + ` ",`), nil},
		{"key prefix", event(`"api_key":"` + hostileKey[:5] + `",`), nil},
		{"API token as key", event(`"api_key":"` + hostileToken + `",`), nil},
		{"API token as bearer", event(""), []string{"Authorization", "Bearer " + hostileToken}},
		{"wrong bearer", event(""), []string{"Authorization", "Bearer nope"}},
		{"basic scheme", event(""), []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(hostileKey))}},
		{"wrong body key, right bearer", event(`"api_key":"nope",`), []string{"Authorization", "Bearer " + hostileKey}},
		{"key nested wrong", []byte(`{"external_event":{"api_key":"nope","lead_phone":"+491701234567","action":"purchase"}}`), nil},
	}
	for _, p := range []string{path, "/v1" + path} {
		for _, c := range cases {
			status, _, body, err := hostileSend("POST", sc.api+p, "application/json", c.body, c.header...)
			if err != nil || status != 401 || !bytes.Contains(body, []byte(`"unauthorized"`)) {
				t.Errorf("%s %s: %d %v %s, want 401", p, c.name, status, err, body)
			}
		}
	}
	if got := stored() - stored0; got != 0 {
		t.Fatalf("%.0f off-thread events stored with wrong keys", got)
	}
	// The right key, in the body or as bearer, is accepted: the refusals were for the key.
	if status, _, body, _ := do("POST", sc.api+path, "application/json", event(`"api_key":"`+hostileKey+`",`)); status != 201 {
		t.Fatalf("right body key: %d %s", status, body)
	}
	if status, _, body, _ := do("POST", sc.api+path, "application/json", event(""), "Authorization", "Bearer "+hostileKey); status != 201 {
		t.Fatalf("right bearer key: %d %s", status, body)
	}
}

// ---- API bodies ----

func TestHostileAPIBodies(t *testing.T) {
	sc, _ := hostileSidecar(t)
	writes := []struct{ method, path string }{
		{"POST", appPath + "/event_groups"},
		{"PATCH", appPath + "/event_groups/1"},
		{"POST", appPath + "/sources"},
		{"POST", appPath + "/converted_events"},
		{"POST", appPath + "/ads/import"},
	}
	deepArrays := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	deepObjects := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	bad := []struct {
		name, contentType, body string
		want                    []int
	}{
		{"deep arrays", "application/json", deepArrays, []int{400}},
		{"deep objects", "application/json", deepObjects, []int{400}},
		{"deep value in a field", "application/json", `{"type":` + deepArrays + `}`, []int{400}},
		{"truncated", "application/json", `{"type":"keyword"`, []int{400}},
		{"empty", "application/json", ``, []int{400}},
		{"null", "application/json", `null`, []int{400, 404}},
		{"array", "application/json", `[]`, []int{400}},
		{"wrong types", "application/json", `{"type":1,"name":[],"status":{},"rows":"x","ad_account":7}`, []int{400}},
		{"text/plain", "text/plain", `{"type":"keyword","type_value":"price"}`, []int{415}},
		{"xml", "application/xml", `<type>keyword</type>`, []int{415}},
		{"form", "application/x-www-form-urlencoded", `type=keyword&type_value=price`, []int{415}},
		{"multipart", "multipart/form-data; boundary=xyz", "--xyz\r\nContent-Disposition: form-data; name=\"type\"\r\n\r\nkeyword\r\n--xyz--\r\n", []int{415}},
		{"json-ish", "application/jsonx", `{"type":"keyword","type_value":"price"}`, []int{415}},
	}
	for _, w := range writes {
		for _, b := range bad {
			want := b.want
			if strings.HasSuffix(w.path, "/ads/import") && b.name == "null" {
				want = []int{400}
			}
			status, h, body, err := hostileSend(w.method, sc.api+w.path, b.contentType, []byte(b.body), "Authorization", "Bearer "+hostileToken)
			if err != nil || !slices.Contains(want, status) {
				t.Errorf("%s %s %s: %d %v %.200s, want one of %v", w.method, w.path, b.name, status, err, body, want)
				continue
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if !strings.HasPrefix(h.Get("Content-Type"), "application/json") || json.Unmarshal(body, &e) != nil || e.Error.Code == "" || !utf8.Valid(body) {
				t.Errorf("%s %s %s: %q is not the JSON error form", w.method, w.path, b.name, body)
			}
		}
	}
	// Nothing was defined by any of them.
	defer func() {
		// Odd but well-formed text — invalid UTF-8, NUL — is data: refused or stored, the
		// answer is valid UTF-8 JSON and never a server error.
		for _, w := range writes {
			for _, body := range []string{
				"{\"type\":\"keyword\",\"type_value\":\"\xff\xfe\",\"name\":\"\xc3(\",\"phrase\":\"\xff\",\"status\":\"\xff\"}",
				`{"type":"keyword","type_value":"a\u0000b","name":"\u0000","phrase":"\u0000x","campaign_id":"\u0000"}`,
			} {
				status, _, got, err := hostileSend(w.method, sc.api+w.path, "application/json", []byte(body), "Authorization", "Bearer "+hostileToken)
				if err != nil || status >= 500 || !json.Valid(got) || !utf8.Valid(got) {
					t.Errorf("%s %s %q: %d %v %q", w.method, w.path, body, status, err, got)
				}
			}
		}
	}()
	var groups, sources struct{ Data []map[string]any }
	json.Unmarshal(authed(t, sc, "GET", appPath+"/event_groups", "", nil, 200), &groups)
	json.Unmarshal(authed(t, sc, "GET", appPath+"/sources", "", nil, 200), &sources)
	if len(groups.Data) != 0 {
		t.Errorf("hostile bodies defined groups %v", groups.Data)
	}
	for _, s := range sources.Data {
		if s["type"] == "custom" {
			t.Errorf("hostile bodies defined source %v", s)
		}
	}

	// Off-thread: over 64 KiB is 413 before anything else; deep JSON under it is 400.
	ot := "/clients/default/external-events"
	auth := []string{"Authorization", "Bearer " + hostileKey}
	for _, c := range []struct {
		name, contentType, body string
		want                    int
	}{
		{"100 000 deep arrays (over 64 KiB)", "application/json", deepArrays, 413},
		{"30 000 deep arrays", "application/json", strings.Repeat("[", 30000) + strings.Repeat("]", 30000), 400},
		{"deep attribute", "application/json", `{"lead_phone":"+491701234567","action":"purchase","attributes":{"a":` +
			strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`, 400},
		{"action not a string", "application/json", `{"lead_phone":"+491701234567","action":["purchase"]}`, 400},
		{"NaN amount", "application/json", `{"lead_phone":"+491701234567","action":"purchase","revenue":{"amount":NaN}}`, 400},
		{"text/plain", "text/plain", `{"lead_phone":"+491701234567","action":"purchase"}`, 415},
		{"form", "application/x-www-form-urlencoded", `lead_phone=491701234567&action=purchase`, 415},
	} {
		status, _, body, err := hostileSend("POST", sc.api+ot, c.contentType, []byte(c.body), auth...)
		if err != nil || status != c.want || !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("off-thread %s: %d %v %.200s, want %d", c.name, status, err, body, c.want)
		}
	}
}

// ---- ids and paths ----

func TestHostilePathsAndIDs(t *testing.T) {
	sc, up := hostileSidecar(t)
	// An ad whose id is a traversal attempt, recorded as plain data.
	at := day(2026, 3, 16).Add(11 * time.Hour)
	body := messagesWebhook(textMsg("4915930000001", at, "hi").fromAd("../../etc/passwd"))
	sendWebhook(t, sc, "application/json", body, signed(body)...)

	ids := []string{
		"..", "%2e%2e", "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "..%252F..%252Fetc%252Fpasswd",
		"..%5C..%5Cwindows%5Cwin.ini", "%00", "a%00b", "%0d%0aX-Injected:%201", "%ff%fe", "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
		"%22%7D%2C%22x%22%3A%22", strings.Repeat("a", 4000), "CON", "~root", "%25", "%2F", "main.go",
	}
	routes := []struct{ method, pattern string }{
		{"GET", "/v1/clients/{}/facebook-accounts"},
		{"GET", "/v1/clients/default/facebook-accounts/{}"},
		{"GET", "/v1/clients/default/apps/{}/events?date_from=2026-03-16&date_to=2026-03-16"},
		{"GET", "/v1/clients/default/apps/{}/events/export?date_from=2026-03-16&date_to=2026-03-16"},
		{"GET", "/v1/clients/default/apps/{}/contacts/export"},
		{"GET", "/v1/clients/default/apps/{}/sources"},
		{"GET", appPath + "/ads/{}"},
		{"GET", appPath + "/ads/{}/insights?date_from=2026-03-16&date_to=2026-03-16"},
		{"GET", appPath + "/ads/account/{}"},
		{"GET", appPath + "/campaigns/{}"},
		{"GET", appPath + "/campaigns/account/{}"},
		{"POST", appPath + "/ads/{}/refresh"},
		{"PATCH", appPath + "/event_groups/{}"},
		{"GET", appPath + "/events?date_from=2026-03-16&date_to=2026-03-16&ad_id={}"},
		{"GET", appPath + "/events?date_from={}&date_to={}"},
		{"GET", appPath + "/events?date_from=2026-03-16&date_to=2026-03-16&event_type={}"},
		{"GET", appPath + "/events?date_from=2026-03-16&date_to=2026-03-16&event_type_id={}"},
		{"GET", appPath + "/contacts/export?source_id={}&event_type={}"},
		{"GET", "/assets/{}"},
	}
	leaks := []string{"root:x:0:0", "package main", "[fonts]", hostileToken, hostileKey, hostileSecret}
	for _, r := range routes {
		for _, id := range ids {
			path := strings.ReplaceAll(r.pattern, "{}", id)
			hostileInputs.Add(1)
			req, err := http.NewRequest(r.method, sc.api+path, strings.NewReader(`{"status":"archived"}`))
			if err != nil {
				t.Fatal(err)
			}
			req.URL.Opaque = strings.SplitN(path, "?", 2)[0] // sent as written, not re-escaped
			req.Header.Set("Authorization", "Bearer "+hostileToken)
			req.Header.Set("Content-Type", "application/json")
			resp, err := testClient.Do(req)
			if err != nil {
				t.Errorf("%s %s: %v", r.method, path, err)
				continue
			}
			got := new(bytes.Buffer)
			got.ReadFrom(resp.Body)
			resp.Body.Close()
			ct := resp.Header.Get("Content-Type")
			switch {
			case resp.StatusCode >= 500:
				t.Errorf("%s %.120s: %d %.200s", r.method, path, resp.StatusCode, got)
			case resp.Header.Get("X-Injected") != "":
				t.Errorf("%s %.120s: a header was injected", r.method, path)
			case resp.StatusCode >= 300 && !strings.HasPrefix(ct, "application/json"):
				t.Errorf("%s %.120s: %d with content type %q, want a JSON error", r.method, path, resp.StatusCode, ct)
			case strings.HasPrefix(ct, "application/json") && !json.Valid(got.Bytes()):
				t.Errorf("%s %.120s: invalid JSON %.200q", r.method, path, got)
			}
			for _, s := range leaks {
				if strings.Contains(got.String(), s) {
					t.Errorf("%s %.120s: the answer holds %q", r.method, path, s)
				}
			}
			// A lookup of one object by a hostile id finds nothing.
			if lookup := strings.HasSuffix(r.pattern, "/ads/{}") || strings.HasSuffix(r.pattern, "/campaigns/{}") ||
				strings.Contains(r.pattern, "/ads/{}/insights") || strings.HasSuffix(r.pattern, "/event_groups/{}") ||
				strings.HasSuffix(r.pattern, "/facebook-accounts/{}"); lookup && resp.StatusCode < 400 &&
				id != "%2F" { // ".../facebook-accounts/%2F" is the list route once the path is cleaned
				t.Errorf("%s %.120s: 200 %.200s for a hostile id", r.method, path, got)
			}
		}
	}
	// The dashboard's files never come from outside its embedded folder.
	for _, p := range []string{"/assets/..%2F..%2Fmain.go", "/assets/..%2Fdashboard.go", "/assets/%2e%2e%2f%2e%2e%2fgo.mod", "/assets/....//....//go.mod"} {
		status, _, got, _ := hostileSend("GET", sc.api+p, "", nil)
		if status == 200 && (bytes.Contains(got, []byte("package ")) || bytes.Contains(got, []byte("module "))) {
			t.Errorf("GET %s served a source file", p)
		}
	}
	// The webhook listener forwards a traversal path to the fixed upstream as written, and
	// an absolute-form target does not pick the destination.
	n0 := len(up.requests())
	hostileInputs.Add(2)
	rawRequest(t, sc.webhook, "POST /webhook/../../etc/passwd HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	rawRequest(t, sc.webhook, "POST http://203.0.113.7:9/steal?x=1 HTTP/1.1\r\nHost: 203.0.113.7:9\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
	got := up.requests()[n0:]
	if len(got) != 2 || got[0].uri != "/webhook/../../etc/passwd" || got[1].uri != "/steal?x=1" || !strings.Contains(got[1].rawHeaders, "Host: "+up.addr+"\r\n") {
		t.Errorf("upstream got %+v; want both requests, paths as written, Host the upstream's", got)
	}
}

// TestHostileNULInAppID records a webhook whose phone_number_id carries a NUL byte
// followed by more text. Store keys separate fields with NUL, so such an id must not let
// a webhook write into another app's key range.
func TestHostileNULInAppID(t *testing.T) {
	sc, _ := hostileSidecar(t)
	body := bytes.Replace(cloudFixture(t, "text_ctwa_referral"), []byte(`"phone_number_id": "`+fixtureApp+`"`),
		[]byte(`"phone_number_id": "`+fixtureApp+`\u0000zz"`), 1)
	if !bytes.Contains(body, []byte(`\u0000zz`)) {
		t.Fatal("fixture changed: no phone_number_id to poison")
	}
	sendWebhook(t, sc, "application/json", body, signed(body)...)
	contacts := authed(t, sc, "GET", appPath+"/contacts/export", "", nil, 200)
	sources := authed(t, sc, "GET", appPath+"/sources", "", nil, 200)
	if bytes.Contains(contacts, []byte(leadLena)) || bytes.Contains(sources, []byte(`"zz"`)) {
		t.Fatalf("a webhook for app %q leaked into app %s:\ncontacts %s\nsources %s", fixtureApp+"\\x00zz", fixtureApp, contacts, sources)
	}
}

// ---- CSV injection ----

func TestHostileCSVInjection(t *testing.T) {
	sc, _ := hostileSidecar(t)
	at := day(2026, 3, 16).Add(12 * time.Hour)
	formulas := []string{`=HYPERLINK("https://evil.example","x")`, "+SUM(1,2)", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "=cmd|' /C calc'!A0"}
	var msgs []waItem
	for i, f := range formulas {
		lead := fmt.Sprintf("49159400000%02d", i)
		msgs = append(msgs,
			textMsg(lead, at.Add(time.Duration(i)*time.Minute), "hi "+f).fromAd(adSpring),
			buttonMsg(lead, at.Add(time.Duration(i)*time.Minute+time.Second), f, f),
			replyMsg(lead, at.Add(time.Duration(i)*time.Minute+2*time.Second), "list_reply", f, f))
	}
	// A campaign tag that is a formula becomes a source id.
	tag := "=1+1"
	body := statusesWebhook(sentStatus("4915950000001", at.Add(-time.Hour), tag))
	sendWebhook(t, sc, "application/json", body, signed(body)...)
	body = messagesWebhook(msgs...)
	sendWebhook(t, sc, "application/json", body, signed(body)...)
	body = messagesWebhook(textMsg("4915950000001", at, "hello"))
	sendWebhook(t, sc, "application/json", body, signed(body)...)

	formulaStart := func(cell string) bool { return cell != "" && strings.ContainsRune("=+-@\t\r", rune(cell[0])) }
	phone := regexp.MustCompile(`^\+[0-9]{7,15}$`)
	for _, export := range []string{"/events/export?date_from=2026-03-16&date_to=2026-03-16", "/contacts/export"} {
		raw := authed(t, sc, "GET", appPath+export, "", nil, 200)
		hostileInputs.Add(1)
		records, err := csv.NewReader(bytes.NewReader(raw)).ReadAll()
		if err != nil || len(records) < 2 {
			t.Fatalf("%s: not CSV with rows (%v): %q", export, err, raw)
		}
		defused := 0
		for _, rec := range records[1:] {
			for _, cell := range rec {
				if formulaStart(cell) && !phone.MatchString(cell) {
					t.Errorf("%s: cell %q would run as a formula", export, cell)
				}
				if strings.HasPrefix(cell, "'") {
					defused++
				}
			}
		}
		t.Logf("%s: %d rows, %d cells defused", export, len(records)-1, defused)
		if strings.HasPrefix(export, "/events") && defused < 2*len(formulas) {
			t.Errorf("%s: only %d defused cells for %d formula values", export, defused, len(formulas))
		}
	}
	// The export shows the JSON values, defused: nothing else changes but the phone,
	// which the export writes in E.164 with '+' (a plain signed number, not defused).
	var list struct{ Data []map[string]any }
	json.Unmarshal(authed(t, sc, "GET", appPath+"/events?date_from=2026-03-16&date_to=2026-03-16&limit=1000", "", nil, 200), &list)
	raw := authed(t, sc, "GET", appPath+"/events/export?date_from=2026-03-16&date_to=2026-03-16", "", nil, 200)
	records, _ := csv.NewReader(bytes.NewReader(raw)).ReadAll()
	if len(records) != len(list.Data)+1 {
		t.Fatalf("%d CSV rows, %d JSON rows", len(records)-1, len(list.Data))
	}
	for i, row := range list.Data {
		for j, col := range records[0] {
			v, _ := row[col].(string)
			want := defuse(v)
			if col == "phone" && v != "" {
				want = "+" + v
			}
			// encoding/csv drops a carriage return that is not part of a line break.
			if want := strings.ReplaceAll(want, "\r", ""); records[i+1][j] != want {
				t.Errorf("row %d %s: CSV %q, want %q", i, col, records[i+1][j], want)
			}
		}
	}
	if !bytes.Contains(raw, []byte(",'=1+1,")) {
		t.Errorf("the campaign tag %q is not defused in the export", tag)
	}
}
